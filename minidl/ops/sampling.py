"""Sampling category indices: multinomial (PyTorch's signature and return type).

The random numbers come from a minidl `Generator` (the default one unless `generator=` is
given), drawn on the host like every other random tensor, so `minidl.manual_seed` makes the
draws reproducible and the same seed picks the same categories on every device. The
arithmetic on the probabilities runs on the tensor's own device.

With replacement: each draw is u ~ U[0, 1) scaled by the row's total weight, and the category
is the first one whose cumulative weight exceeds it (a vectorised binary search over the
cumulative sums, all rows and draws at once). A zero-weight category has a flat step in the
cumulative sum, so it can never be the first to exceed u.

Without replacement: the "exponential race" (Efraimidis & Spirakis): give category i the key
w_i / E_i with E_i ~ Exp(1) and take the num_samples largest keys, in decreasing order. This
has exactly the distribution of drawing one category at a time in proportion to the weights
and removing it (what PyTorch documents), and it is what PyTorch itself does.

Unlike PyTorch (which then returns zero-weight categories), asking for more samples without
replacement than a row has nonzero weights is an error here.
"""
from __future__ import annotations

import numbers

from ..random import rng_of
from ._util import Tensor
from .sorting import _topk_indices


def _validate(probs, num_samples, replacement):
    if not isinstance(probs, Tensor):
        raise TypeError(f"multinomial(): expected a Tensor of probabilities, got "
                        f"{type(probs).__name__}")
    if probs._data.dtype.kind != "f":
        raise RuntimeError(f"multinomial(): expected a floating point tensor of probabilities "
                           f"(weights), got {probs.dtype}; convert with .float() first")
    if probs.ndim not in (1, 2):
        raise RuntimeError(f"multinomial(): expected a 1-D (categories) or 2-D (rows x "
                           f"categories) tensor of probabilities, got shape {tuple(probs.shape)}")
    if isinstance(num_samples, bool) or not isinstance(num_samples, numbers.Integral):
        raise TypeError(f"multinomial(): num_samples must be an int, got "
                        f"{type(num_samples).__name__} ({num_samples!r})")
    num_samples = int(num_samples)
    if num_samples <= 0:
        raise RuntimeError(f"multinomial(): cannot sample num_samples={num_samples} samples; "
                           "expected num_samples >= 1")
    n_cat = probs.shape[-1]
    if n_cat == 0:
        raise RuntimeError(f"multinomial(): the probabilities (shape {tuple(probs.shape)}) have "
                           "no categories to sample from")
    if not replacement and num_samples > n_cat:
        raise RuntimeError(
            f"multinomial(): cannot sample num_samples={num_samples} > {n_cat} categories "
            "without replacement; pass replacement=True or ask for fewer samples")
    return num_samples


def _check_rows(xp, p, replacement, num_samples):
    """p: (rows, categories). Raise naming the first bad row and what was wrong with it."""
    bad = ~xp.isfinite(p) | (p < 0)
    if bool(bad.any()):
        r, c = (int(i) for i in xp.argwhere(bad)[0])
        raise RuntimeError(
            f"multinomial(): the probabilities must be finite and non-negative, but row {r} "
            f"holds {float(p[r, c]):.6g} at category {c}")
    nonzero = (p > 0).sum(axis=1)
    if bool((nonzero == 0).any()):
        r = int(xp.argmax(nonzero == 0))
        raise RuntimeError(
            f"multinomial(): row {r} of the probabilities is all zeros (sum of probabilities "
            "<= 0); every row needs at least one positive weight")
    if not replacement:
        short = nonzero < num_samples
        if bool(short.any()):
            r = int(xp.argmax(short))
            raise RuntimeError(
                f"multinomial(): cannot draw {num_samples} samples without replacement from "
                f"row {r}, which has only {int(nonzero[r])} categories with nonzero "
                "probability; ask for fewer samples or pass replacement=True")


def _search_cumulative(xp, cdf, target):
    """For each (row, draw): the first category c with cdf[row, c] > target[row, draw]
    (a binary search written with whole-array steps; cdf rows are non-decreasing)."""
    rows, n_cat = cdf.shape
    lo = xp.zeros(target.shape, dtype="int64")
    hi = xp.full(target.shape, n_cat, dtype="int64")  # the answer lies in [lo, hi]
    for _ in range(max(1, int(n_cat).bit_length())):
        mid = (lo + hi) // 2
        mid_c = xp.minimum(mid, n_cat - 1)
        right = xp.take_along_axis(cdf, mid_c, axis=1) <= target
        lo = xp.where(right, mid + 1, lo)
        hi = xp.where(right, hi, mid)
    return lo


def multinomial(input, num_samples: int, replacement: bool = False, *, generator=None):
    """Draw `num_samples` category indices per row of `input` (weights, not necessarily
    normalised), with or without replacement. Returns int64 indices of shape (num_samples,)
    for 1-D input and (rows, num_samples) for 2-D."""
    num_samples = _validate(input, num_samples, replacement)
    be = input._be
    xp = be.xp
    one_d = input.ndim == 1
    p = input._data.reshape(1, -1) if one_d else input._data
    rows, n_cat = p.shape
    rng = rng_of(generator)
    if rows == 0:
        out = xp.zeros((0, num_samples), dtype="int64")
    else:
        _check_rows(xp, p, replacement, num_samples)
        # float64 arithmetic (cumulative sums over many categories lose precision in float32),
        # each row scaled by its largest weight so that no sum of finite weights overflows
        p = p.astype("float64")
        p = p / p.max(axis=1, keepdims=True)
        if replacement or num_samples == 1:  # one draw: with or without is the same thing
            cdf = xp.cumsum(p, axis=1)
            u = be.from_numpy(rng.random((rows, num_samples)))
            out = _search_cumulative(xp, cdf, u * cdf[:, -1:])
            # u * total can round up to the total itself: fall back to the last category with
            # nonzero weight (the search can only overshoot, never land on a zero weight)
            last = (n_cat - 1) - xp.argmax(xp.flip(p > 0, axis=1), axis=1)
            out = xp.minimum(out, last[:, None])
        else:
            e = be.from_numpy(rng.standard_exponential((rows, n_cat)))
            # zero weights get key -1, below every positive key (w / e > 0); e is floored
            # away from 0 (probability ~1e-300) so no division by zero is ever attempted
            keys = xp.where(p > 0, p / xp.maximum(e, 1e-300), -1.0)
            out = _topk_indices(xp, keys, num_samples, 1, True)
    out = out.astype("int64", copy=False)
    return Tensor._wrap(out.reshape(-1) if one_d else out, be, None, 0)

