"""The backward walk: from the output's node to the leaves, in reverse creation order.

Every node gets a creation number `seq` when its op runs, and an op's inputs always exist
before it does. So visiting the reachable nodes in *decreasing* `seq` is a valid reverse
topological order: when a node runs, every node that could send it a gradient has already run.
This needs no recursion (a 10,000-op chain is fine) and is deterministic.

Gradients for a node's outputs collect in a buffer (summed when several consumers send one),
the node's backward turns them into gradients for its inputs, and those are passed along
`next_edges`. Leaves are `AccumulateGrad` nodes: there the gradient is added to `tensor.grad`
(or captured, for `autograd.grad`).
"""
from __future__ import annotations

import sys
from heapq import heappop, heappush

from . import function as _fn
from .grad_mode import _state


def _owned(grad, be):
    """A gradient stored in `.grad` must be a private, writable, contiguous array: users and
    optimizers modify `.grad` in place (clipping, zero_), and a gradient coming out of backward
    may be a broadcast view or shared by two inputs (add passes the same tensor to both)."""
    a = grad._data
    if a.flags.c_contiguous and (a.base is None or _sole_view(a)):
        return grad
    return _fn._wrap(a.copy(), be, None, 0)  # copy() is C-contiguous and keeps 0-d shapes


def _sole_view(a) -> bool:
    """True when `a` is a writable view and nothing but `a` refers to the memory behind it.

    Fused kernels allocate a gradient and return it reshaped (`dx.reshape(x.shape)`), which
    is a view; copying it into `.grad` cost a full extra pass over every large input gradient.
    Such a view is as private as a fresh array when no other object holds its base: CPython's
    reference count tells (here: the view's own link, our local name and the call's argument).
    Elsewhere (or for a chain of views) we stay on the safe side and copy."""
    base = a.base
    return (_REFCOUNTS and type(base) is type(a) and base.base is None
            and getattr(a.flags, "writeable", True)   # CuPy arrays have no such flag
            and _getrefcount(base) <= 3)


_REFCOUNTS = sys.implementation.name == "cpython"
# below this many elements NumPy's in-place add costs more than a new array (its overlap
# checks take ~2x the time of `a + b` on tiny arrays); above it, the saved allocation wins
_IN_PLACE_MIN_SIZE = 4096
_getrefcount = sys.getrefcount


def run_backward(roots, root_grads, retain_graph: bool, create_graph: bool,
                 capture=None, accumulate: bool = True):
    """Propagate `root_grads` from `roots` back through the graph.

    capture: optional dict {(node, output_nr): None}; filled with the gradient arriving at each
             key instead of (or, for leaves, as well as) accumulating. Used by `autograd.grad`.
    accumulate: add into the leaves' `.grad` (False for `autograd.grad`).

    The nodes waiting to run sit in a heap keyed by -seq, so the next one popped is always the
    most recently created: by then every node that can send it a gradient has run (they were
    all created after it). A node enters the heap when its first gradient arrives, so nodes
    that receive nothing are never visited. Leaves (AccumulateGrad) are finished at the end,
    in the order their first gradient arrived.
    """
    # The loops below pair two sequences by index rather than with zip() or enumerate(): on
    # CPython 3.11 making either object costs more than a short loop's whole body, and these
    # loops run for every node.
    buffers = {}   # node -> [gradient per output], summed as they arrive
    heap = []      # (-seq, node) of the op nodes holding gradients
    leaves = []    # AccumulateGrad nodes holding gradients
    k = 0
    for t in roots:
        g = root_grads[k]
        k += 1
        node = t.grad_fn if t.grad_fn is not None else t._accumulator()
        slots = buffers.get(node)
        if slots is None:
            slots = buffers[node] = [None] * node._n_out
            if node.is_leaf_node:
                leaves.append(node)
            else:
                heappush(heap, (-node.seq, node))
        i = t._out_nr
        slots[i] = g if slots[i] is None else slots[i] + g

    prev_mode = _state[0]
    _state[0] = create_graph  # record the backward ops only when a graph of the gradient is wanted
    try:
        while heap:
            node = heappop(heap)[1]
            grads = buffers.pop(node)
            if (capture is not None or create_graph or node._grad_hooks is not None
                    or node._freed or len(grads) > 1):
                in_grads = _call_backward(node, grads, create_graph, capture)
            else:  # the common case, without the hooks and checks _call_backward handles
                in_grads = type(node).backward(node, grads[0])
                if type(in_grads) is not tuple:
                    in_grads = (in_grads,)
            k = 0
            for edge in node.next_edges:  # in_grads[k] goes along edge k (extras are ignored)
                try:
                    g = in_grads[k]
                except IndexError:
                    raise _too_few_gradients(node, in_grads) from None
                k += 1
                if edge is None or g is None:
                    continue
                target, nr = edge
                slots = buffers.get(target)
                if slots is None:
                    if target.is_leaf_node:  # one output; finished after the walk
                        buffers[target] = [g]
                        leaves.append(target)
                        continue
                    n_out = target._n_out
                    if n_out == 1:
                        buffers[target] = [g]
                    else:
                        slots = buffers[target] = [None] * n_out
                        slots[nr] = g
                    heappush(heap, (-target.seq, target))
                    continue
                slots[nr] = g if slots[nr] is None else slots[nr] + g
            if not retain_graph:  # Function.release, inlined: this runs for every node
                n_out = len(grads)      # one buffer slot per output: node._n_out
                node.__dict__.clear()   # the saved tensors and arrays go here
                node._freed = True
                if n_out != 1:
                    node._n_out = n_out
        given_to_leaves = set()
        for node in leaves:
            _finish_leaf(node, buffers.pop(node)[0], capture, accumulate, create_graph,
                         given_to_leaves)
    finally:
        _state[0] = prev_mode


def _n_outputs(node) -> int:
    return node._n_out


def _run_pre_hooks(node, grads):
    hooks = node._grad_hooks
    if not hooks:
        return grads
    grads = list(grads)
    for i, fns in hooks.items():
        if grads[i] is None:
            continue
        for fn in fns:
            new = fn(grads[i])
            if new is not None:
                grads[i] = new
    return grads


def _call_backward(node, grads, create_graph, capture):
    if node._grad_hooks is not None:
        grads = _run_pre_hooks(node, grads)
    if capture is not None:
        for i, g in enumerate(grads):
            if (node, i) in capture:
                capture[(node, i)] = g
    node._raise_if_freed()
    if create_graph and not node.differentiable:
        raise RuntimeError(
            f"{node.name()} uses a fused backward that cannot itself be differentiated, so "
            "create_graph=True cannot give higher-order gradients through it. Use the composite "
            "form of this op (see its docstring) when you need double backward.")
    if len(grads) > 1 and any(g is None for g in grads):
        # a multi-output op whose outputs were not all used: give it zeros, not None
        be = node._be
        grads = [g if g is not None else _fn._wrap(be.xp.zeros(shape, dtype), be, None, 0)
                 for g, (shape, dtype) in zip(grads, node._out_meta)]
    out = type(node).backward(node, *grads)
    if type(out) is not tuple:
        out = (out,)
    return out


def _too_few_gradients(node, in_grads) -> RuntimeError:
    return RuntimeError(f"{node.name()} returned {len(in_grads)} gradients but its forward took "
                        f"{len(node.next_edges)} arguments (return None for non-differentiable "
                        "ones)")


def _finish_leaf(node, grad, capture, accumulate, create_graph, given_to_leaves):
    t = node._variable()
    if t is None:  # the leaf itself was dropped: nobody can read its gradient
        return
    if t._hooks:
        for fn in t._hooks:
            new = fn(grad)
            if new is not None:
                grad = new
    if capture is not None and (node, 0) in capture:
        capture[(node, 0)] = grad
    if not accumulate:
        return
    data = grad._data
    if data.shape != t._data.shape:
        raise RuntimeError(f"internal error: gradient of shape {data.shape} for a leaf of "
                           f"shape {t._data.shape}")
    old = t.grad
    if old is None:
        if not create_graph:
            if id(data) in given_to_leaves:
                grad = _fn._wrap(data.copy(), t._be, None, 0)
            grad = _owned(grad, t._be)
            given_to_leaves.add(id(grad._data))
            grad = grad.detach() if grad.grad_fn is not None else grad
        t.grad = grad
    elif create_graph:
        # recorded, so the accumulated gradient stays differentiable
        t.grad = old + grad
    elif _REFCOUNTS and _getrefcount(old) <= 3 and old.grad_fn is None:
        # Nothing but the leaf holds its .grad (here: t's link, our name, the argument), so
        # the sum can go into that Tensor, as PyTorch accumulates in place
        a = old._data
        if (a.size >= _IN_PLACE_MIN_SIZE and _getrefcount(a) <= 3 and a.base is None
                and a.dtype == data.dtype):
            # a large gradient whose array nobody else holds either: add in place instead of
            # allocating another gradient-sized array (gradient accumulation over
            # micro-batches then needs no extra memory)
            a += data
            _fn.bump_version(old)
        elif not old._requires_grad and (old._version is _fn.NEVER_MODIFIED
                                         or _getrefcount(old._version) <= 2):
            # smaller ones (NumPy's in-place add costs more than a new array there): the new
            # array goes into the same Tensor, which saves making a Tensor per leaf per
            # backward. Its version counter is its own (no view or detached alias shares it)
            # and its old array is left as it was, so no one can tell this from a new Tensor.
            old._data = a + data
        else:
            t.grad = _fn._wrap(a + data, t._be, None, 0)
    else:  # someone kept a reference to the old .grad: leave it as it was
        t.grad = _fn._wrap(old._data + data, t._be, None, 0)
