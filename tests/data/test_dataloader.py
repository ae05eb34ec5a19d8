"""DataLoader: batching, drop_last, shuffling and its seeds, collate paths."""
import numpy as np
import pytest

import minidl.random
from minidl.data import DataLoader, Dataset, TensorDataset, numpy_collate
from minidl.tensor import Tensor

torch = pytest.importorskip("torch", reason="PyTorch is the reference these loader tests compare with")
import torch.utils.data  # noqa: E402


class CountingDataset(Dataset):
    """Sample i is (i, 10 * i); counts per-sample fetches."""

    def __init__(self, n):
        self.n, self.item_calls = n, 0

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        self.item_calls += 1
        return np.int64(i), {"tens": 10 * i}


def _indices(loader):
    """The sample indices of each batch of a loader over CountingDataset or TensorDataset(arange)."""
    return [np.asarray(batch[0]).tolist() for batch in loader]


@pytest.mark.parametrize("n, batch_size, drop_last", [
    (10, 3, False), (10, 3, True), (9, 3, True), (9, 3, False), (2, 5, False), (2, 5, True),
    (0, 4, False), (1, 1, False)])
def test_batches_in_order_with_the_same_count_as_torch(n, batch_size, drop_last):
    loader = DataLoader(CountingDataset(n), batch_size, drop_last=drop_last, collate_fn=numpy_collate)
    reference = torch.utils.data.DataLoader(range(n), batch_size, drop_last=drop_last)
    assert len(loader) == len(reference)
    assert _indices(loader) == [b.tolist() for b in reference]


def test_collate_of_dict_and_tuple_samples():
    indices, extras = next(iter(DataLoader(CountingDataset(5), 4, collate_fn=numpy_collate)))
    np.testing.assert_array_equal(indices, [0, 1, 2, 3])
    np.testing.assert_array_equal(extras["tens"], [0, 10, 20, 30])


def test_default_collate_gives_tensors():
    x = np.arange(12, dtype=np.float32).reshape(6, 2)
    xb, yb = next(iter(DataLoader(TensorDataset(x, np.arange(6)), batch_size=4)))
    assert isinstance(xb, Tensor) and isinstance(yb, Tensor)
    np.testing.assert_array_equal(xb.numpy(), x[:4])
    np.testing.assert_array_equal(yb.numpy(), [0, 1, 2, 3])


def test_shuffle_is_reproducible_from_a_numpy_generator():
    ds = TensorDataset(np.arange(20))
    first = DataLoader(ds, 6, shuffle=True, generator=np.random.default_rng(7), collate_fn=numpy_collate)
    second = DataLoader(ds, 6, shuffle=True, generator=np.random.default_rng(7), collate_fn=numpy_collate)
    epochs_first = [_indices(first) for _ in range(3)]
    assert epochs_first == [_indices(second) for _ in range(3)]
    for epoch in epochs_first:
        assert sorted(sum(epoch, [])) == list(range(20))  # each epoch is a permutation
    assert epochs_first[0] != epochs_first[1]  # and a new one every epoch
    other_seed = DataLoader(ds, 6, shuffle=True, generator=np.random.default_rng(8), collate_fn=numpy_collate)
    assert _indices(other_seed) != epochs_first[0]


def test_generator_with_numpy_rng_attribute():
    ds = TensorDataset(np.arange(30))
    orders = [_indices(DataLoader(ds, 30, shuffle=True, collate_fn=numpy_collate,
                                  generator=minidl.random.Generator().manual_seed(3)))
              for _ in range(2)]
    assert orders[0] == orders[1] and orders[0] != [list(range(30))]


def test_without_generator_the_global_seed_decides():
    loader = DataLoader(TensorDataset(np.arange(30)), 30, shuffle=True, collate_fn=numpy_collate)
    minidl.random.manual_seed(123)
    first = _indices(loader)
    minidl.random.manual_seed(123)
    assert _indices(loader) == first
    assert _indices(loader) != first  # the global stream moved on


def test_batched_fetch_replaces_per_item_calls():
    class Batched(CountingDataset):
        def __init__(self, n):
            super().__init__(n)
            self.batches = []

        def get_batch(self, indices):
            self.batches.append(np.asarray(indices).tolist())
            return numpy_collate([(np.int64(i), {"tens": 10 * int(i)}) for i in indices])

    ds = Batched(7)
    assert _indices(DataLoader(ds, 3, collate_fn=numpy_collate)) == [[0, 1, 2], [3, 4, 5], [6]]
    assert ds.item_calls == 0 and ds.batches == [[0, 1, 2], [3, 4, 5], [6]]
    # a custom collate_fn must see samples, so the loader goes item by item
    custom = DataLoader(ds, 3, collate_fn=lambda samples: len(samples))
    assert list(custom) == [3, 3, 1] and ds.item_calls == 7


def test_fast_and_per_item_paths_agree():
    rng = np.random.default_rng(0)
    ds = TensorDataset(rng.standard_normal((11, 3)).astype(np.float32), rng.integers(0, 5, 11))
    fast = DataLoader(ds, 4, shuffle=True, generator=np.random.default_rng(1), collate_fn=numpy_collate)
    slow = DataLoader(ds, 4, shuffle=True, generator=np.random.default_rng(1),
                      collate_fn=lambda samples: numpy_collate(samples))
    for (xf, yf), (xs, ys) in zip(fast, slow, strict=True):
        np.testing.assert_array_equal(xf, xs)
        np.testing.assert_array_equal(yf, ys)


def test_pytorch_getitems_hook_is_used():
    class WithGetitems(CountingDataset):
        def __getitems__(self, indices):
            return [(np.int64(-i), {"tens": 0}) for i in indices]

    ds = WithGetitems(4)
    assert _indices(DataLoader(ds, 2, collate_fn=numpy_collate)) == [[0, -1], [-2, -3]]
    assert ds.item_calls == 0


def test_plain_sequence_works_as_a_dataset():
    batches = list(DataLoader([(1, 2.0), (3, 4.0), (5, 6.0)], batch_size=2, collate_fn=numpy_collate))
    np.testing.assert_array_equal(batches[0][0], [1, 3])
    np.testing.assert_array_equal(batches[1][1], [6.0])


def test_batches_never_alias_the_dataset():
    x = np.zeros((4, 2), np.float32)
    xb, = next(iter(DataLoader(TensorDataset(x), 4, collate_fn=numpy_collate)))
    xb += 1
    assert (x == 0).all()


@pytest.mark.parametrize("kwargs, error, words", [
    (dict(batch_size=0), ValueError, ["batch_size", "0"]),
    (dict(batch_size=2.5), ValueError, ["batch_size", "2.5"]),
    (dict(generator=42), TypeError, ["numpy.random.Generator", "int"]),
    (dict(collate_fn="stack"), TypeError, ["collate_fn", "str"]),
])
def test_bad_arguments(kwargs, error, words):
    with pytest.raises(error) as info:
        DataLoader(TensorDataset(np.arange(3)), **kwargs)
    for word in words:
        assert word in str(info.value)


def test_tensor_dataset_validation_and_tensor_input():
    with pytest.raises(ValueError, match=r"same first dimension, got sizes \[3, 4\]"):
        TensorDataset(np.zeros(3), np.zeros(4))
    ds = TensorDataset(Tensor(np.arange(6, dtype=np.float32).reshape(3, 2)), [7, 8, 9])
    x, y = ds[1]
    np.testing.assert_array_equal(x, [2, 3])
    assert y == 8 and len(ds) == 3
