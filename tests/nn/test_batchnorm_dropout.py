"""Stateful behaviour over several steps: BatchNorm's running statistics (every momentum
setting) against PyTorch's after each training step, and Dropout's training-mode statistics."""
import numpy as np
import pytest

import minidl
import minidl.nn as mnn

from .helpers import assert_close, torch_state_to_minidl

torch = pytest.importorskip("torch")
tnn = torch.nn

BATCHNORMS = {
    "bn1d_2d_input": (lambda nn: nn.BatchNorm1d(4), (6, 4)),
    "bn1d_3d_input": (lambda nn: nn.BatchNorm1d(3, momentum=0.5), (4, 3, 5)),
    "bn2d": (lambda nn: nn.BatchNorm2d(3), (4, 3, 5, 5)),
    "bn2d_cumulative_average": (lambda nn: nn.BatchNorm2d(3, momentum=None), (2, 3, 4, 4)),
    "bn2d_no_affine": (lambda nn: nn.BatchNorm2d(2, affine=False, eps=1e-2), (3, 2, 3, 3)),
    "bn2d_untracked": (lambda nn: nn.BatchNorm2d(2, track_running_stats=False), (3, 2, 3, 3)),
}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", BATCHNORMS)
def test_running_statistics_follow_pytorch_over_steps(name, dtype):
    build, shape = BATCHNORMS[name]
    ours, theirs = build(mnn), build(tnn)
    if dtype == "float64":
        ours.double()
        theirs.double()
    rng = np.random.default_rng(5)
    for step in range(5):
        # shifted, scaled batches so the running averages move visibly
        x = (rng.standard_normal(shape) * (1 + step) + step).astype(dtype)
        x_ours, x_theirs = minidl.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        out_ours, out_theirs = ours(x_ours), theirs(x_theirs)
        assert_close(out_ours, out_theirs, dtype, f"step {step} forward")
        g = rng.standard_normal(shape).astype(dtype)  # random upstream: no cancellation
        (out_ours * out_ours * minidl.tensor(g)).sum().backward()
        (out_theirs * out_theirs * torch.tensor(g)).sum().backward()
        assert_close(x_ours.grad, x_theirs.grad, dtype, f"step {step} input grad")
        ours_buffers = dict(ours.named_buffers())
        assert list(ours_buffers) == [n for n, _ in theirs.named_buffers()]
        for key, value in theirs.named_buffers():
            assert_close(ours_buffers[key], value, dtype, f"step {step} {key}")
    for key, p in theirs.named_parameters():
        assert_close(ours.get_parameter(key).grad, p.grad, dtype, f"accumulated grad {key}")

    ours.eval()
    theirs.eval()
    x = rng.standard_normal(shape).astype(dtype)
    assert_close(ours(minidl.tensor(x)), theirs(torch.tensor(x)), dtype, "eval forward")


def test_eval_mode_uses_running_statistics_and_leaves_them_alone():
    bn = mnn.BatchNorm1d(2)
    bn.load_state_dict({"weight": np.ones(2), "bias": np.zeros(2),
                        "running_mean": np.array([1.0, -1.0]), "running_var": np.array([4.0, 0.25]),
                        "num_batches_tracked": np.array(3)})
    bn.eval()
    out = bn(minidl.tensor([[3.0, 0.0]]))
    expected = [[2 / np.sqrt(4 + 1e-5), 1 / np.sqrt(0.25 + 1e-5)]]  # (x - mean) / sqrt(var + eps)
    np.testing.assert_allclose(out.detach().numpy(), expected,
                               rtol=1e-6)
    assert bn.running_mean.tolist() == [1.0, -1.0] and bn.num_batches_tracked.item() == 3


def test_num_batches_tracked_counts_training_calls_only():
    bn = mnn.BatchNorm2d(2)
    for _ in range(3):
        bn(minidl.randn(2, 2, 3, 3))
    bn.eval()
    bn(minidl.randn(2, 2, 3, 3))
    assert bn.num_batches_tracked.item() == 3


def test_loaded_pytorch_batchnorm_reproduces_eval_outputs():
    theirs = tnn.BatchNorm2d(3)
    with torch.no_grad():
        for _ in range(4):
            theirs(torch.randn(4, 3, 5, 5) * 3 + 1)
    theirs.eval()
    ours = mnn.BatchNorm2d(3)
    torch_state_to_minidl(theirs, ours)
    ours.eval()
    x = np.random.default_rng(0).standard_normal((2, 3, 5, 5)).astype("float32")
    assert_close(ours(minidl.tensor(x)), theirs(torch.tensor(x)))


# ---- Dropout -------------------------------------------------------------------------------

@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_dropout_training_statistics_and_gradient(p):
    drop = mnn.Dropout(p)
    x = minidl.ones(200, 500, requires_grad=True)
    y = drop(x)
    values = y.detach().numpy()
    kept = values != 0
    # survivors are scaled by 1/(1-p) so that the expectation is unchanged
    np.testing.assert_allclose(values[kept], 1 / (1 - p), rtol=1e-6)
    n = values.size
    assert abs(kept.mean() - (1 - p)) < 4 * np.sqrt(p * (1 - p) / n)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), kept / (1 - p), rtol=1e-6)


def test_dropout_eval_is_identity_and_p1_zeroes():
    x = minidl.randn(4, 5)
    assert np.array_equal(mnn.Dropout(0.5).eval()(x).numpy(), x.numpy())
    assert not mnn.Dropout(1.0)(x).numpy().any()


def test_dropout_is_repeatable_under_a_seed():
    drop = mnn.Dropout(0.5)
    minidl.manual_seed(42)
    first = drop(minidl.ones(50)).numpy()
    minidl.manual_seed(42)
    np.testing.assert_array_equal(drop(minidl.ones(50)).numpy(), first)
