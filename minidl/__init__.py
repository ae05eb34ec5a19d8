"""minidl: a from-scratch deep-learning engine with a PyTorch-shaped API.

    import minidl
    x = minidl.randn(3, 4, requires_grad=True)
    y = (x.exp() * 2).sum()
    y.backward()            # x.grad == 2 * exp(x)

Floors (each imports only from those below): backend -> autograd -> tensor -> ops -> nn/optim/data.
"""
from __future__ import annotations

__version__ = "0.1.0"

from . import dtypes
from .dtypes import (dtype, float16, float32, float64, half, double, uint8, int8, int16,
                     int32, int64, short, long, bool_ as bool, get_default_dtype,
                     set_default_dtype)
from .dtypes import float as float  # noqa: E402,F811  (minidl.float is float32, as torch.float)
from .dtypes import int as int  # noqa: F811
from .backend import device, Device
from .backend.cpu_threads import set_num_threads, get_num_threads
from .tensor import Tensor, Size
from .creation import (tensor, from_numpy, as_tensor, zeros, ones, empty, full, zeros_like,
                       ones_like, empty_like, full_like, arange, linspace, eye, rand, randn,
                       randint, randperm, rand_like, randn_like, randint_like)
from .random import Generator, manual_seed, seed, initial_seed, get_rng_state, set_rng_state
from .autograd import no_grad, enable_grad, set_grad_enabled, is_grad_enabled
from . import autograd
from .ops import *  # noqa: F401,F403
from . import ops
from . import cuda
from . import nn, optim, data
from .io import save, load


def is_tensor(obj) -> bool:
    return isinstance(obj, Tensor)


def numel(t) -> int:
    return t.numel()


def result_type(a, b):
    return dtypes.result_type(a, b)


def promote_types(a, b):
    return dtypes._join(dtypes.from_any(a), dtypes.from_any(b))
