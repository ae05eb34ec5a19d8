"""DataLoader: iterate over a dataset in batches, in order or shuffled, epoch after epoch."""
from __future__ import annotations

import numpy as np

from .collate import default_collate, default_convert, numpy_collate
from .dataset import fetch_samples
from .generator import numpy_generator


class DataLoader:
    """Batches of `dataset`, as PyTorch's DataLoader (single process, map-style datasets).

    batch_size  samples per batch; the last batch is smaller unless drop_last=True drops it.
    shuffle     a new random order at the start of every epoch (every `iter(loader)`).
    generator   where shuffle orders come from: a numpy.random.Generator or an object with a
                `.numpy_rng` one; default: seeded from minidl's (or NumPy's) global state.
    collate_fn  turns a list of samples into a batch; default `default_collate` (Tensors).
                `numpy_collate` gives NumPy arrays.

    With either of those two collate functions and a dataset that has `get_batch(indices)`,
    each batch is fetched in one call instead of sample by sample.
    """

    def __init__(self, dataset, batch_size: int = 1, shuffle: bool = False,
                 collate_fn=None, drop_last: bool = False, generator=None):
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
                or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be a positive int, got {batch_size!r}")
        if collate_fn is not None and not callable(collate_fn):
            raise TypeError(f"DataLoader: collate_fn must be callable, got "
                            f"{type(collate_fn).__name__}")
        if generator is not None:
            numpy_generator(generator)  # fail now on a bad generator, not at the first epoch
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.collate_fn = collate_fn if collate_fn is not None else default_collate
        self.drop_last = bool(drop_last)
        self.generator = generator

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def _order(self) -> np.ndarray:
        n = len(self.dataset)
        if self.shuffle:
            return numpy_generator(self.generator).permutation(n)
        return np.arange(n)

    def _fetch(self, indices: np.ndarray):
        batched = self.collate_fn in (default_collate, numpy_collate) \
            and callable(getattr(self.dataset, "get_batch", None))
        if batched:
            batch = self.dataset.get_batch(indices)
            return default_convert(batch) if self.collate_fn is default_collate else batch
        return self.collate_fn(fetch_samples(self.dataset, indices))

    def __iter__(self):
        order = self._order()
        for batch in range(len(self)):
            yield self._fetch(order[batch * self.batch_size:(batch + 1) * self.batch_size])

    def __repr__(self) -> str:
        return (f"DataLoader({type(self.dataset).__name__} of {len(self.dataset)}, "
                f"batch_size={self.batch_size}, shuffle={self.shuffle}, "
                f"drop_last={self.drop_last})")
