"""Adam / AdamW / SGD step kernels (per-tensor and multi-tensor) against float64 references
written from PyTorch's documented algorithms, and against torch.optim itself."""
from __future__ import annotations

import math

import numpy as np
import pytest

from minidl.backend.cuda.ladders_training import OPTIM_CHUNK
from minidl.backend.cuda.registry import versions

from kernel_test_helpers import assert_close

# Tensor shapes of one "model": a 0-d scalar, a bias, an empty tensor, a matrix, and one tensor
# longer than a chunk (so it spans several blocks of the multi-tensor kernel, the last one partial).
SHAPES = [(), (5,), (0,), (7, 13), (OPTIM_CHUNK + 37,)]
STEPS = 3

ADAM_CONFIGS = [  # (id, kwargs)
    ("adam", dict(weight_decay=0.0, decoupled=False, amsgrad=False, maximize=False)),
    ("adam-l2", dict(weight_decay=0.1, decoupled=False, amsgrad=False, maximize=False)),
    ("adamw", dict(weight_decay=0.1, decoupled=True, amsgrad=False, maximize=False)),
    ("adamw-amsgrad-maximize", dict(weight_decay=0.05, decoupled=True, amsgrad=True, maximize=True)),
]
SGD_CONFIGS = [
    ("plain", dict(momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0, maximize=False)),
    ("momentum-dampening-decay", dict(momentum=0.9, dampening=0.3, nesterov=False, weight_decay=0.01, maximize=False)),
    ("nesterov-maximize", dict(momentum=0.8, dampening=0.0, nesterov=True, weight_decay=0.02, maximize=True)),
]
HYPER = dict(lr=0.01, beta1=0.9, beta2=0.99, eps=1e-8)


def adam_ref(p, grads, *, lr, beta1, beta2, eps, weight_decay, decoupled, amsgrad, maximize):
    """One tensor, every step, float64 (torch.optim.Adam / AdamW documentation)."""
    p = p.astype(np.float64).copy()
    m, v, vmax = np.zeros_like(p), np.zeros_like(p), np.zeros_like(p)
    for t, g in enumerate(grads, start=1):
        g = -g if maximize else g.astype(np.float64)
        if decoupled:
            p = p * (1 - lr * weight_decay)
        else:
            g = g + weight_decay * p
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        vmax = np.maximum(vmax, v)
        m_hat = m / (1 - beta1**t)
        denom = np.sqrt(vmax if amsgrad else v) / math.sqrt(1 - beta2**t) + eps
        p = p - lr * m_hat / denom
    return p


def sgd_ref(p, grads, *, lr, momentum, dampening, nesterov, weight_decay, maximize):
    p = p.astype(np.float64).copy()
    buf = None
    for g in grads:
        g = -g if maximize else g.astype(np.float64)
        g = g + weight_decay * p
        if momentum:
            buf = g.copy() if buf is None else momentum * buf + (1 - dampening) * g
            g = g + momentum * buf if nesterov else buf
        p = p - lr * g
    return p


def _model(rng, dtype):
    params = [np.asarray(rng.standard_normal(s), dtype=dtype) for s in SHAPES]
    grads = [[np.asarray(rng.standard_normal(s), dtype=dtype) for s in SHAPES] for _ in range(STEPS)]
    return params, grads


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("config", [c for _, c in ADAM_CONFIGS], ids=[i for i, _ in ADAM_CONFIGS])
@pytest.mark.parametrize("version,block", [(v, b) for v in versions("adam_step") for b in (None, 64)])
def test_adam_versions(dev, rng, version, block, config, dtype):
    params, grads = _model(rng, dtype)
    state = [[dev.put(np.zeros(s, dtype)) for s in SHAPES] for _ in range(3)]
    ours = [dev.put(p.copy()) for p in params]
    for step in range(1, STEPS + 1):
        dev.ops.adam_step(ours, [dev.put(g) for g in grads[step - 1]], *state, step=step, **HYPER, **config,
                          version=version, block=block)
    for i, p in enumerate(params):
        expected = adam_ref(p, [g[i] for g in grads], **HYPER, **config)
        assert_close(dev.get(ours[i]), expected, dtype, scale=10)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("config", [c for _, c in SGD_CONFIGS], ids=[i for i, _ in SGD_CONFIGS])
@pytest.mark.parametrize("version,block", [(v, b) for v in versions("sgd_step") for b in (None, 64)])
def test_sgd_versions(dev, rng, version, block, config, dtype):
    params, grads = _model(rng, dtype)
    bufs = [dev.put(np.zeros(s, dtype)) for s in SHAPES]
    ours = [dev.put(p.copy()) for p in params]
    for step in range(STEPS):
        dev.ops.sgd_step(ours, [dev.put(g) for g in grads[step]], bufs, lr=0.1, first_step=step == 0, **config,
                         version=version, block=block)
    for i, p in enumerate(params):
        assert_close(dev.get(ours[i]), sgd_ref(p, [g[i] for g in grads], lr=0.1, **config), dtype, scale=10)


@pytest.mark.parametrize("name", ["Adam", "AdamW", "SGD"])
def test_matches_torch_optim(dev, rng, name):
    torch = pytest.importorskip("torch", reason="torch is the optional reference")
    params, grads = _model(rng, np.float64)
    t_params = [torch.tensor(p, requires_grad=True) for p in params]
    if name == "SGD":
        opt = torch.optim.SGD(t_params, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)
    else:
        opt = getattr(torch.optim, name)(t_params, lr=0.01, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.1, amsgrad=True)
    ours = [dev.put(p.copy()) for p in params]
    state = [[dev.put(np.zeros(s)) for s in SHAPES] for _ in range(3)]
    for step in range(1, STEPS + 1):
        for tp, g in zip(t_params, grads[step - 1]):
            tp.grad = torch.tensor(g)
        opt.step()
        g = [dev.put(a) for a in grads[step - 1]]
        if name == "SGD":
            dev.ops.sgd_step(ours, g, state[0], lr=0.1, momentum=0.9, dampening=0.0, nesterov=True, weight_decay=0.01,
                             maximize=False, first_step=step == 1)
        else:
            dev.ops.adam_step(ours, g, *state, step=step, lr=0.01, beta1=0.9, beta2=0.99, eps=1e-8, weight_decay=0.1,
                              decoupled=name == "AdamW", amsgrad=True, maximize=False)
    for o, tp in zip(ours, t_params):
        np.testing.assert_allclose(dev.get(o), tp.detach().numpy(), rtol=1e-12, atol=1e-14)


def test_mixed_dtypes_and_strided_params_are_updated_in_place(dev, rng):
    base = np.asarray(rng.standard_normal((6, 8)), np.float64)
    p64 = dev.put(base.copy())
    strided = p64[:, ::2]                               # a non-contiguous view: updated through a copy
    p32 = dev.put(np.asarray(rng.standard_normal(9), np.float32))
    before32 = dev.get(p32).copy()
    g_strided, g32 = dev.put(np.ones((6, 4))), dev.put(np.ones(9, np.float32))
    dev.ops.sgd_step([strided, p32], [g_strided, g32], None, lr=0.5, momentum=0.0, dampening=0.0, nesterov=False,
                     weight_decay=0.0, maximize=False, first_step=True)
    expected = base.copy()
    expected[:, ::2] -= 0.5
    np.testing.assert_array_equal(dev.get(p64), expected)      # the view wrote through to its base
    assert_close(dev.get(p32), before32 - 0.5, np.float32)


def test_chunk_table_layout(dev):
    sizes = [1, OPTIM_CHUNK, OPTIM_CHUNK + 1, 3]
    columns = [[dev.put(np.zeros(n, np.float32)) for n in sizes], [None] * 4]
    tensors, table_sizes, chunk_tensor, chunk_start = (dev.get(a) for a in dev.ops._tables("t", np.dtype(np.float32),
                                                                                          columns))
    assert chunk_tensor.tolist() == [0, 1, 2, 2, 3]
    assert chunk_start.tolist() == [0, 0, 0, OPTIM_CHUNK, 0]
    assert table_sizes.tolist() == sizes
    assert tensors.dtype == np.uint64 and tensors.size == 8 and (tensors[4:] == 0).all()


def test_bad_inputs_are_rejected_with_clear_errors(dev):
    p = [dev.put(np.zeros(3, np.float32))]
    g = [dev.put(np.zeros(3, np.float32))]
    kw = dict(step=1, lr=0.1, beta1=0.9, beta2=0.99, eps=1e-8, weight_decay=0.0, decoupled=True, maximize=False)
    with pytest.raises(ValueError, match="amsgrad=True needs max_exp_avg_sqs"):
        dev.ops.adam_step(p, g, p, p, None, amsgrad=True, **kw)
    with pytest.raises(ValueError, match="grads has 2 arrays but params has 1"):
        dev.ops.adam_step(p, g * 2, p, p, None, amsgrad=False, **kw)
    with pytest.raises(ValueError, match=r"step must be the step count after increment"):
        dev.ops.adam_step(p, g, p, p, None, amsgrad=False, **dict(kw, step=0))
    with pytest.raises(ValueError, match=r"exp_avgs\[0\] has shape \(4,\) but params\[0\] has \(3,\)"):
        dev.ops.adam_step(p, g, [dev.put(np.zeros(4, np.float32))], p, None, amsgrad=False, **kw)
    if dev.xp is np:
        return
    with pytest.raises(TypeError, match="must be a cupy.ndarray of this device"):
        dev.ops.sgd_step([np.zeros(3, np.float32)], [np.zeros(3, np.float32)], None, lr=0.1, momentum=0.0,
                         dampening=0.0, nesterov=False, weight_decay=0.0, maximize=False, first_step=True)
