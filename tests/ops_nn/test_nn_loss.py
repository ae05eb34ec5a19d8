"""Losses against PyTorch: every reduction, weights, ignore_index, label smoothing, shapes."""
import numpy as np
import pytest

import minidl
from nn_harness import (DTYPES, Case, check_against_torch, check_gradcheck,
                        check_gradgradcheck, const, ids, probabilities, rand, randn, torch)

TARGETS5 = const(np.array([0, 3, 1, -100, 2]))          # one ignored row (ignore_index default)
TARGETS_3D = const(np.array([[[0, 1], [3, 3], [2, 1]], [[1, 0], [2, 2], [3, 1]]]))
CLASS_W = rand(4, low=0.2, high=2.0)

CASES = []
for red in ("mean", "sum", "none"):
    CASES += [
        Case(f"mse_{red}", lambda F, x, y, r=red: F.mse_loss(x, y, reduction=r),
             [randn(3, 4), randn(3, 4)], gradgrad=True),
        Case(f"mse_weighted_{red}", lambda F, x, y, w, r=red: F.mse_loss(x, y, reduction=r,
                                                                          weight=w),
             [randn(3, 4), randn(3, 4), rand(3, 4)]),
        Case(f"l1_{red}", lambda F, x, y, r=red: F.l1_loss(x, y, reduction=r),
             [randn(3, 4), randn(3, 4)]),
        Case(f"l1_weighted_{red}", lambda F, x, y, w, r=red: F.l1_loss(x, y, reduction=r,
                                                                        weight=w),
             [randn(3, 4), randn(3, 4), rand(3, 4)]),
        Case(f"smooth_l1_{red}", lambda F, x, y, r=red: F.smooth_l1_loss(x, y, reduction=r,
                                                                          beta=0.7),
             [randn(3, 4), randn(3, 4)], gradgrad=True),
        Case(f"huber_weighted_{red}", lambda F, x, y, w, r=red: F.huber_loss(x, y, r, 0.7, w),
             [randn(3, 4), randn(3, 4), rand(3, 4)], gradgrad=True),
        Case(f"cross_entropy_{red}", lambda F, x, t, r=red: F.cross_entropy(x, t, reduction=r),
             [randn(5, 4), TARGETS5], gradgrad=True),
        Case(f"cross_entropy_weight_smoothing_{red}",
             lambda F, x, t, w, r=red: F.cross_entropy(x, t, w, reduction=r,
                                                       label_smoothing=0.2),
             [randn(5, 4), TARGETS5, CLASS_W], grad=(0,), gradgrad=True),
        Case(f"cross_entropy_probs_{red}",
             lambda F, x, p, w, r=red: F.cross_entropy(x, p, w, reduction=r,
                                                       label_smoothing=0.1),
             [randn(5, 4), probabilities(5, 4), CLASS_W], grad=(0, 1)),
        Case(f"nll_{red}", lambda F, x, t, w, r=red: F.nll_loss(x, t, w, reduction=r),
             [randn(5, 4), TARGETS5, CLASS_W], grad=(0,), gradgrad=True),
        Case(f"bce_{red}", lambda F, x, t, w, r=red: F.binary_cross_entropy(x, t, w,
                                                                            reduction=r),
             [rand(3, 4, low=0.02, high=0.98), rand(3, 4), rand(3, 4)], grad=(0, 1),
             gradgrad=True),
        Case(f"bce_logits_{red}",
             lambda F, x, t, w, pw, r=red: F.binary_cross_entropy_with_logits(
                 x, t, w, reduction=r, pos_weight=pw),
             [randn(3, 4, scale=4.0), rand(3, 4), rand(3, 4), rand(4, low=0.5, high=2)],
             grad=(0, 1), gradgrad=True),
        Case(f"kl_div_{red}", lambda F, x, t, r=red: F.kl_div(x, t, reduction=r),
             [randn(3, 4), rand(3, 4, low=0.1)], gradgrad=True),
    ]

CASES += [
    Case("kl_div_batchmean", lambda F, x, t: F.kl_div(x, t, reduction="batchmean"),
         [randn(3, 4), rand(3, 4, low=0.1)]),
    Case("kl_div_log_target", lambda F, x, t: F.kl_div(x, t, reduction="batchmean",
                                                       log_target=True),
         [randn(3, 4), randn(3, 4)], gradgrad=True),
    Case("kl_div_zero_targets", lambda F, x, t: F.kl_div(x, t, reduction="sum"),
         [randn(2, 3), const(np.array([[0.0, 0.5, 0.5], [1.0, 0.0, 0.0]]))], grad=(0,)),
    Case("smooth_l1_beta0_is_l1", lambda F, x, y: F.smooth_l1_loss(x, y, beta=0.0),
         [randn(3, 4), randn(3, 4)]),
    Case("cross_entropy_spatial_ignore",
         lambda F, x, t, w: F.cross_entropy(x, t, w, ignore_index=1),
         [randn(2, 4, 3, 2), TARGETS_3D, CLASS_W], grad=(0,)),
    Case("cross_entropy_spatial_none",
         lambda F, x, t: F.cross_entropy(x, t, reduction="none", label_smoothing=0.3),
         [randn(2, 4, 3, 2), TARGETS_3D]),
    Case("cross_entropy_unbatched", lambda F, x, t: F.cross_entropy(x, t),
         [randn(4), const(np.array(2))]),
    Case("cross_entropy_unbatched_none", lambda F, x, t: F.cross_entropy(x, t, reduction="none"),
         [randn(4), const(np.array(1))]),
    Case("cross_entropy_probs_spatial", lambda F, x, p: F.cross_entropy(x, p),
         [randn(2, 4, 3), probabilities(2, 4, 3)]),
    Case("cross_entropy_probs_unbatched", lambda F, x, p: F.cross_entropy(x, p),
         [randn(4), probabilities(4, axis=0)]),
    Case("cross_entropy_extreme_logits", lambda F, x, t: F.cross_entropy(x, t),
         [const(np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 3.0], [5e3, 5e3, -1e4]])),
          const(np.array([1, 1, 0]))], gradcheck=False),
    Case("nll_spatial", lambda F, x, t: F.nll_loss(x, t, ignore_index=3),
         [randn(2, 4, 3, 2), TARGETS_3D]),
    Case("bce_saturated_log_clamp", lambda F, x, t: F.binary_cross_entropy(x, t),
         [const(np.array([0.0, 1.0, 0.5, 1e-30])), const(np.array([1.0, 0.0, 0.5, 1.0]))],
         grad=(), gradcheck=False),
    Case("bce_logits_large", lambda F, x, t: F.binary_cross_entropy_with_logits(x, t),
         [const(np.array([-200.0, -30.0, 0.0, 30.0, 200.0])), rand(5)]),
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


def test_cross_entropy_weighted_mean_is_divided_by_the_kept_weights():
    """The PyTorch rule, against a plain NumPy float64 formula."""
    rng = np.random.default_rng(0)
    z, w = rng.standard_normal((6, 3)), rng.uniform(0.5, 2, 3)
    t = np.array([0, 2, 2, 1, -100, 0])
    loss = minidl.nn.functional.cross_entropy(minidl.tensor(z), minidl.tensor(t),
                                              minidl.tensor(w)).item()
    logp = z - np.log(np.exp(z).sum(1, keepdims=True))
    kept = t != -100
    rows = np.arange(6)[kept]
    expected = -(w[t[kept]] * logp[rows, t[kept]]).sum() / w[t[kept]].sum()
    assert loss == pytest.approx(expected, rel=1e-12)


def test_cross_entropy_extreme_logits_are_finite_in_float32():
    z = minidl.tensor(np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 0.0]], np.float32),
                      requires_grad=True)
    loss = minidl.nn.functional.cross_entropy(z, minidl.tensor([1, 2]))
    loss.backward()
    assert loss.item() == pytest.approx((2e4 + 1e4) / 2, rel=1e-6)
    assert np.isfinite(z.grad.numpy()).all()


def test_cross_entropy_all_ignored_mean_is_nan_like_pytorch():
    z = np.random.default_rng(0).standard_normal((2, 3))
    t = np.array([-100, -100])
    ours = minidl.nn.functional.cross_entropy(minidl.tensor(z), minidl.tensor(t)).item()
    theirs = torch.nn.functional.cross_entropy(torch.tensor(z), torch.tensor(t)).item()
    assert np.isnan(ours) and np.isnan(theirs)


def test_legacy_size_average_and_reduce_flags_map_to_reduction():
    x, y = minidl.tensor([1.0, 2.0, 4.0]), minidl.tensor([0.0, 0.0, 0.0])
    F = minidl.nn.functional
    with pytest.warns(UserWarning, match="size_average and reduce"):
        assert F.mse_loss(x, y, size_average=False).item() == 21.0
    with pytest.warns(UserWarning):
        assert F.mse_loss(x, y, reduce=False).shape == (3,)
