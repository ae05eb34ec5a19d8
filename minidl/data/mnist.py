"""MNIST and Fashion-MNIST: 28x28 grayscale images in 10 classes, 60,000 train / 10,000 test.

Each is four gzip-compressed IDX files (format in idx.py) in <root>/mnist/ or
<root>/fashion-mnist/ (root: see files.py). Both load whole into memory (47 MB of uint8 for
the training images) and expose it three ways:

* `ds[i]` -> (image, label): image float32 (1, 28, 28) in [0, 1] -- what torchvision's
  ToTensor() gives -- then passed through `transform`; label an int (through target_transform).
* `ds.data` uint8 (N, 28, 28) and `ds.targets` int64 (N,): the raw arrays.
* `ds.arrays(flatten=False, standardize=False)`: all images as one float32 array, for loops
  over whole arrays, which are far faster than indexing sample by sample in Python.

The DataLoader fetches whole batches through `get_batch`, so iterating it costs one NumPy
indexing call per batch, not one Python call per image (unless a transform is set).
"""
from __future__ import annotations

import numpy as np

from .collate import numpy_collate
from .dataset import Dataset, fetch_samples
from .files import DatasetError, ensure_file
from .idx import IMAGES_MAGIC, LABELS_MAGIC, read_idx


class _IDXClassification(Dataset):
    """Shared code of MNIST and FashionMNIST; subclasses fill in the class attributes."""

    folder: str            # folder under the root
    mirrors: list[str]     # base URLs tried in order by download=True
    sha256: dict[str, str]  # file name -> SHA-256 of the published file
    classes: list[str]
    mean: float            # mean and std of the training pixels scaled to [0, 1],
    std: float             # used by arrays(standardize=True)

    files = {True: ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
             False: ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}

    def __init__(self, root=None, train: bool = True, download: bool = False,
                 transform=None, target_transform=None, verify: bool = True):
        """verify=False skips the SHA-256 check (for your own files in the same format);
        the IDX structure is checked either way."""
        self.train = bool(train)
        self.transform = transform
        self.target_transform = target_transform
        name = type(self).__name__
        images_file, labels_file = self.files[self.train]
        paths = [ensure_file(f, self.folder, root, self.sha256[f],
                             [base + f for base in self.mirrors], download, verify, name)
                 for f in (images_file, labels_file)]
        self.root = paths[0].parent.parent
        images = read_idx(paths[0], IMAGES_MAGIC)
        labels = read_idx(paths[1], LABELS_MAGIC)
        if images.shape[1:] != (28, 28):
            raise DatasetError(f"{name}: {paths[0]} holds images of shape {images.shape[1:]}, "
                               f"expected (28, 28)")
        if len(images) != len(labels):
            raise DatasetError(f"{name}: {paths[0]} holds {len(images)} images but {paths[1]} "
                               f"holds {len(labels)} labels")
        if len(labels) and labels.max() >= len(self.classes):
            raise DatasetError(f"{name}: {paths[1]} has label {labels.max()}, expected labels "
                               f"0..{len(self.classes) - 1}")
        self.data = images                         # uint8 (N, 28, 28)
        self.targets = labels.astype(np.int64)     # int64 (N,)

    def __len__(self):
        return len(self.targets)

    def __getitem__(self, index):
        image = self.data[index][None].astype(np.float32) / np.float32(255)
        label = int(self.targets[index])
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            label = self.target_transform(label)
        return image, label

    def get_batch(self, indices):
        if self.transform is not None or self.target_transform is not None:
            return numpy_collate(fetch_samples(self, indices))  # transforms work per sample
        images = self.data[indices][:, None].astype(np.float32) / np.float32(255)
        return images, self.targets[indices]

    def arrays(self, flatten: bool = False, standardize: bool = False):
        """(images, labels) of the whole split: float32 (N, 1, 28, 28) -- or (N, 784) with
        flatten=True -- scaled to [0, 1], or to zero mean and unit variance over the training
        set with standardize=True; and int64 labels (N,). Transforms are not applied."""
        images = self.data.astype(np.float32) / np.float32(255)
        if standardize:
            images = (images - np.float32(self.mean)) / np.float32(self.std)
        shape = (len(images), 28 * 28) if flatten else (len(images), 1, 28, 28)
        return images.reshape(shape), self.targets.copy()

    def __repr__(self):
        split = "train" if self.train else "test"
        return f"{type(self).__name__}(split={split}, {len(self)} images, root={self.root})"


class MNIST(_IDXClassification):
    """Handwritten digits 0-9 (LeCun, Cortes, Burges)."""

    folder = "mnist"
    mirrors = ["https://ossci-datasets.s3.amazonaws.com/mnist/",
               "https://storage.googleapis.com/cvdf-datasets/mnist/",
               "http://yann.lecun.com/exdb/mnist/"]
    sha256 = {
        "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    }
    classes = [str(digit) for digit in range(10)]
    mean, std = 0.1307, 0.3081


class FashionMNIST(_IDXClassification):
    """Zalando's article images, a drop-in replacement for MNIST (Xiao, Rasul, Vollgraf)."""

    folder = "fashion-mnist"
    mirrors = ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
               "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/"]
    sha256 = {
        "train-images-idx3-ubyte.gz": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        "train-labels-idx1-ubyte.gz": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        "t10k-images-idx3-ubyte.gz": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        "t10k-labels-idx1-ubyte.gz": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
    }
    classes = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
               "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
    mean, std = 0.2860, 0.3530
