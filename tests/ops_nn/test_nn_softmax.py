"""softmax, log_softmax, softmin against PyTorch; first and second derivatives."""
import numpy as np
import pytest

import minidl
from nn_harness import (DTYPES, Case, check_against_torch, check_gradcheck,
                        check_gradgradcheck, ids, randn, torch)


def _float64(F):
    return torch.float64 if F is torch.nn.functional else minidl.float64


CASES = [
    Case("softmax_last", lambda F, x: F.softmax(x, -1), [randn(2, 3, 4)], gradgrad=True),
    Case("softmax_dim0", lambda F, x: F.softmax(x, 0), [randn(3, 4)], gradgrad=True),
    Case("softmax_middle", lambda F, x: F.softmax(x, 1), [randn(2, 3, 2, 2)], gradgrad=True),
    Case("softmax_1d", lambda F, x: F.softmax(x, 0), [randn(5)]),
    Case("softmax_0d", lambda F, x: F.softmax(x, 0), [randn()]),
    Case("softmax_wide_logits", lambda F, x: F.softmax(x, -1), [randn(3, 6, scale=30.0)],
         gradcheck=False),
    Case("log_softmax_last", lambda F, x: F.log_softmax(x, -1), [randn(2, 3, 4)],
         gradgrad=True),
    Case("log_softmax_dim1", lambda F, x: F.log_softmax(x, 1), [randn(2, 3, 4)], gradgrad=True),
    Case("log_softmax_large_logits", lambda F, x: F.log_softmax(x, 1),
         [randn(3, 5, scale=1e4)], gradcheck=False),
    Case("softmin_dim1", lambda F, x: F.softmin(x, 1), [randn(2, 3, 4)]),
    Case("softmax_dtype_arg", lambda F, x: F.softmax(x, 1, dtype=_float64(F)), [randn(2, 3)],
         gradcheck=False),
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


@pytest.mark.parametrize("fn", ["softmax", "log_softmax"])
def test_extreme_logits_stay_finite_in_float32(fn):
    x = minidl.tensor(np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4]], np.float32),
                      requires_grad=True)
    y = getattr(minidl.nn.functional, fn)(x, 1)
    (y * minidl.tensor(np.arange(6, dtype=np.float32).reshape(2, 3))).sum().backward()
    assert np.isfinite(y.detach().numpy()).all()
    assert np.isfinite(x.grad.numpy()).all()


def test_implicit_dim_warns_and_follows_pytorch():
    x = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)
    with pytest.warns(UserWarning, match="Implicit dimension"):
        ours = minidl.nn.functional.softmax(minidl.tensor(x))
    with pytest.warns(UserWarning):
        theirs = torch.nn.functional.softmax(torch.tensor(x))
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6)


def test_integer_input_is_rejected():
    with pytest.raises(TypeError, match="floating point tensor, got minidl.int64"):
        minidl.nn.functional.softmax(minidl.tensor([1, 2, 3]), 0)
