"""Loss modules against PyTorch's: the same constructor arguments, inputs and targets; the
loss value and the input gradient must agree (float32 and float64, every reduction).

A row: (id, builder taking (nn namespace, array->tensor converter), input maker, target maker).
Makers take (rng, dtype) and return NumPy arrays.
"""
import numpy as np
import pytest

import minidl
import minidl.nn as mnn

from .helpers import assert_close

torch = pytest.importorskip("torch")
tnn = torch.nn
# PyTorch warns that KLDivLoss(reduction='mean') is not the true KL divergence; we test it anyway
pytestmark = pytest.mark.filterwarnings("ignore:reduction. 'mean' divides the total loss")

N, C = 6, 5


def normal(*shape):
    return lambda rng, dtype: rng.standard_normal(shape).astype(dtype)


def probabilities(*shape):
    return lambda rng, dtype: rng.uniform(0.05, 0.95, size=shape).astype(dtype)


def classes(*shape, ignore=None):
    def make(rng, dtype):
        t = rng.integers(0, C, size=shape)
        if ignore is not None:
            t.flat[::3] = ignore  # every third target is ignored
        return t
    return make


def log_probs(*shape):
    def make(rng, dtype):
        x = rng.standard_normal(shape)
        return (x - np.log(np.exp(x).sum(-1, keepdims=True))).astype(dtype)
    return make


def distribution(*shape):
    def make(rng, dtype):
        x = np.exp(rng.standard_normal(shape))
        return (x / x.sum(-1, keepdims=True)).astype(dtype)
    return make


CLASS_WEIGHT = np.linspace(0.5, 2.0, C)

LOSSES = [
    ("mse", lambda nn, T: nn.MSELoss(), normal(N, C), normal(N, C)),
    ("mse_sum", lambda nn, T: nn.MSELoss(reduction="sum"), normal(N, C), normal(N, C)),
    ("mse_none", lambda nn, T: nn.MSELoss(reduction="none"), normal(N, C), normal(N, C)),
    ("l1", lambda nn, T: nn.L1Loss(), normal(N, C), normal(N, C)),
    ("l1_none", lambda nn, T: nn.L1Loss(reduction="none"), normal(3, 4, 2), normal(3, 4, 2)),
    ("smooth_l1", lambda nn, T: nn.SmoothL1Loss(), normal(N, C), normal(N, C)),
    ("smooth_l1_beta", lambda nn, T: nn.SmoothL1Loss(beta=0.5, reduction="sum"), normal(N, C),
     normal(N, C)),
    ("huber", lambda nn, T: nn.HuberLoss(), normal(N, C), normal(N, C)),
    ("huber_delta", lambda nn, T: nn.HuberLoss(delta=0.7, reduction="none"), normal(N, C),
     normal(N, C)),
    ("cross_entropy", lambda nn, T: nn.CrossEntropyLoss(), normal(N, C), classes(N)),
    ("cross_entropy_weight_sum",
     lambda nn, T: nn.CrossEntropyLoss(weight=T(CLASS_WEIGHT), reduction="sum"),
     normal(N, C), classes(N)),
    ("cross_entropy_ignore_index", lambda nn, T: nn.CrossEntropyLoss(ignore_index=-1),
     normal(N, C), classes(N, ignore=-1)),
    ("cross_entropy_weight_ignore_mean",
     lambda nn, T: nn.CrossEntropyLoss(weight=T(CLASS_WEIGHT), ignore_index=2),
     normal(N, C), classes(N, ignore=2)),
    ("cross_entropy_smoothing", lambda nn, T: nn.CrossEntropyLoss(label_smoothing=0.2),
     normal(N, C), classes(N)),
    ("cross_entropy_smoothing_weight_none",
     lambda nn, T: nn.CrossEntropyLoss(weight=T(CLASS_WEIGHT), label_smoothing=0.1,
                                       reduction="none"), normal(N, C), classes(N)),
    ("cross_entropy_probabilities", lambda nn, T: nn.CrossEntropyLoss(), normal(N, C),
     distribution(N, C)),
    ("cross_entropy_spatial", lambda nn, T: nn.CrossEntropyLoss(), normal(2, C, 3, 4),
     classes(2, 3, 4)),
    ("nll", lambda nn, T: nn.NLLLoss(), log_probs(N, C), classes(N)),
    ("nll_weight_ignore", lambda nn, T: nn.NLLLoss(weight=T(CLASS_WEIGHT), ignore_index=0),
     log_probs(N, C), classes(N, ignore=0)),
    ("nll_none", lambda nn, T: nn.NLLLoss(reduction="none"), log_probs(N, C), classes(N)),
    ("bce", lambda nn, T: nn.BCELoss(), probabilities(N, C), probabilities(N, C)),
    ("bce_weight_sum", lambda nn, T: nn.BCELoss(weight=T(np.linspace(0.1, 1, C)),
                                                reduction="sum"),
     probabilities(N, C), probabilities(N, C)),
    ("bce_logits", lambda nn, T: nn.BCEWithLogitsLoss(), normal(N, C), probabilities(N, C)),
    ("bce_logits_pos_weight",
     lambda nn, T: nn.BCEWithLogitsLoss(pos_weight=T(np.linspace(0.5, 3, C)),
                                        weight=T(np.linspace(1, 2, C)), reduction="none"),
     normal(N, C), probabilities(N, C)),
    ("kl_div", lambda nn, T: nn.KLDivLoss(reduction="batchmean"), log_probs(N, C),
     distribution(N, C)),
    ("kl_div_mean", lambda nn, T: nn.KLDivLoss(), log_probs(N, C), distribution(N, C)),
    ("kl_div_log_target", lambda nn, T: nn.KLDivLoss(reduction="sum", log_target=True),
     log_probs(N, C), log_probs(N, C)),
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("row", LOSSES, ids=[r[0] for r in LOSSES])
def test_loss_matches_pytorch(row, dtype, device):
    _, build, make_input, make_target = row
    rng = np.random.default_rng(11)
    x, target = make_input(rng, dtype), make_target(rng, dtype)

    def T_ours(a):
        return minidl.tensor(np.asarray(a, dtype=dtype), device=device)

    def T_theirs(a):
        return torch.tensor(np.asarray(a, dtype=dtype))

    ours, theirs = build(mnn, T_ours), build(tnn, T_theirs)
    x_ours = minidl.tensor(x, device=device, requires_grad=True)
    x_theirs = torch.tensor(x, requires_grad=True)
    loss_ours = ours(x_ours, minidl.tensor(target, device=device))
    loss_theirs = theirs(x_theirs, torch.tensor(target))
    assert loss_ours.dtype.name == dtype
    assert_close(loss_ours, loss_theirs, dtype, "loss")

    upstream = rng.standard_normal(tuple(loss_theirs.shape)).astype(dtype)
    (loss_ours * minidl.tensor(upstream, device=device)).sum().backward()
    loss_theirs.backward(torch.tensor(upstream))
    assert_close(x_ours.grad, x_theirs.grad, dtype, "input grad")


def test_class_weights_are_buffers_that_follow_the_module():
    loss = mnn.CrossEntropyLoss(weight=minidl.tensor(CLASS_WEIGHT, dtype=minidl.float32))
    assert list(loss.state_dict()) == list(tnn.CrossEntropyLoss(
        weight=torch.tensor(CLASS_WEIGHT)).state_dict()) == ["weight"]
    loss.double()
    assert loss.weight.dtype == minidl.float64
    assert list(mnn.BCEWithLogitsLoss(pos_weight=minidl.ones(3)).state_dict()) == ["pos_weight"]


@pytest.mark.parametrize("size_average, reduce, expected", [
    (None, False, "none"), (False, None, "sum"), (True, True, "mean"), (False, False, "none")])
def test_legacy_reduction_arguments(size_average, reduce, expected):
    with pytest.warns(UserWarning, match=f"please use reduction='{expected}' instead"):
        ours = mnn.MSELoss(size_average=size_average, reduce=reduce)
    with pytest.warns(UserWarning):
        theirs = tnn.MSELoss(size_average=size_average, reduce=reduce)
    assert ours.reduction == theirs.reduction == expected


def test_loss_modules_have_no_parameters():
    assert list(mnn.CrossEntropyLoss().parameters()) == []
