"""MNIST / FashionMNIST on small generated IDX files (see conftest.py)."""
import numpy as np
import pytest

from minidl.data import (MNIST, DataLoader, DatasetError, DatasetNotFoundError, FashionMNIST,
                         numpy_collate)


@pytest.mark.parametrize("cls", [MNIST, FashionMNIST])
@pytest.mark.parametrize("train, prefix", [(True, "train"), (False, "t10k")])
def test_raw_arrays(tiny_mnist, cls, train, prefix):
    root, arrays = tiny_mnist
    ds = cls(root, train=train)
    images, labels = arrays[f"{prefix}-images-idx3-ubyte.gz"], arrays[f"{prefix}-labels-idx1-ubyte.gz"]
    assert ds.data.dtype == np.uint8 and ds.targets.dtype == np.int64
    np.testing.assert_array_equal(ds.data, images)
    np.testing.assert_array_equal(ds.targets, labels)
    assert len(ds) == len(labels) and len(ds.classes) == 10


def test_item_is_a_unit_scaled_channel_first_image(tiny_mnist):
    root, arrays = tiny_mnist
    ds = MNIST(root)
    image, label = ds[3]
    assert image.shape == (1, 28, 28) and image.dtype == np.float32
    np.testing.assert_allclose(image[0], arrays["train-images-idx3-ubyte.gz"][3] / 255.0, rtol=1e-6)
    assert type(label) is int and label == arrays["train-labels-idx1-ubyte.gz"][3]


def test_batch_fetch_matches_item_by_item(tiny_mnist):
    ds = MNIST(tiny_mnist[0])
    indices = np.array([5, 0, 11, 5])
    fast = ds.get_batch(indices)
    slow = numpy_collate([ds[int(i)] for i in indices])
    for a, b in zip(fast, slow):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)


def test_transforms_apply_per_sample_in_the_loader_too(tiny_mnist):
    root, arrays = tiny_mnist
    ds = MNIST(root, transform=lambda img: img.reshape(-1) * 2, target_transform=lambda y: y + 100)
    image, label = ds[0]
    assert image.shape == (784,) and label == arrays["train-labels-idx1-ubyte.gz"][0] + 100
    images, labels = next(iter(DataLoader(ds, batch_size=4, collate_fn=numpy_collate)))
    assert images.shape == (4, 784)
    np.testing.assert_allclose(images[1], arrays["train-images-idx3-ubyte.gz"][1].reshape(-1) / 255 * 2,
                               rtol=1e-6)
    np.testing.assert_array_equal(labels, arrays["train-labels-idx1-ubyte.gz"][:4].astype(np.int64) + 100)


def test_whole_arrays(tiny_mnist):
    root, arrays = tiny_mnist
    raw = arrays["train-images-idx3-ubyte.gz"].astype(np.float64)
    images, labels = MNIST(root).arrays(flatten=True)
    assert images.shape == (12, 784) and images.dtype == np.float32 and labels.dtype == np.int64
    np.testing.assert_allclose(images, raw.reshape(12, -1) / 255, rtol=1e-6)
    standard, _ = FashionMNIST(root).arrays(standardize=True)
    assert standard.shape == (12, 1, 28, 28) and standard.dtype == np.float32
    np.testing.assert_allclose(standard[:, 0], (raw / 255 - 0.2860) / 0.3530, rtol=1e-5, atol=1e-5)


def test_root_from_environment(tiny_mnist, monkeypatch):
    monkeypatch.setenv("MINIDL_DATA", str(tiny_mnist[0]))
    assert len(MNIST(train=False)) == 5


def test_missing_files_error(tmp_path):
    with pytest.raises(DatasetNotFoundError) as info:
        FashionMNIST(tmp_path)
    message = str(info.value)
    assert message.startswith("FashionMNIST")
    assert str(tmp_path / "fashion-mnist" / "train-images-idx3-ubyte.gz") in message
    assert "download=True" in message and "MINIDL_DATA" in message


def test_checksum_is_checked_unless_verify_is_false(tiny_mnist, idx_files):
    root, _ = tiny_mnist
    other = np.full((12, 28, 28), 9, np.uint8)  # a valid IDX file, but not the expected one
    idx_files.write_gz(root / "mnist" / "train-images-idx3-ubyte.gz", idx_files.bytes(other))
    with pytest.raises(DatasetError, match="SHA-256"):
        MNIST(root)
    assert (MNIST(root, verify=False).data == 9).all()


def test_count_mismatch_between_images_and_labels(tiny_mnist, idx_files):
    root, _ = tiny_mnist
    idx_files.write_gz(root / "mnist" / "train-labels-idx1-ubyte.gz", idx_files.bytes(np.zeros(11, np.uint8)))
    with pytest.raises(DatasetError, match="12 images but .* 11 labels"):
        MNIST(root, verify=False)


def test_label_out_of_range(tiny_mnist, idx_files):
    root, _ = tiny_mnist
    idx_files.write_gz(root / "mnist" / "train-labels-idx1-ubyte.gz", idx_files.bytes(np.full(12, 10, np.uint8)))
    with pytest.raises(DatasetError, match="label 10, expected labels 0..9"):
        MNIST(root, verify=False)


def test_swapped_files_are_caught_by_the_magic_number(tiny_mnist, idx_files):
    root, arrays = tiny_mnist
    labels = idx_files.bytes(arrays["train-labels-idx1-ubyte.gz"])
    idx_files.write_gz(root / "mnist" / "train-images-idx3-ubyte.gz", labels)
    with pytest.raises(DatasetError, match="magic number 2049.*expected 2051"):
        MNIST(root, verify=False)


def test_download_from_mirror_into_empty_root(tiny_mnist, tmp_path, monkeypatch):
    server, arrays = tiny_mnist
    monkeypatch.setattr(MNIST, "mirrors", [(server / "nowhere").as_uri() + "/",
                                           (server / "mnist").as_uri() + "/"])
    cache = tmp_path / "fresh-cache"
    ds = MNIST(cache, train=False, download=True)
    np.testing.assert_array_equal(ds.data, arrays["t10k-images-idx3-ubyte.gz"])
    assert sorted(p.name for p in (cache / "mnist").iterdir()) == \
        ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
