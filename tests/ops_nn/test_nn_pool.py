"""max/avg/adaptive pooling (1-D and 2-D) against PyTorch."""
import pytest

from nn_harness import (DTYPES, Case, check_against_torch, check_gradcheck,
                        check_gradgradcheck, ids, randn)

CASES = [
    Case("max_pool2d_k2", lambda F, x: F.max_pool2d(x, 2), [randn(2, 3, 4, 6)], gradgrad=True),
    Case("max_pool2d_overlap_pad_ceil",
         lambda F, x: F.max_pool2d(x, 3, 2, 1, ceil_mode=True), [randn(2, 2, 7, 8)],
         gradgrad=True),
    Case("max_pool2d_dilation_rect", lambda F, x: F.max_pool2d(x, (2, 3), 1, (1, 0), (2, 1)),
         [randn(1, 2, 6, 7)]),
    Case("max_pool2d_indices", lambda F, x: F.max_pool2d(x, 3, 2, 1, return_indices=True),
         [randn(2, 2, 7, 7)]),
    Case("max_pool2d_unbatched", lambda F, x: F.max_pool2d(x, 2, 1), [randn(3, 4, 5)]),
    Case("avg_pool2d_k2", lambda F, x: F.avg_pool2d(x, 2), [randn(2, 3, 4, 6)], gradgrad=True),
    Case("avg_pool2d_pad_include", lambda F, x: F.avg_pool2d(x, 3, 2, 1), [randn(1, 2, 7, 6)]),
    Case("avg_pool2d_pad_exclude_ceil",
         lambda F, x: F.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False),
         [randn(2, 2, 6, 7)], gradgrad=True),
    Case("avg_pool2d_divisor_override",
         lambda F, x: F.avg_pool2d(x, 3, 2, 1, ceil_mode=True, divisor_override=5),
         [randn(1, 2, 6, 7)]),
    Case("adaptive_avg_pool2d_uneven", lambda F, x: F.adaptive_avg_pool2d(x, (3, 4)),
         [randn(2, 2, 5, 7)], gradgrad=True),
    Case("adaptive_avg_pool2d_global", lambda F, x: F.adaptive_avg_pool2d(x, 1),
         [randn(2, 3, 4, 4)]),
    Case("adaptive_avg_pool2d_keep_dim", lambda F, x: F.adaptive_avg_pool2d(x, (2, None)),
         [randn(3, 5, 3)]),
    Case("max_pool1d", lambda F, x: F.max_pool1d(x, 3, 2, 1), [randn(2, 3, 9)]),
    Case("max_pool1d_indices", lambda F, x: F.max_pool1d(x, 2, return_indices=True),
         [randn(2, 3, 8)]),
    Case("avg_pool1d", lambda F, x: F.avg_pool1d(x, 3, 2, 1, count_include_pad=False),
         [randn(2, 3, 9)]),
    Case("adaptive_avg_pool1d", lambda F, x: F.adaptive_avg_pool1d(x, 4), [randn(2, 3, 9)]),
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
