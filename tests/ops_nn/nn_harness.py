"""The shared harness of the nn-op tests: one row per case, checked against PyTorch.

A `Case` names a function of (F, *tensors), where F is either `minidl.nn.functional` or
`torch.nn.functional`, so the same one-line lambda runs on both libraries:

    Case("softmax_dim0", lambda F, x: F.softmax(x, 0), [randn(3, 4)])

Tests take the `device` fixture of tests/conftest.py, so every row runs on every device.
`check_against_torch` builds the inputs from one NumPy draw, runs both sides, compares every
output, then back-propagates one random upstream gradient through both and compares the
gradient of every input that requires grad. `check_gradcheck` / `check_gradgradcheck`
compare minidl's first / second derivatives with float64 finite differences.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Optional, Sequence

import numpy as np
import pytest

import minidl
import minidl.nn.functional as MF
from minidl.autograd import gradcheck

torch = pytest.importorskip("torch")
TF = torch.nn.functional

DTYPES = ["float32", "float64"]
TOLERANCES = {"float32": dict(rtol=1e-4, atol=1e-5), "float64": dict(rtol=1e-9, atol=1e-11)}


# ---- input makers: each returns a function of (rng, float dtype) -> numpy array -----------

def randn(*shape, scale=1.0, shift=0.0):
    return lambda rng, dt: (rng.standard_normal(shape) * scale + shift).astype(dt)


def rand(*shape, low=0.0, high=1.0):
    return lambda rng, dt: rng.uniform(low, high, shape).astype(dt)


def ints(high, *shape, low=0):
    return lambda rng, dt: rng.integers(low, high, shape).astype(np.int64)


def bools(*shape, p_true=0.7):
    return lambda rng, dt: rng.random(shape) < p_true


def const(array):
    """A fixed array; float arrays take the case's dtype."""
    array = np.asarray(array)
    return lambda rng, dt: array.astype(dt) if array.dtype.kind == "f" else array.copy()


def probabilities(*shape, axis=1):
    def make(rng, dt):
        p = rng.uniform(0.05, 1.0, shape)
        return (p / p.sum(axis=axis, keepdims=True)).astype(dt)
    return make


@dataclasses.dataclass
class Case:
    id: str
    fn: Callable
    inputs: Sequence[Callable]
    grad: Optional[Sequence[int]] = None   # which inputs get requires_grad (default: floats)
    gradcheck: bool = True                 # float64 finite-difference check of minidl alone
    gradgrad: bool = False                 # also check second derivatives
    tol32: Optional[dict] = None           # float32 tolerance override
    tol64: Optional[dict] = None           # float64 tolerance override

    def __str__(self):
        return self.id


def ids(cases):
    return [c.id for c in cases]


def make_arrays(case, dtype, seed=0):
    rng = np.random.default_rng(seed)
    return [make(rng, dtype) for make in case.inputs]


def _grad_indices(case, arrays):
    if case.grad is not None:
        return tuple(case.grad)
    return tuple(i for i, a in enumerate(arrays) if a.dtype.kind == "f")


def _outputs(out):
    return list(out) if isinstance(out, (tuple, list)) else [out]


def _to_numpy(t):
    if isinstance(t, minidl.Tensor):
        return t.detach().numpy()
    return t.detach().numpy()


def check_against_torch(case, dtype, device="cpu", seed=0):
    arrays = make_arrays(case, dtype, seed)
    grads = _grad_indices(case, arrays)
    ours = [minidl.tensor(a, device=device, requires_grad=i in grads)
            for i, a in enumerate(arrays)]
    theirs = [torch.tensor(a, requires_grad=i in grads) for i, a in enumerate(arrays)]
    out_ours, out_theirs = _outputs(case.fn(MF, *ours)), _outputs(case.fn(TF, *theirs))
    override = case.tol32 if dtype == "float32" else case.tol64
    tol = override or TOLERANCES[dtype]
    assert len(out_ours) == len(out_theirs)
    for k, (a, b) in enumerate(zip(out_ours, out_theirs)):
        a_np, b_np = _to_numpy(a), _to_numpy(b)
        assert a_np.shape == b_np.shape, f"output {k}: shape {a_np.shape} != torch {b_np.shape}"
        if b_np.dtype.kind == "f":
            assert a_np.dtype == b_np.dtype, f"output {k}: dtype {a_np.dtype} != torch {b_np.dtype}"
            np.testing.assert_allclose(a_np, b_np, **tol, err_msg=f"{case.id}: output {k}")
        else:
            np.testing.assert_array_equal(a_np, b_np, err_msg=f"{case.id}: output {k}")
    if not grads:
        return
    rng = np.random.default_rng(seed + 1)
    upstream = rng.standard_normal(tuple(out_theirs[0].shape)).astype(_to_numpy(out_ours[0]).dtype)
    out_ours[0].backward(minidl.tensor(upstream, device=device))
    out_theirs[0].backward(torch.tensor(upstream))
    for i in grads:
        assert ours[i].grad is not None, f"{case.id}: no gradient for input {i}"
        assert ours[i].grad.dtype == ours[i].dtype, f"{case.id}: grad {i} changed dtype"
        np.testing.assert_allclose(ours[i].grad.numpy(), theirs[i].grad.numpy(), **tol,
                                   err_msg=f"{case.id}: gradient of input {i}")


def _float64_leaves(case, seed=0):
    arrays = make_arrays(case, "float64", seed)
    grads = _grad_indices(case, arrays)
    return [minidl.tensor(a, requires_grad=i in grads) for i, a in enumerate(arrays)]


def _first_output(case):
    return lambda *ts: _outputs(case.fn(MF, *ts))[0]


def check_gradcheck(case, seed=0):
    assert gradcheck(_first_output(case), _float64_leaves(case, seed), eps=1e-6, atol=1e-6,
                     rtol=1e-4)


def gradgradcheck(fn, inputs, seed=0):
    """Second derivatives: gradcheck of (inputs, v) -> d<fn(inputs), v>/d(inputs).

    (Written here because the library's gradgradcheck evaluates this first derivative under
    no_grad, where no graph exists to differentiate.)"""
    diff = [t for t in inputs if isinstance(t, minidl.Tensor) and t.requires_grad]
    out = fn(*inputs)
    rng = np.random.default_rng(seed)
    v = minidl.tensor(rng.standard_normal(tuple(out.shape)), requires_grad=True)
    n = len(inputs)

    def first_derivative(*args):
        ins, vec = args[:n], args[n]
        with minidl.enable_grad():
            o = fn(*ins)
            used = [t for t in ins if isinstance(t, minidl.Tensor) and t.requires_grad]
            gs = minidl.autograd.grad([o], used, [vec], create_graph=True, allow_unused=True)
        return tuple(g for g in gs if g is not None)

    assert diff, "gradgradcheck needs at least one input that requires grad"
    return gradcheck(first_derivative, tuple(inputs) + (v,), eps=1e-6, atol=1e-6, rtol=1e-4)


def check_gradgradcheck(case, seed=0):
    assert gradgradcheck(_first_output(case), _float64_leaves(case, seed), seed)
