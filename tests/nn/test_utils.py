"""nn.utils against torch.nn.utils: clip_grad_norm_ (every norm type, clipping and not),
clip_grad_value_, parameters_to_vector / vector_to_parameters."""
import math

import numpy as np
import pytest

import minidl
import minidl.nn as mnn
from minidl.nn import utils

from .helpers import assert_close

torch = pytest.importorskip("torch")

SHAPES = [(3, 4), (4,), (2, 3, 2), (1,)]


def twin_grads(dtype="float32", scale=1.0, missing=()):
    """Parameters with identical gradients on both sides; indices in `missing` get no grad."""
    rng = np.random.default_rng(3)
    ours, theirs = [], []
    for i, shape in enumerate(SHAPES):
        value = rng.standard_normal(shape).astype(dtype)
        grad = (rng.standard_normal(shape) * scale).astype(dtype)
        p, q = mnn.Parameter(minidl.tensor(value)), torch.nn.Parameter(torch.tensor(value))
        if i not in missing:
            p.grad, q.grad = minidl.tensor(grad), torch.tensor(grad)
        ours.append(p)
        theirs.append(q)
    return ours, theirs


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("norm_type", [2.0, 1, 3.5, math.inf, "inf", 0.5])
@pytest.mark.parametrize("max_norm", [0.1, 1.0, 1e3])  # clipping hard, mildly, not at all
def test_clip_grad_norm_matches_pytorch(norm_type, max_norm, dtype):
    ours, theirs = twin_grads(dtype, missing=(1,))
    total_ours = utils.clip_grad_norm_(ours, max_norm, norm_type=norm_type)
    total_theirs = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type=norm_type)
    assert isinstance(total_ours, minidl.Tensor) and total_ours.dtype.name == dtype
    assert_close(total_ours, total_theirs, dtype, "total norm")
    for p, q in zip(ours, theirs):
        if q.grad is None:
            assert p.grad is None
        else:
            assert_close(p.grad, q.grad, dtype, "clipped grad")


def test_clip_grad_norm_result_has_the_requested_norm():
    ours, _ = twin_grads(scale=10.0)
    before = utils.clip_grad_norm_(ours, 2.0).item()
    assert before > 2.0
    after = np.sqrt(sum((p.grad.numpy().astype(np.float64) ** 2).sum() for p in ours))
    assert after == pytest.approx(2.0, rel=1e-5)


def test_clip_grad_norm_accepts_a_single_tensor_a_generator_and_no_grads():
    ours, theirs = twin_grads()
    assert_close(utils.clip_grad_norm_(ours[0], 0.5),
                 torch.nn.utils.clip_grad_norm_(theirs[0], 0.5))
    model = mnn.Linear(3, 2)
    model(minidl.randn(4, 3)).sum().backward()
    assert utils.clip_grad_norm_(model.parameters(), 1e-3).item() > 1e-3
    grads_norm = np.sqrt(sum((p.grad.numpy() ** 2).sum() for p in model.parameters()))
    assert grads_norm == pytest.approx(1e-3, rel=1e-3)  # the generator was walked for both steps
    assert utils.clip_grad_norm_([mnn.Parameter(minidl.zeros(2))], 1.0).item() == 0.0


def test_clip_grad_norm_nonfinite():
    ours, _ = twin_grads()
    ours[0].grad = minidl.tensor([[float("nan")] * 4] * 3)
    with pytest.raises(RuntimeError, match="The total norm of order 2.0 for gradients from "
                                           "`parameters` is non-finite, so it cannot be clipped"):
        utils.clip_grad_norm_(ours, 1.0, error_if_nonfinite=True)
    assert math.isnan(utils.clip_grad_norm_(ours, 1.0).item())


def test_get_total_norm_and_clip_grads_with_norm_match_pytorch():
    ours, theirs = twin_grads()
    grads_o, grads_t = [p.grad for p in ours], [q.grad for q in theirs]
    n_o, n_t = utils.get_total_norm(grads_o, 3.0), torch.nn.utils.get_total_norm(grads_t, 3.0)
    assert_close(n_o, n_t)
    utils.clip_grads_with_norm_(ours, 0.5, n_o)
    torch.nn.utils.clip_grads_with_norm_(theirs, 0.5, n_t)
    for p, q in zip(ours, theirs):
        assert_close(p.grad, q.grad)


@pytest.mark.parametrize("clip_value", [0.1, 0.7, 5.0])
def test_clip_grad_value_matches_pytorch(clip_value):
    ours, theirs = twin_grads(missing=(2,))
    utils.clip_grad_value_(ours, clip_value)
    torch.nn.utils.clip_grad_value_(theirs, clip_value)
    for p, q in zip(ours, theirs):
        if q.grad is not None:
            assert_close(p.grad, q.grad)


def test_parameters_to_vector_and_back_match_pytorch():
    ours, theirs = twin_grads()
    vec_o = utils.parameters_to_vector(ours)
    vec_t = torch.nn.utils.parameters_to_vector(theirs)
    assert_close(vec_o, vec_t)
    # differentiable: element k of the vector sends gradient k back to its parameter
    before = ours[1].grad.numpy().copy()
    (vec_o * minidl.arange(vec_o.numel(), dtype=minidl.float32)).sum().backward()
    np.testing.assert_allclose(ours[1].grad.numpy(), before + np.arange(12, 16), rtol=1e-6)

    new = np.linspace(-1, 1, vec_t.numel()).astype(np.float32)
    new_o = minidl.tensor(new)
    utils.vector_to_parameters(new_o, ours)
    torch.nn.utils.vector_to_parameters(torch.tensor(new), theirs)
    for p, q in zip(ours, theirs):
        assert tuple(p.shape) == tuple(q.shape)
        assert_close(p, q)
    with minidl.no_grad():
        new_o.mul_(2.0)  # the parameters share the vector's memory, as in PyTorch
    np.testing.assert_allclose(ours[0].detach().numpy().ravel(), 2 * new[:12])


@pytest.mark.parametrize("vec, error, message", [
    (np.zeros(3), TypeError, "expected minidl.Tensor, but got: ndarray"),
    (minidl.zeros(5), ValueError, r"vec must be a 1-D tensor of 29 elements \(the parameters' "
                                  r"total\), got shape \(5,\)"),
])
def test_vector_to_parameters_errors(vec, error, message):
    ours, _ = twin_grads()
    with pytest.raises(error, match=message):
        utils.vector_to_parameters(vec, ours)
