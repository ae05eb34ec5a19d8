"""sort, argsort, topk, kthvalue, median (minidl/ops/sorting.py), on every device.

Forward values and indices are checked against NumPy references written out here (always)
and against PyTorch (when installed); gradients against PyTorch and against float64 finite
differences. Where indices are compared, the inputs hold distinct values (or the op's tie
rule is one both libraries promise: sort is stable), since which of several equal values
topk/kthvalue/median return is unspecified in both libraries.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import minidl
from minidl.autograd import gradcheck, gradgradcheck

try:
    import torch
except ImportError:  # the parity tests skip; the NumPy references and gradchecks still run
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed")


def distinct(shape, seed=0, dtype=np.float64):
    """Well-separated distinct values in a random order (no ties; finite differences with
    eps=1e-6 never reorder them)."""
    rng = np.random.default_rng(seed)
    n = int(np.prod(shape)) if shape else 1
    return (rng.permutation(n).reshape(shape) * 0.37 - n * 0.1 + 0.011).astype(dtype)


# ---- NumPy references ------------------------------------------------------------------------
def ref_sort(a, dim, descending):
    """Stable sort; descending lists equal values in input order (PyTorch's stable rule)."""
    a_m = np.moveaxis(a, dim, -1)
    idx = np.empty(a_m.shape, dtype=np.int64)
    for pos in np.ndindex(a_m.shape[:-1]):
        row = a_m[pos]
        order = list(range(row.shape[0]))
        # written as a plain sort on (key, position): the reference must not share the
        # implementation's flip trick
        key = (lambda j: (np.isnan(row[j]), row[j] if not np.isnan(row[j]) else 0, j)) \
            if not descending else \
            (lambda j: (not np.isnan(row[j]), -row[j] if not np.isnan(row[j]) else 0, j))
        idx[pos] = sorted(order, key=key)
    idx = np.moveaxis(idx, -1, dim)
    return np.take_along_axis(a, idx, dim), idx


def ref_topk(a, k, dim, largest):
    vals, idx = ref_sort(a, dim, descending=largest)
    sl = [slice(None)] * a.ndim
    sl[dim] = slice(0, k)
    return vals[tuple(sl)], idx[tuple(sl)]


def ref_scatter_grad(shape, dim, idx, g):
    """The gradient of x -> take_along_axis(x, idx, dim): g added back at idx."""
    out = np.zeros(shape)
    idx_m, g_m, out_m = (np.moveaxis(t, dim, -1) for t in (idx, g, out))
    for pos in np.ndindex(idx_m.shape[:-1]):
        for j, i in enumerate(idx_m[pos]):
            out_m[pos + (i,)] += g_m[pos + (j,)]
    return out


# ---- forward against NumPy, on every device ---------------------------------------------
SORT_CASES = [((7,), -1, False), ((7,), 0, True), ((3, 5), 1, False), ((3, 5), 0, True),
              ((2, 3, 4), 1, True), ((2, 3, 4), -1, False), ((4, 1, 3), 1, True)]


@pytest.mark.parametrize("shape,dim,descending", SORT_CASES)
def test_sort_and_argsort_match_numpy_reference(shape, dim, descending, device):
    a = distinct(shape)
    x = minidl.tensor(a, device=device)
    vals, idx = minidl.sort(x, dim=dim, descending=descending)
    rv, ri = ref_sort(a, dim, descending)
    assert idx.dtype == minidl.int64 and tuple(idx.shape) == shape
    assert vals.device == x.device and idx.device == x.device
    np.testing.assert_array_equal(vals.numpy(), rv)
    np.testing.assert_array_equal(idx.numpy(), ri)
    np.testing.assert_array_equal(x.argsort(dim, descending=descending).numpy(), ri)
    # the method form and the namedtuple fields
    res = x.sort(dim, descending)
    np.testing.assert_array_equal(res.values.numpy(), rv)
    np.testing.assert_array_equal(res.indices.numpy(), ri)


@pytest.mark.parametrize("descending", [False, True])
def test_sort_is_stable_on_ties_both_directions(descending, device):
    a = np.array([[2, 1, 2, 0, 1, 2, 0], [5, 5, 5, 5, 5, 5, 5]], dtype=np.float32)
    vals, idx = minidl.tensor(a, device=device).sort(1, descending=descending, stable=True)
    rv, ri = ref_sort(a, 1, descending)
    np.testing.assert_array_equal(idx.numpy(), ri)
    np.testing.assert_array_equal(vals.numpy(), rv)
    if descending:  # spelled out once: equal values keep their input order
        assert list(idx.numpy()[0]) == [0, 2, 5, 1, 4, 3, 6]


@pytest.mark.parametrize("shape,k,dim,largest", [
    ((10,), 3, 0, True), ((10,), 3, 0, False),         # k small: the argpartition path
    ((10,), 8, -1, True), ((10,), 10, 0, False),       # k large: the full-sort path
    ((4, 9), 2, 1, True), ((4, 9), 4, 0, False), ((3, 4, 5), 1, 1, True),
    ((3, 4, 5), 0, 2, True), ((5, 6), 6, 1, True)])
def test_topk_matches_numpy_reference(shape, k, dim, largest, device):
    a = distinct(shape, seed=k)
    vals, idx = minidl.tensor(a, device=device).topk(k, dim, largest=largest)
    rv, ri = ref_topk(a, k, dim, largest)
    assert tuple(vals.shape) == rv.shape and idx.dtype == minidl.int64
    np.testing.assert_array_equal(vals.numpy(), rv)
    np.testing.assert_array_equal(idx.numpy(), ri)


def test_topk_sorted_false_still_returns_the_top_k_set():
    a = distinct((6, 11), seed=3)
    vals, idx = minidl.topk(minidl.tensor(a), 4, sorted=False)
    _, ri = ref_topk(a, 4, 1, True)
    for got, want in zip(idx.numpy(), ri):
        assert set(got) == set(want)
    np.testing.assert_array_equal(vals.numpy(), np.take_along_axis(a, idx.numpy(), 1))


@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("shape,dim", [((9,), 0), ((4, 7), 1), ((4, 6), 0), ((2, 3, 5), -1)])
def test_kthvalue_and_median_match_numpy_reference(shape, dim, keepdim, device):
    a = distinct(shape, seed=5)
    x = minidl.tensor(a, device=device)
    n = a.shape[dim]
    order = np.argsort(a, axis=dim)
    for k in (1, (n + 1) // 2, n):
        vals, idx = x.kthvalue(k, dim, keepdim=keepdim)
        want_idx = np.take(order, [k - 1], axis=dim)
        want_vals = np.take_along_axis(a, want_idx, dim)
        if not keepdim:
            want_idx, want_vals = want_idx.squeeze(dim), want_vals.squeeze(dim)
        np.testing.assert_array_equal(idx.numpy(), want_idx)
        np.testing.assert_array_equal(vals.numpy(), want_vals)
    # median is the LOWER middle value (PyTorch), not NumPy's mean of the two middle ones
    med, med_idx = x.median(dim, keepdim=keepdim)
    k_lo = (n - 1) // 2
    want = np.take(np.sort(a, axis=dim), [k_lo], axis=dim)
    np.testing.assert_array_equal(med.numpy(), want if keepdim else want.squeeze(dim))
    np.testing.assert_array_equal(
        np.take_along_axis(a, med_idx.numpy() if keepdim else np.expand_dims(med_idx.numpy(), dim),
                           dim),
        want)
    assert float(x.median().item()) == np.sort(a.ravel())[(a.size - 1) // 2]


def test_integer_and_bool_inputs_sort_without_gradient(device):
    a = np.array([[3, -1, 7, 2], [0, 0, 5, -4]], dtype=np.int32)
    vals, idx = minidl.tensor(a, device=device).sort(1, descending=True)
    rv, ri = ref_sort(a, 1, True)
    assert vals.dtype == minidl.int32 and vals.grad_fn is None
    np.testing.assert_array_equal(vals.numpy(), rv)
    np.testing.assert_array_equal(idx.numpy(), ri)
    tv, ti = minidl.tensor(a, device=device).topk(2, largest=False)
    np.testing.assert_array_equal(tv.numpy(), [[-1, 2], [-4, 0]])
    np.testing.assert_array_equal(ti.numpy(), [[1, 3], [3, 0]])
    b = minidl.tensor(np.array([True, False, True, False]), device=device)
    bv, bi = b.sort()
    np.testing.assert_array_equal(bv.numpy(), [False, False, True, True])
    np.testing.assert_array_equal(bi.numpy(), [1, 3, 0, 2])


def test_zero_dim_and_empty_inputs():
    s = minidl.tensor(2.5, requires_grad=True)
    v, i = s.sort()
    assert v.shape == () and i.shape == () and int(i.item()) == 0
    v, i = s.topk(1)
    assert v.shape == () and float(v.item()) == 2.5
    v.backward()
    assert float(s.grad.item()) == 1.0
    e = minidl.zeros(3, 0)
    v, i = e.sort(1)
    assert tuple(v.shape) == (3, 0) and tuple(i.shape) == (3, 0)
    v, i = minidl.zeros(3, 4).topk(0)
    assert tuple(v.shape) == (3, 0) and i.dtype == minidl.int64


# ---- NaN rules -------------------------------------------------------------------------------
NAN = float("nan")


def test_nan_is_largest_numpy_reference():
    a = np.array([1.0, NAN, 3.0, 2.0, NAN], dtype=np.float32)
    x = minidl.tensor(a)
    v, i = x.sort()
    assert list(i.numpy()) == [0, 3, 2, 1, 4]
    v, i = x.sort(descending=True)
    assert list(i.numpy()) == [1, 4, 2, 3, 0]
    assert np.isnan(v.numpy()[:2]).all()
    v, i = x.topk(2)
    assert sorted(i.numpy()) == [1, 4] and np.isnan(v.numpy()).all()
    v, i = x.topk(2, largest=False)
    assert list(i.numpy()) == [0, 3]
    assert np.isnan(x.median().item())
    v, i = x.median(0)
    assert np.isnan(v.item()) and int(i.item()) == 1   # the first NaN
    v, i = x.kthvalue(5)
    assert np.isnan(v.item())


@needs_torch
def test_nan_rules_match_torch():
    a = np.array([[1.0, NAN, 3.0, 2.0, NAN, -1.0], [4.0, 0.0, NAN, 5.0, 6.0, 1.0]])
    x, t = minidl.tensor(a), torch.tensor(a)
    for desc in (False, True):
        np.testing.assert_array_equal(x.sort(1, desc).indices.numpy(),
                                      t.sort(dim=1, descending=desc, stable=True).indices.numpy())
    for k in (1, 3):
        np.testing.assert_array_equal(x.topk(k, largest=False).indices.numpy(),
                                      t.topk(k, largest=False).indices.numpy())
        np.testing.assert_array_equal(x.topk(k).values.numpy(), t.topk(k).values.numpy())
    mv, mi = x.median(1)
    tv, ti = t.median(1)
    np.testing.assert_array_equal(mv.numpy(), tv.numpy())
    np.testing.assert_array_equal(mi.numpy(), ti.numpy())


# ---- against PyTorch: forward and backward -------------------------------------------------
TORCH_CASES = [
    ("sort", lambda x: x.sort(1), (3, 6)),
    ("sort_desc_dim0", lambda x: x.sort(0, descending=True), (4, 3)),
    ("sort_3d", lambda x: x.sort(-1, True), (2, 3, 5)),
    ("topk_small_k", lambda x: x.topk(2, 1), (3, 9)),
    ("topk_smallest", lambda x: x.topk(3, 0, largest=False), (7, 2)),
    ("topk_large_k", lambda x: x.topk(5, -1), (2, 6)),
    ("topk_3d_mid", lambda x: x.topk(2, 1), (2, 5, 3)),
    ("kthvalue", lambda x: x.kthvalue(3, 1), (3, 5)),
    ("kthvalue_keep", lambda x: x.kthvalue(2, 0, keepdim=True), (4, 3)),
    ("median_dim", lambda x: x.median(1), (3, 6)),
]


@needs_torch
@pytest.mark.parametrize("name,fn,shape", TORCH_CASES, ids=[c[0] for c in TORCH_CASES])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_forward_and_backward_match_torch(name, fn, shape, dtype, device):
    a = distinct(shape, seed=len(name), dtype=dtype)
    x = minidl.tensor(a, device=device, requires_grad=True)
    t = torch.tensor(a, requires_grad=True)
    mv, mi = fn(x)
    tv, ti = fn(t)
    assert mv.dtype.name == str(tv.dtype).replace("torch.", "")
    np.testing.assert_array_equal(mv.detach().numpy(), tv.detach().numpy())
    np.testing.assert_array_equal(mi.numpy(), ti.numpy())
    g = np.random.default_rng(1).standard_normal(tuple(tv.shape)).astype(dtype)
    mv.backward(minidl.tensor(g, device=device))
    tv.backward(torch.tensor(g))
    assert x.grad.dtype == x.dtype
    np.testing.assert_array_equal(x.grad.numpy(), t.grad.numpy())


@needs_torch
def test_median_of_all_and_its_gradient_match_torch():
    a = distinct((4, 5), seed=9)
    x = minidl.tensor(a, requires_grad=True)
    t = torch.tensor(a, requires_grad=True)
    (x.median() * 3).backward()
    (t.median() * 3).backward()
    np.testing.assert_array_equal(x.grad.numpy(), t.grad.numpy())


@needs_torch
def test_sort_stable_ties_match_torch():
    a = np.random.default_rng(0).integers(0, 3, size=(4, 12)).astype(np.float32)
    for desc in (False, True):
        mv, mi = minidl.tensor(a).sort(1, descending=desc, stable=True)
        tv, ti = torch.tensor(a).sort(dim=1, descending=desc, stable=True)
        np.testing.assert_array_equal(mi.numpy(), ti.numpy())


# ---- float64 finite differences ------------------------------------------------------------
GRAD_CASES = [
    ("sort", lambda x: x.sort(1).values, (3, 5)),
    ("sort_desc", lambda x: x.sort(0, descending=True).values, (4, 3)),
    ("topk", lambda x: x.topk(2, -1).values, (3, 6)),
    ("topk_smallest_dim0", lambda x: x.topk(3, 0, largest=False).values, (5, 2)),
    ("topk_all", lambda x: x.topk(4).values, (2, 4)),
    ("kthvalue", lambda x: x.kthvalue(2, 1).values, (3, 4)),
    ("median", lambda x: x.median(), (3, 3)),
    ("median_dim", lambda x: x.median(0, keepdim=True).values, (5, 2)),
    # downstream use: the sorted values feed a smooth function
    ("sort_then_weighted", lambda x: (x.sort(1, True).values * x.sort(1).values).sum(1), (2, 4)),
]


@pytest.mark.parametrize("name,fn,shape", GRAD_CASES, ids=[c[0] for c in GRAD_CASES])
def test_gradcheck_float64(name, fn, shape, device):
    x = minidl.tensor(distinct(shape, seed=2), device=device, requires_grad=True)
    assert gradcheck(fn, [x], eps=1e-6, atol=1e-6, rtol=1e-4)


@pytest.mark.parametrize("name,fn,shape", GRAD_CASES[:5], ids=[c[0] for c in GRAD_CASES[:5]])
def test_gradgradcheck_float64(name, fn, shape, device):
    x = minidl.tensor(distinct(shape, seed=3), device=device, requires_grad=True)
    assert gradgradcheck(lambda x: fn(x) ** 2, [x], eps=1e-6, atol=1e-5, rtol=1e-3)


# ---- hypothesis: shapes, dims, k -----------------------------------------------------------
SETTINGS = settings(max_examples=60, deadline=None)


@st.composite
def array_dim_k(draw, distinct_values=True):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=7))
    dim = draw(st.integers(-len(shape), len(shape) - 1))
    k = draw(st.integers(0, shape[dim]))
    seed = draw(st.integers(0, 2 ** 16))
    if distinct_values:
        a = distinct(shape, seed)
    else:  # few distinct values: many ties
        a = np.random.default_rng(seed).integers(0, 3, size=shape).astype(np.float64)
    return a, dim, k


@SETTINGS
@given(array_dim_k(), st.booleans())
def test_topk_and_sort_property(case, largest):
    a, dim, k = case
    d = dim % a.ndim
    x = minidl.tensor(a, requires_grad=True)
    vals, idx = x.topk(k, dim, largest=largest)
    rv, ri = ref_topk(a, k, d, largest)
    np.testing.assert_array_equal(vals.detach().numpy(), rv)
    np.testing.assert_array_equal(idx.numpy(), ri)
    g = np.random.default_rng(k).standard_normal(rv.shape)
    vals.backward(minidl.tensor(g))
    np.testing.assert_allclose(x.grad.numpy(), ref_scatter_grad(a.shape, d, ri, g), atol=1e-12)
    sv, si = x.sort(dim, descending=largest)
    sv_ref, si_ref = ref_sort(a, d, largest)
    np.testing.assert_array_equal(sv.detach().numpy(), sv_ref)
    np.testing.assert_array_equal(si.numpy(), si_ref)


@SETTINGS
@given(array_dim_k(distinct_values=False), st.booleans())
def test_topk_with_ties_returns_right_values_and_distinct_valid_indices(case, largest):
    a, dim, k = case
    d = dim % a.ndim
    vals, idx = minidl.tensor(a).topk(k, dim, largest=largest)
    rv, _ = ref_topk(a, k, d, largest)
    np.testing.assert_array_equal(vals.numpy(), rv)             # the values are determined
    ii = idx.numpy()
    np.testing.assert_array_equal(np.take_along_axis(a, ii, d), rv)  # indices point at them
    srt = np.sort(np.moveaxis(ii, d, -1), axis=-1)
    assert (np.diff(srt, axis=-1) > 0).all()                    # no position picked twice
    # sort: stable on ties, both directions
    sv, si = minidl.tensor(a).sort(dim, descending=largest)
    np.testing.assert_array_equal(si.numpy(), ref_sort(a, d, largest)[1])


@SETTINGS
@given(array_dim_k(), st.booleans())
def test_kthvalue_property(case, keepdim):
    a, dim, k = case
    d = dim % a.ndim
    k = max(k, 1)
    vals, idx = minidl.tensor(a).kthvalue(k, dim, keepdim)
    want_idx = np.take(np.argsort(a, axis=d), [k - 1], axis=d)
    if not keepdim:
        want_idx = want_idx.squeeze(d)
    np.testing.assert_array_equal(idx.numpy(), want_idx)
    np.testing.assert_array_equal(
        vals.numpy(), np.take_along_axis(a, want_idx if keepdim else np.expand_dims(want_idx, d),
                                         d).reshape(vals.shape))


# ---- errors ----------------------------------------------------------------------------------
def test_errors_name_what_was_expected_and_given():
    x = minidl.randn(2, 3)
    with pytest.raises(IndexError, match=r"expected to be in range of \[-2, 1\], but got 2"):
        x.sort(2)
    with pytest.raises(IndexError, match="but got -3"):
        x.argsort(-3)
    with pytest.raises(IndexError, match="but got 5"):
        x.topk(1, 5)
    with pytest.raises(RuntimeError, match=r"k=4, but dim 1 .*\(2, 3\).* size 3; expected "
                                           r"0 <= k <= 3"):
        x.topk(4)
    with pytest.raises(RuntimeError, match="k=-1"):
        x.topk(-1)
    with pytest.raises(TypeError, match="k must be an int, got float"):
        x.topk(1.5)
    with pytest.raises(RuntimeError, match=r"k=0, .*expected 1 <= k <= 3"):
        x.kthvalue(0)
    with pytest.raises(RuntimeError, match=r"k=3, .*expected 1 <= k <= 2"):
        x.kthvalue(3, 0)
    with pytest.raises(RuntimeError, match="empty"):
        minidl.zeros(0).median()
    with pytest.raises(TypeError, match="expected a Tensor"):
        minidl.sort([3, 1, 2])
