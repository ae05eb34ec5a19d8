"""Plain reference implementations of the fused-op table, for any array module.

Each function here defines the maths of one fused op (see each file's docstring) and is the
fallback on every device: written against the NumPy API, it runs on NumPy or CuPy arrays
(`get_xp`). Faster device versions (`minidl.backend.cpu_kernels`, the CUDA kernels) keep the
same signatures and are tested against these.

Row-wise and elementwise families: softmax, norm, activation, dropout, cross_entropy,
embedding. The conv, pool, optim and attention families live in their own files and are
imported when present.
"""
from ._xp import get_xp
from .activation import (gelu_backward, gelu_forward, relu_backward, silu_backward,
                         silu_forward)
from .cross_entropy import cross_entropy_backward, cross_entropy_forward
from .dropout import dropout_backward, dropout_forward
from .embedding import embedding_backward
from .norm import (batch_norm_backward, batch_norm_forward, layer_norm_backward,
                   layer_norm_forward, rms_norm_backward, rms_norm_forward)
from .softmax import (log_softmax_backward, log_softmax_forward, softmax_backward,
                      softmax_forward)

__all__ = [
    "get_xp",
    "softmax_forward", "softmax_backward", "log_softmax_forward", "log_softmax_backward",
    "layer_norm_forward", "layer_norm_backward", "rms_norm_forward", "rms_norm_backward",
    "batch_norm_forward", "batch_norm_backward",
    "gelu_forward", "gelu_backward", "silu_forward", "silu_backward", "relu_backward",
    "dropout_forward", "dropout_backward",
    "cross_entropy_forward", "cross_entropy_backward",
    "embedding_backward",
]

# The remaining families: their `__all__`, or else the public functions they define.
for _family in ("conv", "pool", "optim", "attention"):
    try:
        _module = __import__(f"{__name__}.{_family}", fromlist=["__all__"])
    except ModuleNotFoundError as _err:
        if _err.name != f"{__name__}.{_family}":
            raise  # the module exists but one of ITS imports is missing: a real error
        continue
    _names = getattr(_module, "__all__", None) or [
        name for name, value in vars(_module).items()
        if not name.startswith("_") and callable(value)
        and getattr(value, "__module__", "") == _module.__name__]
    for _name in _names:
        globals()[_name] = getattr(_module, _name)
        __all__.append(_name)
