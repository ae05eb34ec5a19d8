"""cross_entropy / nll_loss with reduction='mean': the sum over kept rows divided by how many
rows were kept (ignore_index rows count for nothing), against float64 NumPy.

The op finds "no target is ignore_index" from the targets' min and max, which the bounds
check reads anyway, and then divides by the row count without counting; these cases put
ignore_index below, inside and above the targets' range, present and absent.
"""
import numpy as np
import pytest

import minidl
import minidl.nn.functional as F

C = 5


def float64_mean_loss(z, target, ignore_index, log_probs_given=False):
    z = z.astype(np.float64)
    logp = z if log_probs_given else z - np.log(np.exp(z - z.max(1, keepdims=True)).sum(
        1, keepdims=True)) - z.max(1, keepdims=True)
    kept = target != ignore_index
    picked = -logp[np.arange(len(target)), np.where(kept, target, 0)]
    return picked[kept].sum() / kept.sum()


# (targets, ignore_index): where ignore_index sits relative to the targets' min..max
CASES = [
    ([0, 3, 1, 4, 2, 3], -100),     # below the range: every row kept
    ([0, 3, 1, 4, 2, 3], 7),        # above the range: every row kept
    ([0, 3, 1, 4, 2, 3], 3),        # inside and present: two rows ignored
    ([0, 4, 0, 4, 1, 4], 2),        # inside the range but absent: every row kept
    ([1, 1, 1, 2, 2, 2], 1),        # the minimum itself: half the rows ignored
    ([-1, 3, -1, 4, 2, 0], -1),     # a negative ignore_index that occurs
]


@pytest.mark.parametrize("targets, ignore_index", CASES)
@pytest.mark.parametrize("loss", ["cross_entropy", "nll_loss"])
def test_mean_divides_by_the_kept_rows(targets, ignore_index, loss):
    rng = np.random.default_rng(abs(ignore_index))
    target = np.array(targets)
    z = rng.standard_normal((len(target), C))
    if loss == "nll_loss":
        z = z - np.log(np.exp(z).sum(1, keepdims=True))   # log-probabilities
    got = getattr(F, loss)(minidl.tensor(z, dtype=minidl.float64), minidl.tensor(target),
                           ignore_index=ignore_index)
    expected = float64_mean_loss(z, target, ignore_index, log_probs_given=loss == "nll_loss")
    np.testing.assert_allclose(got.item(), expected, rtol=1e-12)


@pytest.mark.parametrize("bad", [-2, C])
def test_targets_outside_the_classes_still_raise(bad):
    z = minidl.zeros(3, C)
    with pytest.raises(IndexError, match=f"target {bad} is out of bounds"):
        F.cross_entropy(z, minidl.tensor([0, bad, 1]), ignore_index=-1)


def test_every_row_ignored_gives_nan_as_pytorch():
    z = minidl.zeros(3, C)
    assert np.isnan(F.cross_entropy(z, minidl.tensor([2, 2, 2]), ignore_index=2).item())
