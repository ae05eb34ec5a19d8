"""layer_norm, rms_norm, batch_norm, group_norm, instance_norm against PyTorch."""
import numpy as np
import pytest

import minidl
from nn_harness import (DTYPES, Case, check_against_torch, check_gradcheck,
                        check_gradgradcheck, const, ids, rand, randn, torch)

MEAN0, VAR0 = const(np.zeros(3)), const(np.ones(3))  # fresh running statistics

CASES = [
    Case("layer_norm_affine", lambda F, x, w, b: F.layer_norm(x, (4,), w, b),
         [randn(2, 3, 4), randn(4), randn(4)], gradgrad=True),
    Case("layer_norm_plain", lambda F, x: F.layer_norm(x, [5], eps=1e-3), [randn(3, 5)],
         gradgrad=True),
    Case("layer_norm_two_trailing_dims", lambda F, x, w, b: F.layer_norm(x, (3, 2), w, b),
         [randn(2, 3, 2), randn(3, 2), randn(3, 2)], gradgrad=True),
    Case("layer_norm_weight_only", lambda F, x, w: F.layer_norm(x, (4,), w),
         [randn(3, 4), randn(4)]),
    # a large common offset: the one-pass E[x^2] - E[x]^2 would lose every digit here
    Case("layer_norm_large_mean", lambda F, x: F.layer_norm(x, (16,)),
         [randn(4, 16, shift=1000.0)], gradcheck=False, tol32=dict(rtol=2e-3, atol=2e-3)),
    Case("rms_norm_affine", lambda F, x, w: F.rms_norm(x, (4,), w, 1e-6),
         [randn(2, 3, 4), randn(4)], gradgrad=True),
    Case("rms_norm_default_eps", lambda F, x: F.rms_norm(x, [2, 3]), [randn(2, 2, 3)]),
    Case("batch_norm_train_2d", lambda F, x, w, b: F.batch_norm(x, None, None, w, b, True),
         [randn(5, 3), randn(3), randn(3)], gradgrad=True),
    Case("batch_norm_train_4d",
         lambda F, x, m, v, w, b: F.batch_norm(x, m, v, w, b, training=True, momentum=0.3),
         [randn(2, 3, 2, 3), MEAN0, VAR0, randn(3), randn(3)], grad=(0, 3, 4),
         gradgrad=True),
    Case("batch_norm_train_3d_no_affine", lambda F, x: F.batch_norm(x, None, None, None, None,
                                                                     True, 0.1, 1e-3),
         [randn(2, 3, 4)]),
    Case("batch_norm_eval", lambda F, x, m, v, w, b: F.batch_norm(x, m, v, w, b, False),
         [randn(2, 3, 2, 2), randn(3), rand(3, low=0.5, high=2.0), randn(3), randn(3)],
         grad=(0, 3, 4), gradgrad=True),
    Case("group_norm_affine", lambda F, x, w, b: F.group_norm(x, 2, w, b),
         [randn(2, 4, 3), randn(4), randn(4)], gradgrad=True),
    Case("group_norm_4d_one_group", lambda F, x: F.group_norm(x, 1, eps=1e-3),
         [randn(2, 3, 2, 2)]),
    Case("instance_norm_affine", lambda F, x, w, b: F.instance_norm(x, weight=w, bias=b),
         [randn(2, 3, 2, 3), randn(3), randn(3)], gradgrad=True),
    Case("instance_norm_running", lambda F, x, m, v: F.instance_norm(x, m, v, momentum=0.2),
         [randn(2, 3, 5), MEAN0, VAR0], grad=(0,)),
    Case("instance_norm_eval_stats",
         lambda F, x, m, v: F.instance_norm(x, m, v, use_input_stats=False),
         [randn(2, 3, 5), randn(3), rand(3, low=0.5, high=2.0)], grad=(0,)),
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


RUNNING = [
    ("batch_norm_2d", (6, 3), lambda F, x, m, v: F.batch_norm(x, m, v, training=True,
                                                               momentum=0.1)),
    ("batch_norm_4d", (4, 3, 2, 5), lambda F, x, m, v: F.batch_norm(x, m, v, training=True,
                                                                     momentum=0.25)),
    ("instance_norm", (4, 3, 6), lambda F, x, m, v: F.instance_norm(x, m, v, momentum=0.3)),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,shape,fn", RUNNING, ids=[r[0] for r in RUNNING])
def test_running_statistics_follow_pytorch(name, shape, fn, dtype):
    """Two training steps: running_mean/var move towards the batch mean and UNBIASED var."""
    rng = np.random.default_rng(0)
    mean0, var0 = rng.standard_normal(3), rng.uniform(0.5, 2.0, 3)
    ours = [minidl.tensor(a.astype(dtype)) for a in (mean0, var0)]
    theirs = [torch.tensor(a.astype(dtype)) for a in (mean0, var0)]
    for _ in range(2):
        x = (rng.standard_normal(shape) * 3 + 1).astype(dtype)
        fn(minidl.nn.functional, minidl.tensor(x), *ours)
        fn(torch.nn.functional, torch.tensor(x), *theirs)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5 if dtype == "float32" else 1e-12)


def test_batch_norm_eval_ignores_the_batch():
    """Evaluation normalises with the running statistics: one sample alone gives the same
    output as inside a batch."""
    rng = np.random.default_rng(1)
    x = minidl.tensor(rng.standard_normal((4, 3)))
    mean, var = minidl.tensor(rng.standard_normal(3)), minidl.tensor(rng.uniform(1, 2, 3))
    F = minidl.nn.functional
    full = F.batch_norm(x, mean, var, training=False).numpy()
    single = F.batch_norm(x[1:2], mean, var, training=False).numpy()
    np.testing.assert_allclose(single[0], full[1], rtol=1e-12)
