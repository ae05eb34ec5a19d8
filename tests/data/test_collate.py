"""How samples become batches: structure, dtypes, errors, Tensor conversion; torch as reference."""
from collections import namedtuple

import numpy as np
import pytest

from minidl.data import default_collate, numpy_collate
from minidl.tensor import Tensor

torch = pytest.importorskip("torch", reason="PyTorch is the reference these loader tests compare with")
import torch.utils.data  # noqa: E402

Pair = namedtuple("Pair", "image label")


def _samples(n=3):
    rng = np.random.default_rng(0)
    return [{"image": rng.standard_normal((2, 3)).astype(np.float32),
             "meta": (i, f"name{i}", [np.int16(i), True])} for i in range(n)]


def _assert_same_structure(ours, ref):
    """`ours` (NumPy leaves) equals torch's default_collate output `ref` (torch leaves)."""
    if isinstance(ref, torch.Tensor):
        assert isinstance(ours, np.ndarray) and ours.shape == tuple(ref.shape)
        np.testing.assert_array_equal(ours, ref.numpy())
    elif isinstance(ref, dict):
        assert isinstance(ours, dict) and list(ours) == list(ref)
        for key in ref:
            _assert_same_structure(ours[key], ref[key])
    elif isinstance(ref, (list, tuple)):
        # torch turns tuples into lists (and string batches into tuples); we keep tuples.
        assert isinstance(ours, (list, tuple)) and len(ours) == len(ref)
        for a, b in zip(ours, ref):
            _assert_same_structure(a, b)
    else:
        assert ours == ref


def test_nested_structure_matches_torch_default_collate():
    samples = _samples()
    _assert_same_structure(numpy_collate(samples), torch.utils.data.default_collate(samples))
    assert isinstance(numpy_collate(samples)["meta"], tuple)


def test_leaf_dtypes():
    batch = numpy_collate([(np.uint8(1), 2, 0.5, True), (np.uint8(3), 4, 1.5, False)])
    assert [a.dtype for a in batch] == [np.uint8, np.int64, np.float32, np.bool_]
    np.testing.assert_array_equal(batch[2], [0.5, 1.5])


def test_namedtuple_and_list_keep_their_type():
    batch = numpy_collate([Pair(np.zeros(2), 1), Pair(np.ones(2), 2)])
    assert isinstance(batch, Pair) and batch.image.shape == (2, 2)
    np.testing.assert_array_equal(batch.label, [1, 2])
    assert isinstance(numpy_collate([[1, 2], [3, 4]]), list)


def test_strings_stay_a_list():
    assert numpy_collate([("a", 1), ("b", 2)])[0] == ["a", "b"]


@pytest.mark.parametrize("samples, error, words", [
    ([np.zeros(3), np.zeros(4)], ValueError, ["(3,)", "(4,)", "sample 1"]),
    ([(np.zeros(2), 1), (np.zeros(2), 2.5)], TypeError, ["[1]", "int", "float", "sample 1"]),
    ([{"a": 1}, {"b": 1}], ValueError, ["keys", "'a'", "'b'"]),
    ([(1, 2), (1,)], ValueError, ["2 fields", "1"]),
    ([np.zeros(2), [0, 0]], TypeError, ["NumPy array", "list"]),
    ([object()], TypeError, ["object", "collate_fn"]),
    ([], ValueError, ["empty"]),
])
def test_bad_batches_raise_clear_errors(samples, error, words):
    with pytest.raises(error) as info:
        numpy_collate(samples)
    for word in words:
        assert word in str(info.value)


def test_default_collate_gives_minidl_tensors():
    batch = default_collate([(np.full((2,), i, np.float32), i, f"s{i}") for i in range(4)])
    images, labels, names = batch
    assert isinstance(images, Tensor) and isinstance(labels, Tensor)
    assert tuple(images.shape) == (4, 2) and images.dtype.name == "float32"
    assert labels.dtype.name == "int64"
    np.testing.assert_array_equal(labels.numpy(), [0, 1, 2, 3])
    np.testing.assert_array_equal(images.numpy()[:, 0], [0, 1, 2, 3])
    assert names == ["s0", "s1", "s2", "s3"]


def test_tensor_samples_are_stacked():
    samples = [Tensor(np.arange(3, dtype=np.float32) + i) for i in range(2)]
    assert isinstance(numpy_collate(samples), np.ndarray)
    stacked = default_collate(samples)
    assert isinstance(stacked, Tensor)
    np.testing.assert_array_equal(stacked.numpy(), [[0, 1, 2], [1, 2, 3]])


def test_tensor_requiring_grad_is_detached():
    sample = Tensor(np.ones(2, np.float32), requires_grad=True)
    np.testing.assert_array_equal(numpy_collate([sample, sample]), np.ones((2, 2)))
