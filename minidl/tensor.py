"""Floor 3: the Tensor — an array on a device, plus what autograd needs to know about it.

A Tensor holds
  _data          the backend array (numpy.ndarray on 'cpu', cupy.ndarray on 'cuda')
  _be            the backend object of its device (floor 1): `_be.xp` computes on `_data`
  grad_fn        the graph node that made it (None for leaves and for untracked results)
  _out_nr        which output of grad_fn it is (ops like split have several)
  grad           the accumulated gradient, a Tensor (leaves, or non-leaves after retain_grad)
  _version       the in-place version counter: a one-element list shared with every view of
                 the same memory; in-place ops bump it, and backward compares it with the
                 stamp taken when it was saved. Until a tensor is first bumped or shared it
                 holds the common `NEVER_MODIFIED = (0,)` (see autograd/function.py).

Arithmetic, reductions, indexing and the rest are ops (floor 4, `minidl.ops`); they are bound
as methods and operators by `minidl/ops/tensor_methods.py`, so `x.exp()`, `x + y` and
`minidl.exp(x)` are one and the same code.
"""
from __future__ import annotations

import inspect as _inspect
import weakref

import numpy as np

from . import dtypes as _dt
from .autograd import function as _function
from .autograd.function import AccumulateGrad, NEVER_MODIFIED, shared_version
from .autograd.grad_mode import _state
from .autograd.engine import run_backward as _run_backward
from .backend import get_backend, device as _parse_device
from .backend import cpu as _cpu  # noqa: F401  (registers the 'cpu' backend)

_CPU = get_backend("cpu")


class _TensorType(type):
    """The type of `Tensor` (its metaclass), there for one speed trick.

    Every op makes a result Tensor and fills its fields itself (`_wrap`). The cheapest way
    CPython has to make an empty instance is calling the class when the class has no Python
    `__init__`: `type.__call__` then allocates in C and runs nothing else. The usual
    `object.__new__(Tensor)` packs and checks an argument tuple first, and CPython 3.11 cannot
    specialise its call site: the 1-element `a + b` took ~50 ns less with `_bare_tensor()`.
    So `Tensor` keeps its public constructor in `_init`, and this `__call__` runs it:
    `Tensor(data)` works as usual, and `_bare_tensor()` below is the fast empty one.

    A subclass customises construction by overriding `_init` (as `nn.Parameter` does). One
    that defines `__init__` instead is constructed the ordinary Python way."""

    def __call__(cls, *args, **kwargs):
        if cls.__init__ is not object.__init__:  # a subclass with its own __init__
            return type.__call__(cls, *args, **kwargs)
        t = type.__call__(cls)  # allocate only: Tensor defines no __init__
        t._init(*args, **kwargs)
        return t

    @property
    def __signature__(cls):
        """What help() and IDEs show for `Tensor(...)`: the constructor's parameters, not
        this `__call__`'s (*args, **kwargs)."""
        init = cls.__init__ if cls.__init__ is not object.__init__ else cls._init
        sig = _inspect.signature(init)
        return sig.replace(parameters=list(sig.parameters.values())[1:])  # without self


class Tensor(metaclass=_TensorType):
    # The five fields every tensor sets live in slots (fast to create and read); the rarely
    # used ones fall back to the class defaults below until a tensor sets its own (which then
    # goes into the instance __dict__). Making a tensor is on every op's hot path.
    __slots__ = ("_data", "_be", "grad_fn", "_requires_grad", "_version", "__dict__",
                 "__weakref__")
    _out_nr = 0          # which output of grad_fn this is
    grad = None          # accumulated gradient
    _base = None         # the tensor whose memory this view shares
    _hooks = None        # gradient hooks of a leaf
    _accum = None        # this leaf's graph edge (AccumulateGrad node, 0), made on first use
    _retains_grad = False

    __array_priority__ = 1000  # numpy scalars/arrays on the left defer to our operators

    def _init(self, data, dtype=None, device=None, requires_grad: bool = False):
        """`Tensor(data, dtype=None, device=None, requires_grad=False)`, like `torch.tensor`:
        copy `data` (numbers, nested lists, arrays, Tensors). (The constructor; see
        `_TensorType` for why it is not named `__init__`.)"""
        be = get_backend(device) if device is not None else None
        if isinstance(data, Tensor):
            if be is None:
                be = data._be
            arr = data._data
            np_dtype = _dt.from_any(dtype).np_dtype if dtype is not None else None
            arr = be.xp.array(arr if be is data._be else data._be.to_numpy(arr), dtype=np_dtype)
        else:
            be = be or _CPU
            arr = _to_array(data, dtype, be)
        self._data = arr
        self._be = be
        self.grad_fn = None
        self._requires_grad = False
        self._version = NEVER_MODIFIED
        if requires_grad:
            self.requires_grad = True

    # Tensor._wrap(array, be, grad_fn, out_nr): a Tensor around an existing array (no copy);
    # the module-level `_wrap` below, also reachable from the class.

    # ---- basic facts ----------------------------------------------------------------------
    @property
    def shape(self):
        return Size(self._data.shape)

    def size(self, dim=None):
        if dim is None:
            return Size(self._data.shape)
        return self._data.shape[_canonical_dim(dim, self._data.ndim)]

    @property
    def ndim(self) -> int:
        return self._data.ndim

    def dim(self) -> int:
        return self._data.ndim

    def numel(self) -> int:
        return int(self._data.size)

    def nelement(self) -> int:
        return int(self._data.size)

    @property
    def dtype(self):
        return _dt.from_numpy(self._data.dtype)

    @property
    def device(self):
        return self._be.device

    @property
    def is_cuda(self) -> bool:
        return self._be.device.type == "cuda"

    def is_floating_point(self) -> bool:
        return self._data.dtype.kind == "f"

    def element_size(self) -> int:
        return self._data.itemsize

    # ---- autograd state -------------------------------------------------------------------
    @property
    def requires_grad(self) -> bool:
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value: bool) -> None:
        if self.grad_fn is not None:
            raise RuntimeError(
                "you can only change requires_grad flags of leaf tensors; this tensor was "
                f"computed by {self.grad_fn.name()}. Use .detach() to get a new leaf.")
        if value and self._data.dtype.kind not in "fc":
            raise RuntimeError(
                f"only tensors of floating point dtype can require gradients; this one is "
                f"{self.dtype}. Convert it first, e.g. x.float().requires_grad_()")
        self._requires_grad = bool(value)

    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
        self.requires_grad = requires_grad
        return self

    @property
    def is_leaf(self) -> bool:
        return self.grad_fn is None

    def _accumulator(self) -> AccumulateGrad:
        """This leaf's AccumulateGrad node, shared by every op that uses the leaf."""
        return (self._accum or self._leaf_edge())[0]

    def _leaf_edge(self):
        """The graph edge into this leaf, `(its AccumulateGrad node, output 0)`: made once and
        kept, so the ops using a leaf (a parameter, every step) all record the same tuple."""
        edge = self._accum
        if edge is None:
            edge = self._accum = (AccumulateGrad(self), 0)
        return edge

    def retain_grad(self) -> None:
        """Keep `.grad` on a non-leaf after backward (leaves always keep theirs)."""
        if self.grad_fn is None:
            if not self._requires_grad:
                raise RuntimeError("can't retain_grad on a tensor that has requires_grad=False")
            return
        if self._retains_grad:
            return
        self._retains_grad = True
        ref = weakref.ref(self)

        def store(grad):
            t = ref()
            if t is not None:
                g = grad.detach()
                t.grad = g if t.grad is None else Tensor._wrap(t.grad._data + g._data, t._be, None, 0)
        self._add_node_hook(store)

    def register_hook(self, hook):
        """Call `hook(grad)` when this tensor's gradient is computed; a non-None return value
        replaces the gradient. Returns a handle with `.remove()`."""
        if not self._requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        if self.grad_fn is None:
            if self._hooks is None:
                self._hooks = []
            self._hooks.append(hook)
            return _HookHandle(self._hooks, hook)
        hooks = self._add_node_hook(hook)
        return _HookHandle(hooks, hook)

    def _add_node_hook(self, hook):
        table = self.grad_fn.__dict__.setdefault("_grad_hooks", {})
        hooks = table.setdefault(self._out_nr, [])
        hooks.append(hook)
        return hooks

    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        """Accumulate the gradient of this tensor into the leaves' `.grad`."""
        if (gradient is None and inputs is None and self.grad_fn is not None
                and self._data.size == 1):
            # the usual `loss.backward()`: seed with 1 and walk (the general entry point below
            # validates every argument form)
            data = self._data
            seed = self._be.xp.array(1, dtype=data.dtype)  # a quarter of ones_like's cost
            if data.ndim:
                seed = seed.reshape(data.shape)
            seed = _wrap(seed, self._be, None, 0)
            _run_backward([self], [seed], create_graph if retain_graph is None else retain_graph,
                          create_graph)
            return
        from .autograd import backward
        backward([self], None if gradient is None else [gradient], retain_graph, create_graph,
                 inputs)

    def detach(self) -> "Tensor":
        """The same memory, cut from the graph (shares the version counter, like PyTorch)."""
        t = Tensor._wrap(self._data, self._be, None, 0)
        t._version = shared_version(self)
        return t

    def detach_(self) -> "Tensor":
        self.grad_fn = None
        self._requires_grad = False
        return self

    @property
    def data(self) -> "Tensor":
        return self.detach()

    @data.setter
    def data(self, value) -> None:
        if isinstance(value, Tensor):
            self._data, self._be = value._data, value._be
        else:
            self._data = self._be.xp.asarray(value)

    # ---- leaving the tensor world ---------------------------------------------------------
    def numpy(self) -> np.ndarray:
        if self._requires_grad and _state[0]:
            raise RuntimeError(
                "can't call numpy() on a tensor that requires grad: use tensor.detach().numpy()")
        return self._be.to_numpy(self._data)

    def __array__(self, dtype=None, copy=None):
        arr = self._be.to_numpy(self._data)
        return arr if dtype is None else arr.astype(dtype, copy=False)

    def item(self):
        if self._data.size != 1:
            raise RuntimeError(f"a Tensor with {self._data.size} elements cannot be converted "
                               "to a Python number; item() needs exactly one element")
        return self._be.to_numpy(self._data).reshape(()).item()

    def tolist(self):
        return self._be.to_numpy(self._data).tolist()

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __index__(self):
        if self._data.dtype.kind not in "iub" or self._data.size != 1:
            raise TypeError("only integer tensors of a single element can be used as an index")
        return int(self.item())

    def __bool__(self):
        if self._data.size != 1:
            raise RuntimeError(f"the truth value of a tensor with {self._data.size} elements is "
                               "ambiguous; use .any() or .all()")
        return bool(self.item())

    def __len__(self):
        if self._data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self._data.shape[0]

    def __iter__(self):
        if self._data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        # unbind: one graph node with a view per row, as PyTorch iterates (ops/shape.py)
        return iter(self.unbind(0))

    def __hash__(self):
        return id(self)

    def __deepcopy__(self, memo):
        """A new leaf with a copy of the values on the same device (the backend object is
        shared, never copied). Like PyTorch, only leaves can be deep-copied."""
        if self.grad_fn is not None:
            raise RuntimeError("only tensors created explicitly by the user (graph leaves) support "
                               "deepcopy; call .detach() first")
        t = type(self).__new__(type(self))
        t._data = self._data.copy()
        t._be = self._be
        t.grad_fn = None
        t._requires_grad = self._requires_grad
        t._version = NEVER_MODIFIED
        if self.grad is not None:
            t.grad = self.grad.__deepcopy__(memo)
        memo[id(self)] = t
        return t

    def __reduce_ex__(self, protocol):
        """Pickle as (values on the host, device name, requires_grad): the backend object and
        the graph are not data. Subclasses such as Parameter come back as themselves."""
        return (_rebuild_tensor, (type(self), self._be.to_numpy(self._data), str(self._be.device),
                                  self._requires_grad))

    def __repr__(self) -> str:
        arr = self._be.to_numpy(self._data)
        body = np.array2string(arr, separator=", ", prefix="tensor(", precision=4,
                               threshold=1000, edgeitems=3)
        extras = []
        if self._data.dtype != _dt.get_default_dtype().np_dtype and self._data.dtype.kind != "i" \
                or self._data.dtype == np.int32:
            extras.append(f"dtype={self.dtype!r}")
        if self._be.device.type != "cpu":
            extras.append(f"device='{self._be.device}'")
        if self.grad_fn is not None:
            extras.append(f"grad_fn=<{self.grad_fn.name()}>")
        elif self._requires_grad:
            extras.append("requires_grad=True")
        return "tensor(" + body + "".join(", " + e for e in extras) + ")"

    # ---- devices and dtypes ----------------------------------------------------------------
    def to(self, *args, **kwargs) -> "Tensor":
        """`.to(device)`, `.to(dtype)`, `.to(device, dtype)`, `.to(other_tensor)`."""
        device, dtype = kwargs.pop("device", None), kwargs.pop("dtype", None)
        kwargs.pop("non_blocking", None)
        kwargs.pop("copy", None)
        if kwargs:
            raise TypeError(f"to() got unexpected arguments {sorted(kwargs)}")
        for a in args:
            if isinstance(a, Tensor):
                device, dtype = a.device, a.dtype
            elif isinstance(a, _dt.dtype) or (isinstance(a, str) and a in _dt._BY_NAME
                                              and a not in ("cpu", "cuda")):
                dtype = a
            elif a is not None:
                device = a
        out = self
        if device is not None:
            be = get_backend(device)
            if be is not out._be:
                from .ops.elementwise import to_device
                out = to_device(out, be)
        if dtype is not None:
            d = _dt.from_any(dtype)
            if d.np_dtype != out._data.dtype:
                from .ops.elementwise import to_dtype
                out = to_dtype(out, d)
        return out

    def cpu(self) -> "Tensor":
        return self.to("cpu")

    def cuda(self, device=None) -> "Tensor":
        return self.to("cuda" if device is None else (device if isinstance(device, str)
                                                       else f"cuda:{device}"))

    def type(self, dtype=None):
        if dtype is None:
            return f"minidl.{self.dtype.name}"
        return self.to(dtype)


def _wrap(array, be, grad_fn, out_nr):
    """Make a Tensor around an existing backend array without copying (the fast path).

    It always makes a plain Tensor. It is also `Tensor._wrap`; the hottest callers (the
    backward walk, first-order backward formulas: one call per gradient) use this module-level
    name, which skips the staticmethod lookup a call through the class costs."""
    t = _bare_tensor()
    t._data = array
    t._be = be
    t.grad_fn = grad_fn
    t._requires_grad = grad_fn is not None
    t._version = NEVER_MODIFIED
    if out_nr:
        t._out_nr = out_nr
    return t


Tensor._wrap = staticmethod(_wrap)
# `_bare_tensor()`: a new Tensor with no field set, made in C alone (see `_TensorType`)
_bare_tensor = type.__call__.__get__(Tensor)


def _rebuild_tensor(cls, host_array, device_name, requires_grad):
    be = get_backend(device_name)
    t = cls.__new__(cls)
    t._data = be.from_numpy(host_array) if be is not _CPU else host_array
    t._be = be
    t.grad_fn = None
    t._requires_grad = bool(requires_grad)
    t._version = NEVER_MODIFIED
    return t


class Size(tuple):
    """A shape, printed as in PyTorch; it is a tuple, so it compares equal to one."""

    def __repr__(self) -> str:
        return f"minidl.Size({list(self)})"

    def numel(self) -> int:
        n = 1
        for s in self:
            n *= s
        return n


class _HookHandle:
    def __init__(self, hooks, hook):
        self._hooks, self._hook = hooks, hook

    def remove(self) -> None:
        if self._hook in self._hooks:
            self._hooks.remove(self._hook)


def _canonical_dim(dim: int, ndim: int) -> int:
    """Turn a possibly negative dim into 0..ndim-1, with PyTorch's error message."""
    n = max(ndim, 1)
    if not -n <= dim < n:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-n}, {n - 1}], "
                         f"but got {dim})")
    return dim + n if dim < 0 else dim


def _to_array(data, dtype, be):
    """Convert user data to a backend array with PyTorch's default dtypes: Python floats
    become the default float (float32), ints int64, bools bool; NumPy arrays keep theirs."""
    if dtype is not None:
        np_dtype = _dt.from_any(dtype).np_dtype
        arr = np.array(_unwrap_nested(data), dtype=np_dtype)
    else:
        if isinstance(data, np.ndarray):
            arr = np.array(data)
        else:
            arr = np.array(_unwrap_nested(data))
            if arr.dtype.kind == "f" and not isinstance(data, np.generic):
                arr = arr.astype(_dt.get_default_dtype().np_dtype)
            elif arr.dtype.kind in "iu" and not isinstance(data, np.generic):
                arr = arr.astype(np.int64)
        if arr.dtype not in _dt._BY_NP:
            if arr.dtype.kind == "f":
                arr = arr.astype(_dt.get_default_dtype().np_dtype)
            else:
                raise TypeError(f"cannot make a tensor from data of dtype {arr.dtype} "
                                f"({type(data).__name__})")
    return be.from_numpy(arr) if be is not _CPU else arr


def _unwrap_nested(data):
    """Lists may hold 0-d Tensors (e.g. [t1.item()-like values]); turn them into numbers."""
    if isinstance(data, Tensor):
        return data._be.to_numpy(data._data)
    if isinstance(data, (list, tuple)) and data and any(isinstance(d, (Tensor, list, tuple))
                                                        for d in data):
        return [_unwrap_nested(d) for d in data]
    return data


_function._Tensor = Tensor
_function._bare_tensor = _bare_tensor
_function._CPU_BACKEND = _CPU
_function._wrap = _wrap
