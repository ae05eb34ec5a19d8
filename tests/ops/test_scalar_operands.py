"""A float Tensor meeting a Python number (`x * 0.5`, `1 - x`, `x ** 2`): the *Scalar ops.

They stand in for the general binary path, so each spelling is checked against it: the same
values and gradients, bit for bit, as the general path gives for the same number passed as a
NumPy scalar (which takes that path). Also: the dtype is kept (float16/32/64), everything
that is not a float Tensor and a Python float or int still promotes as before, nodes carry
the op's name, and saved inputs are guarded against in-place changes.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import minidl

SPELLINGS = {
    "x + s": lambda x, s: x + s,
    "s + x": lambda x, s: s + x,
    "x - s": lambda x, s: x - s,
    "s - x": lambda x, s: s - x,
    "x * s": lambda x, s: x * s,
    "s * x": lambda x, s: s * x,
    "x / s": lambda x, s: x / s,
    "x ** s": lambda x, s: x ** s,
}
# the derivative of each spelling in x, for the float64 reference
DERIVATIVES = {
    "x + s": lambda x, s: np.ones_like(x),
    "s + x": lambda x, s: np.ones_like(x),
    "x - s": lambda x, s: np.ones_like(x),
    "s - x": lambda x, s: -np.ones_like(x),
    "x * s": lambda x, s: np.full_like(x, s),
    "s * x": lambda x, s: np.full_like(x, s),
    "x / s": lambda x, s: np.full_like(x, 1.0 / s),
    "x ** s": lambda x, s: np.zeros_like(x) if s == 0 else s * x ** (s - 1),
}
NUMBERS = [2, 0.5, -1.25, 3.0, 0]


def _run(spelling, data, s, dtype):
    x = minidl.tensor(data, dtype=dtype, requires_grad=True)
    y = SPELLINGS[spelling](x, s)
    upstream = np.random.default_rng(7).uniform(-2.0, 2.0, data.shape)  # not all ones: a
    y.backward(minidl.tensor(upstream, dtype=dtype))   # wrong formula could hide behind 1s
    return y, x.grad


# every spelling with every number, but no division by zero (no finite values to compare)
CASES = [(spelling, s) for spelling in sorted(SPELLINGS) for s in NUMBERS
         if not (spelling == "x / s" and s == 0)]


@pytest.mark.parametrize("spelling, s", CASES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_same_bits_as_the_general_path(spelling, s, dtype):
    data = np.random.default_rng(3).uniform(0.5, 2.0, (3, 5))
    y_fast, g_fast = _run(spelling, data, s, dtype)
    # a NumPy scalar is not a Python number: it takes the general (promoting) path
    y_general, g_general = _run(spelling, data, np.float64(s), dtype)
    assert y_fast.dtype == y_general.dtype == getattr(minidl, dtype)
    np.testing.assert_array_equal(y_fast.detach().numpy(), y_general.detach().numpy())
    np.testing.assert_array_equal(g_fast.numpy(), g_general.numpy())


@pytest.mark.parametrize("spelling", sorted(SPELLINGS))
def test_float64_values_and_gradients_against_numpy(spelling):
    data = np.random.default_rng(4).uniform(0.5, 2.0, (4, 3))
    for s in (n for name, n in CASES if name == spelling):
        y, g = _run(spelling, data, s, "float64")
        np.testing.assert_allclose(y.detach().numpy(), SPELLINGS[spelling](data, s), rtol=1e-15)
        upstream = np.random.default_rng(7).uniform(-2.0, 2.0, data.shape)
        np.testing.assert_allclose(g.numpy(), upstream * DERIVATIVES[spelling](data, s),
                                   rtol=1e-14)


@pytest.mark.parametrize("spelling", sorted(SPELLINGS))
def test_second_derivatives_by_finite_differences(spelling):
    x = minidl.tensor(np.random.default_rng(5).uniform(0.5, 2.0, (2, 3)),
                      dtype=minidl.float64, requires_grad=True)
    for s in (3, -1.5):
        fn = lambda t, s=s: SPELLINGS[spelling](t, s)  # noqa: E731
        assert minidl.autograd.gradcheck(fn, [x])
        assert minidl.autograd.gradgradcheck(fn, [x])


@settings(max_examples=40, deadline=None)
@given(shape=st.lists(st.integers(1, 4), min_size=0, max_size=3),
       s=st.one_of(st.integers(-3, 3), st.floats(-3, 3, allow_nan=False)),
       spelling=st.sampled_from(sorted(SPELLINGS)),
       dtype=st.sampled_from(["float16", "float32", "float64"]))
def test_the_dtype_and_shape_are_kept(shape, s, spelling, dtype):
    x = minidl.tensor(np.random.default_rng(6).uniform(0.5, 2.0, shape), dtype=dtype)
    with np.errstate(divide="ignore", invalid="ignore"):
        y = SPELLINGS[spelling](x, s)
        expected = SPELLINGS[spelling](x.numpy(), s)
    assert y.dtype == getattr(minidl, dtype)
    assert tuple(y.shape) == tuple(shape)
    np.testing.assert_array_equal(y.numpy(), expected)


def test_other_mixes_still_promote():
    ints = minidl.tensor([1, 2, 3])
    assert (ints * 2.5).dtype == minidl.float32        # int tensor, float number
    assert (ints + 2).dtype == minidl.int64            # int tensor, int number
    assert (ints ** 2).dtype == minidl.int64
    assert (ints / 2).dtype == minidl.float32
    floats = minidl.tensor([1.0, 2.0], requires_grad=True)
    y = floats * True                                  # a bool is not taken as a number here
    assert y.dtype == minidl.float32
    np.testing.assert_array_equal(y.detach().numpy(), [1.0, 2.0])


def test_nodes_are_named_after_their_op():
    x = minidl.tensor([1.0, 2.0], requires_grad=True)
    names = {spelling: SPELLINGS[spelling](x, 2.0).grad_fn.name() for spelling in SPELLINGS}
    assert names == {"x + s": "AddBackward", "s + x": "AddBackward", "x - s": "SubBackward",
                     "s - x": "RsubBackward", "x * s": "MulBackward", "s * x": "MulBackward",
                     "x / s": "DivBackward", "x ** s": "PowBackward"}
    assert "grad_fn=<MulBackward>" in repr(x * 2)


def test_nothing_is_recorded_without_grad():
    x = minidl.tensor([1.0, 2.0], requires_grad=True)
    with minidl.no_grad():
        outs = [fn(x, 2.0) for fn in SPELLINGS.values()]
    assert all(o.grad_fn is None and not o.requires_grad for o in outs)


def test_power_sees_an_in_place_change_of_its_input():
    x = minidl.tensor([1.0, 2.0], requires_grad=True)
    h = x * 1.0
    y = h ** 3
    h.mul_(2.0)
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        y.sum().backward()
