"""Datasets and data loading, shaped like torch.utils.data (also importable under that name
as minidl.utils.data).

    from minidl.data import DataLoader, MNIST
    train = MNIST(train=True)                    # files under $MINIDL_DATA/mnist/ (see files.py)
    for images, labels in DataLoader(train, batch_size=64, shuffle=True):
        ...                                      # Tensors (64, 1, 28, 28) float32, (64,) int64

Files: dataset.py (Dataset, TensorDataset, Subset, random_split), loader.py (DataLoader),
collate.py (how samples become batches), generator.py (shuffle randomness), files.py (where
data lives, checksums, downloads), idx.py (the IDX format), mnist.py, shakespeare.py.
"""
from .collate import default_collate, default_convert, numpy_collate
from .dataset import Dataset, Subset, TensorDataset, random_split
from .files import DatasetError, DatasetNotFoundError, download_file, resolve_root, sha256_of
from .idx import parse_idx, read_idx
from .loader import DataLoader
from .mnist import MNIST, FashionMNIST
from .shakespeare import TinyShakespeare

__all__ = [
    "Dataset", "TensorDataset", "Subset", "random_split", "DataLoader",
    "default_collate", "default_convert", "numpy_collate",
    "MNIST", "FashionMNIST", "TinyShakespeare",
    "DatasetError", "DatasetNotFoundError", "resolve_root", "download_file", "sha256_of",
    "read_idx", "parse_idx",
]
