"""Inverted dropout: the plain reference.

In training each element is kept with probability 1 - p and the kept ones are scaled by
1/(1 - p), so E[y] = x and the network needs no rescaling at evaluation time (where dropout is
the identity and this function is not called).

    keep = (u >= p) with u ~ Uniform[0, 1)   ->   P(keep) = 1 - p
    y = x * keep / (1 - p),   dx = dy * keep / (1 - p)

The mask is returned as a bool array (1 byte per element) for the backward pass. p = 1 drops
everything; the scale is then 0 instead of 1/0. The uniforms are drawn in x's dtype from the
caller's generator, so a seeded generator gives the same mask on every implementation.
"""
from __future__ import annotations

from ._checks import require_float, require_probability, require_shape


def dropout_forward(x, p, rng):
    op = "dropout_forward"
    require_float(op, x=x)
    require_probability(op, "p", p)
    keep = rng.random(x.shape, dtype=x.dtype) >= p
    return x * keep * keep_scale(p), keep


def dropout_backward(dy, mask, p):
    op = "dropout_backward"
    require_float(op, dy=dy)
    require_probability(op, "p", p)
    require_shape(op, "mask", mask, dy.shape, "the shape of dy")
    return dy * mask * keep_scale(p)


def keep_scale(p: float) -> float:
    """1/(1-p), the factor that keeps E[y] = x; 0 when everything is dropped."""
    return 0.0 if p >= 1.0 else 1.0 / (1.0 - p)
