"""state_dict / load_state_dict: key names and order, values, and errors — all compared with
PyTorch on the same model built from the same constructor calls."""
import numpy as np
import pytest

import minidl
import minidl.nn as mnn

torch = pytest.importorskip("torch")
tnn = torch.nn

from .helpers import torch_state_to_minidl  # noqa: E402


def zoo(nn):
    """One model holding every layer family that has parameters or buffers."""
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
        nn.ConvTranspose2d(4, 2, 2, stride=2, bias=False), nn.GroupNorm(1, 2),
        nn.Flatten(), nn.Linear(8, 6), nn.LayerNorm(6), nn.RMSNorm(6),
        nn.BatchNorm1d(6, affine=False),
        nn.ModuleDict({"emb": nn.Embedding(5, 6, padding_idx=0),
                       "stack": nn.ModuleList([nn.Linear(6, 6), nn.Conv1d(2, 2, 3)])}),
        nn.CrossEntropyLoss(weight=None),
    )


def test_keys_shapes_and_dtypes_match_pytorch():
    ours, theirs = zoo(mnn).state_dict(), zoo(tnn).state_dict()
    assert list(ours) == list(theirs)
    for k in theirs:
        assert tuple(ours[k].shape) == tuple(theirs[k].shape), k
        assert ours[k].dtype.name == str(theirs[k].dtype).replace("torch.", ""), k


def test_loading_pytorch_values_reproduces_them_exactly():
    model, reference = zoo(mnn), zoo(tnn)
    with torch.no_grad():
        for t in reference.state_dict().values():
            if t.is_floating_point():
                t.normal_()
        reference[1].num_batches_tracked.fill_(7)
    result = torch_state_to_minidl(reference, model)
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert repr(result) == "<All keys matched successfully>"
    for k, v in reference.state_dict().items():
        np.testing.assert_array_equal(model.state_dict()[k].numpy(), v.numpy(), err_msg=k)
    assert model[1].num_batches_tracked.item() == 7


def test_round_trip_between_two_models_gives_equal_outputs():
    a, b = mnn.Linear(4, 3), mnn.Linear(4, 3)
    assert not np.array_equal(a.weight.detach().numpy(), b.weight.detach().numpy())
    b.load_state_dict(a.state_dict())
    np.testing.assert_array_equal(b.weight.detach().numpy(), a.weight.detach().numpy())
    np.testing.assert_array_equal(b.bias.detach().numpy(), a.bias.detach().numpy())
    assert b.weight is not a.weight  # values are copied, not shared


def test_state_dict_values_are_detached_views_unless_keep_vars():
    m = mnn.Linear(2, 2)
    sd = m.state_dict()
    assert not sd["weight"].requires_grad and not isinstance(sd["weight"], mnn.Parameter)
    with minidl.no_grad():
        m.weight.fill_(3.0)
    assert sd["weight"].numpy().tolist() == [[3.0, 3.0], [3.0, 3.0]]  # shares memory, as torch
    assert m.state_dict(keep_vars=True)["weight"] is m.weight


def with_keys(state, drop=(), add=None, reshape=None):
    state = dict(state)
    for k in drop:
        del state[k]
    state.update(add or {})
    for k, shape in (reshape or {}).items():
        state[k] = np.zeros(shape, dtype=np.float32)
    return state


BAD_STATES = {
    "missing": dict(drop=["0.bias"]),
    "unexpected": dict(add={"0.scale": np.zeros(2, np.float32), "extra": np.zeros(1, np.float32)}),
    "size_mismatch": dict(reshape={"2.weight": (5, 3)}),
    "all_three": dict(drop=["2.bias"], add={"9.weight": np.zeros(1, np.float32)},
                      reshape={"0.weight": (4, 4)}),
}


def small(nn):
    return nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 3))


@pytest.mark.parametrize("case", BAD_STATES)
def test_strict_errors_match_pytorch_message(case):
    good = {k: v.numpy() for k, v in small(tnn).state_dict().items()}
    bad = with_keys(good, **BAD_STATES[case])
    with pytest.raises(RuntimeError) as theirs:
        small(tnn).load_state_dict({k: torch.from_numpy(v) for k, v in bad.items()})
    with pytest.raises(RuntimeError) as ours:
        small(mnn).load_state_dict(bad)
    assert str(ours.value) == str(theirs.value).replace("torch.Size", "minidl.Size")


@pytest.mark.parametrize("case", ["missing", "unexpected"])
def test_non_strict_reports_keys_like_pytorch(case):
    good = {k: v.numpy() for k, v in small(tnn).state_dict().items()}
    bad = with_keys(good, **BAD_STATES[case])
    theirs = small(tnn).load_state_dict({k: torch.from_numpy(v) for k, v in bad.items()},
                                        strict=False)
    ours = small(mnn).load_state_dict(bad, strict=False)
    assert ours.missing_keys == theirs.missing_keys
    assert ours.unexpected_keys == theirs.unexpected_keys
    assert ours == (theirs.missing_keys, theirs.unexpected_keys)  # a named tuple


def test_size_mismatch_raises_even_when_not_strict():
    with pytest.raises(RuntimeError, match=r"size mismatch for weight: copying a param with "
                                           r"shape minidl.Size\(\[2, 2\]\) from checkpoint, the "
                                           r"shape in current model is minidl.Size\(\[3, 2\]\)"):
        mnn.Linear(2, 3).load_state_dict({"weight": np.zeros((2, 2))}, strict=False)


def test_non_array_value_is_named():
    with pytest.raises(RuntimeError, match='While copying the parameter named "bias", expected '
                                           'a Tensor or an array'):
        mnn.Linear(2, 3).load_state_dict({"weight": np.zeros((3, 2)), "bias": {"a": 1}})


def test_non_dict_is_refused():
    with pytest.raises(TypeError, match="Expected state_dict to be dict-like, got list"):
        mnn.Linear(2, 3).load_state_dict([1, 2])


def test_non_persistent_buffer_is_not_saved_and_unexpected_when_given():
    m = mnn.Module()
    m.register_buffer("kept", minidl.zeros(1))
    m.register_buffer("scratch", minidl.zeros(1), persistent=False)
    assert list(m.state_dict()) == ["kept"]
    result = m.load_state_dict({"kept": np.ones(1), "scratch": np.ones(1)}, strict=False)
    assert result.unexpected_keys == ["scratch"] and m.kept.item() == 1.0


def test_batchnorm_checkpoint_without_num_batches_tracked_loads():
    bn = mnn.BatchNorm1d(3)
    state = {k: v.numpy() for k, v in tnn.BatchNorm1d(3).state_dict().items()
             if k != "num_batches_tracked"}
    assert bn.load_state_dict(state) == ([], [])


def test_values_are_cast_to_the_model_dtype_and_float64_keeps_precision():
    m = mnn.Linear(2, 1).double()
    w = np.array([[1 / 3, 2 / 3]], dtype=np.float64)
    m.load_state_dict({"weight": w, "bias": np.array([1], dtype=np.int64)})
    assert m.weight.dtype == minidl.float64 and m.weight.detach().numpy()[0, 0] == 1 / 3
    assert m.bias.dtype == minidl.float64 and m.bias.item() == 1.0


def test_assign_keeps_the_checkpoint_tensor():
    m = mnn.Linear(2, 1)
    w = minidl.tensor([[5.0, 6.0]], dtype=minidl.float64)
    m.load_state_dict({"weight": w, "bias": minidl.zeros(1)}, assign=True)
    assert m.weight.dtype == minidl.float64 and isinstance(m.weight, mnn.Parameter)
    assert m.weight.requires_grad and m.weight.tolist() == [[5.0, 6.0]]


def test_loaded_parameters_keep_identity_and_grad_flag():
    m = mnn.Linear(2, 1)
    w = m.weight
    m.load_state_dict({"weight": np.ones((1, 2)), "bias": np.zeros(1)})
    assert m.weight is w and w.requires_grad and w.is_leaf
