"""Elementwise ops: arithmetic, math functions, comparisons, casts and device moves.

Binary ops broadcast like NumPy/PyTorch; their backward sums the gradient back over the
broadcast dimensions (`sum_to_shape`). Every backward is written with minidl ops, so it can be
differentiated again. Activations live in activation.py.
"""
from __future__ import annotations

import operator

from .. import dtypes as _dt
from ..autograd.function import Function, apply1, apply2, shape_only_binary
from ..autograd.grad_mode import _state
from ..tensor import _wrap
from ._util import Tensor, binary_operands, sum_to_shape, promote_for_scalar


def _shape(x):
    return getattr(x, "shape", None)


# ---- arithmetic ----------------------------------------------------------------------------
# Add, Sub and Mul keep the operand shapes for backward only when broadcasting happened: then
# a gradient must be summed back to its input's shape. Same-shape operands (the common case)
# store nothing, and backward passes the gradient straight through (`ctx.shapes` stays None).
# Their forwards make the check inline (direct .shape reads; a function call would cost as
# much as the check) and call this helper only when an operand is a Python number (x + 2.0).
def _remember_shapes_if_broadcast(ctx, a, b) -> None:
    sa, sb = getattr(a, "shape", ()), getattr(b, "shape", ())
    if sa != sb:
        ctx.shapes = (sa, sb)


class Add(Function):
    array_op = operator.add  # the whole forward when nothing is recorded
    shapes = None            # (shape of a, shape of b) when they differed

    @staticmethod
    def forward(ctx, a, b):
        try:
            if a.shape != b.shape:
                ctx.shapes = (a.shape, b.shape)
        except AttributeError:
            _remember_shapes_if_broadcast(ctx, a, b)
        return a + b

    @staticmethod
    def backward(ctx, grad):
        na, nb = ctx.needs_input_grad
        shapes = ctx.shapes
        if shapes is None:
            return grad if na else None, grad if nb else None
        sa, sb = shapes
        return (sum_to_shape(grad, sa) if na else None, sum_to_shape(grad, sb) if nb else None)


class Sub(Function):
    array_op = operator.sub  # the whole forward when nothing is recorded
    shapes = None            # (shape of a, shape of b) when they differed

    @staticmethod
    def forward(ctx, a, b):
        try:
            if a.shape != b.shape:
                ctx.shapes = (a.shape, b.shape)
        except AttributeError:
            _remember_shapes_if_broadcast(ctx, a, b)
        return a - b

    @staticmethod
    def backward(ctx, grad):
        na, nb = ctx.needs_input_grad
        shapes = ctx.shapes
        if shapes is None:
            return grad if na else None, -grad if nb else None
        sa, sb = shapes
        return (sum_to_shape(grad, sa) if na else None, sum_to_shape(-grad, sb) if nb else None)


class Mul(Function):
    array_op = operator.mul  # the whole forward when nothing is recorded
    shapes = None            # (shape of a, shape of b) when they differed

    @staticmethod
    def forward(ctx, a, b):
        na, nb = ctx.needs_input_grad
        # keep only what the gradient formulas will read: d(ab)/da = b, d(ab)/db = a
        if na or nb:
            ctx.save_for_backward(ctx.inputs[1] if na else None, ctx.inputs[0] if nb else None)
        try:
            if a.shape != b.shape:
                ctx.shapes = (a.shape, b.shape)
        except AttributeError:
            _remember_shapes_if_broadcast(ctx, a, b)
        return a * b

    @staticmethod
    def backward(ctx, grad):
        b, a = ctx.saved_tensors
        shapes = ctx.shapes
        na, nb = ctx.needs_input_grad
        if _state[0]:   # create_graph=True: products recorded as ops, differentiable again
            ga = grad * b if na else None
            gb = grad * a if nb else None
        else:  # first order: the products on the arrays directly (an operand may be a number)
            g, be = grad._data, ctx._be
            ga = _wrap(g * getattr(b, "_data", b), be, None, 0) if na else None
            gb = _wrap(g * getattr(a, "_data", a), be, None, 0) if nb else None
        if shapes is not None:  # an operand was broadcast: sum its gradient back to its shape
            sa, sb = shapes
            ga = sum_to_shape(ga, sa) if na else None
            gb = sum_to_shape(gb, sb) if nb else None
        return ga, gb


class Div(Function):
    array_op = operator.truediv  # the whole forward when nothing is recorded

    @staticmethod
    def forward(ctx, a, b):
        if ctx.needs_input_grad[0] or ctx.needs_input_grad[1]:
            ctx.save_for_backward(*ctx.inputs)
        try:  # direct .shape reads: half the cost of getattr with a default
            ctx.shapes = (a.shape, b.shape)
        except AttributeError:  # a Python number operand (x + 2.0)
            ctx.shapes = (getattr(a, "shape", ()), getattr(b, "shape", ()))
        return a / b

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        sa, sb = ctx.shapes
        na, nb = ctx.needs_input_grad
        ga = sum_to_shape(grad / b, sa) if na else None
        # d(a/b)/db = -a / b^2
        gb = sum_to_shape(-grad * a / (b * b), sb) if nb else None
        return ga, gb


class Pow(Function):
    @staticmethod
    def forward(ctx, a, b):
        # a Tensor exponent (a Tensor base with a number exponent is PowScalar, below)
        ctx.save_for_backward(*ctx.inputs)
        try:  # direct .shape reads: half the cost of getattr with a default
            ctx.shapes = (a.shape, b.shape)
        except AttributeError:  # a Python number base (2.0 ** x)
            ctx.shapes = (getattr(a, "shape", ()), getattr(b, "shape", ()))
        return ctx._be.xp.power(a, b)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        sa, sb = ctx.shapes
        na, nb = ctx.needs_input_grad
        ga = gb = None
        if na:
            ga = sum_to_shape(grad * b * a ** (b - 1), sa)
        if nb:
            # d(a^b)/db = a^b log(a); PyTorch takes it as 0 where a == 0 (and b >= 0)
            a_t = a if isinstance(a, Tensor) else Tensor._wrap(ctx._be.xp.asarray(a, dtype=b._data.dtype), ctx._be, None, 0)
            safe = where(a_t == 0, ones_like_op(a_t), a_t)
            gb = sum_to_shape(grad * (a_t ** b) * log(safe), sb)
        return ga, gb


# ---- a float Tensor and a Python number ---------------------------------------------------
# `x * 0.5`, `1 - p`, `x / scale`, `x ** 2`: a float Tensor meets a Python float or int, and
# the result keeps the Tensor's dtype (NumPy 2 treats the number as "weak", which is exactly
# PyTorch's rule). These ops run through `apply1` with the number as a constant: a number
# never broadcasts the Tensor, so there are no shapes to keep, and nothing turns the number
# into an array. Their backwards use minidl ops, so they differentiate again. Every other
# mix (an int or bool Tensor, a NumPy scalar, a bool) takes the general path of add, mul,
# ... below, which promotes first.
_PY_NUMBER = (float, int)   # `type(v) in _PY_NUMBER` is False for bool, a subclass of int


def _float_tensor_and_number(t, v) -> bool:
    return type(v) in _PY_NUMBER and isinstance(t, Tensor) and t._data.dtype.kind == "f"


class _WithNumber(Function):
    """A node named after its op, as PyTorch names both forms: `(x * 2).grad_fn` is a
    MulBackward, like `(x * y).grad_fn`."""
    op_name = ""

    def name(self) -> str:
        return self.op_name + "Backward"


class AddScalar(_WithNumber):
    """x + s."""
    op_name = "Add"
    array_op = operator.add

    @staticmethod
    def forward(ctx, x, s):
        return x + s

    @staticmethod
    def backward(ctx, grad):
        return grad


class SubScalar(_WithNumber):
    """x - s."""
    op_name = "Sub"
    array_op = operator.sub

    @staticmethod
    def forward(ctx, x, s):
        return x - s

    @staticmethod
    def backward(ctx, grad):
        return grad


class RsubScalar(_WithNumber):
    """s - x."""
    op_name = "Rsub"

    @staticmethod
    def array_op(x, s):
        return s - x

    @staticmethod
    def forward(ctx, x, s):
        return s - x

    @staticmethod
    def backward(ctx, grad):
        return -grad


class MulScalar(_WithNumber):
    """x * s: d/dx = s."""
    op_name = "Mul"
    array_op = operator.mul

    @staticmethod
    def forward(ctx, x, s):
        ctx.factor = s
        return x * s

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.factor


class DivScalar(_WithNumber):
    """x / s: d/dx = 1 / s (divided, not multiplied by 1 / s, which rounds differently)."""
    op_name = "Div"
    array_op = operator.truediv

    @staticmethod
    def forward(ctx, x, s):
        ctx.divisor = s
        return x / s

    @staticmethod
    def backward(ctx, grad):
        return grad / ctx.divisor


class PowScalar(_WithNumber):
    """x ** n: d/dx = n x^(n-1), taken as 0 everywhere when n == 0 (not 0 * x^-1 = nan at 0)."""
    op_name = "Pow"

    @staticmethod
    def forward(ctx, x, n):
        ctx.save_for_backward(ctx.inputs[0])
        ctx.exponent = n
        if n == 2:
            return x * x            # exact, and cheaper than the general power
        if n == 0.5:
            return ctx._be.xp.sqrt(x)
        return x ** n

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        n = ctx.exponent
        if n == 0:
            return grad * 0.0
        if n == 2:
            return grad * (x * 2.0)
        return grad * (x ** (n - 1) * n)


class Neg(Function):
    array_op = operator.neg

    @staticmethod
    def forward(ctx, a):
        return -a

    @staticmethod
    def backward(ctx, grad):
        return -grad


def _add(a, b, alpha=1):
    """a + alpha * b, broadcasting, with PyTorch's dtype promotion."""
    if alpha == 1:
        if _float_tensor_and_number(a, b):
            return apply1(AddScalar, a, b)
        if _float_tensor_and_number(b, a):
            return apply1(AddScalar, b, a)       # number + tensor: addition commutes exactly
    if alpha != 1:
        b = mul(b, alpha)
    a, b = binary_operands(a, b)
    if not isinstance(a, Tensor):
        a, b = b, a  # number + tensor: addition commutes
    return Add.apply(promote_for_scalar(a, b), b)


def _sub(a, b, alpha=1):
    """a - alpha * b, broadcasting, with PyTorch's dtype promotion."""
    if alpha == 1:
        if _float_tensor_and_number(a, b):
            return apply1(SubScalar, a, b)
        if _float_tensor_and_number(b, a):
            return apply1(RsubScalar, b, a)
    if alpha != 1:
        b = mul(b, alpha)
    a, b = binary_operands(a, b)
    if isinstance(a, Tensor):
        return Sub.apply(promote_for_scalar(a, b), b)
    return Sub.apply(a, promote_for_scalar(b, a))


# `x + y` and `x - y`: Tensor.__add__ and __sub__. Same-dtype Tensors run in one frame (see
# shape_only_binary); the functions above handle the rest: numbers, promotion, alpha.
add_operator = shape_only_binary(Add, _add)
sub_operator = shape_only_binary(Sub, _sub)


def add(a, b, alpha=1):
    """a + alpha * b, broadcasting, with PyTorch's dtype promotion (`minidl.add`)."""
    if alpha == 1 and isinstance(a, Tensor):
        return add_operator(a, b)
    return _add(a, b, alpha)


def sub(a, b, alpha=1):
    """a - alpha * b, broadcasting, with PyTorch's dtype promotion (`minidl.sub`)."""
    if alpha == 1 and isinstance(a, Tensor):
        return sub_operator(a, b)
    return _sub(a, b, alpha)


def mul(a, b):
    if type(a) is Tensor and type(b) is Tensor and a._data.dtype is b._data.dtype:
        return apply2(Mul, a, b)
    if _float_tensor_and_number(a, b):
        return apply1(MulScalar, a, b)
    if _float_tensor_and_number(b, a):
        return apply1(MulScalar, b, a)           # multiplication commutes exactly
    a, b = binary_operands(a, b)
    if not isinstance(a, Tensor):
        a, b = b, a
    return Mul.apply(promote_for_scalar(a, b), b)


def div(a, b, rounding_mode=None):
    """True division (integers give the default float), or 'floor'/'trunc' division."""
    if (rounding_mode is None and type(a) is Tensor and type(b) is Tensor
            and a._data.dtype is b._data.dtype and a._data.dtype.kind == "f"):
        return apply2(Div, a, b)
    if rounding_mode is None and _float_tensor_and_number(a, b):
        return apply1(DivScalar, a, b)
    a, b = binary_operands(a, b)
    if rounding_mode is not None:
        return _rounded_div(a, b, rounding_mode)
    t = a if isinstance(a, Tensor) else b
    if t._data.dtype.kind != "f":
        t_float = to_dtype(t, _dt.get_default_dtype())
        a, b = (t_float, b) if t is a else (a, t_float)
        if isinstance(a, Tensor) and isinstance(b, Tensor) and a._data.dtype != b._data.dtype:
            a, b = binary_operands(a, to_dtype(b, a.dtype))
    return Div.apply(a, b)


def _rounded_div(a, b, mode):
    ta = a if isinstance(a, Tensor) else b
    xp = ta._be.xp
    aa = a._data if isinstance(a, Tensor) else a
    bb = b._data if isinstance(b, Tensor) else b
    if mode == "floor":
        out = xp.floor_divide(aa, bb)
    elif mode == "trunc":
        q = xp.true_divide(aa, bb)
        out = xp.trunc(q).astype(xp.result_type(aa, bb)) if ta._data.dtype.kind != "f" else xp.trunc(q)
    else:
        raise ValueError(f"div: rounding_mode must be None, 'floor' or 'trunc', got {mode!r}")
    return Tensor._wrap(out, ta._be, None, 0)


def pow(a, b):
    if _float_tensor_and_number(a, b):
        return apply1(PowScalar, a, b)
    a, b = binary_operands(a, b)     # a NumPy scalar becomes a Python number, as in PyTorch
    if isinstance(a, Tensor) and isinstance(b, (int, float)):    # a bool too: x ** True
        return apply1(PowScalar, promote_for_scalar(a, b), b)  # int tensor ** 2.5: a float one
    if not isinstance(a, Tensor):
        b = promote_for_scalar(b, a)
    return Pow.apply(a, b)


def neg(a):
    return Neg.apply1(a)


def remainder(a, b):
    a, b = binary_operands(a, b)
    t = a if isinstance(a, Tensor) else b
    return Tensor._wrap(t._be.xp.remainder(a._data if isinstance(a, Tensor) else a,
                                           b._data if isinstance(b, Tensor) else b), t._be, None, 0)


# ---- unary math ----------------------------------------------------------------------------
def _unary(name, fn_forward, backward_fn, saves="input"):
    """Build a unary Function class: forward calls xp.<fn>, backward a formula in minidl ops."""

    def forward(ctx, x):
        y = fn_forward(ctx._be.xp, x)
        if saves == "output":
            ctx.save_output(y)
        elif saves == "input":
            ctx.save_for_backward(ctx.inputs[0])
        return y

    def backward(ctx, grad):
        if saves == "output":
            return backward_fn(grad, ctx.output())
        if saves == "input":
            return backward_fn(grad, ctx.saved_tensors[0])
        return backward_fn(grad, None)

    return type(name, (Function,), {"forward": staticmethod(forward),
                                    "backward": staticmethod(backward)})


Exp = _unary("Exp", lambda xp, x: xp.exp(x), lambda g, y: g * y, "output")
Log = _unary("Log", lambda xp, x: xp.log(x), lambda g, x: g / x)
Log1p = _unary("Log1p", lambda xp, x: xp.log1p(x), lambda g, x: g / (x + 1))
Sqrt = _unary("Sqrt", lambda xp, x: xp.sqrt(x), lambda g, y: g / (y * 2), "output")
# y = x^(-1/2): dy/dx = -x^(-3/2) / 2 = -y^3 / 2
Rsqrt = _unary("Rsqrt", lambda xp, x: 1 / xp.sqrt(x), lambda g, y: g * (y * y * y) * -0.5, "output")
Sin = _unary("Sin", lambda xp, x: xp.sin(x), lambda g, x: g * cos(x))
Cos = _unary("Cos", lambda xp, x: xp.cos(x), lambda g, x: -(g * sin(x)))
Tanh = _unary("Tanh", lambda xp, x: xp.tanh(x), lambda g, y: g * (1 - y * y), "output")
# |x|' = sign(x); PyTorch uses 0 at x == 0
Abs = _unary("Abs", lambda xp, x: xp.abs(x), lambda g, x: g * sign(x))
# Step functions: derivative 0 almost everywhere (PyTorch returns zeros, not an error)
Floor = _unary("Floor", lambda xp, x: xp.floor(x), lambda g, _: g * 0, None)
Ceil = _unary("Ceil", lambda xp, x: xp.ceil(x), lambda g, _: g * 0, None)
Round = _unary("Round", lambda xp, x: xp.round(x), lambda g, _: g * 0, None)
Trunc = _unary("Trunc", lambda xp, x: xp.trunc(x), lambda g, _: g * 0, None)


def _float_unary(cls, name):
    def op(x):
        if x._data.dtype.kind != "f":
            x = to_dtype(x, _dt.get_default_dtype())  # exp(int tensor) is float, as in PyTorch
        return cls.apply1(x)
    op.__name__ = name
    op.__doc__ = f"Elementwise {name}; integer inputs are converted to the default float dtype."
    return op


exp = _float_unary(Exp, "exp")
log = _float_unary(Log, "log")
log1p = _float_unary(Log1p, "log1p")
sqrt = _float_unary(Sqrt, "sqrt")
rsqrt = _float_unary(Rsqrt, "rsqrt")
sin = _float_unary(Sin, "sin")
cos = _float_unary(Cos, "cos")
tanh = _float_unary(Tanh, "tanh")


def abs(x):
    return Abs.apply1(x)


def floor(x):
    return Floor.apply(x) if x._data.dtype.kind == "f" else x


def ceil(x):
    return Ceil.apply(x) if x._data.dtype.kind == "f" else x


def round(x):
    return Round.apply(x) if x._data.dtype.kind == "f" else x


def trunc(x):
    return Trunc.apply(x) if x._data.dtype.kind == "f" else x


def sign(x):
    return _no_grad_result(x, x._be.xp.sign(x._data))


def _no_grad_result(like: Tensor, arr):
    return Tensor._wrap(arr, like._be, None, 0)


# ---- clamp, maximum, minimum, where --------------------------------------------------------
class Clamp(Function):
    @staticmethod
    def forward(ctx, x, lo, hi):
        ctx.save_for_backward(ctx.inputs[0])
        ctx.bounds = (lo, hi)
        xp = ctx._be.xp
        return xp.clip(x, lo, hi) if (lo is not None or hi is not None) else x.copy()

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        lo, hi = ctx.bounds
        # the gradient passes where the input was inside [lo, hi], bounds included
        keep = None
        if lo is not None:
            keep = x >= lo
        if hi is not None:
            keep = (x <= hi) if keep is None else keep & (x <= hi)
        return (grad if keep is None else grad * keep.to(grad.dtype)), None, None


def clamp(x, min=None, max=None):
    if min is None and max is None:
        raise ValueError("clamp: at least one of min and max must be given")
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        out = x
        if min is not None:
            out = maximum(out, min)
        if max is not None:
            out = minimum(out, max)
        return out
    x = promote_for_scalar(x, min if min is not None else max)
    return Clamp.apply(x, min, max)


clip = clamp


class _MinMax(Function):
    """maximum/minimum: the gradient goes to the larger (smaller) input; on ties it is split
    in half between the two, as in PyTorch."""
    pick_max = True

    @classmethod
    def forward(cls, ctx, a, b):
        ctx.save_for_backward(*ctx.inputs)
        xp = ctx._be.xp
        return xp.maximum(a, b) if cls.pick_max else xp.minimum(a, b)

    @classmethod
    def backward(cls, ctx, grad):
        a, b = ctx.saved_tensors
        wins = (a > b) if cls.pick_max else (a < b)
        ties = (a == b).to(grad.dtype) * 0.5
        wa = wins.to(grad.dtype) + ties
        na, nb = ctx.needs_input_grad
        return (sum_to_shape(grad * wa, a.shape) if na else None,
                sum_to_shape(grad * (1 - wa), b.shape) if nb else None)


class Maximum(_MinMax):
    pick_max = True


class Minimum(_MinMax):
    pick_max = False


def _tensor_pair(a, b):
    from ._util import as_tensor_like
    if not isinstance(a, Tensor):
        a = as_tensor_like(a, b)
    if not isinstance(b, Tensor):
        b = as_tensor_like(b, a)
    return binary_operands(a, b)


def maximum(a, b):
    return Maximum.apply(*_tensor_pair(a, b))


def minimum(a, b):
    return Minimum.apply(*_tensor_pair(a, b))


class Where(Function):
    @staticmethod
    def forward(ctx, cond, a, b):
        ctx.cond = ctx.inputs[0]
        ctx.shapes = (getattr(a, "shape", ()), getattr(b, "shape", ()))
        return ctx._be.xp.where(cond, a, b)

    @staticmethod
    def backward(ctx, grad):
        cond = ctx.cond
        sa, sb = ctx.shapes
        _, na, nb = ctx.needs_input_grad
        zero = grad * 0
        return (None,
                sum_to_shape(where(cond, grad, zero), sa) if na else None,
                sum_to_shape(where(cond, zero, grad), sb) if nb else None)


def where(condition, a=None, b=None):
    """`where(cond, a, b)` picks a where cond is true, else b; `where(cond)` = nonzero."""
    if a is None and b is None:
        from .indexing import nonzero
        return nonzero(condition, as_tuple=True)
    if not isinstance(condition, Tensor):
        raise TypeError("where: condition must be a bool Tensor")
    if condition._data.dtype.kind != "b":
        condition = condition != 0
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        from ._util import as_tensor_like
        a = as_tensor_like(a, Tensor._wrap(condition._data.astype(_dt.get_default_dtype().np_dtype), condition._be, None, 0))
    a, b = _tensor_pair(a, b)
    return Where.apply(condition, a, b)


def ones_like_op(t: Tensor) -> Tensor:
    return Tensor._wrap(t._be.xp.ones_like(t._data), t._be, None, 0)


# ---- comparisons and logic (no gradient) ---------------------------------------------------
def _compare(name, ufunc_name):
    def op(a, b):
        a, b = binary_operands(a, b)
        t = a if isinstance(a, Tensor) else b
        xp = t._be.xp
        out = getattr(xp, ufunc_name)(a._data if isinstance(a, Tensor) else a,
                                      b._data if isinstance(b, Tensor) else b)
        return Tensor._wrap(out, t._be, None, 0)
    op.__name__ = name
    return op


eq = _compare("eq", "equal")
ne = _compare("ne", "not_equal")
lt = _compare("lt", "less")
le = _compare("le", "less_equal")
gt = _compare("gt", "greater")
ge = _compare("ge", "greater_equal")
logical_and = _compare("logical_and", "logical_and")
logical_or = _compare("logical_or", "logical_or")
logical_xor = _compare("logical_xor", "logical_xor")
bitwise_and = _compare("bitwise_and", "bitwise_and")
bitwise_or = _compare("bitwise_or", "bitwise_or")
bitwise_xor = _compare("bitwise_xor", "bitwise_xor")
greater, less, greater_equal, less_equal, not_equal = gt, lt, ge, le, ne


def logical_not(x):
    return _no_grad_result(x, x._be.xp.logical_not(x._data))


def bitwise_not(x):
    xp = x._be.xp
    return _no_grad_result(x, xp.logical_not(x._data) if x._data.dtype.kind == "b"
                           else xp.invert(x._data))


def isnan(x):
    return _no_grad_result(x, x._be.xp.isnan(x._data))


def isinf(x):
    return _no_grad_result(x, x._be.xp.isinf(x._data))


def isfinite(x):
    return _no_grad_result(x, x._be.xp.isfinite(x._data))


def equal(a, b) -> bool:
    """True when both tensors have the same shape and the same values."""
    return tuple(a.shape) == tuple(b.shape) and bool(a._be.xp.array_equal(a._data, b._data))


def allclose(a, b, rtol=1e-5, atol=1e-8, equal_nan=False) -> bool:
    return bool(a._be.xp.allclose(a._data, b._data if isinstance(b, Tensor) else b, rtol=rtol,
                                  atol=atol, equal_nan=equal_nan))


def isclose(a, b, rtol=1e-5, atol=1e-8, equal_nan=False):
    return _no_grad_result(a, a._be.xp.isclose(a._data, b._data if isinstance(b, Tensor) else b,
                                               rtol=rtol, atol=atol, equal_nan=equal_nan))


# ---- casts and device moves ----------------------------------------------------------------
class ToDtype(Function):
    @staticmethod
    def forward(ctx, x, np_dtype):
        ctx.src = x.dtype
        return x.astype(np_dtype)

    @staticmethod
    def backward(ctx, grad):
        if ctx.src.kind != "f":
            return None, None
        return to_dtype(grad, ctx.src), None


def to_dtype(x: Tensor, dtype) -> Tensor:
    np_dtype = dtype if not isinstance(dtype, (_dt.dtype, str)) else _dt.from_any(dtype).np_dtype
    if x._data.dtype == np_dtype:
        return x
    return ToDtype.apply(x, np_dtype)


class ToDevice(Function):
    @staticmethod
    def forward(ctx, x, target_be):
        src = ctx._be
        ctx.src_be = src
        ctx.out_be = target_be
        host = src.to_numpy(x)
        if not src.is_gpu and not target_be.is_gpu:
            host = host.copy()  # two host devices (cpu, cuda-emu) must not share memory
        return target_be.from_numpy(host)

    @staticmethod
    def backward(ctx, grad):
        return to_device(grad, ctx.src_be), None


def to_device(x: Tensor, be) -> Tensor:
    if x._be is be:
        return x
    return ToDevice.apply(x, be)


class Clone(Function):
    @staticmethod
    def forward(ctx, x):
        return x.copy()

    @staticmethod
    def backward(ctx, grad):
        return grad


def clone(x: Tensor) -> Tensor:
    return Clone.apply(x)


def contiguous(x: Tensor) -> Tensor:
    if x._data.flags.c_contiguous:
        return x
    return Clone.apply(x)
