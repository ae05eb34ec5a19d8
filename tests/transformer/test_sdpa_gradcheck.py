"""float64 gradcheck of F.scaled_dot_product_attention under every kind of mask, including a
query row with no key left (its gradients must be zero, not NaN), and the MultiheadAttention
layer end to end."""
import numpy as np
import pytest

import minidl
import minidl.nn.functional as F
from minidl.autograd import gradcheck
from minidl.nn.attention import MultiheadAttention


def _t(rng, *shape, grad=True):
    return minidl.tensor(rng.standard_normal(shape), requires_grad=grad)


def _bool_mask(rng, *shape):
    keep = rng.random(shape) < 0.7          # SDPA's convention: True = may attend
    keep[..., 0] = True
    return minidl.tensor(keep)


def _odd_keys_forbidden(rows, keys):
    """A float mask: -inf for the odd keys (an additive mask with infinities), 0 elsewhere."""
    return minidl.tensor(np.where(np.arange(keys) % 2 == 1, -np.inf, 0.0)[None, :]
                         .repeat(rows, 0))


CASES = [  # (id, builder(rng) -> (q, k, v, kwargs))
    ("plain", lambda r: (_t(r, 2, 3, 4), _t(r, 2, 5, 4), _t(r, 2, 5, 3), {})),
    ("causal", lambda r: (_t(r, 1, 2, 4, 3), _t(r, 1, 2, 4, 3), _t(r, 1, 2, 4, 3),
                          dict(is_causal=True))),
    ("causal_rectangular", lambda r: (_t(r, 2, 3, 2), _t(r, 2, 5, 2), _t(r, 2, 5, 2),
                                      dict(is_causal=True))),
    ("bool_mask", lambda r: (_t(r, 2, 3, 4), _t(r, 2, 5, 4), _t(r, 2, 5, 3),
                             dict(attn_mask=_bool_mask(r, 3, 5)))),
    ("float_mask_with_grad", lambda r: (_t(r, 2, 3, 4), _t(r, 2, 5, 4), _t(r, 2, 5, 3),
                                        dict(attn_mask=_t(r, 2, 3, 5)))),
    ("float_mask_with_inf", lambda r: (_t(r, 2, 3, 4), _t(r, 2, 5, 4), _t(r, 2, 5, 3),
                                       dict(attn_mask=_odd_keys_forbidden(3, 5)))),
    ("scale", lambda r: (_t(r, 2, 4, 3), _t(r, 2, 4, 3), _t(r, 2, 4, 3), dict(scale=0.7))),
]


@pytest.mark.parametrize("build", [c[1] for c in CASES], ids=[c[0] for c in CASES])
def test_sdpa_gradcheck(build):
    q, k, v, kw = build(np.random.default_rng(0))
    extra = [t for t in kw.values() if isinstance(t, minidl.Tensor) and t.requires_grad]
    names = [n for n, t in kw.items() if isinstance(t, minidl.Tensor) and t.requires_grad]

    def fn(q, k, v, *grad_args):
        args = dict(kw, **dict(zip(names, grad_args)))
        return F.scaled_dot_product_attention(q, k, v, **args)
    assert gradcheck(fn, (q, k, v, *extra))


def test_sdpa_fully_masked_row_gives_zero_output_and_gradients():
    rng = np.random.default_rng(1)
    q, k, v = _t(rng, 2, 3, 4), _t(rng, 2, 5, 4), _t(rng, 2, 5, 3)
    keep = np.ones((3, 5), bool)
    keep[1] = False                                     # query 1 sees no key
    mask = minidl.tensor(keep)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    assert np.all(out.detach().numpy()[:, 1] == 0)
    (out * minidl.tensor(rng.standard_normal(out.shape))).sum().backward()
    assert np.all(q.grad.numpy()[:, 1] == 0)
    for t in (q, k, v):
        assert np.isfinite(t.grad.numpy()).all()
    # the other rows still have the right gradients
    assert gradcheck(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=mask),
                     (q, k, v))


@pytest.mark.parametrize("need_weights", [True, False])
def test_multihead_attention_gradcheck(need_weights):
    rng = np.random.default_rng(2)
    mha = MultiheadAttention(4, 2, kdim=3, vdim=5).double()
    q, k, v = _t(rng, 3, 2, 4), _t(rng, 4, 2, 3), _t(rng, 4, 2, 5)
    kpm = minidl.tensor(np.array([[False, False, True, False], [False, True, True, False]]))

    def fn(q, k, v, *params):
        out, w = mha(q, k, v, key_padding_mask=kpm, need_weights=need_weights)
        return (out, w) if w is not None else out
    assert gradcheck(fn, (q, k, v) + tuple(mha.parameters()))
