"""GELU, SiLU and the ReLU backward: fast CPU kernels (maths in reference/activation.py).

NumPy evaluates GELU-tanh as ~8 ufuncs, each a sweep over memory with its own temporary; here
one vectorised loop reads x (and dy) once and writes the result once.

Rewriting with the sigmoid, sigma(z) = 1/(1 + exp(-z)), which costs one exp and one division:
  GELU-tanh:  (1 + tanh(u))/2 = sigma(2u), so y = x * s with s = sigma(2u), and since
              1 - tanh(u)^2 = 4 s (1 - s):   dy/dx = s + 2 x s (1 - s) du/dx.
  GELU-erf:   Phi(x) = erfc(-x/sqrt(2)) / 2, so y = x Phi(x) and dy/dx = Phi(x) + x phi(x);
              erfc (not 1 + erf) keeps full relative precision in the far negative tail.
  SiLU:       s = sigma(x), y = x s, dy/dx = s (1 + x (1 - s)).
exp(-z) may overflow to inf for very negative z; then s = 1/inf = 0, the right limit, and no
warning is raised inside Numba code.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from ..reference._checks import require_float, require_gelu_approximate, require_shape
from ._fastmath import FASTMATH, fast_erfc, fast_exp

SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
INV_SQRT_2 = 1.0 / math.sqrt(2.0)
INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
GELU_TANH_CUBIC = 0.044715


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def _gelu_tanh(x, y):
    T = x.dtype.type
    for i in range(x.size):
        v = x[i]
        u = T(SQRT_2_OVER_PI) * (v + T(GELU_TANH_CUBIC) * v * v * v)
        y[i] = v / (T(1.0) + fast_exp(T(-2.0) * u))


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def _gelu_tanh_backward(x, dy, dx):
    T = x.dtype.type
    for i in range(x.size):
        v = x[i]
        v2 = v * v
        u = T(SQRT_2_OVER_PI) * (v + T(GELU_TANH_CUBIC) * v2 * v)
        du_dx = T(SQRT_2_OVER_PI) * (T(1.0) + T(3.0 * GELU_TANH_CUBIC) * v2)
        s = T(1.0) / (T(1.0) + fast_exp(T(-2.0) * u))
        dx[i] = dy[i] * (s + T(2.0) * v * s * (T(1.0) - s) * du_dx)


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def _gelu_erf(x, y):
    T = x.dtype.type
    for i in range(x.size):
        v = x[i]
        y[i] = T(0.5) * v * fast_erfc(-v * T(INV_SQRT_2))


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def _gelu_erf_backward(x, dy, dx):
    T = x.dtype.type
    for i in range(x.size):
        v = x[i]
        cdf = T(0.5) * fast_erfc(-v * T(INV_SQRT_2))
        pdf = T(INV_SQRT_2PI) * fast_exp(T(-0.5) * v * v)
        dx[i] = dy[i] * (cdf + v * pdf)


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def _silu(x, y):
    T = x.dtype.type
    for i in range(x.size):
        v = x[i]
        y[i] = v / (T(1.0) + fast_exp(-v))


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def _silu_backward(x, dy, dx):
    T = x.dtype.type
    for i in range(x.size):
        v = x[i]
        s = T(1.0) / (T(1.0) + fast_exp(-v))
        dx[i] = dy[i] * (s * (T(1.0) + v * (T(1.0) - s)))


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def _relu_backward(y, dy, dx):
    # one pass and no boolean mask array: NumPy's where(y <= 0, 0, dy) builds the mask first
    T = dy.dtype.type
    for i in range(dy.size):
        dx[i] = T(0.0) if y[i] <= T(0.0) else dy[i]


def relu_backward(y, dy):
    op = "relu_backward"
    require_float(op, y=y, dy=dy)
    require_shape(op, "dy", dy, y.shape, "the shape of y")
    return _elementwise(_relu_backward, y, dy)


def gelu_forward(x, approximate):
    op = "gelu_forward"
    require_float(op, x=x)
    require_gelu_approximate(op, approximate)
    kernel = _gelu_tanh if approximate == "tanh" else _gelu_erf
    return _elementwise(kernel, x)


def gelu_backward(x, dy, approximate):
    op = "gelu_backward"
    _check_backward(op, x, dy)
    require_gelu_approximate(op, approximate)
    kernel = _gelu_tanh_backward if approximate == "tanh" else _gelu_erf_backward
    return _elementwise(kernel, x, dy)


def silu_forward(x):
    require_float("silu_forward", x=x)
    return _elementwise(_silu, x)


def silu_backward(x, dy):
    _check_backward("silu_backward", x, dy)
    return _elementwise(_silu_backward, x, dy)


def _check_backward(op, x, dy):
    require_float(op, x=x, dy=dy)
    require_shape(op, "dy", dy, x.shape, "the shape of x")


def _elementwise(kernel, *arrays):
    """Run kernel(flat inputs..., flat output) on 1-D contiguous views; reshape the result."""
    flat = [np.ascontiguousarray(a).reshape(-1) for a in arrays]
    out = np.empty_like(flat[0])
    kernel(*flat, out)
    return out.reshape(arrays[0].shape)
