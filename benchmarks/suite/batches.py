"""Deterministic batches for the parity and speed sections: real data when present, else a
synthetic stand-in of the same shapes (and the row says which).

Both libraries are fed the very same NumPy arrays: batch i is a pure function of the data and
the seed, so a run without PyTorch sees the batches the stored PyTorch curve was made with.
"""
from __future__ import annotations

import numpy as np


class ImageBatches:
    """MNIST-shaped batches: images float32 (B, 1, 28, 28) in [0, 1], labels int64 (B,)."""

    def __init__(self, dataset: str = "mnist", seed: int = 0, train: bool = True):
        self.seed = seed
        self.source, self.missing = dataset, ""
        try:
            from minidl.data import MNIST, FashionMNIST, DatasetError
            cls = {"mnist": MNIST, "fashion-mnist": FashionMNIST}[dataset]
            self.images, self.labels = cls(train=train).arrays()
        except DatasetError as err:      # missing or corrupt files: say so, carry on synthetic
            self.missing = str(err)
            self.source = "synthetic"
            rng = np.random.default_rng(1234)
            self.images = rng.random((2048, 1, 28, 28), dtype=np.float32)
            self.labels = rng.integers(0, 10, 2048).astype(np.int64)
        self.order = np.random.default_rng(seed).permutation(len(self.labels))

    def batch(self, i: int, size: int, flatten: bool = False):
        n = len(self.order)
        idx = self.order[(np.arange(size) + i * size) % n]
        x = self.images[idx]
        return (x.reshape(size, -1) if flatten else x), self.labels[idx]


class TextBatches:
    """Character windows: x, y int64 (B, T), y the next character of x."""

    def __init__(self, block_size: int, seed: int = 0, split: str = "train"):
        self.block_size = block_size
        self.seed = seed
        self.source, self.missing = "tinyshakespeare", ""
        try:
            from minidl.data import TinyShakespeare, DatasetError
            ds = TinyShakespeare(block_size=block_size, split=split)
            self.tokens, self.vocab_size = ds.data, ds.vocab_size
        except DatasetError as err:
            self.missing = str(err)
            self.source = "synthetic"
            self.vocab_size = 65
            self.tokens = np.random.default_rng(1234).integers(0, 65, 50_000).astype(np.int64)

    def batch(self, i: int, size: int):
        rng = np.random.default_rng([self.seed, i])
        starts = rng.integers(0, len(self.tokens) - self.block_size - 1, size)
        offsets = starts[:, None] + np.arange(self.block_size + 1)
        windows = self.tokens[offsets]
        return np.ascontiguousarray(windows[:, :-1]), np.ascontiguousarray(windows[:, 1:])
