"""Every first-order fast path against the plain form it stands in for.

Several ops run their usual backward (loss.backward(), no create_graph) as array code or a
fused kernel, and keep the composite formula in minidl ops for create_graph=True. Apply1 and
apply2 skip the graph node for ops that name an `array_op` when nothing is recorded. These
tests run each op both ways on the same inputs and require the same numbers, so a fast path
can never drift from the definition it replaces.
"""
from __future__ import annotations

import gc
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pytest

import minidl
import minidl.nn.functional as F


@dataclass
class Row:
    name: str
    fn: Callable
    shapes: list
    positive: tuple = ()        # inputs drawn > 0 (e.g. a divisor)


ROWS = [
    Row("linear", lambda x, w, b: F.linear(x, w, b), [(5, 4), (3, 4), (3,)]),
    Row("linear_3d", lambda x, w, b: F.linear(x, w, b), [(2, 5, 4), (3, 4), (3,)]),
    Row("linear_no_bias", lambda x, w: F.linear(x, w), [(5, 4), (3, 4)]),
    Row("relu", lambda x: F.relu(x), [(4, 7)]),
    Row("batch_norm_4d", lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
        [(3, 2, 4, 5), (2,), (2,)]),
    Row("batch_norm_2d", lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
        [(6, 3), (3,), (3,)]),
    Row("batch_norm_plain", lambda x: F.batch_norm(x, None, None, training=True), [(4, 3, 5)]),
    Row("conv2d", lambda x, w, b: F.conv2d(x, w, b, padding=1), [(2, 3, 6, 5), (4, 3, 3, 3),
                                                                  (4,)]),
    Row("sum_mean", lambda x: x.sum(0) * x.mean(), [(3, 4)]),
    Row("add_sub_mul_div", lambda a, b: (a + b) * (a - b) / b, [(3, 4), (4,)], positive=(1,)),
    Row("reshape_permute", lambda x: (x.reshape(4, 3).permute(1, 0) * x).sum(0), [(3, 4)]),
    # one slice unused: its zero gradient is stacked with the others
    Row("unbind", lambda x: (lambda s: (s[0] * s[2]).sum(0) + s[3].exp())(x.unbind(-1)), [(2, 3, 5)]),
]


def make_inputs(row, dtype="float64"):
    rng = np.random.default_rng(0)
    out = []
    for i, shape in enumerate(row.shapes):
        a = rng.standard_normal(shape)
        if i in row.positive:
            a = np.abs(a) + 0.5
        out.append(minidl.tensor(a, dtype=dtype, requires_grad=True))
    return out


def grads(row, create_graph, dtype="float64"):
    inputs = make_inputs(row, dtype)
    out = row.fn(*inputs)
    upstream = np.random.default_rng(1).standard_normal(tuple(out.shape))
    got = minidl.autograd.grad([out], inputs, [minidl.tensor(upstream, dtype=dtype)],
                               create_graph=create_graph)
    return out.detach().numpy(), [g.detach().numpy() for g in got]


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r.name)
def test_first_order_fast_path_matches_composite(row):
    y_fast, fast = grads(row, create_graph=False)
    y_slow, slow = grads(row, create_graph=True)
    np.testing.assert_allclose(y_fast, y_slow, rtol=1e-12, atol=1e-12)
    for i, (a, b) in enumerate(zip(fast, slow)):
        assert a.shape == b.shape, f"input {i}: gradient shapes differ"
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-11, err_msg=f"input {i}")


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r.name)
def test_fast_path_keeps_float32(row):
    _, got = grads(row, create_graph=False, dtype="float32")
    assert all(g.dtype == np.float32 for g in got)


@pytest.mark.parametrize("expr", [
    lambda a, b: a + b, lambda a, b: a - b, lambda a, b: a * b, lambda a, b: a / b,
    lambda a, b: -a, lambda a, b: a.reshape(-1), lambda a, b: a.permute(1, 0),
], ids=["add", "sub", "mul", "div", "neg", "reshape", "permute"])
def test_no_grad_array_op_matches_recorded_forward(expr):
    rng = np.random.default_rng(2)
    a = minidl.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    b = minidl.tensor(np.abs(rng.standard_normal((3, 4))) + 0.5, requires_grad=True)
    recorded = expr(a, b)
    with minidl.no_grad():
        plain = expr(a, b)
    assert recorded.grad_fn is not None and plain.grad_fn is None and not plain.requires_grad
    np.testing.assert_array_equal(plain.numpy(), recorded.detach().numpy())


def test_relu_backward_select_semantics():
    """The gradient passes where the output is > 0 or NaN, is 0 elsewhere, even for inf."""
    x = minidl.tensor([-1.0, 0.0, 2.0, float("nan")], requires_grad=True)
    y = F.relu(x)
    (g,) = minidl.autograd.grad([y], [x], [minidl.tensor([float("inf"), 5.0, 3.0, 7.0])])
    np.testing.assert_array_equal(g.numpy(), [0.0, 0.0, 3.0, 7.0])


# ---- gradients handed to leaves: kept without a copy only when nothing else holds them -------

def test_sole_reshaped_gradient_becomes_grad_without_copy():
    x = minidl.randn(4, 6, requires_grad=True)
    F.layer_norm(x, (6,)).backward(minidl.ones(4, 6))
    g = x.grad._data
    assert g.flags.c_contiguous and g.flags.writeable
    g += 1.0  # writable in place, as optimizers and clipping need


def test_gradient_shared_by_two_leaves_is_copied():
    a = minidl.randn(3, requires_grad=True)
    b = minidl.randn(3, requires_grad=True)
    (a + b).sum().backward()
    assert not np.shares_memory(a.grad._data, b.grad._data)
    a.grad._data[:] = 7.0
    np.testing.assert_array_equal(b.grad.numpy(), np.ones(3))


def test_view_of_an_array_held_elsewhere_is_copied():
    held = []

    class Leak(minidl.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 1.0

        @staticmethod
        def backward(ctx, grad):
            full = np.ones((2,) + grad._data.shape)
            held.append(full)                      # someone else keeps the base array
            return minidl.Tensor._wrap(full[0], grad._be, None, 0)

    x = minidl.randn(5, dtype="float64", requires_grad=True)
    Leak.apply(x).sum().backward()
    assert not np.shares_memory(x.grad._data, held[0])
    gc.collect()


# ---- accumulating into .grad: in place only when nobody else can see the old gradient ------

@pytest.mark.parametrize("n", [3, 5000], ids=["small", "large"])
def test_accumulation_never_changes_a_kept_gradient(n):
    x = minidl.randn(n, requires_grad=True)
    (x * 2).sum().backward()
    kept = x.grad
    before = kept.numpy().copy()
    (x * 3).sum().backward()
    np.testing.assert_array_equal(kept.numpy(), before)        # the user's reference is intact
    np.testing.assert_allclose(x.grad.numpy(), np.full(n, 5.0))


def test_large_unshared_gradient_accumulates_in_place():
    x = minidl.randn(5000, requires_grad=True)
    (x * 2).sum().backward()
    buffer_id = id(x.grad._data)
    (x * 3).sum().backward()
    assert id(x.grad._data) == buffer_id                      # no second gradient-sized array
    np.testing.assert_allclose(x.grad.numpy(), np.full(5000, 5.0))


def test_small_unshared_gradient_keeps_its_tensor():
    x = minidl.randn(3, requires_grad=True)
    (x * 2).sum().backward()
    grad_id, data = id(x.grad), x.grad._data
    (x * 3).sum().backward()
    assert id(x.grad) == grad_id                              # the same .grad Tensor ...
    assert x.grad._data is not data                           # ... holding a new array
    np.testing.assert_array_equal(data, np.full(3, 2.0))      # the old array is untouched
    np.testing.assert_allclose(x.grad.numpy(), np.full(3, 5.0))


@pytest.mark.parametrize("alias", ["view", "detach", "array", "requires_grad"])
def test_gradient_seen_elsewhere_is_never_reused(alias):
    x = minidl.randn(3, requires_grad=True)
    (x * 2).sum().backward()
    old = x.grad
    seen = None
    if alias == "view":
        seen = old.view(3)          # holds old as its base
    elif alias == "detach":
        seen = old.detach()         # shares old's version counter, not the Tensor
    elif alias == "array":
        seen = old._data            # the array, not the Tensor
    else:
        old.requires_grad_()        # the user made the gradient a leaf of its own
    old_id = id(old)
    del old
    (x * 3).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.full(3, 5.0))
    if alias == "array":
        np.testing.assert_array_equal(seen, np.full(3, 2.0))
    elif alias != "requires_grad":
        np.testing.assert_array_equal(seen.numpy(), np.full(3, 2.0))
        assert seen._version[0] == 0
    if alias != "array":
        assert id(x.grad) != old_id and not x.grad.requires_grad


def test_leaf_edge_is_made_once():
    x = minidl.randn(3, requires_grad=True)
    y, z = x * 2, x + 1
    assert y.grad_fn.next_edges[0] is z.grad_fn.next_edges[0]  # one (AccumulateGrad, 0) tuple
    assert y.grad_fn.next_edges[0][0] is x._accumulator()


def test_backward_returning_too_few_gradients_raises_clearly():
    class Short(minidl.autograd.Function):
        @staticmethod
        def forward(ctx, a, b):
            return a + b

        @staticmethod
        def backward(ctx, grad):
            return grad                                       # one gradient for two inputs

    a = minidl.randn(2, requires_grad=True)
    b = minidl.randn(2, requires_grad=True)
    for create_graph in (False, True):
        with pytest.raises(RuntimeError, match="ShortBackward returned 1 gradients but its "
                                               "forward took 2 arguments"):
            Short.apply(a, b).sum().backward(create_graph=create_graph)


# ---- x + y and x - y: the one-frame operator against Function.apply --------------------------
OPERATOR_CASES = [
    # (shape of a, shape of b, a requires grad, b requires grad, b is a Parameter)
    ((3, 4), (3, 4), True, True, False),
    ((3, 4), (4,), True, True, False),       # broadcast: shapes kept for backward
    ((1, 4), (3, 1), True, False, False),    # both broadcast; only a needs a gradient
    ((2, 3), (2, 3), False, True, True),     # Parameter on the right, e.g. x + bias
    ((), (5,), True, True, False),
]


@pytest.mark.parametrize("op_name", ["add", "sub"])
@pytest.mark.parametrize("sa,sb,ra,rb,param", OPERATOR_CASES)
def test_operator_fast_path_records_what_apply_records(op_name, sa, sb, ra, rb, param):
    from minidl.ops.elementwise import Add, Sub
    cls = {"add": Add, "sub": Sub}[op_name]
    rng = np.random.default_rng(1)
    a_np, b_np, g_np = rng.standard_normal(sa), rng.standard_normal(sb), None

    def run(fast):
        a = minidl.tensor(a_np, requires_grad=ra)
        b = minidl.nn.Parameter(minidl.tensor(b_np)) if param else minidl.tensor(b_np)
        b.requires_grad_(rb)
        out = (a + b if op_name == "add" else a - b) if fast else cls.apply(a, b)
        node = out.grad_fn
        seed = np.random.default_rng(2).standard_normal(out.shape)
        out.backward(minidl.tensor(seed))
        grads = [None if t.grad is None else t.grad.numpy() for t in (a, b)]
        return (type(node), node.inputs, tuple(node.needs_input_grad), node.shapes, [e is None for e in node.next_edges],
                out.detach().numpy(), grads)

    fast, general = run(True), run(False)
    assert fast[:5] == general[:5]
    np.testing.assert_array_equal(fast[5], general[5])
    for gf, gg in zip(fast[6], general[6]):
        assert (gf is None) == (gg is None)
        if gf is not None:
            assert gf.shape == gg.shape
            np.testing.assert_array_equal(gf, gg)


def test_operator_fast_path_without_grad_records_nothing():
    a = minidl.ones(3, requires_grad=True)
    with minidl.no_grad():
        out = a + a
    assert out.grad_fn is None and not out.requires_grad
    np.testing.assert_array_equal(out.numpy(), np.full(3, 2.0, np.float32))


@pytest.mark.parametrize("other", [2.5, 2, np.float64(0.5)])
def test_operator_number_and_promotion_take_the_general_route(other):
    a = minidl.tensor([1.0, 2.0], requires_grad=True)
    for out, expect in ((a + other, np.array([1.0, 2.0]) + float(other)),
                        (a - other, np.array([1.0, 2.0]) - float(other)),
                        (a + a.double(), np.array([2.0, 4.0]))):
        np.testing.assert_allclose(out.detach().numpy(), expect)
    assert (a + a.double()).dtype == minidl.float64
    assert (a + other).dtype == minidl.float32


@pytest.mark.parametrize("device", ["cpu", "cuda-emu"])
def test_operator_fast_path_on_each_device(device):
    # the CPU calls NumPy's ufunc itself; other devices keep the array's own operator
    rng = np.random.default_rng(3)
    a_np, b_np = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    a = minidl.tensor(a_np, device=device, requires_grad=True)
    b = minidl.tensor(b_np, device=device, requires_grad=True)
    total, diff = a + b, a - b
    assert str(total.device) == device and type(total.grad_fn).__name__ == "Add"
    np.testing.assert_allclose(total.detach().cpu().numpy(), a_np + b_np, rtol=1e-6)
    np.testing.assert_allclose(diff.detach().cpu().numpy(), a_np - b_np, rtol=1e-6)
    (total * 2 + diff).sum().backward()  # d/da = 3, d/db = 1
    np.testing.assert_allclose(a.grad.cpu().numpy(), np.full((3, 4), 3.0))
    np.testing.assert_allclose(b.grad.cpu().numpy(), np.full((3, 4), 1.0))
