"""The op table: one row per op — how to call it in minidl and in PyTorch, the input shapes,
and the input domain. Every suite in tests/ops reads this table, so a new op is one new row.

Row fields:
  name     readable id
  fn       callable(*tensors) -> Tensor, written once against the minidl/torch API (the same
           lambda runs on both when the method names agree; `torch_fn` overrides it)
  shapes   input shapes
  domain   how to draw inputs: 'real', 'positive', 'unit' (-0.9..0.9), 'nonzero'
  grad     False for ops without a gradient (comparisons, argmax)
  torch_fn the PyTorch spelling, when it differs
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

import numpy as np


@dataclass
class Row:
    name: str
    fn: Callable
    shapes: Sequence[tuple]
    domain: str = "real"
    grad: bool = True
    torch_fn: Optional[Callable] = None
    ints: dict = field(default_factory=dict)  # {argument position: exclusive upper bound} of index inputs
    gradcheck: bool = True
    atol32: float = 1e-5


def draw(shape, domain, rng, dtype):
    if domain == "positive":
        x = rng.uniform(0.5, 2.0, size=shape)
    elif domain == "unit":
        x = rng.uniform(-0.9, 0.9, size=shape)
    elif domain == "nonzero":
        x = rng.uniform(0.5, 2.0, size=shape) * rng.choice([-1, 1], size=shape)
    elif domain == "distinct":
        # well-separated values: max/min/sort-like ops have a unique winner, so finite
        # differences do not straddle a tie
        n = int(np.prod(shape)) if shape else 1
        x = rng.permutation(n).reshape(shape).astype(np.float64) * 0.1 - n * 0.05 + 0.013
    else:
        x = rng.standard_normal(size=shape)
    return np.asarray(x, dtype=dtype)


R = Row
ROWS = [
    # elementwise binary, with broadcasting
    R("add", lambda a, b: a + b, [(3, 4), (4,)]),
    R("add_scalar", lambda a: 2.5 + a, [(3, 4)]),
    R("sub", lambda a, b: a - b, [(2, 3, 4), (3, 1)]),
    R("rsub_scalar", lambda a: 1.0 - a, [(5,)]),
    R("mul", lambda a, b: a * b, [(3, 1, 5), (4, 5)]),
    R("div", lambda a, b: a / b, [(3, 4), (3, 4)], domain="nonzero"),
    R("rdiv_scalar", lambda a: 2.0 / a, [(3, 4)], domain="nonzero"),
    R("pow_scalar", lambda a: a ** 3, [(3, 4)]),
    R("pow_frac", lambda a: a ** 1.5, [(3, 4)], domain="positive"),
    R("pow_tensor", lambda a, b: a ** b, [(3, 4), (3, 4)], domain="positive"),
    # a Tensor and a Python number, each spelling (elementwise.py's *Scalar ops)
    R("add_int", lambda a: a + 3, [(3, 4)]),
    R("sub_scalar", lambda a: a - 0.75, [(3, 4)]),
    R("mul_scalar", lambda a: a * 1.5, [(3, 4)]),
    R("rmul_scalar", lambda a: -2.0 * a, [(3, 4)]),
    R("div_scalar", lambda a: a / 4.0, [(3, 4)]),
    R("pow_square", lambda a: a ** 2, [(3, 4)]),
    R("pow_sqrt", lambda a: a ** 0.5, [(3, 4)], domain="positive"),
    R("pow_zero", lambda a: a ** 0, [(3, 4)]),
    R("pow_negative", lambda a: a ** -2, [(3, 4)], domain="nonzero"),
    R("rpow", lambda a: 2.0 ** a, [(3, 4)]),
    R("neg", lambda a: -a, [(3, 4)]),
    R("maximum", lambda a, b: a.maximum(b), [(3, 4), (4,)]),
    R("minimum", lambda a, b: a.minimum(b), [(3, 4), (3, 4)]),
    # elementwise unary
    R("abs", lambda a: a.abs(), [(3, 4)], domain="nonzero"),
    R("exp", lambda a: a.exp(), [(3, 4)]),
    R("log", lambda a: a.log(), [(3, 4)], domain="positive"),
    R("log1p", lambda a: a.log1p(), [(3, 4)], domain="positive"),
    R("sqrt", lambda a: a.sqrt(), [(3, 4)], domain="positive"),
    R("rsqrt", lambda a: a.rsqrt(), [(3, 4)], domain="positive"),
    R("sin", lambda a: a.sin(), [(3, 4)]),
    R("cos", lambda a: a.cos(), [(3, 4)]),
    R("tanh", lambda a: a.tanh(), [(3, 4)]),
    R("sigmoid", lambda a: a.sigmoid(), [(3, 4)]),
    R("relu", lambda a: a.relu(), [(3, 4)], domain="nonzero"),
    R("clamp", lambda a: a.clamp(-0.5, 0.5), [(4, 5)], domain="distinct"),
    R("clamp_min", lambda a: a.clamp(min=0.1), [(4, 5)], domain="distinct"),
    R("where", lambda a, b: (a > 0).where(a, b) if False else _where(a, b), [(3, 4), (3, 4)],
      torch_fn=lambda a, b: __import__("torch").where(a > 0, a, b)),
    # reductions
    R("sum_all", lambda a: a.sum(), [(3, 4)]),
    R("sum_dim", lambda a: a.sum(1), [(3, 4, 5)]),
    R("sum_dims_keep", lambda a: a.sum((0, 2), keepdim=True), [(3, 4, 5)]),
    R("mean_dim", lambda a: a.mean(-1), [(3, 4)]),
    R("mean_all", lambda a: a.mean(), [(2, 3, 4)]),
    R("prod_dim", lambda a: a.prod(1), [(3, 4)], domain="nonzero"),
    R("prod_all", lambda a: a.prod(), [(2, 3)], domain="nonzero"),
    R("max_all", lambda a: a.max(), [(3, 4)], domain="distinct"),
    R("max_dim", lambda a: a.max(1)[0], [(3, 4)], domain="distinct",
      torch_fn=lambda a: a.max(1).values),
    R("min_dim_keep", lambda a: a.min(0, keepdim=True)[0], [(3, 4)], domain="distinct",
      torch_fn=lambda a: a.min(0, keepdim=True).values),
    R("amax", lambda a: a.amax((0, 1)), [(2, 3, 4)], domain="distinct"),
    R("amin", lambda a: a.amin(-1), [(2, 3, 4)], domain="distinct"),
    R("var", lambda a: a.var(1), [(3, 5)]),
    R("var_corr0", lambda a: a.var(0, correction=0), [(4, 3)]),
    R("std", lambda a: a.std(), [(3, 5)]),
    R("logsumexp", lambda a: a.logsumexp(1), [(3, 5)]),
    R("cumsum", lambda a: a.cumsum(1), [(3, 5)]),
    R("norm", lambda a: a.norm(), [(3, 5)]),
    R("norm_dim", lambda a: a.norm(dim=1), [(3, 5)]),
    R("norm_p1", lambda a: a.norm(p=1, dim=0), [(3, 5)], domain="nonzero"),
    # linear algebra
    R("matmul_2d", lambda a, b: a @ b, [(3, 4), (4, 5)]),
    R("matmul_1d_1d", lambda a, b: a @ b, [(4,), (4,)]),
    R("matmul_1d_2d", lambda a, b: a @ b, [(4,), (4, 5)]),
    R("matmul_2d_1d", lambda a, b: a @ b, [(3, 4), (4,)]),
    R("matmul_batched", lambda a, b: a @ b, [(2, 3, 4), (2, 4, 5)]),
    R("matmul_broadcast", lambda a, b: a @ b, [(2, 1, 3, 4), (3, 4, 5)]),
    R("matmul_3d_2d", lambda a, b: a @ b, [(2, 3, 4), (4, 5)]),
    R("matmul_2d_3d", lambda a, b: a @ b, [(3, 4), (2, 4, 5)]),
    # shape
    R("reshape", lambda a: a.reshape(4, -1), [(2, 3, 4)]),
    R("view", lambda a: a.view(6, 4), [(2, 3, 4)]),
    R("flatten", lambda a: a.flatten(1), [(2, 3, 4)]),
    R("unflatten", lambda a: a.unflatten(1, (3, 4)), [(2, 12)]),
    R("squeeze", lambda a: a.squeeze(1), [(2, 1, 4)]),
    R("unsqueeze", lambda a: a.unsqueeze(-1), [(2, 4)]),
    R("permute", lambda a: a.permute(2, 0, 1), [(2, 3, 4)]),
    R("transpose", lambda a: a.transpose(0, 2), [(2, 3, 4)]),
    R("T", lambda a: a.T, [(3, 4)]),
    R("expand", lambda a: a.expand(3, 4, 5), [(4, 1)]),
    R("repeat", lambda a: a.repeat(2, 3), [(2, 3)]),
    R("tile", lambda a: a.tile((2, 1, 2)), [(2, 3)], torch_fn=lambda a: a.tile((2, 1, 2))),
    R("cat", lambda a, b: _lib(a).cat([a, b], 1), [(2, 3), (2, 4)]),
    R("stack", lambda a, b: _lib(a).stack([a, b], 1), [(2, 3), (2, 3)]),
    R("split", lambda a: _lib(a).split(a, 2, 1)[1], [(3, 5)]),
    R("chunk_all", lambda a: _lib(a).cat([c * (i + 1) for i, c in enumerate(a.chunk(3, 0))], 0),
      [(7, 2)]),
    # unbind and iteration: one node with a view per slice; unused slices get zero gradients
    R("unbind_some", lambda a: (lambda s: s[0] * 2 + s[2].exp())(a.unbind(1)), [(3, 4)]),
    R("unbind_last_dim", lambda a: _lib(a).stack(a.unbind(-1)[::-1], 0), [(2, 3, 2)]),
    R("iterate_rows", lambda a: _lib(a).stack([r * (i + 1) for i, r in enumerate(a)], 1),
      [(3, 2, 2)]),
    R("pad", lambda a: _F(a).pad(a, (1, 2, 0, 1)), [(2, 3)]),
    R("pad_reflect", lambda a: _F(a).pad(a, (2, 1), mode="reflect"), [(2, 2, 5)]),
    R("tril", lambda a: a.tril(), [(4, 4)]),
    R("triu_k", lambda a: a.triu(1), [(3, 5)]),
    R("roll", lambda a: a.roll(1, 1), [(3, 4)]),
    R("flip", lambda a: a.flip(0), [(3, 4)]),
    R("narrow", lambda a: a.narrow(1, 1, 2), [(3, 4)]),
    # indexing
    R("getitem_slice", lambda a: a[1:, ::2], [(3, 5)]),
    R("getitem_int_none_ellipsis", lambda a: a[0, None, ..., 1], [(3, 4, 5)]),
    R("getitem_mask", lambda a: a[a > 0], [(3, 4)], domain="nonzero"),
    R("getitem_intarray_repeat", lambda a: a[[0, 2, 0, 0]], [(3, 4)]),
    R("getitem_two_arrays", lambda a: a[[0, 1, 1], [2, 0, 2]], [(3, 4)]),
    R("gather", lambda a, i: a.gather(1, i), [(3, 4), (3, 2)], ints={1: 4}),
    R("index_select", lambda a, i: a.index_select(0, i.reshape(-1)), [(5, 3), (4,)], ints={1: 5}),
    R("masked_fill", lambda a: a.masked_fill(a > 0, 0.5), [(3, 4)], domain="nonzero"),
    R("scatter_add", lambda a, s, i: a.scatter_add(1, i, s), [(3, 4), (3, 5), (3, 5)], ints={2: 4}),
]


def _lib(t):
    """The library a tensor belongs to (minidl or torch), for functions like cat."""
    import minidl
    if isinstance(t, minidl.Tensor):
        return minidl
    import torch
    return torch


def _F(t):
    import minidl
    if isinstance(t, minidl.Tensor):
        import minidl.ops as ops
        return ops
    import torch.nn.functional as F
    return F


def _where(a, b):
    return _lib(a).where(a > 0, a, b)
