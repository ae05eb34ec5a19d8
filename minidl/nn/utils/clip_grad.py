"""Gradient clipping, as PyTorch's `torch.nn.utils`:

clip_grad_norm_(parameters, max_norm, norm_type=2.0) rescales all gradients together so that
their total norm, the norm of the vector of per-tensor norms, is at most max_norm:
    g <- g * min(1, max_norm / (total_norm + 1e-6))
(the 1e-6 keeps the division finite when every gradient is zero). It returns total_norm,
measured before clipping, which is worth logging: spikes show training instability.

clip_grad_value_(parameters, clip_value) clamps each gradient element to [-clip_value,
clip_value] independently.
"""
from __future__ import annotations

import math

from ...autograd.grad_mode import no_grad
from ...creation import tensor, zeros
from ...ops.shape import stack
from ...tensor import Tensor


def _as_list(parameters) -> list:
    return [parameters] if isinstance(parameters, Tensor) else list(parameters)


def _vector_norm(x: Tensor, norm_type: float) -> Tensor:
    """The p-norm of all elements of x, as a 0-d tensor of x's dtype."""
    if x.numel() == 0:
        return zeros((), dtype=x.dtype, device=x.device)
    a = x.abs()
    if norm_type == math.inf:
        return a.amax()
    if norm_type == -math.inf:
        return a.amin()
    if norm_type == 0:
        return (a != 0).sum().to(x.dtype)
    if norm_type == 1:
        return a.sum()
    if norm_type == 2:
        return (a * a).sum().sqrt()
    return (a ** norm_type).sum() ** (1.0 / norm_type)


def get_total_norm(tensors, norm_type: float = 2.0, error_if_nonfinite: bool = False,
                   foreach=None) -> Tensor:
    """The norm of the per-tensor norms (= the norm of all elements concatenated)."""
    tensors = _as_list(tensors)
    norm_type = float(norm_type)
    if not tensors:
        return tensor(0.0)
    with no_grad():
        device = tensors[0].device
        norms = [_vector_norm(t, norm_type).to(device) for t in tensors]
        total = _vector_norm(stack(norms), norm_type)
    if error_if_nonfinite and not math.isfinite(total.item()):
        raise RuntimeError(
            f"The total norm of order {norm_type} for gradients from `parameters` is "
            "non-finite, so it cannot be clipped. To disable this error and scale the "
            "gradients by the non-finite norm anyway, set `error_if_nonfinite=False`")
    return total


def clip_grads_with_norm_(parameters, max_norm: float, total_norm, foreach=None) -> None:
    """Scale the gradients by min(1, max_norm / (total_norm + 1e-6)), in place."""
    grads = [p.grad for p in _as_list(parameters) if p.grad is not None]
    if not grads:
        return
    with no_grad():
        coef = (float(max_norm) / (total_norm + 1e-6)).clamp(max=1.0)
        for g in grads:
            g.mul_(coef.to(g.device))


def clip_grad_norm_(parameters, max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False, foreach=None) -> Tensor:
    """Clip the gradients' total norm to max_norm in place; return the norm before clipping.
    A parameter without a gradient is skipped. norm_type may be inf (largest |g|)."""
    parameters = _as_list(parameters)  # a generator must be walked only once
    grads = [p.grad for p in parameters if p.grad is not None]
    total_norm = get_total_norm(grads, norm_type, error_if_nonfinite)
    clip_grads_with_norm_(parameters, max_norm, total_norm)
    return total_norm


def clip_grad_value_(parameters, clip_value: float, foreach=None) -> None:
    """Clamp every gradient element to [-clip_value, clip_value], in place."""
    clip_value = float(clip_value)
    with no_grad():
        for p in _as_list(parameters):
            if p.grad is not None:
                p.grad.clamp_(min=-clip_value, max=clip_value)
