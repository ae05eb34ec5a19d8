"""Autograd semantics that users trip on, each pinned by a test (DESIGN.md's list)."""
from __future__ import annotations

import gc
import sys

import numpy as np
import pytest

import minidl
from minidl.autograd import Function, gradcheck


def leaf(values, device="cpu", dtype="float64"):
    return minidl.tensor(values, dtype=dtype, device=device, requires_grad=True)


def test_leaf_grads_accumulate_until_cleared(device):
    x = leaf([1.0, 2.0], device)
    (x * 3).sum().backward()
    (x * 3).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [6.0, 6.0])
    x.grad = None
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 4.0])
    x.grad.zero_()
    (x * 1).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [1.0, 1.0])


def test_non_leaf_grad_kept_only_with_retain_grad():
    x = leaf([1.0, 2.0])
    y = x * 2
    z = x * 3
    z.retain_grad()
    (y.sum() + (z * z).sum()).backward()
    assert y.grad is None
    np.testing.assert_allclose(z.grad.numpy(), 2 * z.detach().numpy())
    assert not y.is_leaf and x.is_leaf


def test_graph_freed_after_backward_and_second_pass_raises():
    x = leaf([1.0, 2.0])
    y = (x.exp() * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        y.backward()


def test_retain_graph_allows_second_pass():
    x = leaf([1.0, 2.0])
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), [4.0, 8.0])


def test_second_derivative_with_create_graph():
    x = leaf([0.3, -1.2, 2.0])
    y = (x ** 3 + x.sin()).sum()
    (g,) = minidl.autograd.grad(y, x, create_graph=True)
    np.testing.assert_allclose(g.detach().numpy(), 3 * x.detach().numpy() ** 2 + np.cos(x.detach().numpy()))
    g.sum().backward()
    xv = x.detach().numpy()
    np.testing.assert_allclose(x.grad.numpy(), 6 * xv - np.sin(xv), rtol=1e-12)


def test_third_derivative():
    x = leaf([0.7])
    y = x.exp() * x  # d3/dx3 (x e^x) = (x + 3) e^x
    (g1,) = minidl.autograd.grad(y.sum(), x, create_graph=True)
    (g2,) = minidl.autograd.grad(g1.sum(), x, create_graph=True)
    (g3,) = minidl.autograd.grad(g2.sum(), x)
    np.testing.assert_allclose(g3.numpy(), (0.7 + 3) * np.exp(0.7), rtol=1e-12)


def test_grad_does_not_touch_dot_grad_and_reports_unused():
    x, w = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    y = (x * 2).sum()
    (gx,) = minidl.autograd.grad(y, [x], retain_graph=True)
    assert x.grad is None
    with pytest.raises(RuntimeError, match="not used"):
        minidl.autograd.grad(y, [w], retain_graph=True)
    gx2, gw = minidl.autograd.grad(y, [x, w], allow_unused=True)
    assert gw is None and np.allclose(gx2.numpy(), [2.0, 2.0])


def test_grad_of_non_leaf_input():
    x = leaf([1.0, 2.0])
    h = x * x
    y = (h * 3).sum()
    (gh,) = minidl.autograd.grad(y, h)
    np.testing.assert_allclose(gh.numpy(), [3.0, 3.0])


@pytest.mark.parametrize("ctx_factory", [minidl.no_grad, lambda: minidl.set_grad_enabled(False)])
def test_no_grad_blocks_recording_and_enable_grad_restores(ctx_factory):
    x = leaf([1.0])
    with ctx_factory():
        y = x * 2
        with minidl.enable_grad():
            z = x * 2
    assert y.grad_fn is None and not y.requires_grad
    assert z.requires_grad
    assert minidl.is_grad_enabled()


def test_grad_mode_decorators():
    x = leaf([1.0])

    @minidl.no_grad()
    def f(t):
        return t * 2

    @minidl.set_grad_enabled(False)
    def g(t):
        return t * 2

    assert minidl.is_grad_enabled()  # decorating must not switch anything
    assert not f(x).requires_grad and not g(x).requires_grad
    assert (x * 2).requires_grad


def test_register_hook_sees_and_replaces_gradients():
    x = leaf([1.0, 2.0])
    seen = []
    x.register_hook(lambda g: seen.append(g.numpy().copy()))
    y = x * 3
    y.register_hook(lambda g: g * 10)  # doubles as a replacement: the returned grad flows on
    y.sum().backward()
    np.testing.assert_allclose(seen[0], [30.0, 30.0])
    np.testing.assert_allclose(x.grad.numpy(), [30.0, 30.0])


def test_hook_handle_remove():
    x = leaf([1.0])
    h = x.register_hook(lambda g: g * 0)
    h.remove()
    (x * 2).sum().backward()
    assert x.grad.item() == 2.0


def test_inplace_change_of_saved_tensor_raises_naming_the_op():
    x = leaf([1.0, 2.0])
    h = x * 1
    y = h * h  # saves h
    h.add_(1)
    with pytest.raises(RuntimeError, match="MulBackward.*modified by an in-place|in-place.*MulBackward|saved by MulBackward"):
        y.sum().backward()


def test_inplace_change_of_saved_output_raises():
    x = leaf([1.0, 2.0])
    y = x.exp()  # saves its output
    y += 1
    with pytest.raises(RuntimeError, match="ExpBackward"):
        y.sum().backward()


def test_inplace_on_a_view_bumps_the_shared_version():
    x = leaf([[1.0, 2.0], [3.0, 4.0]])
    h = x * 1
    v = h.reshape(4)
    y = (h * h).sum()
    with minidl.no_grad():
        v[0] = 5.0
    with pytest.raises(RuntimeError, match="in-place"):
        y.backward()


def test_inplace_on_leaf_requiring_grad_raises_but_no_grad_allows():
    x = leaf([1.0])
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        x.add_(1)
    with minidl.no_grad():
        x.add_(1)
    assert x.item() == 2.0


def test_inplace_rebases_history():
    x = leaf([1.0, 2.0])
    h = x * 2
    h.mul_(3)
    h.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [6.0, 6.0])


def test_setitem_with_grad_flows_to_value_and_base():
    x = leaf([1.0, 2.0, 3.0])
    v = leaf([10.0])
    h = x * 1
    h[1] = v[0] * 2
    (h * h).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 0.0, 6.0])
    np.testing.assert_allclose(v.grad.numpy(), [2 * 20.0 * 2])


def test_long_chain_has_no_recursion_limit():
    x = leaf([1.0])
    y = x
    for _ in range(10_000):
        y = y * 1.0001
    y.backward()
    assert sys.getrecursionlimit() < 10_000 * 3
    np.testing.assert_allclose(x.grad.numpy(), [1.0001 ** 10_000], rtol=1e-9)


def test_walk_is_deterministic():
    def run():
        minidl.manual_seed(3)
        x = minidl.randn(5, 5, requires_grad=True)
        y = ((x @ x).tanh() + x.sigmoid() * x).sum()
        y.backward()
        return x.grad.numpy().copy()
    np.testing.assert_array_equal(run(), run())


def test_saved_arrays_released_after_backward():
    x = leaf(np.ones(1000))
    y = x.exp()
    z = (y * x).sum()
    node = y.grad_fn
    assert "_saved_out" in node.__dict__
    z.backward()
    assert "_saved_out" not in node.__dict__ and node.__dict__.get("_freed")


def test_memory_does_not_grow_across_steps():
    w = minidl.randn(64, 64, requires_grad=True)
    x = minidl.randn(32, 64)

    def step():
        loss = ((x @ w).tanh() ** 2).mean()
        loss.backward()
        w.grad = None

    for _ in range(3):
        step()
    gc.collect()
    before = len(gc.get_objects())
    for _ in range(50):
        step()
    gc.collect()
    assert len(gc.get_objects()) - before < 50


def test_backward_on_non_scalar_needs_gradient():
    x = leaf([1.0, 2.0])
    y = x * 2
    with pytest.raises(RuntimeError, match="implicitly created only for scalar outputs.*shape \\(2,\\)"):
        y.backward()
    y.backward(minidl.tensor([1.0, 1.0], dtype="float64"))
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 2.0])


def test_backward_on_tensor_without_graph_raises():
    with pytest.raises(RuntimeError, match="does not require grad"):
        minidl.tensor([1.0]).sum().backward()


def test_requires_grad_on_integer_tensor_raises():
    with pytest.raises(RuntimeError, match="floating point.*int64"):
        minidl.tensor([1, 2], requires_grad=True)


def test_requires_grad_cannot_be_set_on_non_leaf():
    h = leaf([1.0]) * 2
    with pytest.raises(RuntimeError, match="leaf"):
        h.requires_grad = False


def test_broadcast_gradients_reduce_to_input_shape():
    a = leaf(np.ones((3, 1, 4)))
    b = leaf(np.ones((5, 1)))
    (a * b).sum().backward()
    assert a.grad.shape == (3, 1, 4) and b.grad.shape == (5, 1)
    np.testing.assert_allclose(a.grad.numpy(), np.full((3, 1, 4), 5.0))
    np.testing.assert_allclose(b.grad.numpy(), np.full((5, 1), 12.0))


def test_indexing_gradient_accumulates_repeats():
    x = leaf([1.0, 2.0, 3.0])
    x[minidl.tensor([0, 0, 2, 0])].sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 0.0, 1.0])


def test_grad_returned_to_two_leaves_is_not_shared():
    # add passes one gradient tensor to both inputs; modifying one leaf's .grad in place
    # (as clip_grad_norm_ does) must not change the other's
    a, b = leaf([1.0]), leaf([1.0])
    (a + b).sum().backward()
    a.grad.mul_(10)
    assert b.grad.item() == 1.0


def test_grad_of_expanded_leaf_is_writable():
    x = leaf([2.0])
    x.sum().backward()
    x.grad.mul_(3)  # would fail on a read-only broadcast view
    assert x.grad.item() == 3.0


def test_fused_backward_refuses_create_graph_clearly():
    class NoDouble(Function):
        differentiable = False

        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, grad):
            return grad * 2

    x = leaf([1.0])
    y = NoDouble.apply(x).sum()
    with pytest.raises(RuntimeError, match="NoDoubleBackward.*cannot itself be differentiated"):
        minidl.autograd.grad(y, x, create_graph=True)


def test_gradcheck_catches_a_wrong_backward():
    class WrongSquare(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(ctx.inputs[0])
            return x * x

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return grad * x  # should be 2x

    x = leaf([0.5, -1.5])
    with pytest.raises(RuntimeError, match="Jacobian mismatch"):
        gradcheck(WrongSquare.apply, [x])
    assert gradcheck(WrongSquare.apply, [x], raise_exception=False) is False


def test_gradcheck_rejects_float32():
    x = minidl.tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="float64"):
        gradcheck(lambda t: t * 2, [x])


def test_detach_shares_memory_but_not_history():
    x = leaf([1.0, 2.0])
    d = (x * 2).detach()
    assert d.grad_fn is None and not d.requires_grad
    y = x.detach()
    with minidl.no_grad():
        y[0] = 7.0
    assert x[0].item() == 7.0
