"""random_split and Subset."""
import numpy as np
import pytest

from minidl.data import DataLoader, Subset, TensorDataset, numpy_collate, random_split

torch = pytest.importorskip("torch", reason="PyTorch is the reference these loader tests compare with")
import torch.utils.data  # noqa: E402


def _members(subset):
    return [int(subset[i][0]) for i in range(len(subset))]


@pytest.mark.parametrize("n, lengths", [
    (10, [3, 7]), (10, [0, 10]), (10, [0.5, 0.5]), (10, [0.3, 0.3, 0.4]), (7, [0.5, 0.5]),
    (11, [0.1, 0.2, 0.7]), (5, [1 / 3, 1 / 3, 1 / 3])])
def test_sizes_like_torch_and_disjoint(n, lengths):
    parts = random_split(TensorDataset(np.arange(n)), lengths, generator=np.random.default_rng(0))
    expected = [len(p) for p in torch.utils.data.random_split(range(n), lengths,
                                                              torch.Generator().manual_seed(0))]
    assert [len(p) for p in parts] == expected
    members = [_members(p) for p in parts]
    assert sorted(sum(members, [])) == list(range(n))  # disjoint and covering


def test_split_is_reproducible_and_random():
    ds = TensorDataset(np.arange(50))
    a = random_split(ds, [20, 30], generator=np.random.default_rng(5))
    b = random_split(ds, [20, 30], generator=np.random.default_rng(5))
    assert _members(a[0]) == _members(b[0])
    assert _members(a[0]) != list(range(20))


@pytest.mark.parametrize("lengths, words", [
    ([3, 3], ["sum to the dataset length 10", "sum 6"]),
    ([0.5, 0.6], ["sum to 1"]),
    ([-1, 11], [">= 0"]),
    ([], ["non-empty"]),
    (["a", "b"], ["'a'"]),
])
def test_bad_lengths(lengths, words):
    with pytest.raises(ValueError) as info:
        random_split(TensorDataset(np.arange(10)), lengths)
    for word in words:
        assert word in str(info.value)


def test_subset_order_and_batched_fetch():
    ds = TensorDataset(np.arange(10) * 10)
    subset = Subset(ds, [7, 2, 9])
    assert len(subset) == 3 and int(subset[0][0]) == 70
    batches = [b[0].tolist() for b in DataLoader(subset, 2, collate_fn=numpy_collate)]
    assert batches == [[70, 20], [90]]
    nested = Subset(subset, [2, 0])
    assert [int(nested[i][0]) for i in range(2)] == [90, 70]
    np.testing.assert_array_equal(nested.get_batch(np.array([0, 1]))[0], [90, 70])


def test_subset_of_a_plain_list():
    subset = Subset([(i, float(i)) for i in range(5)], [4, 1])
    ints, floats = subset.get_batch(np.array([0, 1]))
    np.testing.assert_array_equal(ints, [4, 1])


def test_subset_rejects_out_of_range_indices():
    with pytest.raises(IndexError, match=r"\[-3, 3\).*\[0, 3\]"):
        Subset(TensorDataset(np.arange(3)), [0, 3])
