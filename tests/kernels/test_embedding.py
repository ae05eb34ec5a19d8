"""Embedding-backward kernels (atomic and sorted/deterministic) against a float64 loop."""
from __future__ import annotations

import numpy as np
import pytest

from minidl.backend.cuda.registry import ShapeLimitError, versions

from kernel_test_helpers import assert_close

CASES = [  # (id, indices shape, num_embeddings, D, padding_idx)
    ("one index", (1,), 1, 1, None),
    ("batch of sequences, repeats", (4, 9), 7, 5, None),
    ("D above a block, padding row", (3, 11), 13, 300, 2),
    ("negative padding_idx counts from the end", (50,), 6, 33, -1),
    ("every position the same index", (2, 40), 3, 7, None),
    ("empty batch", (0, 3), 4, 6, None),
]


def embedding_grad_ref(indices, dy, num_embeddings, padding_idx):
    """Python loop over positions, float64."""
    dim = dy.shape[-1]
    out = np.zeros((num_embeddings, dim))
    for position, row in zip(indices.reshape(-1), dy.reshape(-1, dim).astype(np.float64)):
        out[row_index(position, num_embeddings)] += row
    if padding_idx is not None:
        out[padding_idx % num_embeddings] = 0
    return out


def row_index(position, num_embeddings):
    return int(position) % num_embeddings


def _inputs(rng, case, dtype):
    _, shape, num, dim, pad = case
    indices = rng.integers(0, num, shape)
    if case[0].startswith("every position"):
        indices[...] = 1
    dy = rng.standard_normal(shape + (dim,)).astype(dtype)
    return indices, dy, num, pad


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("version,block", [(v, b) for v in versions("embedding_backward") for b in (None, 32)])
def test_versions(dev, rng, version, block, case, dtype):
    indices, dy, num, pad = _inputs(rng, case, dtype)
    got = dev.get(dev.ops.embedding_backward(dev.put(indices), dev.put(dy), num, pad, version=version, block=block))
    assert got.shape == (num, dy.shape[-1])
    counts = np.bincount(indices.reshape(-1), minlength=num).max() if indices.size else 1
    assert_close(got, embedding_grad_ref(indices, dy, num, pad), dtype, scale=10 * np.sqrt(counts))


def test_sorted_version_is_bit_identical_across_schedules_and_index_orders(rng):
    from minidl.backend.cuda_emu import emu_ops, schedule

    ops = emu_ops()
    indices = rng.integers(0, 5, 400)
    dy = rng.standard_normal((400, 17)).astype(np.float32)
    with schedule("forward"):
        first = ops.embedding_backward(indices, dy, 5, None, version=2)
    with schedule("reverse"):
        second = ops.embedding_backward(indices, dy, 5, None, version=2)
    np.testing.assert_array_equal(first, second)
    # the result is a float32 sum in position order within each index: exactly that, bit for bit
    expected = np.zeros((5, 17), np.float32)
    for position, row in zip(indices, dy):
        expected[position] += row
    np.testing.assert_array_equal(first, expected)


def test_matches_torch(dev, rng):
    torch = pytest.importorskip("torch", reason="torch is the optional reference")
    indices, dy, num, pad = _inputs(rng, CASES[2], np.float64)
    weight = torch.zeros(num, dy.shape[-1], dtype=torch.float64, requires_grad=True)
    torch.nn.functional.embedding(torch.tensor(indices), weight, padding_idx=pad).backward(torch.tensor(dy))
    got = dev.get(dev.ops.embedding_backward(dev.put(indices), dev.put(dy), num, pad))
    np.testing.assert_allclose(got, weight.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_bad_inputs_are_rejected_with_clear_errors(dev):
    dy = dev.put(np.zeros((3, 4), np.float32))
    with pytest.raises(IndexError, match="index 9 is out of range for a table with 5 rows"):
        dev.ops.embedding_backward(dev.put(np.array([0, 9, 1])), dy, 5, None)
    with pytest.raises(ValueError, match=r"dy must have shape \(2, 4\) \(indices.shape \+ \(D,\)\), got \(3, 4\)"):
        dev.ops.embedding_backward(dev.put(np.array([0, 1])), dy, 5, None)
    with pytest.raises(TypeError, match="indices must hold integers"):
        dev.ops.embedding_backward(dev.put(np.zeros(3, np.float32)), dy, 5, None)
    with pytest.raises(ShapeLimitError, match="multiple of 32"):
        dev.ops.embedding_backward(dev.put(np.array([0, 1, 2])), dy, 5, None, block=40)
