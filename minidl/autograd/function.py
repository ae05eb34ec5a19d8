"""`Function`: one differentiable op — forward on backend arrays, backward on Tensors.

An op is a subclass with two static methods:

    class Mul(Function):
        @staticmethod
        def forward(ctx, a, b):                 # a, b: backend arrays (numpy/cupy)
            ctx.save_for_backward(*ctx.inputs)  # ctx.inputs: the original Tensor arguments
            return a * b
        @staticmethod
        def backward(ctx, grad):                # grad: a Tensor shaped like the output
            a, b = ctx.saved_tensors
            return grad * b, grad * a           # one gradient (or None) per forward argument

`Mul.apply(x, y)` runs forward and, when recording is on and an input requires grad, turns the
`ctx` object itself into the graph node of the output: it remembers where each input's gradient
must go next (`next_edges`) and a creation number `seq` that orders the backward walk.

Because backward is written with minidl ops, running it with recording on builds a graph of the
gradient itself: that is how `create_graph=True` gives second derivatives for free. Fused ops
whose backward is array code set `differentiable = False`; the engine then refuses
`create_graph=True` through them with a clear error instead of a silently wrong answer.

Saved tensors carry a version stamp: if one is modified in place after it was saved, reading
`ctx.saved_tensors` during backward raises and names the op.

Speed: the hottest ops (linear, relu, mul, the reductions) also have a first-order path. During
a plain `loss.backward()` recording is off inside backward, and there they compute on the
arrays directly (`if is_grad_enabled(): <op form> else: <array form>`), skipping a graph node
per small op; tests/autograd/test_fast_paths.py checks both forms give the same numbers.
"""
from __future__ import annotations

import itertools
import operator as _operator
import weakref

import numpy as np

from .grad_mode import _state

_Tensor = None  # minidl.tensor.Tensor, set by minidl.tensor at import (it is a floor above)
_CPU_BACKEND = None  # minidl's CPU backend, set there too (see shape_only_binary)
_bare_tensor = None  # makes a bare Tensor, fields set by the caller; set by minidl.tensor
_next_seq = itertools.count().__next__

# The in-place version counter (see minidl/tensor.py). Most tensors are never modified in place
# and share their memory with no view, so they all start with this one immutable counter
# instead of a list each: making a list per op result (and freeing it) was ~40 ns of every op.
# A tensor gets a list of its own the first time it is bumped or shared (`bump_version`,
# `shared_version`); reading `t._version[0]` works on both forms.
NEVER_MODIFIED = (0,)


def bump_version(t) -> None:
    """Record that `t`'s memory was just modified in place."""
    v = t._version
    if v is NEVER_MODIFIED:
        t._version = [1]
    else:
        v[0] += 1


def shared_version(t):
    """`t`'s version counter as a list another tensor of the same memory can share (a view, a
    detached alias, a saved output): a later bump through either is then seen by both."""
    v = t._version
    if v is NEVER_MODIFIED:
        v = t._version = [0]
    return v


class AccumulateGrad:
    """The graph node of a leaf tensor: gradients arriving here are added to `tensor.grad`.

    The leaf keeps its node (so every op using the leaf finds the same one); the node refers
    back to the leaf only weakly, so the pair forms no reference cycle and a dropped leaf is
    freed at once."""

    __slots__ = ("_variable", "next_edges", "seq")
    is_leaf_node = True
    _n_out = 1

    def __init__(self, variable):
        self._variable = weakref.ref(variable)
        self.next_edges = ()
        self.seq = -1  # after every op node in the walk: leaves are reached last

    @property
    def variable(self):
        return self._variable()

    def name(self) -> str:
        return "AccumulateGrad"


class Function:
    """Base class of every differentiable op. See the module docstring for the protocol."""

    # Every node sets these five fields, so they live in slots: a node is made for every op
    # of every step, and a slotted field is cheaper to set and read than a dict entry. State
    # an op keeps for its backward (ctx.shapes = ..., saved tensors) goes into the instance
    # __dict__, created on first use; the class defaults below stand in until then.
    __slots__ = ("_be", "inputs", "needs_input_grad", "next_edges", "seq", "__dict__")
    _saved = None           # tensors kept by save_for_backward
    _saved_out = None       # (output index, array) kept by save_output
    _grad_hooks = None      # {output index: [hooks]} from Tensor.register_hook / retain_grad
    _freed = False          # True once backward released the saved state
    out_be = None           # set by an op whose result lives on another device (.to())

    differentiable = True   # False: backward is fused array code (no higher-order gradients)
    _n_out = 1              # number of outputs (set by apply when there are several)
    is_view = False         # True: the output shares memory with the first input (reshape, slice)
    is_leaf_node = False
    # An op whose forward, when nothing is recorded, is one array function of the same
    # arguments (operator.add for Add) may name it here: apply1/apply2 then skip making a
    # node in no_grad code and in first-order backward passes, where most small ops run.
    array_op = None

    # ---- what forward may use ---------------------------------------------------------------
    def save_for_backward(self, *tensors) -> None:
        """Keep Tensors (usually from `ctx.inputs`) for backward, stamped with their versions."""
        self._saved = tensors
        versions = []  # a plain loop: cheaper than a comprehension, and this runs for most ops
        for t in tensors:
            versions.append(t._version[0] if isinstance(t, _Tensor) else None)
        self._saved_versions = versions

    def save_output(self, array, index: int = 0) -> None:
        """Keep an output array for backward (e.g. exp's result); read it with `ctx.output()`."""
        self._saved_out = (index, array)

    # ---- what backward may use --------------------------------------------------------------
    @property
    def saved_tensors(self):
        saved = self._saved
        if saved is None:
            self._raise_if_freed()
            return ()
        stamps = self._saved_versions
        k = 0
        for t in saved:  # (paired by index: zip() would cost more than this loop)
            stamp = stamps[k]
            k += 1
            # a saved tensor's _version list is shared with its views, so it sees their
            # in-place changes too
            if stamp is not None and t._version[0] != stamp:
                raise RuntimeError(
                    f"one of the tensors needed for gradient computation has been modified by an "
                    f"in-place operation: a {tuple(t.shape)} tensor saved by {self.name()} is at "
                    f"version {t._version[0]}; expected version {stamp}. Replace the in-place op "
                    f"(x += ..., x[...] = ..., x.add_(...)) by its out-of-place form, or clone() "
                    f"the tensor before modifying it.")
        return saved

    def output(self):
        """The saved output as a Tensor connected to this node (so double backward works)."""
        saved = self._saved_out
        if saved is None:
            self._raise_if_freed()
            raise RuntimeError(f"{self.name()} did not save its output")
        index, array = saved
        version, stamp = self._out_version
        if version[0] != stamp:
            raise RuntimeError(
                f"the output of {self.name()} was needed for its gradient but has been modified "
                f"by an in-place operation (version {version[0]}, expected {stamp}); use the "
                f"out-of-place form of the later op, or clone() the output first.")
        out = _Tensor._wrap(array, self._be, self if _state[0] else None, index)
        out._version = version
        return out

    def _raise_if_freed(self):
        if self._freed:
            raise RuntimeError(
                f"Trying to backward through the graph a second time (through {self.name()}): "
                "the graph's saved values were freed by the first backward. Pass "
                "retain_graph=True to the first backward() or autograd.grad() call if you need "
                "to go through the same graph again.")

    def name(self) -> str:
        return type(self).__name__ + "Backward"

    def release(self) -> None:
        """Drop everything saved (arrays, tensors) once backward is done with this node."""
        n_out = self._n_out
        self.__dict__.clear()
        if n_out != 1:
            self._n_out = n_out
        self._freed = True

    # ---- running the op ---------------------------------------------------------------------
    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError

    @staticmethod
    def backward(ctx, *grad_outputs):
        raise NotImplementedError

    @classmethod
    def apply(cls, *args, **kwargs):
        """Run the op; record a graph node when recording is on and an input requires grad.

        This is the general entry point (any mix of Tensors and constants, one or several
        outputs); `apply1` and `apply2` below are the same protocol for the most common
        argument shapes, with the generic argument handling left out."""
        Tensor = _Tensor
        ctx = cls()  # calling the class (no __init__) is the cheapest way to make an object
        ctx.inputs = args
        be = None
        wants_grad = False
        arrays = []
        needs = []   # one pass (plain appends) over the arguments: this runs for every op
        for a in args:
            if isinstance(a, Tensor):
                arrays.append(a._data)
                if be is None:
                    be = a._be
                elif a._be is not be:
                    _raise_device_mismatch(cls, args)
                r = a._requires_grad
                needs.append(r)
                if r:
                    wants_grad = True
            else:
                arrays.append(a)
                needs.append(False)
        ctx._be = be
        record = wants_grad and _state[0]
        ctx.needs_input_grad = needs if record else _NOTHING_NEEDED[len(args)]
        result = cls.forward(ctx, *arrays, **kwargs)
        ctx.inputs = None
        out_be = ctx.out_be
        if out_be is not None:
            be = out_be  # the op put its result on another device
        if type(result) is not tuple:
            # the common case: one output
            out = _bare_tensor()
            out._data = result
            out._be = be
            out._version = NEVER_MODIFIED
            if cls.is_view:
                _share_version(args[0], (out,))
            if not record or result.dtype.kind not in "fc":
                out.grad_fn = None
                out._requires_grad = False
                return out
            out.grad_fn = ctx
            out._requires_grad = True
            ctx.next_edges = _edges(args, needs)
            ctx.seq = _next_seq()
            if ctx._saved_out is not None:
                ctx._out_version = (shared_version(out), 0)
            return out
        # several outputs (split, max with indices, ...)
        outs = [Tensor._wrap(o, be, ctx if record and o.dtype.kind in "fc" else None, i)
                for i, o in enumerate(result)]
        if cls.is_view:
            _share_version(args[0], outs)
        if record:
            ctx.next_edges = _edges(args, needs)
            ctx.seq = _next_seq()
            ctx._n_out = len(outs)
            ctx._out_meta = [(o.shape, o.dtype) for o in result]
            saved_out = ctx._saved_out
            if saved_out is not None:
                v = shared_version(outs[saved_out[0]])
                ctx._out_version = (v, v[0])
        return tuple(outs)

    # apply1 and apply2 (below the class): the same protocol for the two most common argument
    # shapes, bound to the class as classmethods, `Exp.apply1(x)` and `Add.apply2(a, b)`.


# apply1 and apply2 are plain functions first: the hottest op wrappers call them as
# `apply2(Add, a, b)`, because calling a classmethod makes a bound-method object every time
# (a few percent of a small op's cost on CPython 3.11).
def apply1(cls, x, *consts):
    """`apply` for one Tensor argument (plus non-tensor constants such as dims or a shape) and
    one float output — unary math, activations, reductions, reshapes: the same protocol, minus
    the generic argument handling."""
    out = _bare_tensor()
    be = out._be = x._be
    if x._requires_grad and _state[0]:
        ctx = cls()
        ctx._be = be
        ctx.inputs = (x,) + consts if consts else (x,)
        ctx.needs_input_grad = _ONE_NEEDED
        out._data = cls.forward(ctx, x._data, *consts)
        ctx.inputs = None
        fn = x.grad_fn
        ctx.next_edges = ((fn, x._out_nr) if fn is not None else (x._accum or x._leaf_edge()),)
        ctx.seq = _next_seq()
        out.grad_fn = ctx
        out._requires_grad = True
        if ctx._saved_out is not None:
            out._version = v = [0]  # shared with the node, which checks it in backward
            ctx._out_version = (v, 0)
        else:
            out._version = NEVER_MODIFIED
    else:
        op = cls.array_op
        if op is not None:
            out._data = op(x._data, *consts)  # nothing to record: no node at all
        else:
            ctx = cls()
            ctx._be = be
            ctx.inputs = (x,) + consts if consts else (x,)
            ctx.needs_input_grad = _NOTHING_NEEDED[1 + len(consts)]
            out._data = cls.forward(ctx, x._data, *consts)
        out.grad_fn = None
        out._requires_grad = False
        out._version = NEVER_MODIFIED
    if cls.is_view:
        _share_version(x, (out,))
    return out


def apply2(cls, a, b):
    """`apply` for exactly two Tensors on one device with one float output: the hot path of the
    arithmetic operators (`x + y` runs millions of times in a training run)."""
    be = a._be
    if b._be is not be:
        _raise_device_mismatch(cls, (a, b))
    out = _bare_tensor()
    out._be = be
    out._version = NEVER_MODIFIED
    ra = a._requires_grad
    rb = b._requires_grad
    if (ra or rb) and _state[0]:
        ctx = cls()
        ctx._be = be
        ctx.inputs = (a, b)
        ctx.needs_input_grad = (ra, rb)
        out._data = cls.forward(ctx, a._data, b._data)
        ctx.inputs = None
        if ra:
            fn = a.grad_fn
            ea = (fn, a._out_nr) if fn is not None else (a._accum or a._leaf_edge())
        else:
            ea = None
        if rb:
            fn = b.grad_fn
            eb = (fn, b._out_nr) if fn is not None else (b._accum or b._leaf_edge())
        else:
            eb = None
        ctx.next_edges = (ea, eb)
        ctx.seq = _next_seq()
        out.grad_fn = ctx
        out._requires_grad = True
        if ctx._saved_out is not None:
            ctx._out_version = (shared_version(out), 0)
    else:
        op = cls.array_op
        if op is not None:
            out._data = op(a._data, b._data)  # nothing to record: no node at all
        else:
            ctx = cls()
            ctx._be = be
            ctx.inputs = (a, b)
            ctx.needs_input_grad = _NO_TWO
            out._data = cls.forward(ctx, a._data, b._data)
        out.grad_fn = None
        out._requires_grad = False
    return out


def shape_only_binary(cls, general):
    """The operator function of a two-input op whose forward is `cls.array_op` and whose
    backward needs nothing but the operand shapes, and those only when they differed (Add,
    Sub): `x + y` is the most frequent call in any model.

    For two same-dtype Tensors on one device, the returned function does in one frame what
    `apply2` -> `cls.forward` do in two: compute, then record the node exactly as they would
    (`ctx.shapes` set only when the shapes differ). Every other case (a Python number, dtype
    promotion, another device) goes to `general(a, b)`. On CPython 3.11 this takes the
    1-element `x + y` with grad from ~0.90 to ~0.77 us; tests/autograd/test_fast_paths.py
    checks that both routes record the same graph."""
    subtract = cls.array_op is _operator.sub
    # On the CPU the forward calls NumPy's ufunc itself: `np.add(x, y)` skips what `x + y`
    # does first (ask both arrays whether one overrides the operator) and is ~30 ns faster
    # on 1-element arrays. Other backends' arrays keep the operator, which knows their type.
    cpu_ufunc = np.subtract if subtract else np.add

    def operator_fast_path(a, b):  # `a` is a Tensor: this is bound as Tensor.__add__/__sub__
        if type(b) is _Tensor or isinstance(b, _Tensor):
            ad = a._data
            bd = b._data
            be = a._be
            if ad.dtype is bd.dtype and b._be is be:
                out = _bare_tensor()
                out._be = be
                out._version = NEVER_MODIFIED
                if be is _CPU_BACKEND:
                    out._data = cpu_ufunc(ad, bd)
                else:  # the operator bytecode, not cls.array_op: a call costs ~30 ns more
                    out._data = ad - bd if subtract else ad + bd
                ra = a._requires_grad
                rb = b._requires_grad
                if (ra or rb) and _state[0]:
                    ctx = cls()
                    ctx._be = be
                    ctx.inputs = None  # as apply2 leaves it once forward has run
                    # the edges exactly as apply2 makes them, repeated rather than shared:
                    # a helper call here would cost what this function exists to save
                    if ra:
                        fn = a.grad_fn
                        ea = (fn, a._out_nr) if fn is not None else (a._accum or a._leaf_edge())
                        ctx.needs_input_grad = _BOTH_NEEDED if rb else _FIRST_NEEDED
                    else:
                        ea = None
                        ctx.needs_input_grad = _SECOND_NEEDED
                    if rb:
                        fn = b.grad_fn
                        eb = (fn, b._out_nr) if fn is not None else (b._accum or b._leaf_edge())
                    else:
                        eb = None
                    if ad.shape != bd.shape:  # broadcast: backward sums back to these shapes
                        ctx.shapes = (ad.shape, bd.shape)
                    ctx.next_edges = (ea, eb)
                    ctx.seq = _next_seq()
                    out.grad_fn = ctx
                    out._requires_grad = True
                else:
                    out.grad_fn = None
                    out._requires_grad = False
                return out
        return general(a, b)

    operator_fast_path.__name__ = operator_fast_path.__qualname__ = f"{cls.__name__.lower()}_operator"
    return operator_fast_path


# needs_input_grad of a two-input node, shared rather than made per node
_BOTH_NEEDED = (True, True)
_FIRST_NEEDED = (True, False)
_SECOND_NEEDED = (False, True)


Function.apply1 = classmethod(apply1)
Function.apply2 = classmethod(apply2)

_ONE_NEEDED = (True,) + (False,) * 8  # one tensor, then constants

_NOTHING_NEEDED = [(False,) * n for n in range(257)]  # by argument count
_NO_TWO = (False, False)


def _edges(args, needs):
    """Where each input's gradient goes: its producer's node, or its AccumulateGrad if a leaf."""
    edges = []
    for k, a in enumerate(args):
        if needs[k]:
            fn = a.grad_fn
            edges.append((fn, a._out_nr) if fn is not None else (a._accum or a._leaf_edge()))
        else:
            edges.append(None)
    return edges


def _share_version(src, outs):
    """Views see the same memory, so an in-place change through any of them must be noticed
    by every saved copy: they share one version counter and remember their base tensor."""
    base = src._base if src._base is not None else src
    version = shared_version(src)
    for o in outs:
        o._version = version
        o._base = base


def _raise_device_mismatch(cls, args):
    devices = [str(a.device) for a in args if isinstance(a, _Tensor)]
    raise RuntimeError(
        f"{cls.__name__.lower()}: expected all tensors on the same device, but found tensors on "
        f"{' and '.join(sorted(set(devices)))}; move them with .to(device) first.")
