"""The published files, when MINIDL_DATA points at a folder holding them
(e.g. MINIDL_DATA=/work/shared/data). Expected values come from the publishers' descriptions."""
import gzip
import hashlib
import os
from pathlib import Path

import numpy as np
import pytest

from minidl.data import MNIST, DataLoader, FashionMNIST, TinyShakespeare

ROOT = os.environ.get("MINIDL_DATA")
pytestmark = pytest.mark.skipif(not ROOT, reason="set MINIDL_DATA to a folder holding the real datasets")

PUBLISHED_SHA256 = {
    "mnist/train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "mnist/train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "mnist/t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "mnist/t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    "fashion-mnist/train-images-idx3-ubyte.gz": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
    "fashion-mnist/train-labels-idx1-ubyte.gz": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
    "fashion-mnist/t10k-images-idx3-ubyte.gz": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
    "fashion-mnist/t10k-labels-idx1-ubyte.gz": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
    "tinyshakespeare/input.txt": "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
}


@pytest.mark.parametrize("name", sorted(PUBLISHED_SHA256))
def test_checksums(name):
    assert hashlib.sha256((Path(ROOT) / name).read_bytes()).hexdigest() == PUBLISHED_SHA256[name]


@pytest.mark.parametrize("cls", [MNIST, FashionMNIST])
@pytest.mark.parametrize("train, n", [(True, 60000), (False, 10000)])
def test_idx_datasets(cls, train, n):
    ds = cls(train=train)
    assert ds.data.shape == (n, 28, 28) and ds.data.dtype == np.uint8
    assert ds.targets.shape == (n,) and ds.targets.dtype == np.int64
    assert set(np.unique(ds.targets).tolist()) == set(range(10))  # labels 0..9, all present
    # against a direct read of the bytes: labels start after the 8-byte header
    prefix = "train" if train else "t10k"
    raw = gzip.decompress((Path(ROOT) / cls.folder / f"{prefix}-labels-idx1-ubyte.gz").read_bytes())
    np.testing.assert_array_equal(ds.targets, np.frombuffer(raw, np.uint8, offset=8))


def test_mnist_known_first_labels_and_statistics():
    train = MNIST(train=True)
    assert train.targets[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    for cls in (MNIST, FashionMNIST):
        images, _ = cls(train=True).arrays(standardize=True)
        assert abs(float(images.mean())) < 1e-3 and abs(float(images.std()) - 1) < 1e-3


def test_loader_epoch_over_mnist_test_set():
    loader = DataLoader(MNIST(train=False), batch_size=1000)
    seen = 0
    for images, labels in loader:
        assert tuple(images.shape) == (1000, 1, 28, 28) and images.dtype.name == "float32"
        assert 0.0 <= float(images.numpy().min()) and float(images.numpy().max()) <= 1.0
        seen += len(labels.numpy())
    assert seen == 10000


def test_tinyshakespeare():
    train = TinyShakespeare(block_size=64, split="train")
    val = TinyShakespeare(block_size=64, split="val")
    assert len(train.text) == 1115394 and train.vocab_size == 65
    assert len(train.data) == int(0.9 * 1115394) and len(train.data) + len(val.data) == 1115394
    assert train.decode(train[0][0]).startswith("First Citizen:")
    assert len(train) == len(train.data) - 64
