"""conv1d/conv2d/conv_transpose1d/2d, unfold and fold against PyTorch."""
import warnings

import pytest

from nn_harness import (DTYPES, Case, check_against_torch, check_gradcheck,
                        check_gradgradcheck, ids, randn)

TOL = dict(rtol=1e-4, atol=1e-4)  # float32 sums of dozens of products

CASES = [
    Case("conv2d_basic", lambda F, x, w, b: F.conv2d(x, w, b),
         [randn(2, 3, 5, 5), randn(4, 3, 3, 3), randn(4)], gradgrad=True, tol32=TOL),
    Case("conv2d_stride_pad_dilation",
         lambda F, x, w, b: F.conv2d(x, w, b, stride=(2, 1), padding=(1, 2), dilation=(1, 2)),
         [randn(2, 2, 7, 6), randn(3, 2, 3, 2), randn(3)], tol32=TOL),
    Case("conv2d_groups", lambda F, x, w: F.conv2d(x, w, None, 1, 1, 1, 2),
         [randn(2, 4, 5, 4), randn(6, 2, 3, 3)], gradgrad=True, tol32=TOL),
    Case("conv2d_depthwise", lambda F, x, w, b: F.conv2d(x, w, b, padding=1, groups=3),
         [randn(1, 3, 4, 4), randn(3, 1, 3, 3), randn(3)], tol32=TOL),
    Case("conv2d_same_odd_kernel", lambda F, x, w: F.conv2d(x, w, padding="same"),
         [randn(1, 2, 5, 6), randn(3, 2, 3, 3)], tol32=TOL),
    Case("conv2d_same_even_kernel_dilated",
         lambda F, x, w: F.conv2d(x, w, padding="same", dilation=(1, 3)),
         [randn(1, 2, 5, 7), randn(2, 2, 2, 2)], tol32=TOL),
    Case("conv2d_valid", lambda F, x, w: F.conv2d(x, w, padding="valid", stride=2),
         [randn(2, 2, 6, 5), randn(2, 2, 2, 2)], tol32=TOL),
    Case("conv2d_unbatched", lambda F, x, w, b: F.conv2d(x, w, b, padding=1),
         [randn(2, 4, 4), randn(3, 2, 3, 3), randn(3)], tol32=TOL),
    Case("conv2d_1x1", lambda F, x, w: F.conv2d(x, w), [randn(2, 3, 3, 4), randn(5, 3, 1, 1)],
         tol32=TOL),
    Case("conv1d_basic", lambda F, x, w, b: F.conv1d(x, w, b, stride=2, padding=2),
         [randn(2, 3, 9), randn(4, 3, 3), randn(4)], gradgrad=True, tol32=TOL),
    Case("conv1d_same_groups_dilation",
         lambda F, x, w: F.conv1d(x, w, padding="same", dilation=2, groups=2),
         [randn(2, 4, 8), randn(4, 2, 4)], tol32=TOL),
    Case("conv1d_unbatched", lambda F, x, w: F.conv1d(x, w), [randn(3, 7), randn(2, 3, 3)],
         tol32=TOL),
    Case("conv_transpose2d_basic", lambda F, x, w, b: F.conv_transpose2d(x, w, b),
         [randn(2, 3, 4, 4), randn(3, 2, 3, 3), randn(2)], gradgrad=True, tol32=TOL),
    Case("conv_transpose2d_stride_outpad",
         lambda F, x, w, b: F.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1),
         [randn(2, 3, 3, 4), randn(3, 2, 3, 3), randn(2)], gradgrad=True, tol32=TOL),
    Case("conv_transpose2d_groups_dilation",
         lambda F, x, w: F.conv_transpose2d(x, w, None, (2, 3), (1, 0), (1, 2), 2, (1, 2)),
         [randn(1, 4, 3, 3), randn(4, 3, 3, 2)], tol32=TOL),
    Case("conv_transpose2d_unbatched", lambda F, x, w: F.conv_transpose2d(x, w, stride=2),
         [randn(2, 3, 3), randn(2, 1, 2, 2)], tol32=TOL),
    Case("conv_transpose1d", lambda F, x, w, b: F.conv_transpose1d(x, w, b, 2, 1, 1),
         [randn(2, 3, 5), randn(3, 4, 3), randn(4)], tol32=TOL),
    Case("unfold", lambda F, x: F.unfold(x, (2, 3), dilation=1, padding=1, stride=2),
         [randn(2, 3, 5, 6)], gradgrad=True),
    Case("fold", lambda F, x: F.fold(x, (5, 6), (2, 3), padding=1, stride=2),
         [randn(2, 18, 9)], gradgrad=True),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_matches_torch(case, dtype, device):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PyTorch warns about 'same' with even kernels
        check_against_torch(case, dtype, device)


GRADCHECK = [c for c in CASES if c.gradcheck]
GRADGRAD = [c for c in CASES if c.gradgrad]


@pytest.mark.parametrize("case", GRADCHECK, ids=ids(GRADCHECK))
def test_gradcheck(case):
    check_gradcheck(case)


@pytest.mark.parametrize("case", GRADGRAD, ids=ids(GRADGRAD))
def test_gradgradcheck(case):
    check_gradgradcheck(case)
