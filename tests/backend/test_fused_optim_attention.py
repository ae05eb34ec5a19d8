"""Fused optimizer steps and attention: reference and fast CPU versions.

Optimizers are checked against PyTorch's documented update rules written out here in
float64, and against torch.optim itself when installed (N steps on the same parameters and
gradients). Attention is checked against a plain per-head softmax in float64, against
finite differences of that plain version for the gradients, and against PyTorch's
scaled_dot_product_attention.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from minidl.backend.cpu_kernels import attention as fast_attention
from minidl.backend.cpu_kernels import optim as fast_optim
from minidl.backend.reference import attention as ref_attention
from minidl.backend.reference import optim as ref_optim

OPTIM = [pytest.param(ref_optim, id="reference"), pytest.param(fast_optim, id="cpu")]
ATTN = [pytest.param(ref_attention, id="reference"), pytest.param(fast_attention, id="cpu")]
SHAPES = [(4, 3), (5,), (2, 3, 2)]
STEPS = 4

# ---------------------------------------------------------------------------------------
# optimizers: the documented algorithms, one float64 tensor at a time


def plain_adam(p, grads, lr, b1, b2, eps, wd, decoupled, amsgrad, maximize):
    m, v, vmax = np.zeros_like(p), np.zeros_like(p), np.zeros_like(p)
    for t, g in enumerate(grads, start=1):
        g = -g if maximize else g
        if decoupled:
            p = p * (1 - lr * wd)
        else:
            g = g + wd * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat = m / (1 - b1 ** t)
        vmax = np.maximum(vmax, v)
        v_hat = (vmax if amsgrad else v) / (1 - b2 ** t)
        p = p - lr * m_hat / (np.sqrt(v_hat) + eps)
    return p


def plain_sgd(p, grads, lr, mom, damp, nesterov, wd, maximize):
    b = None
    for g in grads:
        g = (-g if maximize else g) + wd * p
        if mom:
            b = g if b is None else mom * b + (1 - damp) * g
            g = g + mom * b if nesterov else b
        p = p - lr * g
    return p


def plain_rmsprop(p, grads, lr, alpha, eps, wd, mom, centered, maximize):
    s, a, b = np.zeros_like(p), np.zeros_like(p), np.zeros_like(p)
    for g in grads:
        g = (-g if maximize else g) + wd * p
        s = alpha * s + (1 - alpha) * g * g
        a = alpha * a + (1 - alpha) * g
        denom = np.sqrt(s - a * a if centered else s) + eps
        if mom > 0:
            b = mom * b + g / denom
            p = p - lr * b
        else:
            p = p - lr * g / denom
    return p


def plain_adagrad(p, grads, lr, lr_decay, wd, eps, maximize):
    s = np.zeros_like(p)
    for t, g in enumerate(grads, start=1):
        g = (-g if maximize else g) + wd * p
        s = s + g * g
        p = p - lr / (1 + (t - 1) * lr_decay) * g / (np.sqrt(s) + eps)
    return p


def _problem(dtype, seed=0):
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    grads = [[rng.standard_normal(s).astype(dtype) for s in SHAPES] for _ in range(STEPS)]
    return params, grads


def _zeros(params):
    return [np.zeros_like(p) for p in params]


def run_adam(mod, params, grads, **kw):
    m, v, vmax = _zeros(params), _zeros(params), _zeros(params)
    for t in range(STEPS):
        mod.adam_step(params, grads[t], m, v, vmax, step=t + 1, **kw)


def run_sgd(mod, params, grads, **kw):
    bufs = _zeros(params)
    for t in range(STEPS):
        mod.sgd_step(params, grads[t], bufs, first_step=t == 0, **kw)


def run_rmsprop(mod, params, grads, **kw):
    s, a, b = _zeros(params), _zeros(params), _zeros(params)
    for t in range(STEPS):
        mod.rmsprop_step(params, grads[t], s, a, b, **kw)


def run_adagrad(mod, params, grads, **kw):
    s = _zeros(params)
    for t in range(STEPS):
        mod.adagrad_step(params, grads[t], s, step=t + 1, **kw)


ADAM = dict(lr=0.05, beta1=0.9, beta2=0.99, eps=1e-8)
OPTIM_CASES = [  # (runner, plain, kwargs, plain-args builder, torch class, torch kwargs)
    ("adam", dict(ADAM, weight_decay=0.1, decoupled=False, amsgrad=False, maximize=False),
     "Adam", dict(lr=0.05, betas=(0.9, 0.99), weight_decay=0.1)),
    ("adamw", dict(ADAM, weight_decay=0.1, decoupled=True, amsgrad=True, maximize=True),
     "AdamW", dict(lr=0.05, betas=(0.9, 0.99), weight_decay=0.1, amsgrad=True, maximize=True)),
    ("sgd", dict(lr=0.1, momentum=0.9, dampening=0.0, nesterov=True, weight_decay=0.01,
                 maximize=False),
     "SGD", dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)),
    ("sgd", dict(lr=0.1, momentum=0.8, dampening=0.3, nesterov=False, weight_decay=0.0,
                 maximize=True),
     "SGD", dict(lr=0.1, momentum=0.8, dampening=0.3, maximize=True)),
    ("sgd", dict(lr=0.1, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0,
                 maximize=False),
     "SGD", dict(lr=0.1)),
    ("rmsprop", dict(lr=0.01, alpha=0.9, eps=1e-8, weight_decay=0.01, momentum=0.5,
                     centered=True, maximize=False),
     "RMSprop", dict(lr=0.01, alpha=0.9, weight_decay=0.01, momentum=0.5, centered=True)),
    ("rmsprop", dict(lr=0.01, alpha=0.99, eps=1e-6, weight_decay=0.0, momentum=0.0,
                     centered=False, maximize=True),
     "RMSprop", dict(lr=0.01, eps=1e-6, maximize=True)),
    ("adagrad", dict(lr=0.1, lr_decay=0.01, weight_decay=0.01, eps=1e-10, maximize=False),
     "Adagrad", dict(lr=0.1, lr_decay=0.01, weight_decay=0.01)),
]
RUNNERS = {"adam": run_adam, "adamw": run_adam, "sgd": run_sgd, "rmsprop": run_rmsprop,
           "adagrad": run_adagrad}


def plain(name, p, grads, kw):
    if name in ("adam", "adamw"):
        return plain_adam(p, grads, kw["lr"], kw["beta1"], kw["beta2"], kw["eps"],
                          kw["weight_decay"], kw["decoupled"], kw["amsgrad"], kw["maximize"])
    if name == "sgd":
        return plain_sgd(p, grads, kw["lr"], kw["momentum"], kw["dampening"], kw["nesterov"],
                         kw["weight_decay"], kw["maximize"])
    if name == "rmsprop":
        return plain_rmsprop(p, grads, kw["lr"], kw["alpha"], kw["eps"], kw["weight_decay"],
                             kw["momentum"], kw["centered"], kw["maximize"])
    return plain_adagrad(p, grads, kw["lr"], kw["lr_decay"], kw["weight_decay"], kw["eps"],
                         kw["maximize"])


@pytest.mark.parametrize("mod", OPTIM)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", OPTIM_CASES, ids=lambda c: c[0] if isinstance(c, str) else "")
def test_optimizer_steps_match_documented_rules(mod, dtype, case):
    name, kw, _, _ = case
    params, grads = _problem(dtype)
    start = [p.astype(np.float64) for p in params]
    RUNNERS[name](mod, params, grads, **kw)
    for i, p in enumerate(params):
        want = plain(name, start[i], [g[i].astype(np.float64) for g in grads], kw)
        assert p.dtype == dtype
        tol = 2e-5 if dtype == np.float32 else 1e-12
        np.testing.assert_allclose(p, want, rtol=tol, atol=tol)


@pytest.mark.parametrize("case", OPTIM_CASES, ids=lambda c: c[0] if isinstance(c, str) else "")
def test_optimizer_steps_match_torch(case):
    torch = pytest.importorskip("torch", reason="PyTorch is the cross-check, not a dependency")
    name, kw, torch_name, torch_kw = case
    params, grads = _problem(np.float32, seed=5)
    tparams = [torch.tensor(p.copy(), requires_grad=True) for p in params]
    opt = getattr(torch.optim, torch_name)(tparams, **torch_kw)
    for t in range(STEPS):
        for tp, g in zip(tparams, grads[t]):
            tp.grad = torch.tensor(g)
        opt.step()
    for mod in (ref_optim, fast_optim):
        mine = [p.copy() for p in params]
        RUNNERS[name](mod, mine, grads, **kw)
        for p, tp in zip(mine, tparams):
            np.testing.assert_allclose(p, tp.detach().numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("mod", OPTIM)
def test_optimizer_updates_non_contiguous_views_in_place(mod):
    base = np.random.default_rng(0).standard_normal((6, 8))
    view = base[:, ::2]                      # a strided window of a bigger buffer
    grad = np.ones_like(view)
    before = base.copy()
    mod.sgd_step([view], [grad], None, lr=0.5, momentum=0.0, dampening=0.0, nesterov=False,
                 weight_decay=0.0, maximize=False, first_step=True)
    np.testing.assert_allclose(base[:, ::2], before[:, ::2] - 0.5)
    np.testing.assert_array_equal(base[:, 1::2], before[:, 1::2])
    m, v = np.zeros_like(view), np.zeros_like(view)
    mod.adam_step([view], [grad], [m], [v], None, step=1, **ADAM, weight_decay=0.0,
                  decoupled=False, amsgrad=False, maximize=False)
    np.testing.assert_allclose(base[:, ::2], before[:, ::2] - 0.5 - 0.05, rtol=1e-6)


@pytest.mark.parametrize("mod", OPTIM)
def test_optimizer_bad_arguments_are_named(mod):
    p = [np.zeros(3, np.float32)]
    with pytest.raises(ValueError, match="grads has 2 arrays but params has 1"):
        mod.adagrad_step(p, [p[0], p[0]], [np.zeros(3, np.float32)], step=1, lr=0.1,
                         lr_decay=0.0, weight_decay=0.0, eps=1e-10, maximize=False)
    with pytest.raises(ValueError, match="step must be"):
        mod.adam_step(p, p, _zeros(p), _zeros(p), None, step=0, **ADAM, weight_decay=0.0,
                      decoupled=False, amsgrad=False, maximize=False)
    with pytest.raises(ValueError, match=r"exp_avgs\[0\] has shape \(4,\)"):
        mod.adam_step(p, p, [np.zeros(4, np.float32)], _zeros(p), None, step=1, **ADAM,
                      weight_decay=0.0, decoupled=False, amsgrad=False, maximize=False)
    with pytest.raises(TypeError, match="dtype float64"):
        mod.sgd_step(p, [np.zeros(3)], None, lr=0.1, momentum=0.0, dampening=0.0,
                     nesterov=False, weight_decay=0.0, maximize=False, first_step=True)
    with pytest.raises(ValueError, match="nesterov"):
        mod.sgd_step(p, p, _zeros(p), lr=0.1, momentum=0.0, dampening=0.0, nesterov=True,
                     weight_decay=0.0, maximize=False, first_step=True)


# ---------------------------------------------------------------------------------------
# attention: a plain softmax per (batch, head)

def plain_sdpa(q, k, v, bias, causal, scale):
    lead, (Tq, D), Tk = q.shape[:-2], q.shape[-2:], k.shape[-2]
    scale = 1 / math.sqrt(D) if scale is None else scale
    full_bias = np.broadcast_to(0.0 if bias is None else bias, lead + (Tq, Tk))
    out = np.zeros(lead + (Tq, v.shape[-1]))
    lse = np.full(lead + (Tq,), -np.inf)
    for idx in np.ndindex(*lead):
        for i in range(Tq):
            scores = np.array([scale * np.dot(q[idx][i], k[idx][j]) + full_bias[idx][i, j]
                               if not (causal and j > i) else -np.inf for j in range(Tk)])
            if np.all(scores == -np.inf):
                continue                               # fully masked: out 0, lse -inf
            m = scores.max()
            w = np.exp(scores - m)
            out[idx][i] = w @ v[idx] / w.sum()
            lse[idx][i] = m + np.log(w.sum())
    return out, lse


ATTN_CASES = [  # q shape, Tk, Dv, causal, bias shape
    ((2, 3, 5, 4), 7, 6, False, None),
    ((2, 3, 6, 4), 6, 3, True, None),
    ((2, 2, 4, 3), 6, 5, True, (4, 6)),                 # causal with Tq < Tk, bias too
    ((2, 3, 5, 4), 5, 4, False, (2, 1, 1, 5)),          # padding-mask style bias
    ((3, 7, 2), 7, 2, False, (3, 7, 7)),                # one leading dim
]


def _attn_data(case, dtype, seed=0):
    shape_q, Tk, Dv, causal, bias_shape = case
    rng = np.random.default_rng(seed)
    lead, D = shape_q[:-2], shape_q[-1]
    q = rng.standard_normal(shape_q).astype(dtype)
    k = rng.standard_normal(lead + (Tk, D)).astype(dtype)
    v = rng.standard_normal(lead + (Tk, Dv)).astype(dtype)
    bias = None if bias_shape is None else rng.standard_normal(bias_shape).astype(dtype)
    dout = rng.standard_normal(shape_q[:-1] + (Dv,)).astype(dtype)
    return q, k, v, bias, causal, dout


@pytest.mark.parametrize("mod", ATTN)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", ATTN_CASES)
def test_sdpa_forward_matches_plain_softmax(mod, dtype, case):
    q, k, v, bias, causal, _ = _attn_data(case, dtype)
    out, lse = mod.sdpa_forward(q, k, v, bias, causal, None)
    want_out, want_lse = plain_sdpa(*(a if a is None else a.astype(np.float64)
                                      for a in (q, k, v, bias)), causal, None)
    assert out.dtype == dtype and lse.dtype == dtype
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out, want_out, rtol=tol, atol=tol)
    np.testing.assert_allclose(lse, want_lse, rtol=tol, atol=tol)


def _finite_difference(f, a, eps=1e-6):
    grad = np.zeros_like(a)
    for i in np.ndindex(*a.shape):
        keep = a[i]
        a[i] = keep + eps
        up = f()
        a[i] = keep - eps
        down = f()
        a[i] = keep
        grad[i] = (up - down) / (2 * eps)
    return grad


@pytest.mark.parametrize("mod", ATTN)
@pytest.mark.parametrize("case", [ATTN_CASES[0], ATTN_CASES[2], ATTN_CASES[3]])
def test_sdpa_backward_matches_finite_differences(mod, case):
    q, k, v, bias, causal, dout = _attn_data(case, np.float64, seed=1)
    q, k, v = q[:1], k[:1], v[:1]                     # keep the loops small
    dout = dout[:1]
    if bias is not None and bias.ndim == 4:
        bias = bias[:1]
    scale = 0.7
    out, lse = mod.sdpa_forward(q, k, v, bias, causal, scale)
    grads = mod.sdpa_backward(q, k, v, out, lse, dout, bias, causal, scale, bias is not None)
    loss = lambda: float(np.sum(plain_sdpa(q, k, v, bias, causal, scale)[0] * dout))
    for got, wrt in zip(grads, (q, k, v, bias)):
        if wrt is None:
            assert got is None
            continue
        assert got.shape == wrt.shape
        np.testing.assert_allclose(got, _finite_difference(loss, wrt), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("mod", ATTN)
def test_sdpa_fully_masked_rows_give_zeros_not_nan(mod):
    q, k, v, bias, _, dout = _attn_data(((1, 2, 4, 3), 5, 3, False, (1, 2, 4, 5)), np.float32)
    bias[..., 1, :] = -np.inf                         # query 1 sees no key
    bias[0, 0, 2, :3] = -np.inf                       # query 2 (head 0) sees keys 3, 4 only
    out, lse = mod.sdpa_forward(q, k, v, bias, False, None)
    assert not np.isnan(out).any() and not np.isnan(lse).any()
    np.testing.assert_array_equal(out[..., 1, :], 0)
    assert np.all(lse[..., 1] == -np.inf)
    want_out, _ = plain_sdpa(*(a.astype(np.float64) for a in (q, k, v, bias)), False, None)
    np.testing.assert_allclose(out, want_out, rtol=1e-5, atol=1e-5)
    dq, dk, dv, dbias = mod.sdpa_backward(q, k, v, out, lse, dout, bias, False, None, True)
    for g in (dq, dk, dv, dbias):
        assert not np.isnan(g).any()
    np.testing.assert_array_equal(dq[..., 1, :], 0)
    np.testing.assert_array_equal(dbias[..., 1, :], 0)
    np.testing.assert_array_equal(dbias[0, 0, 2, :3], 0)


@pytest.mark.parametrize("backward_tile_rows", [128, 2])   # 9 query rows: 2 and 4 tiles
def test_fast_sdpa_chunks_and_tiles_agree_with_reference(monkeypatch, backward_tile_rows):
    """Tiny chunks force several (batch, head) chunks and every query-row tile path."""
    monkeypatch.setattr(fast_attention, "_CHUNK_BYTES", 3 * 9 * 11 * 8)
    monkeypatch.setattr(fast_attention, "_BACKWARD_TILE_ROWS", backward_tile_rows)
    assert fast_attention._backward_tile_count(9) == (2 if backward_tile_rows == 128 else 4)
    for case in [((3, 5, 9, 4), 11, 3, True, None), ((3, 5, 9, 4), 11, 3, False, (5, 9, 11))]:
        q, k, v, bias, causal, dout = _attn_data(case, np.float64, seed=2)
        want = ref_attention.sdpa_forward(q, k, v, bias, causal, 0.3)
        got = fast_attention.sdpa_forward(q, k, v, bias, causal, 0.3)
        for a, b in zip(got, want):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
        want_g = ref_attention.sdpa_backward(q, k, v, *want, dout, bias, causal, 0.3,
                                             bias is not None)
        got_g = fast_attention.sdpa_backward(q, k, v, *want, dout, bias, causal, 0.3,
                                             bias is not None)
        for a, b in zip(got_g, want_g):
            if b is None:
                assert a is None
            else:
                np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("mod", ATTN)
def test_sdpa_bad_arguments_are_named(mod):
    q = np.zeros((2, 3, 4), np.float32)
    with pytest.raises(ValueError, match="k must have shape"):
        mod.sdpa_forward(q, np.zeros((2, 5, 3), np.float32), np.zeros((2, 5, 4), np.float32),
                         None, False, None)
    with pytest.raises(ValueError, match="bias must broadcast"):
        mod.sdpa_forward(q, q, q, np.zeros((3, 2), np.float32), False, None)
    with pytest.raises(TypeError, match="float32 or float64"):
        mod.sdpa_forward(q.astype(np.int32), q, q, None, False, None)


@pytest.mark.parametrize("case", ATTN_CASES)
def test_sdpa_matches_torch(case):
    torch = pytest.importorskip("torch", reason="PyTorch is the cross-check, not a dependency")
    q, k, v, bias, causal, dout = _attn_data(case, np.float32, seed=3)
    tq, tk, tv = (torch.tensor(a, requires_grad=True) for a in (q, k, v))
    tb = None if bias is None else torch.tensor(bias, requires_grad=True)
    if causal and tb is not None:      # PyTorch takes one or the other: fold causal into bias
        Tq, Tk = q.shape[-2], k.shape[-2]
        hide = torch.triu(torch.full((Tq, Tk), float("-inf")), diagonal=1)
        tb_used = tb + hide
    else:
        tb_used = tb
    tout = torch.nn.functional.scaled_dot_product_attention(
        tq, tk, tv, attn_mask=tb_used, is_causal=causal and tb is None)
    tout.backward(torch.tensor(dout))
    for mod in (ref_attention, fast_attention):
        out, lse = mod.sdpa_forward(q, k, v, bias, causal, None)
        np.testing.assert_allclose(out, tout.detach().numpy(), rtol=1e-5, atol=1e-5)
        grads = mod.sdpa_backward(q, k, v, out, lse, dout, bias, causal, None, bias is not None)
        for got, want in zip(grads, (tq, tk, tv, tb)):
            if want is not None:
                np.testing.assert_allclose(got, want.grad.numpy(), rtol=1e-4, atol=1e-5)
