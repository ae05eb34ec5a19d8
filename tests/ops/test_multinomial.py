"""multinomial (minidl/ops/sampling.py): distribution, reproducibility, shapes, errors.

The distribution tests are statistical but deterministic (fixed seeds): frequencies over many
draws are compared with the exact probabilities by a chi-square statistic and per-category
z-scores, with bounds a correct sampler exceeds with probability < 1e-4 while an off-by-one
search, an unnormalised row or a wrong without-replacement scheme exceeds them by far.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import minidl

CHI2_BOUND = 30.0  # chi-square with <= 5 degrees of freedom: P(> 30) < 2e-5
Z_BOUND = 5.0


def check_frequencies(samples, probs, what):
    """Chi-square and per-category z-score of observed counts against `probs`."""
    samples = np.asarray(samples).ravel()
    n = samples.size
    counts = np.bincount(samples, minlength=len(probs)).astype(float)
    probs = np.asarray(probs, dtype=float)
    assert counts[probs == 0].sum() == 0, f"{what}: a zero-probability category was drawn"
    live = probs > 0
    expected = n * probs[live]
    chi2 = float((((counts[live] - expected) ** 2) / expected).sum())
    assert chi2 < CHI2_BOUND, f"{what}: chi-square {chi2:.1f} (counts {counts}, expected " \
                              f"{n * probs})"
    se = np.sqrt(n * probs[live] * (1 - probs[live]))
    z = np.abs(counts[live] - expected) / np.where(se > 0, se, 1)
    assert z.max() < Z_BOUND, f"{what}: z-scores {z}"


def test_with_replacement_frequencies_match_probabilities(device):
    w = np.array([2.0, 0.0, 5.0, 8.0, 5.0], dtype=np.float32)   # need not sum to 1
    minidl.manual_seed(123)
    out = minidl.multinomial(minidl.tensor(w, device=device), 100_000, replacement=True)
    assert out.dtype == minidl.int64 and tuple(out.shape) == (100_000,)
    assert out.device == minidl.device(device)
    check_frequencies(out.numpy(), w / w.sum(), "1-D with replacement")


def test_rows_are_sampled_from_their_own_distribution(device):
    w = np.array([[0.1, 0.2, 0.7, 0.0],
                  [0.0, 0.0, 0.0, 3.0],      # one live category: always 3
                  [1.0, 1.0, 1.0, 1.0],
                  [0.0, 5.0, 0.0, 1e-3]], dtype=np.float64)
    out = minidl.tensor(w, device=device).multinomial(50_000, True,
                                                      generator=minidl.Generator().manual_seed(5))
    assert tuple(out.shape) == (4, 50_000)
    got = out.numpy()
    for r in range(4):
        check_frequencies(got[r], w[r] / w[r].sum(), f"row {r}")
    assert (got[1] == 3).all()


def test_without_replacement_first_and_second_draws_follow_sequential_sampling(device):
    """Without replacement means: draw in proportion to the weights, remove, repeat. So the
    second draw is j with probability sum_{i != j} p_i p_j / (1 - p_i)."""
    p = np.array([0.1, 0.0, 0.2, 0.3, 0.4])
    rows = 40_000
    probs = minidl.tensor(np.tile(p, (rows, 1)), device=device)
    minidl.manual_seed(7)
    out = minidl.multinomial(probs, 2).numpy()
    assert out.shape == (rows, 2)
    assert (out[:, 0] != out[:, 1]).all(), "a category was drawn twice in one row"
    check_frequencies(out[:, 0], p, "first draw")
    second = np.array([sum(p[i] * p[j] / (1 - p[i]) for i in range(len(p)) if i != j)
                       for j in range(len(p))])
    assert abs(second.sum() - 1) < 1e-12
    check_frequencies(out[:, 1], second, "second draw")


def test_without_replacement_never_repeats_and_can_take_every_live_category(device):
    w = minidl.tensor([[0.5, 0.0, 2.0, 1.0, 0.25, 0.0, 3.0]] * 200, device=device)
    out = minidl.multinomial(w, 5).numpy()   # exactly the 5 nonzero categories
    for row in out:
        assert sorted(row) == [0, 2, 3, 4, 6]
    out = minidl.multinomial(w[0], 3).numpy()
    assert len(set(out)) == 3 and not set(out) & {1, 5}


def test_same_seed_same_draws_and_generator_isolation(device):
    w = minidl.tensor([[0.2, 0.3, 0.5], [0.6, 0.1, 0.3]], device=device)
    minidl.manual_seed(11)
    a = minidl.multinomial(w, 50, True).numpy()
    b = minidl.multinomial(w, 2).numpy()
    minidl.manual_seed(11)
    np.testing.assert_array_equal(minidl.multinomial(w, 50, True).numpy(), a)
    np.testing.assert_array_equal(minidl.multinomial(w, 2).numpy(), b)
    minidl.manual_seed(12)
    assert not np.array_equal(minidl.multinomial(w, 50, True).numpy(), a)
    # an explicit generator: reproducible on its own, and leaves the default one untouched
    state = minidl.get_rng_state()
    g1 = minidl.Generator().manual_seed(3)
    g2 = minidl.Generator().manual_seed(3)
    np.testing.assert_array_equal(w.multinomial(40, True, generator=g1).numpy(),
                                  w.multinomial(40, True, generator=g2).numpy())
    assert minidl.get_rng_state() == state


def test_same_seed_same_draws_as_on_the_cpu(device):
    w = np.random.default_rng(0).random((3, 6))
    results = []
    for dev in ("cpu", device):
        minidl.manual_seed(99)
        results.append((minidl.multinomial(minidl.tensor(w, device=dev), 20, True).numpy(),
                        minidl.multinomial(minidl.tensor(w, device=dev), 4).numpy()))
    np.testing.assert_array_equal(results[1][0], results[0][0])
    np.testing.assert_array_equal(results[1][1], results[0][1])


def test_float16_and_empty_batches():
    out = minidl.multinomial(minidl.tensor([1.0, 0.0, 1.0], dtype=minidl.float16), 10, True)
    assert set(out.numpy()) <= {0, 2}
    out = minidl.multinomial(minidl.zeros(0, 4), 3)
    assert tuple(out.shape) == (0, 3) and out.dtype == minidl.int64


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 4), st.integers(1, 8), st.integers(1, 9), st.booleans(),
       st.integers(0, 2 ** 16))
def test_samples_stay_in_the_support_property(rows, cats, num_samples, replacement, seed):
    rng = np.random.default_rng(seed)
    w = rng.random((rows, cats)) * (rng.random((rows, cats)) < 0.7)
    w[:, rng.integers(0, cats)] += 0.5                      # at least one live category per row
    live = (w > 0).sum(1)
    x = minidl.tensor(w)
    if not replacement and num_samples > live.min():
        with pytest.raises(RuntimeError, match="without replacement"):
            minidl.multinomial(x, num_samples, replacement)
        return
    out = minidl.multinomial(x, num_samples, replacement).numpy()
    assert out.shape == (rows, num_samples)
    assert (np.take_along_axis(w, out, 1) > 0).all(), "drew a zero-weight category"
    if not replacement:
        assert all(len(set(r)) == num_samples for r in out)


# ---- errors ----------------------------------------------------------------------------------
@pytest.mark.parametrize("probs,kwargs,match", [
    ([0.2, -0.1, 0.5], {}, r"finite and non-negative, but row 0 holds -0.1 at category 1"),
    ([[1.0, 1.0], [0.5, float("inf")]], {}, r"row 1 holds inf at category 1"),
    ([0.2, float("nan")], {}, r"holds nan at category 1"),
    ([[1.0, 2.0], [0.0, 0.0]], {}, r"row 1 of the probabilities is all zeros"),
    ([1.0, 0.0, 2.0], {"num_samples": 3}, r"cannot draw 3 samples without replacement from "
                                          r"row 0, which has only 2 categories with nonzero"),
    ([1.0, 0.0, 2.0], {"num_samples": 4}, r"num_samples=4 > 3 categories without replacement"),
    ([1.0, 2.0], {"num_samples": 0}, r"num_samples=0.*expected num_samples >= 1"),
    ([[[1.0]]], {}, r"1-D .* or 2-D .* got shape \(1, 1, 1\)"),
    ([[], []], {}, r"no categories"),
])
def test_bad_probabilities_raise_clear_errors(probs, kwargs, match):
    kwargs = {"num_samples": 1, **kwargs}
    with pytest.raises(RuntimeError, match=match):
        minidl.multinomial(minidl.tensor(probs, dtype=minidl.float32), **kwargs)


def test_bad_argument_types_raise_clear_errors():
    with pytest.raises(RuntimeError, match="floating point .* got minidl.int64"):
        minidl.multinomial(minidl.tensor([1, 2, 3]), 1)
    with pytest.raises(TypeError, match="num_samples must be an int, got float"):
        minidl.multinomial(minidl.tensor([1.0, 2.0]), 1.0)
    with pytest.raises(TypeError, match="expects a minidl.Generator .* got numpy"):
        minidl.multinomial(minidl.tensor([1.0, 2.0]), 1, generator=np.random.default_rng(0))
    # replacement=True allows more samples than categories
    assert tuple(minidl.multinomial(minidl.tensor([1.0, 2.0]), 5, True).shape) == (5,)
