"""Datasets: things with a length that give one sample per index.

A dataset needs only `__len__` and `__getitem__(i)`. It may also offer
`get_batch(indices) -> batch`: the whole batch for an integer array of indices, already stacked
into NumPy arrays the way `numpy_collate` would stack the samples (new arrays, not views of
the dataset's storage: the Tensors made from them share their memory). The DataLoader prefers
`get_batch` when it uses the default collate: one fancy-indexing call per array per batch
instead of a Python call per sample, which for small samples like MNIST digits is the
difference between seconds and minutes per epoch.
"""
from __future__ import annotations

import math

import numpy as np

from .collate import numpy_collate
from .generator import numpy_generator


class Dataset:
    """Base class: subclasses define `__len__` and `__getitem__`, and may override `get_batch`."""

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__")

    def __len__(self):
        raise NotImplementedError(f"{type(self).__name__} must define __len__")

    def get_batch(self, indices):
        """Samples at `indices`, stacked by numpy_collate. Override with something faster."""
        return numpy_collate(fetch_samples(self, indices))


def fetch_samples(dataset, indices) -> list:
    """The list of samples at `indices`, through `__getitems__` when the dataset has one
    (PyTorch's batched-fetch hook, returning a list of samples), else one by one."""
    getitems = getattr(dataset, "__getitems__", None)
    if getitems is not None:
        return list(getitems([int(i) for i in indices]))
    return [dataset[int(i)] for i in indices]


def _as_array(value, position: int) -> np.ndarray:
    if isinstance(value, np.ndarray):
        return value
    if hasattr(value, "detach") and hasattr(value, "numpy"):  # a minidl Tensor
        return np.asarray(value.detach().numpy())
    array = np.asarray(value)
    if array.ndim == 0:
        raise ValueError(f"TensorDataset: argument {position} is a scalar; every argument needs "
                         f"a first dimension indexing the samples")
    return array


class TensorDataset(Dataset):
    """Samples are rows of arrays that share their first dimension: sample i is
    `(a[i] for a in arrays)`.

    Accepts NumPy arrays, minidl Tensors or array-likes and keeps them as NumPy arrays in
    `.tensors`; samples are NumPy rows, which the DataLoader's default collate turns into
    Tensor batches.
    """

    def __init__(self, *tensors):
        if not tensors:
            raise ValueError("TensorDataset needs at least one array")
        self.tensors = tuple(_as_array(t, i) for i, t in enumerate(tensors))
        sizes = [len(t) for t in self.tensors]
        if len(set(sizes)) > 1:
            raise ValueError(f"TensorDataset: all arrays must have the same first dimension, "
                             f"got sizes {sizes}")

    def __len__(self):
        return len(self.tensors[0])

    def __getitem__(self, index):
        return tuple(t[index] for t in self.tensors)

    def get_batch(self, indices):
        return tuple(t[indices] for t in self.tensors)


class Subset(Dataset):
    """The samples of `dataset` at positions `indices`, in that order."""

    def __init__(self, dataset, indices):
        self.dataset = dataset
        self.indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        n = len(dataset)
        if len(self.indices) and (self.indices.min() < -n or self.indices.max() >= n):
            raise IndexError(f"Subset: indices must lie in [-{n}, {n}) for a dataset of "
                             f"length {n}, got range [{self.indices.min()}, {self.indices.max()}]")

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, index):
        return self.dataset[int(self.indices[index])]

    def get_batch(self, indices):
        inner = self.indices[np.asarray(indices, dtype=np.int64)]
        if hasattr(self.dataset, "get_batch"):
            return self.dataset.get_batch(inner)
        return numpy_collate(fetch_samples(self.dataset, inner))


def _split_sizes(n: int, lengths) -> list[int]:
    """Sizes from counts summing to n, or from fractions summing to 1."""
    lengths = list(lengths)
    if lengths and all(isinstance(x, (int, np.integer)) for x in lengths):
        if any(x < 0 for x in lengths) or sum(lengths) != n:
            raise ValueError(f"random_split: counts must be >= 0 and sum to the dataset length "
                             f"{n}, got {lengths} (sum {sum(lengths)})")
        return [int(x) for x in lengths]
    if lengths and all(isinstance(x, (int, float, np.number)) for x in lengths):
        if any(x < 0 or x > 1 for x in lengths) or not math.isclose(sum(lengths), 1.0, abs_tol=1e-9):
            raise ValueError(f"random_split: fractions must lie in [0, 1] and sum to 1, got "
                             f"{lengths} (sum {sum(lengths)})")
        sizes = [math.floor(n * f) for f in lengths]
        for i in range(n - sum(sizes)):  # hand out the rounding remainder one by one
            sizes[i % len(sizes)] += 1
        return sizes
    raise ValueError(f"random_split: lengths must be a non-empty list of ints (counts) or of "
                     f"floats (fractions), got {lengths!r}")


def random_split(dataset, lengths, generator=None) -> list[Subset]:
    """Split `dataset` into non-overlapping random Subsets of the given lengths.

    `lengths` holds counts summing to len(dataset), or fractions summing to 1 (floored, then
    the remainder spread one by one from the first split on, as PyTorch does).
    """
    sizes = _split_sizes(len(dataset), lengths)
    order = numpy_generator(generator).permutation(len(dataset))
    bounds = np.cumsum([0] + sizes)
    return [Subset(dataset, order[start:stop]) for start, stop in zip(bounds[:-1], bounds[1:])]
