"""The in-place version counter starts as one shared immutable `(0,)` and becomes a tensor's own
list on its first bump or share (autograd/function.py: NEVER_MODIFIED). These tests take every
route by which two tensors come to share memory, starting from tensors never modified before,
and check that an in-place change through one is caught by a graph that saved the other, and
that a change to one unrelated tensor is not."""
from __future__ import annotations

import numpy as np
import pytest

import minidl
from minidl import nn


def leaf(values):
    return minidl.tensor(values, dtype="float64", requires_grad=True)


def _modify(t):
    with minidl.no_grad():
        t.add_(1.0)


def test_bumping_one_fresh_tensor_leaves_the_others_alone():
    x = leaf([1.0, 2.0])
    a = x * 1
    b = x * 1
    y = (b * b).sum()  # saves b
    _modify(a)
    y.backward()       # b was not modified: no error
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 4.0])
    assert minidl.autograd.function.NEVER_MODIFIED == (0,)


@pytest.mark.parametrize("route", ["view_modified", "base_modified", "detached_alias",
                                   "alias_of_detached", "parameter_from_tensor",
                                   "unbound_slice_modified", "iterated_row_saved"])
def test_a_change_through_a_sharer_is_caught(route):
    x = leaf([[1.0, 2.0], [3.0, 4.0]])
    h = x * 1
    if route == "view_modified":         # save the base, modify a view made afterwards
        y = (h * h).sum()
        v = h.reshape(4)
        _modify(v)
    elif route == "base_modified":       # save a view, modify its base
        v = h[0]
        y = (v * v).sum()
        _modify(h)
    elif route == "detached_alias":      # save the tensor, modify its detached alias
        y = (h * h).sum()
        _modify(h.detach())
    elif route == "alias_of_detached":   # save the detached alias, modify the original
        d = h.detach().requires_grad_()
        y = (d * d).sum()
        _modify(h)
    elif route == "unbound_slice_modified":  # save the base, modify one of its unbind views
        y = (h * h).sum()
        _modify(h.unbind(1)[0])
    elif route == "iterated_row_saved":  # save a row from iteration, modify the base
        first, _ = h
        y = (first * first).sum()
        _modify(h)
    else:                                # a Parameter made from a tensor shares its memory
        t = minidl.tensor([[1.0, 2.0], [3.0, 4.0]], dtype="float64")
        p = nn.Parameter(t)
        y = (p * p).sum()
        _modify(t)
    with pytest.raises(RuntimeError, match="in-place"):
        y.backward()


@pytest.mark.parametrize("op", ["exp", "sigmoid", "tanh"])
def test_a_saved_output_modified_after_the_op_is_caught(op):
    x = leaf([0.5, -1.0])
    y = getattr(x, op)()  # saves its output
    z = y.detach()        # the same memory
    _modify(z)
    with pytest.raises(RuntimeError, match="in-place"):
        y.sum().backward()


def test_a_saved_output_left_alone_gives_the_right_gradient():
    x = leaf([0.5, -1.0])
    y = x.exp()
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.exp([0.5, -1.0]))
