"""What a Tensor can do: the op library bound as methods and Python operators.

`x.exp()` is `minidl.exp(x)`, `x + y` is `minidl.add(x, y)`, `x[i] = v` is
`minidl.ops.indexing.setitem(x, i, v)`: one definition, three spellings.
"""
from __future__ import annotations

from ..tensor import Tensor
from . import elementwise as E, reduce as R, shape as S, linalg as L, indexing as I, inplace as P
from . import activation as A
from . import sorting as O
from .sampling import multinomial as _multinomial
from .softmax import softmax as _softmax, log_softmax as _log_softmax


def _reflected(fn):
    def method(self, other):
        return fn(other, self)
    return method


def _sizes_method(fn):
    def method(self, *sizes):
        return fn(self, *sizes)
    method.__name__ = fn.__name__
    return method


_OPERATORS = {
    "__add__": E.add_operator, "__radd__": _reflected(E.add),
    "__sub__": E.sub_operator, "__rsub__": _reflected(E.sub),
    "__mul__": E.mul, "__rmul__": _reflected(E.mul),
    "__truediv__": E.div, "__rtruediv__": _reflected(E.div),
    "__floordiv__": lambda a, b: E.div(a, b, rounding_mode="floor"),
    "__rfloordiv__": lambda a, b: E.div(b, a, rounding_mode="floor"),
    "__mod__": E.remainder, "__rmod__": _reflected(E.remainder),
    "__pow__": E.pow, "__rpow__": _reflected(E.pow),
    "__matmul__": L.matmul, "__rmatmul__": _reflected(L.matmul),
    "__neg__": E.neg, "__pos__": lambda x: x, "__abs__": E.abs,
    "__eq__": E.eq, "__ne__": E.ne, "__lt__": E.lt, "__le__": E.le, "__gt__": E.gt, "__ge__": E.ge,
    "__and__": E.bitwise_and, "__or__": E.bitwise_or, "__xor__": E.bitwise_xor,
    "__rand__": _reflected(E.bitwise_and), "__ror__": _reflected(E.bitwise_or),
    "__rxor__": _reflected(E.bitwise_xor), "__invert__": E.bitwise_not,
    "__getitem__": I.getitem, "__setitem__": I.setitem,
    "__iadd__": P.add_, "__isub__": P.sub_, "__imul__": P.mul_, "__itruediv__": P.div_,
}

_METHODS = {
    # elementwise
    "add": E.add, "sub": E.sub, "subtract": E.sub, "mul": E.mul, "multiply": E.mul,
    "div": E.div, "divide": E.div, "true_divide": E.div, "pow": E.pow, "neg": E.neg,
    "negative": E.neg, "abs": E.abs, "exp": E.exp, "log": E.log, "log1p": E.log1p,
    "sqrt": E.sqrt, "rsqrt": E.rsqrt, "sin": E.sin, "cos": E.cos, "tanh": E.tanh,
    "floor": E.floor, "ceil": E.ceil, "round": E.round, "trunc": E.trunc, "sign": E.sign,
    "clamp": E.clamp, "clip": E.clamp, "maximum": E.maximum, "minimum": E.minimum,
    "remainder": E.remainder, "eq": E.eq, "ne": E.ne, "lt": E.lt, "le": E.le, "gt": E.gt,
    "ge": E.ge, "logical_and": E.logical_and, "logical_or": E.logical_or,
    "logical_xor": E.logical_xor, "logical_not": E.logical_not, "isnan": E.isnan,
    "isinf": E.isinf, "isfinite": E.isfinite, "equal": E.equal, "allclose": E.allclose,
    "isclose": E.isclose, "clone": E.clone, "contiguous": E.contiguous,
    "where": lambda self, cond, other: E.where(cond, self, other),
    # activations
    "relu": A.relu, "sigmoid": A.sigmoid, "softplus": A.softplus,
    "softmax": _softmax, "log_softmax": _log_softmax,
    # reductions
    "sum": R.sum, "mean": R.mean, "prod": R.prod, "max": R.max, "min": R.min, "amax": R.amax,
    "amin": R.amin, "argmax": R.argmax, "argmin": R.argmin, "var": R.var, "std": R.std,
    "logsumexp": R.logsumexp, "cumsum": R.cumsum, "cumprod": R.cumprod, "norm": R.norm,
    "all": R.all, "any": R.any, "sum_to_size": R.sum_to_size, "count_nonzero": R.count_nonzero,
    # shape
    "reshape": _sizes_method(S.reshape), "view": _sizes_method(S.view), "view_as": S.view_as,
    "reshape_as": S.reshape_as, "flatten": S.flatten, "unflatten": S.unflatten,
    "squeeze": S.squeeze, "unsqueeze": S.unsqueeze, "permute": _sizes_method(S.permute),
    "transpose": S.transpose, "swapaxes": S.transpose, "swapdims": S.transpose, "t": S.t,
    "movedim": S.movedim, "expand": _sizes_method(S.expand), "expand_as": S.expand_as,
    "broadcast_to": S.broadcast_to, "repeat": _sizes_method(S.repeat), "tile": S.tile,
    "repeat_interleave": S.repeat_interleave, "split": S.split, "chunk": S.chunk,
    "unbind": S.unbind, "narrow": S.narrow, "tril": S.tril, "triu": S.triu, "roll": S.roll,
    "flip": S.flip,
    # linear algebra
    "matmul": L.matmul, "mm": L.mm, "bmm": L.bmm, "mv": L.mv, "dot": L.dot, "outer": L.outer,
    # indexing
    "gather": I.gather, "scatter_add": I.scatter_add, "scatter": I.scatter,
    "index_select": I.index_select, "index_add": I.index_add, "masked_fill": I.masked_fill,
    "masked_select": I.masked_select, "nonzero": I.nonzero, "take_along_dim": I.take_along_dim,
    # ordering and sampling
    "sort": O.sort, "argsort": O.argsort, "msort": O.msort, "topk": O.topk,
    "kthvalue": O.kthvalue, "median": O.median, "multinomial": _multinomial,
    # in place
    "add_": P.add_, "sub_": P.sub_, "mul_": P.mul_, "div_": P.div_, "pow_": P.pow_,
    "zero_": P.zero_, "fill_": P.fill_, "copy_": P.copy_, "clamp_": P.clamp_,
    "masked_fill_": P.masked_fill_, "exp_": P.exp_, "log_": P.log_, "sqrt_": P.sqrt_,
    "neg_": P.neg_, "abs_": P.abs_, "tanh_": P.tanh_, "sigmoid_": P.sigmoid_, "relu_": P.relu_,
    "floor_": P.floor_, "round_": P.round_, "uniform_": P.uniform_, "normal_": P.normal_,
    "bernoulli_": P.bernoulli_,
}

_PROPERTIES = {
    "T": lambda self: S.permute(self, tuple(range(self.ndim - 1, -1, -1))),
    "mT": lambda self: S.transpose(self, -2, -1),
}

_CASTS = {"float": "float32", "double": "float64", "half": "float16", "long": "int64",
          "int": "int32", "short": "int16", "bool": "bool", "byte": "uint8", "char": "int8"}


def _cast_method(dtype_name):
    def method(self):
        return self.to(dtype_name)
    method.__name__ = dtype_name
    return method


def bind() -> None:
    for name, fn in {**_OPERATORS, **_METHODS}.items():
        setattr(Tensor, name, fn)
    for name, fn in _PROPERTIES.items():
        setattr(Tensor, name, property(fn))
    for name, dtype_name in _CASTS.items():
        setattr(Tensor, name, _cast_method(dtype_name))
    # __eq__ is elementwise, so hash by identity: object's own hash (in C; optimizers look up
    # their per-parameter state by tensor on every step)
    Tensor.__hash__ = object.__hash__


bind()
