"""Small generated dataset files for the minidl.data tests.

The IDX writer below follows the format description (big-endian uint32 header: magic, then
one size per dimension, then the values), independently of minidl's reader.
"""
import gzip
import hashlib
import struct

import numpy as np
import pytest

from minidl.data import MNIST, FashionMNIST

IDX_TYPE_CODES = {np.dtype("uint8"): 0x08, np.dtype("int8"): 0x09, np.dtype(">i2"): 0x0B,
                  np.dtype(">i4"): 0x0C, np.dtype(">f4"): 0x0D, np.dtype(">f8"): 0x0E}


def idx_bytes(array, magic=None):
    """Decompressed IDX bytes of `array`; `magic` overrides the computed magic number."""
    array = np.asarray(array)
    big_endian = array.dtype.newbyteorder(">") if array.dtype.itemsize > 1 else array.dtype
    if magic is None:
        magic = (IDX_TYPE_CODES[big_endian] << 8) | array.ndim
    header = struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(big_endian).tobytes()


def write_gz(path, payload: bytes):
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wb") as f:
        f.write(payload)
    return path


def sha256_hex(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_idx_dataset(folder, n_train=12, n_test=5, seed=0):
    """Write the four MNIST-style files into `folder`; return {file name: array}."""
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte.gz": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte.gz": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    for name, array in arrays.items():
        write_gz(folder / name, idx_bytes(array))
    return arrays


class IdxFiles:
    """The helpers above, handed to tests through the `idx_files` fixture."""
    bytes = staticmethod(idx_bytes)
    write_gz = staticmethod(write_gz)
    sha256 = staticmethod(sha256_hex)
    make_dataset = staticmethod(make_idx_dataset)


@pytest.fixture
def idx_files():
    return IdxFiles()


@pytest.fixture
def tiny_mnist(tmp_path, monkeypatch):
    """A root holding generated mnist/ and fashion-mnist/ files whose SHA-256 values the
    dataset classes are told to expect. Returns (root, {file name: array})."""
    arrays = make_idx_dataset(tmp_path / "mnist")
    make_idx_dataset(tmp_path / "fashion-mnist")  # same seed: same arrays
    for cls in (MNIST, FashionMNIST):
        hashes = {name: sha256_hex(tmp_path / cls.folder / name) for name in arrays}
        monkeypatch.setattr(cls, "sha256", hashes)
    return tmp_path, arrays
