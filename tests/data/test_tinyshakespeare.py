"""TinyShakespeare on a small generated text."""
import hashlib

import numpy as np
import pytest

from minidl.data import DataLoader, DatasetNotFoundError, TinyShakespeare, numpy_collate

TEXT = "To be, or not to be: that is the question.\nWhether 'tis nobler in the mind to suffer\n" * 3


@pytest.fixture
def root(tmp_path, monkeypatch):
    path = tmp_path / "tinyshakespeare" / "input.txt"
    path.parent.mkdir()
    path.write_text(TEXT, encoding="utf-8")
    monkeypatch.setattr(TinyShakespeare, "sha256", hashlib.sha256(TEXT.encode()).hexdigest())
    return tmp_path


def test_vocabulary_and_round_trip(root):
    ds = TinyShakespeare(root, block_size=8)
    assert ds.vocab == sorted(set(TEXT)) and ds.vocab_size == len(set(TEXT))
    assert all(ds.itos[ds.stoi[ch]] == ch for ch in ds.vocab)
    ids = ds.encode("to be")
    assert ids.dtype == np.int64 and ids.tolist() == [ds.stoi[c] for c in "to be"]
    assert ds.decode(ids) == "to be" and ds.decode(ids.tolist()) == "to be"


@pytest.mark.parametrize("split", ["train", "val"])
def test_windows_are_next_character_pairs(root, split):
    block = 5
    ds = TinyShakespeare(root, block_size=block, split=split)
    cut = int(0.9 * len(TEXT))
    part = TEXT[:cut] if split == "train" else TEXT[cut:]
    assert len(ds) == len(part) - block
    for i in (0, 7, len(ds) - 1):
        x, y = ds[i]
        assert x.dtype == np.int64 and x.shape == (block,)
        assert ds.decode(x) == part[i:i + block] and ds.decode(y) == part[i + 1:i + block + 1]


def test_batched_fetch_matches_items(root):
    ds = TinyShakespeare(root, block_size=6)
    loader = DataLoader(ds, 16, shuffle=True, generator=np.random.default_rng(0), collate_fn=numpy_collate)
    x, y = next(iter(loader))
    assert x.shape == y.shape == (16, 6) and x.flags.c_contiguous and y.flags.c_contiguous
    np.testing.assert_array_equal(x[:, 1:], y[:, :-1])  # y is x shifted by one
    order = np.random.default_rng(0).permutation(len(ds))[:16]
    np.testing.assert_array_equal(x, np.stack([ds[int(i)][0] for i in order]))


def test_argument_errors(root):
    with pytest.raises(ValueError, match="'train' or 'val', got 'test'"):
        TinyShakespeare(root, split="test")
    with pytest.raises(ValueError, match="block_size must be a positive int, got 0"):
        TinyShakespeare(root, block_size=0)
    with pytest.raises(ValueError, match="too few for block_size=1000"):
        TinyShakespeare(root, block_size=1000)
    ds = TinyShakespeare(root, block_size=4)
    with pytest.raises(ValueError, match="'Z' is not in the vocabulary"):
        ds.encode("Zounds")
    with pytest.raises(ValueError, match=r"ids must lie in \[0, "):
        ds.decode([ds.vocab_size])


def test_missing_file(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="tinyshakespeare/input.txt"):
        TinyShakespeare(tmp_path)


def test_download(root, tmp_path, monkeypatch):
    monkeypatch.setattr(TinyShakespeare, "mirrors", [(root / "tinyshakespeare").as_uri() + "/"])
    ds = TinyShakespeare(tmp_path / "cache", block_size=4, download=True)
    assert (tmp_path / "cache" / "tinyshakespeare" / "input.txt").read_text() == TEXT
    assert ds.decode(ds[0][0]) == TEXT[:4]
