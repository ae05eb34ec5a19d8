"""Twin parameters in minidl and PyTorch, and identical gradient sequences for both."""
import numpy as np
import pytest

import minidl

torch = pytest.importorskip("torch")

SHAPES = [(5, 4), (4,), (3, 2, 2), ()]          # a matrix, a bias, a 3-d tensor, a scalar


def make_arrays(seed, dtype, shapes=SHAPES):
    rng = np.random.default_rng(seed)
    return [np.asarray(rng.standard_normal(s)).astype(dtype) for s in shapes]


def twin_params(seed, dtype, shapes=SHAPES):
    """The same starting values as minidl leaves and as torch leaves."""
    arrays = make_arrays(seed, dtype, shapes)
    ours = [minidl.tensor(a.copy(), requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a.copy(), requires_grad=True) for a in arrays]
    return ours, theirs


def gradients(step, params_shapes, dtype, missing=False):
    """The gradients of one step (None where a parameter gets no gradient this step)."""
    rng = np.random.default_rng(1000 + step)
    grads = []
    for i, shape in enumerate(params_shapes):
        g = (np.asarray(rng.standard_normal(shape)) * (0.5 + i)).astype(dtype)
        grads.append(None if missing and (step + i) % 3 == 0 else g)
    return grads


def set_grads(ours, theirs, grads):
    for p, q, g in zip(ours, theirs, grads):
        p.grad = None if g is None else minidl.tensor(g.copy())
        q.grad = None if g is None else torch.tensor(g.copy())


def group_spec(params, groups):
    """Split params into consecutive groups: groups is a list of option dicts (or None: one
    plain list of params)."""
    if groups is None:
        return list(params)
    bounds = np.array_split(np.arange(len(params)), len(groups))
    return [dict(opts, params=[params[i] for i in idx]) for opts, idx in zip(groups, bounds)]


def tolerance(dtype):
    return dict(rtol=2e-5, atol=2e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-13)
