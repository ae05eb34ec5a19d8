"""embedding against PyTorch: repeated indices accumulate, padding_idx rows get no gradient."""
import numpy as np
import pytest

import minidl
from nn_harness import (DTYPES, Case, check_against_torch, check_gradcheck,
                        check_gradgradcheck, const, ids, randn, torch)

REPEATED = const(np.array([[1, 2, 2], [6, 0, 2]]))

CASES = [
    Case("embedding_repeated", lambda F, i, w: F.embedding(i, w), [REPEATED, randn(7, 4)],
         gradgrad=True),
    Case("embedding_1d_indices", lambda F, i, w: F.embedding(i, w),
         [const(np.array([3, 3, 3, 0])), randn(5, 2)]),
    Case("embedding_3d_indices", lambda F, i, w: F.embedding(i, w),
         [const(np.arange(12).reshape(2, 3, 2) % 5), randn(5, 3)]),
    # padding_idx / scale_grad_by_freq change the gradient on purpose: no finite differences
    Case("embedding_padding_idx", lambda F, i, w: F.embedding(i, w, padding_idx=2),
         [REPEATED, randn(7, 4)], gradcheck=False),
    Case("embedding_negative_padding_idx", lambda F, i, w: F.embedding(i, w, padding_idx=-1),
         [REPEATED, randn(7, 4)], gradcheck=False),
    Case("embedding_scale_grad_by_freq",
         lambda F, i, w: F.embedding(i, w, scale_grad_by_freq=True), [REPEATED, randn(7, 4)],
         gradcheck=False),
    Case("embedding_max_norm", lambda F, i, w: F.embedding(i, w, max_norm=1.0),
         [REPEATED, randn(7, 4)], gradcheck=False),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_matches_torch(case, dtype, device):
    check_against_torch(case, dtype, device)


GRADCHECK = [c for c in CASES if c.gradcheck]
GRADGRAD = [c for c in CASES if c.gradgrad]


@pytest.mark.parametrize("case", GRADCHECK, ids=ids(GRADCHECK))
def test_gradcheck(case):
    check_gradcheck(case)


@pytest.mark.parametrize("case", GRADGRAD, ids=ids(GRADGRAD))
def test_gradgradcheck(case):
    check_gradgradcheck(case)


def test_max_norm_renormalises_the_table_in_place_like_pytorch():
    rng = np.random.default_rng(0)
    table = rng.standard_normal((6, 3)) * 2
    idx = np.array([0, 4, 4])
    ours = minidl.tensor(table, requires_grad=True)
    theirs = torch.tensor(table, requires_grad=True)
    minidl.nn.functional.embedding(minidl.tensor(idx), ours, max_norm=1.5)
    torch.nn.functional.embedding(torch.tensor(idx), theirs, max_norm=1.5)
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-12)
    untouched = [1, 2, 3, 5]
    np.testing.assert_array_equal(ours.detach().numpy()[untouched], table[untouched])


def test_padding_row_gets_zero_gradient_and_others_accumulate():
    w = minidl.ones(4, 2, requires_grad=True)
    out = minidl.nn.functional.embedding(minidl.tensor([[1, 1, 0], [3, 1, 0]]), w, padding_idx=0)
    out.sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), [[0, 0], [3, 3], [0, 0], [1, 1]])


@pytest.mark.parametrize("index_dtype", [np.int64, np.int32, np.int16, np.int8, np.uint8])
def test_index_dtypes_and_range_check(index_dtype):
    """The range check views signed indices as unsigned (one pass for both ends): every
    integer dtype, negative and too-large indices, and a 0-d index."""
    table = minidl.tensor(np.arange(10, dtype=np.float32).reshape(5, 2))
    idx = minidl.tensor(np.array([[4, 0], [2, 2]], dtype=index_dtype))
    np.testing.assert_array_equal(minidl.nn.functional.embedding(idx, table).numpy(),
                                  table.numpy()[idx.numpy()])
    scalar = minidl.tensor(np.array(3, dtype=index_dtype))
    np.testing.assert_array_equal(minidl.nn.functional.embedding(scalar, table).numpy(), [6, 7])
    bad = [5] if np.dtype(index_dtype).kind == "u" else [-1, 5]
    for value in bad:
        with pytest.raises(IndexError, match=f"index {value} is out of range for a table with "
                                             f"5 rows"):
            minidl.nn.functional.embedding(
                minidl.tensor(np.array([0, value, 1], dtype=index_dtype)), table)


def test_lookup_without_recording_makes_no_graph_node():
    table = minidl.tensor(np.ones((4, 3), np.float32), requires_grad=True)
    idx = minidl.tensor(np.array([1, 3]))
    with minidl.no_grad():
        out = minidl.nn.functional.embedding(idx, table)
    assert out.grad_fn is None and not out.requires_grad
    frozen = minidl.tensor(np.ones((4, 3), np.float32))
    assert minidl.nn.functional.embedding(idx, frozen).grad_fn is None
    out = minidl.nn.functional.embedding(idx, table)
    assert out.requires_grad and out.grad_fn is not None
    out.sum().backward()
    np.testing.assert_array_equal(table.grad.numpy(), [[0] * 3, [1] * 3, [0] * 3, [1] * 3])
