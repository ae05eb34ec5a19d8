"""Matrix products: matmul (`@`) with PyTorch's 1-D, 2-D and batched broadcasting rules,
plus mm, bmm, mv, dot, outer and einsum.

For C = A B the gradients are dA = dC B^T and dB = A^T dC. With batch broadcasting, a batch dim
that was broadcast gets its gradient summed back. 1-D operands are treated as a row (left) or
a column (right) vector and that extra dim is removed again.

Speed traps (PERFORMANCE.md): BLAS wants contiguous operands, and a stacked (B, T, C) @ (C, O)
is much faster as ONE (B*T, C) @ (C, O) GEMM than as B small ones, so we fold leading dims.
"""
from __future__ import annotations

from ..autograd.function import Function
from ._util import Tensor, sum_to_shape


def _fold_matmul(be, a, b):
    """a @ b, folding a's leading dims into one GEMM when b is a plain matrix. `be.matmul` is
    the device's product (on the CPU, split over minidl's threads)."""
    if a.ndim > 2 and b.ndim == 2:
        lead = a.shape[:-1]
        a2 = a.reshape(-1, a.shape[-1])  # a view when a is contiguous
        return be.matmul(a2, b).reshape(lead + (b.shape[1],))
    if a.ndim > 2 and not a.flags.c_contiguous:
        a = be.xp.ascontiguousarray(a)
    if b.ndim > 2 and not b.flags.c_contiguous:
        b = be.xp.ascontiguousarray(b)
    return be.matmul(a, b)


class MatMul(Function):
    @staticmethod
    def forward(ctx, a, b):
        na, nb = ctx.needs_input_grad
        ctx.save_for_backward(ctx.inputs[0] if nb else None, ctx.inputs[1] if na else None)
        ctx.shapes = (a.shape, b.shape)
        return _fold_matmul(ctx._be, a, b)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        sa, sb = ctx.shapes
        na, nb = ctx.needs_input_grad
        # view 1-D operands as matrices so one formula covers every case
        a_mat_shape = (1,) + sa if len(sa) == 1 else sa
        b_mat_shape = sb + (1,) if len(sb) == 1 else sb
        g = grad
        if len(sa) == 1 and len(sb) == 1:
            g = g.reshape(1, 1)
        elif len(sa) == 1:
            g = g.unsqueeze(-2)
        elif len(sb) == 1:
            g = g.unsqueeze(-1)
        ga = gb = None
        if na:
            bm = b.reshape(b_mat_shape)
            ga = matmul(g, bm.mT)
            ga = sum_to_shape(ga, a_mat_shape).reshape(sa)
        if nb:
            am = a.reshape(a_mat_shape)
            if len(b_mat_shape) == 2 and len(a_mat_shape) > 2:
                # dB = sum over the batch of A_i^T dC_i: one GEMM on the folded leading dims
                k = a_mat_shape[-1]
                gb = matmul(am.reshape(-1, k).mT, g.reshape(-1, g.shape[-1]))
            else:
                gb = sum_to_shape(matmul(am.mT, g), b_mat_shape)
            gb = gb.reshape(sb)
        return ga, gb


def matmul(a, b):
    if not isinstance(a, Tensor) or not isinstance(b, Tensor):
        raise TypeError(f"matmul expects two Tensors, got {type(a).__name__} and {type(b).__name__}")
    if a.ndim == 0 or b.ndim == 0:
        raise RuntimeError(f"matmul: both arguments need at least 1 dimension, got shapes "
                           f"{tuple(a.shape)} and {tuple(b.shape)}")
    k_a = a.shape[-1]
    k_b = b.shape[0] if b.ndim == 1 else b.shape[-2]
    if k_a != k_b:
        raise RuntimeError(
            f"matmul: shapes {tuple(a.shape)} and {tuple(b.shape)} cannot be multiplied "
            f"({k_a} columns in the first vs {k_b} rows in the second)")
    if a._data.dtype != b._data.dtype:
        from ._util import binary_operands
        a, b = binary_operands(a, b)
    if a.ndim > 2 and b.ndim > 2:
        from .shape import broadcast_shapes
        broadcast_shapes(tuple(a.shape[:-2]), tuple(b.shape[:-2]))  # clear error if impossible
    return MatMul.apply(a, b)


def mm(a, b):
    if a.ndim != 2 or b.ndim != 2:
        raise RuntimeError(f"mm expects 2-D tensors, got shapes {tuple(a.shape)} and {tuple(b.shape)}")
    return matmul(a, b)


def bmm(a, b):
    if a.ndim != 3 or b.ndim != 3 or a.shape[0] != b.shape[0]:
        raise RuntimeError(f"bmm expects 3-D tensors with equal batch size, got shapes "
                           f"{tuple(a.shape)} and {tuple(b.shape)}")
    return matmul(a, b)


def mv(a, v):
    if a.ndim != 2 or v.ndim != 1:
        raise RuntimeError(f"mv expects a matrix and a vector, got shapes {tuple(a.shape)} and "
                           f"{tuple(v.shape)}")
    return matmul(a, v)


def dot(a, b):
    if a.ndim != 1 or b.ndim != 1:
        raise RuntimeError(f"dot expects 1-D tensors, got shapes {tuple(a.shape)} and {tuple(b.shape)}")
    return matmul(a, b)


def outer(a, b):
    return a.reshape(-1, 1) * b.reshape(1, -1)


def einsum(equation: str, *operands):
    """einsum built from permute/reshape/matmul pairs is involved; this version evaluates
    pairwise with broadcasting multiply and sum, which is exact and differentiable."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    lhs, _, rhs = equation.replace(" ", "").partition("->")
    terms = lhs.split(",")
    if len(terms) != len(operands):
        raise RuntimeError(f"einsum: equation has {len(terms)} operands but {len(operands)} were given")
    if "..." in equation:
        raise NotImplementedError("einsum: '...' is not supported; spell the dimensions out")
    if not _:
        counts = {}
        for ch in lhs.replace(",", ""):
            counts[ch] = counts.get(ch, 0) + 1
        rhs = "".join(sorted(c for c, n in counts.items() if n == 1))
    letters = []
    for term in terms:
        for ch in term:
            if ch not in letters:
                letters.append(ch)
    sizes = {}
    aligned = []
    for term, op in zip(terms, operands):
        if len(term) != op.ndim:
            raise RuntimeError(f"einsum: operand '{term}' has {op.ndim} dims")
        for ch, n in zip(term, op.shape):
            if sizes.setdefault(ch, n) != n and n != 1:
                raise RuntimeError(f"einsum: dimension '{ch}' has sizes {sizes[ch]} and {n}")
        # move this operand's dims into the global letter order, inserting size-1 dims
        order = sorted(range(len(term)), key=lambda i: letters.index(term[i]))
        x = op.permute(*order) if order != list(range(len(term))) else op
        present = [term[i] for i in order]
        shape = [sizes[ch] if ch in present else 1 for ch in letters]
        shape = [x.shape[present.index(ch)] if ch in present else 1 for ch in letters]
        aligned.append(x.reshape(*shape))
    prod = aligned[0]
    for x in aligned[1:]:
        prod = prod * x
    summed = tuple(i for i, ch in enumerate(letters) if ch not in rhs)
    out = prod.sum(summed) if summed else prod
    kept = [ch for ch in letters if ch in rhs]
    perm = [kept.index(ch) for ch in rhs]
    return out.permute(*perm) if perm != list(range(len(perm))) else out
