"""Floor 2: reverse-mode automatic differentiation.

* `Function` — base of every op (function.py): forward on arrays, backward on Tensors.
* `backward(tensors, grad_tensors)` / `Tensor.backward()` — add gradients into leaves' `.grad`.
* `grad(outputs, inputs, grad_outputs)` — return gradients instead of accumulating them;
  with `create_graph=True` the result is differentiable again (higher-order gradients).
* `no_grad`, `enable_grad`, `set_grad_enabled` — switch graph recording.
* `gradcheck`, `gradgradcheck` — compare against float64 central differences.
"""
from __future__ import annotations

from .function import Function, AccumulateGrad
from .grad_mode import no_grad, enable_grad, set_grad_enabled, is_grad_enabled
from .engine import run_backward
from .gradcheck import gradcheck, gradgradcheck

__all__ = ["Function", "backward", "grad", "no_grad", "enable_grad", "set_grad_enabled",
           "is_grad_enabled", "gradcheck", "gradgradcheck"]


def _as_list(x):
    if x is None:
        return None
    return list(x) if isinstance(x, (list, tuple)) else [x]


def _make_root_grads(outputs, grad_outputs, who: str):
    from ..tensor import Tensor
    from ..creation import ones_like
    grads = []
    grad_outputs = grad_outputs if grad_outputs is not None else [None] * len(outputs)
    if len(grad_outputs) != len(outputs):
        raise RuntimeError(f"{who}: got {len(outputs)} outputs but {len(grad_outputs)} gradients")
    for out, g in zip(outputs, grad_outputs):
        if not isinstance(out, Tensor):
            raise TypeError(f"{who}: expected Tensors, got {type(out).__name__}")
        if not out.requires_grad:
            raise RuntimeError(
                f"{who}: element of shape {tuple(out.shape)} does not require grad and has no "
                "grad_fn (was it computed under no_grad, or from tensors without "
                "requires_grad=True?)")
        if g is None:
            if out.numel() != 1:
                raise RuntimeError(
                    f"{who}: grad can be implicitly created only for scalar outputs, but the "
                    f"output has shape {tuple(out.shape)}; pass a gradient of that shape "
                    f"(e.g. y.backward(gradient=ones_like(y))) or reduce it first (y.sum())")
            g = Tensor._wrap(out._be.xp.ones_like(out._data), out._be, None, 0)
        elif not isinstance(g, Tensor):
            g = Tensor(g, dtype=out.dtype, device=out.device)
        elif g._data.dtype != out._data.dtype or g._be is not out._be:
            g = g.detach().to(out.device).to(out.dtype)  # as PyTorch: the seed takes the output's type
        if tuple(g.shape) != tuple(out.shape):
            raise RuntimeError(f"{who}: gradient has shape {tuple(g.shape)} but the output has "
                               f"shape {tuple(out.shape)}")
        grads.append(g)
    return grads


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, inputs=None):
    """Accumulate d(tensors)/d(leaf) into every leaf's `.grad` (or only into `inputs`)."""
    tensors = _as_list(tensors)
    grads = _make_root_grads(tensors, _as_list(grad_tensors), "backward")
    if retain_graph is None:
        retain_graph = create_graph
    if inputs is not None:
        inputs = _as_list(inputs)
        got = grad(tensors, inputs, grads, retain_graph=retain_graph, create_graph=create_graph,
                   allow_unused=True)
        for t, g in zip(inputs, got):
            if g is None:
                continue
            if not t.is_leaf:
                raise RuntimeError("backward(inputs=...) accepts only leaf tensors in this version")
            t.grad = g if t.grad is None else t.grad + g
        return
    run_backward(tensors, grads, retain_graph, create_graph)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         allow_unused=False):
    """Return d(outputs)/d(inputs) as a tuple, without touching any `.grad`."""
    outputs = _as_list(outputs)
    inputs_list = _as_list(inputs)
    grads = _make_root_grads(outputs, _as_list(grad_outputs), "grad")
    if retain_graph is None:
        retain_graph = create_graph
    keys = []
    for t in inputs_list:
        if not t.requires_grad:
            raise RuntimeError(f"grad: an input of shape {tuple(t.shape)} does not require grad")
        keys.append((t.grad_fn, t._out_nr) if t.grad_fn is not None else (t._accumulator(), 0))
    capture = {k: None for k in keys}
    run_backward(outputs, grads, retain_graph, create_graph, capture=capture, accumulate=False)
    result = []
    for i, k in enumerate(keys):
        g = capture[k]
        if g is None and not allow_unused:
            raise RuntimeError(
                f"grad: input {i} (shape {tuple(inputs_list[i].shape)}) was not used to compute "
                "the outputs; pass allow_unused=True to get None for it")
        if g is not None and not create_graph and g.grad_fn is not None:
            g = g.detach()
        result.append(g)
    return tuple(result)
