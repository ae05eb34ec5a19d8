"""Elementwise activations GELU and SiLU: the plain reference.

GELU(x) = x * Phi(x), Phi the standard normal CDF.
  exact ('none'):  Phi(x) = (1 + erf(x / sqrt(2))) / 2 = erfc(-x / sqrt(2)) / 2
                   GELU'(x) = Phi(x) + x * phi(x),  phi(x) = exp(-x^2 / 2) / sqrt(2 pi)
  'tanh' (the approximation of Hendrycks & Gimpel, used by GPT-2):
                   Phi(x) ~ (1 + tanh(u)) / 2,  u = sqrt(2/pi) * (x + 0.044715 x^3)
                   GELU'(x) = (1 + t)/2 + x/2 * (1 - t^2) * du/dx,  t = tanh(u),
                   du/dx = sqrt(2/pi) * (1 + 3 * 0.044715 x^2)
  The two differ by up to ~1e-3: a model trained with one should be run with the same one.
SiLU(x) = x * sigmoid(x),  SiLU'(x) = s * (1 + x * (1 - s)),  s = sigmoid(x).
ReLU backward from the OUTPUT y = max(x, 0) (what autograd keeps): dx = 0 where y <= 0, else
dy. Written as a select, not dy * (y > 0): that product would turn an infinite dy into NaN
where the unit is off, and (as PyTorch) a NaN output passes its gradient through.

Traps: for x << 0, 1 + erf(...) cancels (1 - 0.99999...): GELU(-8) ~ -5e-15 would come out
as 0 in float32 and 2% off in float64. erfc(-x/sqrt(2)) computes that small tail directly.
NumPy has no erfc ufunc (SciPy and CuPy do, so we use theirs when present and fall back to
Python's math.erfc element by element, which is exact but slow). sigmoid(x) = 1/(1 + exp(-x))
overflows exp for x < -88 in float32; writing it with exp(-|x|) keeps every exp <= 1.
"""
from __future__ import annotations

import math

from ._checks import require_float, require_gelu_approximate, require_shape
from ._xp import get_xp

SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
INV_SQRT_2 = 1.0 / math.sqrt(2.0)
INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
GELU_TANH_CUBIC = 0.044715


def gelu_forward(x, approximate):
    op = "gelu_forward"
    require_float(op, x=x)
    require_gelu_approximate(op, approximate)
    xp = get_xp(x)
    if approximate == "tanh":
        u = SQRT_2_OVER_PI * (x + GELU_TANH_CUBIC * x * x * x)
        return 0.5 * x * (1.0 + xp.tanh(u))
    return 0.5 * x * erfc(-x * INV_SQRT_2)


def gelu_backward(x, dy, approximate):
    op = "gelu_backward"
    require_float(op, x=x, dy=dy)
    require_shape(op, "dy", dy, x.shape, "the shape of x")
    require_gelu_approximate(op, approximate)
    xp = get_xp(x)
    if approximate == "tanh":
        x2 = x * x
        t = xp.tanh(SQRT_2_OVER_PI * (x + GELU_TANH_CUBIC * x2 * x))
        du_dx = SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_TANH_CUBIC * x2)
        return dy * (0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * du_dx)
    cdf = 0.5 * erfc(-x * INV_SQRT_2)
    pdf = INV_SQRT_2PI * xp.exp(-0.5 * x * x)
    return dy * (cdf + x * pdf)


def silu_forward(x):
    require_float("silu_forward", x=x)
    return x * sigmoid(x)


def silu_backward(x, dy):
    op = "silu_backward"
    require_float(op, x=x, dy=dy)
    require_shape(op, "dy", dy, x.shape, "the shape of x")
    s = sigmoid(x)
    return dy * (s * (1.0 + x * (1.0 - s)))


def relu_backward(y, dy):
    op = "relu_backward"
    require_float(op, y=y, dy=dy)
    require_shape(op, "dy", dy, y.shape, "the shape of y")
    xp = get_xp(dy)
    return xp.where(y <= 0, xp.zeros((), dtype=dy.dtype), dy)


def sigmoid(x):
    """1/(1+exp(-x)) for x >= 0 and exp(x)/(1+exp(x)) for x < 0: exp never sees a positive
    argument, so it cannot overflow, and tiny results keep their relative precision."""
    xp = get_xp(x)
    z = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1.0 / (1.0 + z), z / (1.0 + z))


def erfc(x):
    """The complementary error function 1 - erf(x) on any array, in x's dtype."""
    xp = get_xp(x)
    if xp.__name__ == "cupy":
        import cupyx.scipy.special
        return cupyx.scipy.special.erfc(x)
    try:
        import scipy.special
    except ImportError:
        return erfc_elementwise(x)
    return scipy.special.erfc(x)


def erfc_elementwise(x):
    """Python's exact math.erfc applied element by element (NumPy arrays only; slow)."""
    import numpy
    flat = [math.erfc(v) for v in x.reshape(-1).tolist()]
    return numpy.asarray(flat, dtype=x.dtype).reshape(x.shape)
