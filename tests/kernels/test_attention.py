"""Scaled dot-product attention kernels (naive and flash) against a float64 NumPy reference
written from the definition, and against torch's scaled_dot_product_attention."""
from __future__ import annotations

import math

import numpy as np
import pytest

from minidl.backend.cuda.registry import ShapeLimitError, versions

from kernel_test_helpers import assert_close

NEG_INF = -np.inf
# (id, lead dims, Tq, Tk, D, Dv, bias shape or None, causal, masking of the bias)
CASES = [
    ("one query one key", (1,), 1, 1, 4, 4, None, False, None),
    ("odd tiles, causal", (2, 3), 37, 45, 8, 5, None, True, None),
    ("more queries than keys, causal", (2,), 50, 20, 16, 16, None, True, None),
    ("padding mask over heads and queries", (2, 3), 19, 33, 8, 8, (2, 1, 1, 33), False, "keys"),
    ("full bias, causal, fully masked rows", (2, 2), 20, 20, 4, 6, (2, 2, 20, 20), True, "rows"),
    ("bias over keys only, Tk > 2 key tiles", (3,), 33, 70, 7, 9, (70,), False, "random"),
]
SAMPLE_ORDER = [c[0] for c in CASES]


def make_bias(rng, shape, how, dtype):
    if shape is None:
        return None
    bias = rng.standard_normal(shape)
    if how == "keys":                    # the last 5 keys of every sequence are padding
        bias[..., -5:] = NEG_INF
    elif how == "rows":                  # queries 3 and 11 of every (batch, head) see nothing
        bias[..., [3, 11], :] = NEG_INF
    elif how == "random":
        bias[rng.random(shape) < 0.3] = NEG_INF
    return bias.astype(dtype)


def sum_to(a, shape):
    """Sum a (..., Tq, Tk) array down to a broadcastable `shape`."""
    a = a.sum(axis=tuple(range(a.ndim - len(shape))))
    return a.sum(axis=tuple(i for i, n in enumerate(shape) if n == 1), keepdims=True)


def sdpa_ref(q, k, v, bias, causal, dout):
    """Forward and backward from the definition, float64, with P materialised."""
    q, k, v, dout = (a.astype(np.float64) for a in (q, k, v, dout))
    scale = 1 / math.sqrt(q.shape[-1])
    s = scale * q @ np.swapaxes(k, -1, -2)
    if bias is not None:
        s = s + bias
    if causal:
        tq, tk = s.shape[-2:]
        s = np.where(np.arange(tk)[None, :] > np.arange(tq)[:, None], NEG_INF, s)
    hidden = np.isneginf(s).all(-1, keepdims=True)
    m = np.where(hidden, 0, s.max(-1, keepdims=True))
    e = np.exp(s - m)
    p = e / np.where(hidden, 1, e.sum(-1, keepdims=True))
    with np.errstate(divide="ignore"):
        lse = np.where(hidden[..., 0], NEG_INF, (m + np.log(e.sum(-1, keepdims=True)))[..., 0])
    out = p @ v
    dp = dout @ np.swapaxes(v, -1, -2)
    ds = p * (dp - (p * dp).sum(-1, keepdims=True))   # the softmax Jacobian, not the out-based delta
    grads = (scale * ds @ k, scale * np.swapaxes(ds, -1, -2) @ q, np.swapaxes(p, -1, -2) @ dout,
             None if bias is None else sum_to(ds, bias.shape))
    return out, lse, grads


def _inputs(rng, case, dtype):
    _, lead, tq, tk, d, dv, bias_shape, causal, how = case
    q = rng.standard_normal(lead + (tq, d)).astype(dtype)
    k = rng.standard_normal(lead + (tk, d)).astype(dtype)
    v = rng.standard_normal(lead + (tk, dv)).astype(dtype)
    dout = rng.standard_normal(lead + (tq, dv)).astype(dtype)
    return q, k, v, make_bias(rng, bias_shape, how, dtype), causal, dout


def _maybe(dev, a):
    return None if a is None else dev.put(a)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES, ids=SAMPLE_ORDER)
@pytest.mark.parametrize("version,block", [(v, b) for v in versions("sdpa_forward") for b in (None, 32)])
def test_forward_versions(dev, rng, version, block, case, dtype):
    q, k, v, bias, causal, dout = _inputs(rng, case, dtype)
    out, lse = dev.ops.sdpa_forward(dev.put(q), dev.put(k), dev.put(v), _maybe(dev, bias), causal, None,
                                    version=version, block=block)
    out_ref, lse_ref, _ = sdpa_ref(q, k, v, bias, causal, dout)
    assert_close(dev.get(out), out_ref, dtype, scale=10)
    lse = dev.get(lse)
    assert (np.isneginf(lse) == np.isneginf(lse_ref)).all()
    finite = np.isfinite(lse_ref)
    assert_close(lse[finite], lse_ref[finite], dtype, scale=10)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES, ids=SAMPLE_ORDER)
@pytest.mark.parametrize("version,block", [(v, b) for v in versions("sdpa_backward") for b in (None, 32)])
def test_backward_versions(dev, rng, version, block, case, dtype):
    q, k, v, bias, causal, dout = _inputs(rng, case, dtype)
    out_ref, lse_ref, grads_ref = sdpa_ref(q, k, v, bias, causal, dout)
    grads = dev.ops.sdpa_backward(dev.put(q), dev.put(k), dev.put(v), dev.put(out_ref.astype(dtype)),
                                  dev.put(lse_ref.astype(dtype)), dev.put(dout), _maybe(dev, bias), causal, None,
                                  bias is not None, version=version, block=block)
    for name, ours, ref in zip(("dq", "dk", "dv", "dbias"), grads, grads_ref):
        if ref is None:
            assert ours is None, name
            continue
        ours = dev.get(ours)
        assert ours.shape == ref.shape, name
        assert np.isfinite(ours).all(), f"{name} has NaN or inf"
        assert_close(ours, ref, dtype, scale=20 * math.sqrt(q.shape[-2] + k.shape[-2]))


@pytest.mark.parametrize("version", versions("sdpa_forward"))
def test_fully_masked_rows_give_zeros_not_nan(dev, rng, version):
    q, k, v, bias, causal, dout = _inputs(rng, CASES[4], np.float32)
    out, lse = dev.ops.sdpa_forward(dev.put(q), dev.put(k), dev.put(v), dev.put(bias), causal, None, version=version)
    out, lse = dev.get(out), dev.get(lse)
    assert (out[..., [3, 11], :] == 0).all() and np.isneginf(lse[..., [3, 11]]).all()
    dq, dk, dv, dbias = (dev.get(a) for a in dev.ops.sdpa_backward(
        dev.put(q), dev.put(k), dev.put(v), dev.put(out), dev.put(lse), dev.put(dout), dev.put(bias), causal, None,
        True, version=version))
    assert (dq[..., [3, 11], :] == 0).all() and (dbias[..., [3, 11], :] == 0).all()
    assert all(np.isfinite(a).all() for a in (dq, dk, dv, dbias))


@pytest.mark.parametrize("case", [CASES[1], CASES[3]], ids=["causal", "padding-bias"])
def test_matches_torch_forward_and_backward(dev, rng, case):
    torch = pytest.importorskip("torch", reason="torch is the optional reference")
    q, k, v, bias, causal, dout = _inputs(rng, case, np.float64)
    tq, tk, tv = (torch.tensor(a, requires_grad=True) for a in (q, k, v))
    tb = None if bias is None else torch.tensor(bias, requires_grad=True)
    t_out = torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, attn_mask=tb, is_causal=causal)
    t_out.backward(torch.tensor(dout))
    out, lse = dev.ops.sdpa_forward(dev.put(q), dev.put(k), dev.put(v), _maybe(dev, bias), causal, None)
    grads = dev.ops.sdpa_backward(dev.put(q), dev.put(k), dev.put(v), out, lse, dev.put(dout), _maybe(dev, bias),
                                  causal, None, bias is not None)
    np.testing.assert_allclose(dev.get(out), t_out.detach().numpy(), rtol=1e-10, atol=1e-12)
    for ours, theirs in zip(grads, (tq, tk, tv, tb)):
        if theirs is not None:
            np.testing.assert_allclose(dev.get(ours), sum_to(theirs.grad.numpy(), theirs.shape), rtol=1e-9, atol=1e-11)


def test_large_head_dims_fall_back_to_the_plain_kernel(dev, rng):
    # D = Dv = 512 in float64 needs ~400 KiB of shared memory for a flash tile: v2 refuses it,
    # and the default path runs v1 instead of failing.
    q = rng.standard_normal((1, 3, 512))
    with pytest.raises(ShapeLimitError, match="shared memory"):
        dev.ops.sdpa_forward(dev.put(q), dev.put(q), dev.put(q), None, False, None, version=2)
    out, _ = dev.ops.sdpa_forward(dev.put(q), dev.put(q), dev.put(q), None, False, None)
    assert_close(dev.get(out), sdpa_ref(q, q, q, None, False, q)[0], np.float64, scale=10)


def test_explicit_scale_and_empty_batch(dev, rng):
    q = rng.standard_normal((2, 5, 3))
    out, _ = dev.ops.sdpa_forward(dev.put(q), dev.put(q), dev.put(q), None, False, 0.25)
    s = 0.25 * q @ np.swapaxes(q, -1, -2)
    p = np.exp(s - s.max(-1, keepdims=True))
    assert_close(dev.get(out), (p / p.sum(-1, keepdims=True)) @ q, np.float64)
    out, lse = dev.ops.sdpa_forward(dev.put(np.zeros((0, 4, 3))), dev.put(np.zeros((0, 2, 3))),
                                    dev.put(np.zeros((0, 2, 5))), None, True, None)
    assert out.shape == (0, 4, 5) and lse.shape == (0, 4)


def test_bad_inputs_are_rejected_with_clear_errors(dev):
    q = dev.put(np.zeros((2, 4, 3), np.float32))
    with pytest.raises(ValueError, match=r"bias must broadcast to \(2, 4, 4\)"):
        dev.ops.sdpa_forward(q, q, q, dev.put(np.zeros((3, 4), np.float32)), False, None)
    with pytest.raises(ValueError, match="k must have shape"):
        dev.ops.sdpa_forward(q, dev.put(np.zeros((2, 4, 5), np.float32)), q, None, False, None)
    with pytest.raises(ValueError, match=r"lse must have shape \(2, 4\)"):
        dev.ops.sdpa_backward(q, q, q, q, dev.put(np.zeros((2, 3), np.float32)), q, None, False, None, False)
    with pytest.raises(ShapeLimitError, match="32, 64, 128, 256 or 512"):
        dev.ops.sdpa_forward(q, q, q, None, False, None, version=2, block=96)
