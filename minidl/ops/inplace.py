"""In-place ops: x.add_(y), x += y, x.zero_(), x.copy_(y), x.clamp_(...), x[key] = v, ...

Rules (PyTorch's):
* a leaf that requires grad cannot be changed in place while recording (the change would be
  invisible to its gradient); do it under `no_grad()` (that is how optimizers update weights);
* every in-place change bumps the version counter that the tensor shares with its views, so a
  backward that saved the old value raises instead of using the new one;
* when recording, the tensor's history is *rebased*: it now comes out of the in-place op's node.
  The op runs on a copy of the old value, so any formula that needs it still has it.
* the result must fit the tensor's dtype (an int tensor cannot receive a float result).
"""
from __future__ import annotations

from .. import dtypes as _dt
from ..autograd.function import bump_version
from ..autograd.grad_mode import _state
from ._util import Tensor


def check_inplace(x: Tensor, *others) -> bool:
    """Raise if x may not be modified in place; return True if the change must be recorded."""
    if not _state[0]:
        return False
    recording = x._requires_grad or any(isinstance(o, Tensor) and o._requires_grad for o in others)
    if not recording:
        return False
    if x.grad_fn is None and x._requires_grad:
        raise RuntimeError(
            "a leaf Variable that requires grad is being used in an in-place operation; wrap the "
            "update in `with minidl.no_grad():` (as optimizers do) or use the out-of-place form")
    if x._base is not None and (x._base._requires_grad or recording):
        raise RuntimeError(
            "in-place modification of a view while recording gradients is not supported by "
            "minidl (the base tensor's history would not see it); compute the new values out of "
            "place (e.g. with where/cat/scatter) or clone() the view first")
    return True


def finish_inplace(x: Tensor, result: Tensor, copy: bool = True) -> Tensor:
    """Make x hold `result`: write the values into x's own memory and adopt its history."""
    if copy:
        _write(x, result._data)
    else:
        bump_version(x)
    x.grad_fn = result.grad_fn
    x._out_nr = result._out_nr
    x._requires_grad = result._requires_grad
    return x


def _write(x: Tensor, arr) -> None:
    if arr.dtype != x._data.dtype and not _castable(arr.dtype, x._data.dtype):
        raise RuntimeError(f"result type {_dt.from_numpy(arr.dtype)} can't be cast to the desired "
                           f"output type {x.dtype} of this in-place operation")
    x._be.xp.copyto(x._data, arr, casting="unsafe")
    bump_version(x)


def _castable(src, dst) -> bool:
    order = {"b": 0, "u": 1, "i": 1, "f": 2, "c": 3}
    return order[src.kind] <= order[dst.kind]


def apply_inplace(x: Tensor, op, *args) -> Tensor:
    """Run `op(x, *args)` out of place and store the result into x (see the module rules)."""
    if check_inplace(x, *args):
        old = Tensor._wrap(x._data.copy(), x._be, x.grad_fn, x._out_nr)
        old._requires_grad = x._requires_grad
        return finish_inplace(x, op(old, *args))
    prev = _state[0]
    _state[0] = False
    try:
        result = op(x, *args)
    finally:
        _state[0] = prev
    _write(x, result._data)
    return x


def _fast_binary(ufunc_name, op):
    """x.add_(y) and friends: NumPy's `out=` writes straight into x when nothing is recorded."""
    def method(x, other, *extra, **kw):
        if extra or kw or check_inplace(x, other):
            return apply_inplace(x, lambda a, b: op(a, b, *extra, **kw), other)
        o = other._data if isinstance(other, Tensor) else other
        if isinstance(other, Tensor) and other._be is not x._be:
            raise RuntimeError(f"expected both tensors on one device, got {x.device} and {other.device}")
        res_kind = x._data.dtype.kind
        if isinstance(other, float) and res_kind in "biu" or (
                isinstance(other, Tensor) and not _castable(o.dtype, x._data.dtype)):
            return apply_inplace(x, op, other)  # raises the dtype error
        getattr(x._be.xp, ufunc_name)(x._data, o, out=x._data, casting="unsafe")
        bump_version(x)
        return x
    method.__name__ = ufunc_name + "_"
    return method


def _ops():
    from . import elementwise, activation
    return elementwise, activation


def add_(x, other, alpha=1):
    from .elementwise import add
    if alpha != 1:
        return apply_inplace(x, lambda a, b: add(a, b, alpha=alpha), other)
    return _add_(x, other)


def sub_(x, other, alpha=1):
    from .elementwise import sub
    if alpha != 1:
        return apply_inplace(x, lambda a, b: sub(a, b, alpha=alpha), other)
    return _sub_(x, other)


def _lazy(name):
    def op(a, b):
        from . import elementwise
        return getattr(elementwise, name)(a, b)
    return op


_add_ = _fast_binary("add", _lazy("add"))
_sub_ = _fast_binary("subtract", _lazy("sub"))
mul_ = _fast_binary("multiply", _lazy("mul"))
div_ = _fast_binary("true_divide", _lazy("div"))


def pow_(x, exponent):
    from .elementwise import pow
    return apply_inplace(x, pow, exponent)


def zero_(x):
    if check_inplace(x):
        from .elementwise import mul
        return apply_inplace(x, mul, 0.0)
    x._data.fill(0)
    bump_version(x)
    return x


def fill_(x, value):
    if isinstance(value, Tensor):
        value = value.item()
    if check_inplace(x):
        from .elementwise import mul, add
        return apply_inplace(x, lambda a, v: add(mul(a, 0.0), v), value)
    x._data.fill(value)
    bump_version(x)
    return x


def copy_(x, src):
    """Copy src's values into x (broadcasting src; converting dtype and device)."""
    if not isinstance(src, Tensor):
        src = Tensor(src)
    if src._be is not x._be:
        src = src.to(x.device)
    if check_inplace(x, src):
        from .shape import expand
        from .elementwise import to_dtype

        def take(_, s):
            return expand(to_dtype(s, x._data.dtype), tuple(x.shape)) * 1.0 if False else \
                expand(to_dtype(s, x._data.dtype), tuple(x.shape))
        return apply_inplace(x, take, src)
    x._be.xp.copyto(x._data, x._be.xp.broadcast_to(src._data, x._data.shape), casting="unsafe")
    bump_version(x)
    return x


def clamp_(x, min=None, max=None):
    from .elementwise import clamp
    return apply_inplace(x, lambda a: clamp(a, min, max))


def masked_fill_(x, mask, value):
    from .indexing import masked_fill
    return apply_inplace(x, lambda a: masked_fill(a, mask, value))


def _unary_inplace(name):
    def method(x, *args, **kwargs):
        from . import elementwise, activation
        fn = getattr(elementwise, name, None) or getattr(activation, name)
        return apply_inplace(x, lambda a: fn(a, *args, **kwargs))
    method.__name__ = name + "_"
    return method


exp_ = _unary_inplace("exp")
log_ = _unary_inplace("log")
sqrt_ = _unary_inplace("sqrt")
neg_ = _unary_inplace("neg")
abs_ = _unary_inplace("abs")
tanh_ = _unary_inplace("tanh")
sigmoid_ = _unary_inplace("sigmoid")
relu_ = _unary_inplace("relu")
floor_ = _unary_inplace("floor")
round_ = _unary_inplace("round")


def uniform_(x, a=0.0, b=1.0, generator=None):
    from ..random import rng_of
    vals = rng_of(generator).uniform(a, b, size=x._data.shape).astype(x._data.dtype)
    return _fill_from_host(x, vals)


def normal_(x, mean=0.0, std=1.0, generator=None):
    from ..random import rng_of
    dt = x._data.dtype
    vals = rng_of(generator).standard_normal(size=x._data.shape,
                                             dtype=dt if dt.name in ("float32", "float64") else "float64")
    vals = (vals * std + mean).astype(dt, copy=False)
    return _fill_from_host(x, vals)


def bernoulli_(x, p=0.5, generator=None):
    from ..random import rng_of
    vals = (rng_of(generator).random(size=x._data.shape) < p).astype(x._data.dtype)
    return _fill_from_host(x, vals)


def _fill_from_host(x, host_values):
    if check_inplace(x):
        raise RuntimeError("random in-place initialisation of a tensor that requires grad must run "
                           "under no_grad() (as nn.init does)")
    x._be.xp.copyto(x._data, x._be.from_numpy(host_values))
    bump_version(x)
    return x
