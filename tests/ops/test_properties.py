"""Property tests (hypothesis): broadcasting, reductions and indexing over generated shapes,
checked against float64 NumPy computations written out here."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import minidl

SETTINGS = settings(max_examples=40, deadline=None)


@st.composite
def broadcastable_pair(draw):
    shapes = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4,
                                                    max_side=4))
    a_shape, b_shape = shapes.input_shapes
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 16)))
    return rng.standard_normal(a_shape), rng.standard_normal(b_shape)


def reduce_to(g, shape):
    """The reference adjoint of broadcasting: sum g over the dims that were broadcast."""
    lead = g.ndim - len(shape)
    g = g.sum(axis=tuple(range(lead))) if lead else g
    axes = tuple(i for i, s in enumerate(shape) if s == 1 and g.shape[i] != 1)
    return g.sum(axis=axes, keepdims=True) if axes else g


@SETTINGS
@given(broadcastable_pair(), st.sampled_from(["add", "sub", "mul"]))
def test_binary_broadcast_forward_and_gradients(pair, op):
    a, b = pair
    ta = minidl.tensor(a, dtype="float64", requires_grad=True)
    tb = minidl.tensor(b, dtype="float64", requires_grad=True)
    out = {"add": ta + tb, "sub": ta - tb, "mul": ta * tb}[op]
    ref = {"add": a + b, "sub": a - b, "mul": a * b}[op]
    np.testing.assert_allclose(out.detach().numpy(), ref)
    g = np.random.default_rng(0).standard_normal(ref.shape)
    out.backward(minidl.tensor(g, dtype="float64"))
    ga = {"add": g, "sub": g, "mul": g * b}[op]
    gb = {"add": g, "sub": -g, "mul": g * a}[op]
    assert ta.grad.shape == a.shape and tb.grad.shape == b.shape
    np.testing.assert_allclose(ta.grad.numpy(), reduce_to(ga, a.shape), atol=1e-12)
    np.testing.assert_allclose(tb.grad.numpy(), reduce_to(gb, b.shape), atol=1e-12)


@st.composite
def array_and_dims(draw):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=4, max_side=5))
    ndim = len(shape)
    dims = draw(st.one_of(st.none(), st.integers(-ndim, ndim - 1),
                          st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True)))
    keepdim = draw(st.booleans())
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 16)))
    return rng.standard_normal(shape), dims, keepdim


def np_axes(dims, ndim):
    if dims is None:
        return tuple(range(ndim))
    if isinstance(dims, int):
        return (dims % ndim,)
    return tuple(dims)


@SETTINGS
@given(array_and_dims(), st.sampled_from(["sum", "mean", "amax", "logsumexp", "var"]))
def test_reductions_forward_and_gradient(case, op):
    a, dims, keepdim = case
    axes = np_axes(dims, a.ndim)
    t = minidl.tensor(a, dtype="float64", requires_grad=True)
    arg = dims if not isinstance(dims, list) else tuple(dims)
    if op == "logsumexp" and arg is None:
        arg = tuple(range(a.ndim))
    out = getattr(t, op)(arg, keepdim=keepdim)
    n = int(np.prod([a.shape[i] for i in axes]))
    if op == "sum":
        ref, dref = a.sum(axis=axes, keepdims=True), np.ones_like(a)
    elif op == "mean":
        ref, dref = a.mean(axis=axes, keepdims=True), np.full_like(a, 1.0 / n)
    elif op == "amax":
        ref = a.max(axis=axes, keepdims=True)
        hit = (a == ref).astype(float)
        dref = hit / hit.sum(axis=axes, keepdims=True)
    elif op == "logsumexp":
        m = a.max(axis=axes, keepdims=True)
        ref = np.log(np.exp(a - m).sum(axis=axes, keepdims=True)) + m
        dref = np.exp(a - ref)
    else:
        if n < 2:
            return  # the unbiased variance of one element is not finite
        ref = a.var(axis=axes, ddof=1, keepdims=True)
        dref = 2 * (a - a.mean(axis=axes, keepdims=True)) / (n - 1)
    expected = ref if keepdim else ref.reshape([s for i, s in enumerate(a.shape) if i not in axes])
    np.testing.assert_allclose(out.detach().numpy(), expected, rtol=1e-10, atol=1e-12)
    out.sum().backward()
    np.testing.assert_allclose(t.grad.numpy(), dref, rtol=1e-9, atol=1e-12)


@SETTINGS
@given(st.integers(1, 6), st.integers(1, 4), st.lists(st.integers(-6, 5), min_size=1, max_size=12))
def test_integer_array_indexing_accumulates(rows, cols, raw_idx):
    idx = [i % rows for i in raw_idx]
    a = np.random.default_rng(rows * 7 + cols).standard_normal((rows, cols))
    t = minidl.tensor(a, dtype="float64", requires_grad=True)
    out = t[minidl.tensor(idx)]
    np.testing.assert_allclose(out.detach().numpy(), a[idx])
    g = np.random.default_rng(1).standard_normal(out.shape)
    out.backward(minidl.tensor(g, dtype="float64"))
    ref = np.zeros_like(a)
    for k, i in enumerate(idx):  # written as a loop: the plainest statement of accumulation
        ref[i] += g[k]
    np.testing.assert_allclose(t.grad.numpy(), ref, atol=1e-12)


@SETTINGS
@given(hnp.array_shapes(min_dims=1, max_dims=3, max_side=5), st.integers(0, 2 ** 16))
def test_boolean_mask_indexing_gradient(shape, seed):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(shape)
    mask = rng.random(shape) > 0.5
    t = minidl.tensor(a, dtype="float64", requires_grad=True)
    out = t[minidl.tensor(mask)]
    np.testing.assert_allclose(out.detach().numpy(), a[mask])
    (out * 3).sum().backward()
    np.testing.assert_allclose(t.grad.numpy(), mask * 3.0)


@SETTINGS
@given(hnp.array_shapes(min_dims=2, max_dims=4, max_side=4), st.data())
def test_permute_reshape_roundtrip_gradients(shape, data):
    perm = data.draw(st.permutations(range(len(shape))))
    a = np.random.default_rng(0).standard_normal(shape)
    t = minidl.tensor(a, dtype="float64", requires_grad=True)
    out = t.permute(*perm).reshape(-1)
    np.testing.assert_allclose(out.detach().numpy(), a.transpose(perm).reshape(-1))
    w = np.arange(out.shape[0], dtype=float)
    (out * minidl.tensor(w, dtype="float64")).sum().backward()
    np.testing.assert_allclose(t.grad.numpy(), w.reshape(a.transpose(perm).shape).transpose(np.argsort(perm)))
