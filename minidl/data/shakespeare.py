"""Tiny Shakespeare: 1.1 MB of Shakespeare's plays as one text, for character-level models.

The file is <root>/tinyshakespeare/input.txt (root: see files.py). The vocabulary is the
sorted set of characters of the WHOLE text (65 of them), so both splits share one encoding.
The encoded text is split 90/10 without shuffling: the first 90% of characters is 'train',
the rest 'val' -- shuffling characters would destroy the text.

Sample i of a split is the window starting at character i:
    x = text[i : i + block_size]          the context
    y = text[i + 1 : i + block_size + 1]  the next character at every position of x
both int64 arrays of length block_size. A split of n characters has n - block_size samples
(windows overlap: neighbours share all but one character).
"""
from __future__ import annotations

import numpy as np

from .dataset import Dataset
from .files import DatasetError, ensure_file

TRAIN_FRACTION = 0.9


class TinyShakespeare(Dataset):
    """(x, y) next-character windows of Tiny Shakespeare, with its character vocabulary."""

    folder = "tinyshakespeare"
    file_name = "input.txt"
    mirrors = ["https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/"]
    sha256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"

    def __init__(self, root=None, block_size: int = 128, split: str = "train",
                 download: bool = False, verify: bool = True):
        if split not in ("train", "val"):
            raise ValueError(f"TinyShakespeare: split must be 'train' or 'val', got {split!r}")
        if isinstance(block_size, bool) or not isinstance(block_size, (int, np.integer)) \
                or block_size < 1:
            raise ValueError(f"TinyShakespeare: block_size must be a positive int, "
                             f"got {block_size!r}")
        path = ensure_file(self.file_name, self.folder, root, self.sha256,
                           [base + self.file_name for base in self.mirrors], download, verify,
                           "TinyShakespeare")
        try:
            self.text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as error:
            raise DatasetError(f"TinyShakespeare: {path} is not UTF-8 text ({error})") from error
        self.split = split
        self.block_size = int(block_size)
        self.vocab = sorted(set(self.text))          # list of characters, index = token id
        self.itos = dict(enumerate(self.vocab))      # id -> character
        self.stoi = {ch: i for i, ch in self.itos.items()}  # character -> id

        encoded = self.encode(self.text)
        cut = int(TRAIN_FRACTION * len(encoded))
        self.data = encoded[:cut] if split == "train" else encoded[cut:]  # int64 token ids
        if len(self.data) <= self.block_size:
            raise ValueError(f"TinyShakespeare: the {split} split has {len(self.data)} "
                             f"characters, too few for block_size={self.block_size}; "
                             f"use a block_size below {len(self.data)}")
        # All windows of length block_size + 1 as one strided view (no copy):
        # windows[i] = data[i : i + block_size + 1]; x is its head, y its tail.
        self._windows = np.lib.stride_tricks.sliding_window_view(self.data, self.block_size + 1)

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def encode(self, text: str) -> np.ndarray:
        """Token ids (int64) of `text`; every character must be in the vocabulary."""
        try:
            return np.array([self.stoi[ch] for ch in text], dtype=np.int64)
        except KeyError as error:
            raise ValueError(f"TinyShakespeare.encode: character {error.args[0]!r} is not in the "
                             f"vocabulary of {self.vocab_size} characters") from None

    def decode(self, ids) -> str:
        """Text of token ids: a list, a NumPy array or a Tensor (anything with .numpy())."""
        if hasattr(ids, "numpy"):
            ids = ids.numpy()
        ids = np.asarray(ids).reshape(-1)
        if ids.size and (ids.min() < 0 or ids.max() >= self.vocab_size):
            raise ValueError(f"TinyShakespeare.decode: ids must lie in [0, {self.vocab_size}), "
                             f"got range [{ids.min()}, {ids.max()}]")
        return "".join(self.vocab[i] for i in ids.tolist())

    def __len__(self):
        return len(self._windows)

    def __getitem__(self, index):
        window = self._windows[index]
        return window[:-1].copy(), window[1:].copy()

    def get_batch(self, indices):
        windows = self._windows[indices]  # fancy indexing copies: (B, block_size + 1)
        return np.ascontiguousarray(windows[:, :-1]), np.ascontiguousarray(windows[:, 1:])

    def __repr__(self):
        return (f"TinyShakespeare(split={self.split}, block_size={self.block_size}, "
                f"{len(self)} windows, vocab_size={self.vocab_size})")
