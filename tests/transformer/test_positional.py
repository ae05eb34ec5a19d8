"""Positional encodings against plain float64 NumPy references, and the properties that make
them work: rotary embeddings keep norms and make q_m . k_n depend on m - n only."""
import math

import numpy as np
import pytest

import minidl
from minidl.autograd import gradcheck
from minidl.nn.positional import (LearnedPositionalEmbedding, SinusoidalPositionalEncoding,
                                  apply_rope, rope_cache, sinusoidal_positional_encoding)


# ---- NumPy references, written element by element from the formulas ------------------------

def sinusoidal_reference(max_len, d, base=10000.0):
    pe = np.zeros((max_len, d))
    for p in range(max_len):
        for c in range(d):
            i = c // 2                               # the pair (2i, 2i+1)
            angle = p / base ** (2 * i / d)
            pe[p, c] = math.sin(angle) if c % 2 == 0 else math.cos(angle)
    return pe


def rope_reference(x, base=10000.0):
    """Rotate pair (x[.., t, i], x[.., t, i + d/2]) of x (..., T, d) by t * base^(-2i/d), as
    a 2x2 rotation matrix applied to each pair."""
    out = np.empty_like(x)
    T, d = x.shape[-2:]
    h = d // 2
    for t in range(T):
        for i in range(h):
            a = t * base ** (-2 * i / d)
            rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
            pair = np.stack([x[..., t, i], x[..., t, i + h]], -1)       # (..., 2)
            turned = pair @ rot.T
            out[..., t, i], out[..., t, i + h] = turned[..., 0], turned[..., 1]
    return out


# ---- sinusoidal ------------------------------------------------------------------------------

@pytest.mark.parametrize("max_len,d,base", [(7, 8, 10000.0), (5, 5, 10000.0), (3, 1, 10000.0),
                                            (9, 6, 100.0)])
def test_sinusoidal_table_matches_formula(max_len, d, base):
    pe = sinusoidal_positional_encoding(max_len, d, base=base, dtype=minidl.float64)
    np.testing.assert_allclose(pe.numpy(), sinusoidal_reference(max_len, d, base),
                               rtol=1e-12, atol=1e-12)


def test_sinusoidal_shift_is_a_rotation_of_each_pair():
    """PE[p + k] = R(k w_i) PE[p] for each pair (2i, 2i+1): a linear map independent of p."""
    d, k = 8, 3
    pe = sinusoidal_positional_encoding(20, d, dtype=minidl.float64).numpy()
    for i in range(d // 2):
        a = k / 10000 ** (2 * i / d)
        rot = np.array([[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]])
        for p in (0, 5, 11):
            np.testing.assert_allclose(pe[p + k, 2 * i:2 * i + 2],
                                       rot @ pe[p, 2 * i:2 * i + 2], atol=1e-12)


@pytest.mark.parametrize("batch_first", [False, True])
def test_sinusoidal_module_adds_the_table(batch_first):
    rng = np.random.default_rng(0)
    T, n, d, offset = 4, 2, 6, 3
    x = rng.standard_normal((n, T, d) if batch_first else (T, n, d))
    module = SinusoidalPositionalEncoding(d, max_len=10, batch_first=batch_first,
                                          dtype=minidl.float64)
    out = module(minidl.tensor(x), offset=offset).numpy()
    table = sinusoidal_reference(10, d)[offset:offset + T]
    expected = x + (table[None] if batch_first else table[:, None])
    np.testing.assert_allclose(out, expected, rtol=1e-12)
    assert list(module.state_dict()) == []           # a fixed table, not saved


@pytest.mark.parametrize("batch_first", [False, True])
def test_learned_positional_embedding_adds_rows_and_gets_their_gradient(batch_first):
    rng = np.random.default_rng(1)
    T, n, d, offset = 3, 2, 4, 2
    module = LearnedPositionalEmbedding(8, d, batch_first=batch_first).double()
    x = minidl.tensor(rng.standard_normal((n, T, d) if batch_first else (T, n, d)),
                      requires_grad=True)
    out = module(x, offset=offset)
    w = module.weight.detach().numpy()
    rows = w[offset:offset + T]
    expected = x.detach().numpy() + (rows[None] if batch_first else rows[:, None])
    np.testing.assert_allclose(out.detach().numpy(), expected, rtol=1e-12)
    out.sum().backward()
    grad = np.zeros_like(w)
    grad[offset:offset + T] = n                      # each used row, once per batch entry
    np.testing.assert_allclose(module.weight.grad.numpy(), grad)
    assert list(module.state_dict()) == ["weight"]


# ---- rotary ----------------------------------------------------------------------------------

@pytest.mark.parametrize("shape,base", [((5, 8), 10000.0), ((2, 3, 6, 4), 10000.0),
                                        ((1, 7, 2), 500.0)])
def test_rope_matches_rotation_reference(shape, base):
    x = np.random.default_rng(2).standard_normal(shape)
    cos, sin = rope_cache(shape[-2], shape[-1], base=base, dtype=minidl.float64)
    out = apply_rope(minidl.tensor(x), cos, sin).numpy()
    np.testing.assert_allclose(out, rope_reference(x, base), rtol=1e-12, atol=1e-12)


def test_rope_cache_values():
    cos, sin = rope_cache(6, 4, dtype=minidl.float64)
    angles = np.arange(6)[:, None] * 10000.0 ** (-np.arange(0, 4, 2) / 4)[None, :]
    np.testing.assert_allclose(cos.numpy(), np.cos(angles), rtol=1e-14)
    np.testing.assert_allclose(sin.numpy(), np.sin(angles), rtol=1e-14)
    assert rope_cache(6, 4)[0].dtype == minidl.float32


def test_rope_preserves_norms():
    x = np.random.default_rng(3).standard_normal((3, 16, 8))
    cos, sin = rope_cache(16, 8, dtype=minidl.float64)
    out = apply_rope(minidl.tensor(x), cos, sin).numpy()
    np.testing.assert_allclose(np.linalg.norm(out, axis=-1), np.linalg.norm(x, axis=-1),
                               rtol=1e-12)
    assert not np.allclose(out[:, 1:], x[:, 1:])     # it did rotate (position 0 stays)


def test_rope_scores_depend_on_relative_position_only():
    """The same q and k placed at positions (m, n): q_m . k_n is a function of m - n."""
    rng = np.random.default_rng(4)
    d, T = 8, 12
    q, k = rng.standard_normal(d), rng.standard_normal(d)
    cos, sin = rope_cache(T, d, dtype=minidl.float64)
    qs = apply_rope(minidl.tensor(np.tile(q, (T, 1))), cos, sin).numpy()   # q at every position
    ks = apply_rope(minidl.tensor(np.tile(k, (T, 1))), cos, sin).numpy()
    scores = qs @ ks.T                                                      # [m, n]
    for offset in (-5, -1, 0, 2, 7):
        diagonal = np.diagonal(scores, offset=offset)
        np.testing.assert_allclose(diagonal, diagonal[0], rtol=1e-12, atol=1e-12)
    assert not np.allclose(np.diagonal(scores, 1)[0], np.diagonal(scores, 3)[0])


def test_rope_gradcheck():
    x = minidl.tensor(np.random.default_rng(5).standard_normal((2, 3, 4)), requires_grad=True)
    cos, sin = rope_cache(3, 4, dtype=minidl.float64)
    assert gradcheck(lambda t: apply_rope(t, cos, sin), (x,))


# ---- errors ----------------------------------------------------------------------------------

ERRORS = [
    ("odd_head_dim", lambda: rope_cache(4, 5), "head_dim must be even"),
    ("cache_shape", lambda: apply_rope(minidl.randn(4, 8), *rope_cache(5, 8)),
     "needs cos and sin of shape [4, 4]"),
    ("table_size", lambda: sinusoidal_positional_encoding(0, 4), "must be positive"),
    ("past_max_len", lambda: SinusoidalPositionalEncoding(4, max_len=3)(minidl.randn(5, 1, 4)),
     "do not fit max_len=3"),
    ("wrong_width", lambda: LearnedPositionalEmbedding(8, 4)(minidl.randn(2, 3, 5)),
     "expected input of shape (N, T, E) with E=4"),
]


@pytest.mark.parametrize("call,message", [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_errors(call, message):
    with pytest.raises(ValueError) as info:
        call()
    assert message in str(info.value)
