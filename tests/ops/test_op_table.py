"""Every row of the op table, on every device: forward and backward against PyTorch (float32
and float64), and float64 finite-difference gradient checks (first and second order)."""
from __future__ import annotations

import numpy as np
import pytest

import minidl
from minidl.autograd import gradcheck, gradgradcheck

from .optable import ROWS, draw

try:
    import torch
except ImportError:  # the parity tests skip, the gradient checks still run
    torch = None

ROW_IDS = [r.name for r in ROWS]
# smooth ops whose second derivative is checked too (kinks and ties excluded)
SECOND_ORDER = {"add", "sub", "mul", "div", "pow_scalar", "pow_frac", "pow_tensor", "rpow", "exp",
                "log", "log1p", "sqrt", "rsqrt", "sin", "cos", "tanh", "sigmoid", "sum_dim",
                "mean_dim", "var", "std", "logsumexp", "cumsum", "norm_dim", "matmul_2d",
                "matmul_batched", "matmul_1d_2d", "matmul_3d_2d", "reshape", "permute", "expand",
                "cat", "getitem_intarray_repeat", "gather", "prod_dim"}


def make_arrays(row, dtype, seed=0):
    rng = np.random.default_rng(seed)
    arrays = []
    for i, shape in enumerate(row.shapes):
        if i in row.ints:
            arrays.append(rng.integers(0, row.ints[i], size=shape).astype(np.int64))
        else:
            arrays.append(draw(shape, row.domain, rng, dtype))
    return arrays


def as_minidl(arrays, device, requires_grad=True):
    out = []
    for a in arrays:
        t = minidl.tensor(a, device=device)
        if requires_grad and a.dtype.kind == "f":
            t.requires_grad_()
        out.append(t)
    return out


@pytest.mark.parametrize("row", ROWS, ids=ROW_IDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_forward_backward_match_torch(row, dtype, device):
    if torch is None:
        pytest.skip("PyTorch is not installed: parity against it cannot be checked")
    arrays = make_arrays(row, dtype)
    m_in = as_minidl(arrays, device)
    t_in = [torch.tensor(a, requires_grad=a.dtype.kind == "f") for a in arrays]
    m_out = row.fn(*m_in)
    t_out = (row.torch_fn or row.fn)(*t_in)
    assert tuple(m_out.shape) == tuple(t_out.shape)
    assert m_out.dtype.name == str(t_out.dtype).replace("torch.", "")
    rtol, atol = (1e-4, row.atol32) if dtype == np.float32 else (1e-10, 1e-12)
    np.testing.assert_allclose(m_out.detach().cpu().numpy(), t_out.detach().numpy(), rtol=rtol,
                               atol=atol)
    if not row.grad:
        return
    g = np.random.default_rng(1).standard_normal(size=tuple(t_out.shape)).astype(dtype)
    m_out.backward(minidl.tensor(g, device=device))
    t_out.backward(torch.tensor(g))
    for i, (m, t) in enumerate(zip(m_in, t_in)):
        if not t.requires_grad:
            continue
        assert m.grad is not None, f"input {i} got no gradient"
        assert m.grad.dtype == m.dtype and tuple(m.grad.shape) == tuple(m.shape)
        np.testing.assert_allclose(m.grad.cpu().numpy(), t.grad.numpy(), rtol=rtol * 10,
                                   atol=atol * 10, err_msg=f"gradient of input {i}")


@pytest.mark.parametrize("row", [r for r in ROWS if r.grad and r.gradcheck],
                         ids=[r.name for r in ROWS if r.grad and r.gradcheck])
def test_gradcheck_float64(row, device):
    inputs = as_minidl(make_arrays(row, np.float64, seed=2), device)
    assert gradcheck(row.fn, inputs, eps=1e-6, atol=1e-6, rtol=1e-4)


SECOND = [r for r in ROWS if r.name in SECOND_ORDER]


@pytest.mark.parametrize("row", SECOND, ids=[r.name for r in SECOND])
def test_gradgradcheck_float64(row, device):
    inputs = as_minidl(make_arrays(row, np.float64, seed=3), device)
    assert gradgradcheck(row.fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3)


def test_every_row_is_checked_against_something():
    # a table row that is neither compared with torch nor gradchecked would test nothing
    for row in ROWS:
        assert row.grad is False or row.gradcheck or torch is not None, row.name
