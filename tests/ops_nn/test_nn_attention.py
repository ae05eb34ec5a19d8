"""scaled_dot_product_attention against PyTorch: masks, causality, broadcasting, GQA."""
import numpy as np
import pytest

import minidl
from minidl.autograd import gradcheck
from nn_harness import (DTYPES, Case, bools, check_against_torch, check_gradcheck,
                        check_gradgradcheck, gradgradcheck, ids, randn, torch)

F = minidl.nn.functional
SDPA = "scaled_dot_product_attention"


def mask_with_a_key_per_query(*shape):
    """A random boolean mask in which every query keeps at least key 0. (A query with no key
    at all is tested separately: PyTorch gives NaN there, minidl gives 0.)"""
    def make(rng, dt):
        mask = bools(*shape, p_true=0.8)(rng, dt)
        mask[..., 0] = True
        return mask
    return make


def sdpa(**kw):
    return lambda F, q, k, v, *mask: getattr(F, SDPA)(q, k, v, *mask, **kw)


CASES = [
    Case("self_attention", sdpa(), [randn(2, 3, 5, 4)] * 3, gradgrad=True),
    Case("cross_lengths", sdpa(), [randn(2, 2, 5, 4), randn(2, 2, 7, 4), randn(2, 2, 7, 3)]),
    Case("causal", sdpa(is_causal=True), [randn(2, 2, 6, 4)] * 3, gradgrad=True),
    Case("causal_fewer_queries", sdpa(is_causal=True),
         [randn(1, 2, 3, 4), randn(1, 2, 6, 4), randn(1, 2, 6, 4)]),
    Case("float_mask_with_grad", sdpa(), [randn(2, 2, 4, 3), randn(2, 2, 5, 3),
                                          randn(2, 2, 5, 3), randn(4, 5)], gradgrad=True),
    Case("float_mask_per_batch", sdpa(), [randn(2, 2, 4, 3), randn(2, 2, 5, 3),
                                          randn(2, 2, 5, 3), randn(2, 1, 4, 5)]),
    Case("bool_mask_broadcast", sdpa(), [randn(2, 3, 4, 3), randn(2, 3, 5, 3),
                                         randn(2, 3, 5, 2), mask_with_a_key_per_query(2, 1, 4, 5)]),
    Case("explicit_scale", sdpa(scale=0.3), [randn(1, 2, 4, 8)] * 3),
    Case("three_dims", sdpa(), [randn(3, 5, 4), randn(3, 6, 4), randn(3, 6, 2)]),
    Case("two_dims", sdpa(is_causal=True), [randn(5, 4)] * 3),
    Case("broadcast_batch", sdpa(), [randn(2, 3, 5, 4), randn(1, 3, 6, 4), randn(1, 3, 6, 4)]),
    Case("grouped_query", sdpa(enable_gqa=True),
         [randn(2, 4, 5, 4), randn(2, 2, 6, 4), randn(2, 2, 6, 3)]),
]
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_matches_torch(case, dtype, device):
    check_against_torch(case, dtype, device)


GRADCHECK = [c for c in CASES if c.gradcheck]
GRADGRAD = [c for c in CASES if c.gradgrad]


@pytest.mark.parametrize("case", GRADCHECK, ids=ids(GRADCHECK))
def test_gradcheck(case):
    check_gradcheck(case)


@pytest.mark.parametrize("case", GRADGRAD, ids=ids(GRADGRAD))
def test_gradgradcheck(case):
    check_gradgradcheck(case)


@pytest.mark.parametrize("create_graph", [False, True])
def test_fully_masked_rows_give_zero_output_and_no_nan_gradients(create_graph):
    rng = np.random.default_rng(0)
    q, k, v = (minidl.tensor(rng.standard_normal(s), requires_grad=True)
               for s in [(1, 2, 4, 3), (1, 2, 5, 3), (1, 2, 5, 3)])
    mask = np.ones((4, 5), bool)
    mask[1] = False                                  # query 1 may attend to nothing
    out = F.scaled_dot_product_attention(q, k, v, minidl.tensor(mask))
    grads = minidl.autograd.grad([out.sum()], [q, k, v], create_graph=create_graph)
    assert not out.detach().numpy()[:, :, 1].any()
    assert all(np.isfinite(g.detach().numpy()).all() for g in grads)
    assert not grads[0].detach().numpy()[:, :, 1].any()
    # every other row is ordinary attention
    tq, tk, tv = (torch.tensor(t.detach().numpy()) for t in (q, k, v))
    ref = torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, torch.tensor(mask))
    keep = [0, 2, 3]
    np.testing.assert_allclose(out.detach().numpy()[:, :, keep], ref.numpy()[:, :, keep],
                               rtol=1e-10)


def test_dropout_applies_one_mask_to_the_attention_weights():
    """With dropout_p > 0 the output is dropout(softmax(q k^T s)) v: rebuild it from the same
    seed with ops that are tested on their own."""
    rng = np.random.default_rng(0)
    q, k, v = (minidl.tensor(rng.standard_normal((2, 2, 4, 3))) for _ in range(3))
    minidl.manual_seed(5)
    out = F.scaled_dot_product_attention(q, k, v, dropout_p=0.5, is_causal=True)
    causal = minidl.tensor(np.where(np.tril(np.ones((4, 4), bool)), 0.0, -np.inf))
    weights = F.softmax(q @ k.mT / np.sqrt(3) + causal, -1)
    minidl.manual_seed(5)
    expected = F.dropout(weights, 0.5) @ v
    np.testing.assert_allclose(out.numpy(), expected.numpy(), rtol=1e-12)


def test_dropout_path_gradients():
    rng = np.random.default_rng(1)
    qkv = [minidl.tensor(rng.standard_normal((1, 2, 3, 2)), requires_grad=True)
           for _ in range(3)]

    def fn(q, k, v):
        minidl.manual_seed(11)  # the same dropout mask at every probe
        return F.scaled_dot_product_attention(q, k, v, dropout_p=0.3)
    assert gradcheck(fn, qkv)
    assert gradgradcheck(fn, qkv)
