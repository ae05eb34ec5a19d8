"""nn.init: fan and gain rules against PyTorch's, and the distributions each function draws
(checked on large tensors: bounds exactly, moments within a few standard errors)."""
import math
import warnings
from contextlib import nullcontext

import numpy as np
import pytest

import minidl
import minidl.nn as mnn
from minidl.nn import init

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("shape", [(5, 3), (8, 4, 3), (16, 3, 5, 5), (2, 6, 1, 2, 3)])
def test_fans_match_pytorch(shape):
    ours = init._calculate_fan_in_and_fan_out(minidl.empty(*shape))
    theirs = torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(*shape))
    assert ours == theirs


@pytest.mark.parametrize("nonlinearity, param", [
    ("linear", None), ("conv2d", None), ("sigmoid", None), ("tanh", None), ("relu", None),
    ("leaky_relu", None), ("leaky_relu", 0.2), ("leaky_relu", math.sqrt(5)), ("selu", None)])
def test_gain_matches_pytorch(nonlinearity, param):
    assert init.calculate_gain(nonlinearity, param) == \
        pytest.approx(torch.nn.init.calculate_gain(nonlinearity, param), rel=1e-15)


@pytest.mark.parametrize("call, error, message", [
    (lambda: init.calculate_gain("swish"), ValueError, "Unsupported nonlinearity swish"),
    (lambda: init.calculate_gain("leaky_relu", "x"), ValueError, "negative_slope x not a valid"),
    (lambda: init.xavier_uniform_(minidl.empty(5)), ValueError,
     r"fewer than 2 dimensions \(got shape \(5,\)\)"),
    (lambda: init.kaiming_normal_(minidl.empty(3, 3), mode="fan_avg"), ValueError,
     "Mode fan_avg not supported, please use one of fan_in, fan_out"),
    (lambda: init.eye_(minidl.empty(2, 2, 2)), ValueError, "Only tensors with 2 dimensions"),
])
def test_init_errors(call, error, message):
    with pytest.raises(error, match=message):
        call()


SHAPE = (400, 250)  # 100k samples: the std estimate is within ~0.5% (3 standard errors)
FAN_IN, FAN_OUT = 250, 400


def uniform_case(bound):
    return ("uniform", bound)


def normal_case(std):
    return ("normal", std)


DISTRIBUTIONS = {
    "uniform_": (lambda t: init.uniform_(t, -0.3, 0.3), uniform_case(0.3)),
    "normal_": (lambda t: init.normal_(t, 0.0, 0.7), normal_case(0.7)),
    "xavier_uniform_": (lambda t: init.xavier_uniform_(t, gain=2.0),
                        uniform_case(2.0 * math.sqrt(6.0 / (FAN_IN + FAN_OUT)))),
    "xavier_normal_": (lambda t: init.xavier_normal_(t),
                       normal_case(math.sqrt(2.0 / (FAN_IN + FAN_OUT)))),
    "kaiming_uniform_default": (lambda t: init.kaiming_uniform_(t),
                                uniform_case(math.sqrt(2.0) * math.sqrt(3 / FAN_IN))),  # a=0
    "kaiming_uniform_a_sqrt5": (lambda t: init.kaiming_uniform_(t, a=math.sqrt(5)),
                                uniform_case(1 / math.sqrt(FAN_IN))),
    "kaiming_uniform_fan_out_relu": (
        lambda t: init.kaiming_uniform_(t, mode="fan_out", nonlinearity="relu"),
        uniform_case(math.sqrt(2.0) * math.sqrt(3 / FAN_OUT))),
    "kaiming_normal_relu": (lambda t: init.kaiming_normal_(t, nonlinearity="relu"),
                            normal_case(math.sqrt(2.0 / FAN_IN))),
    "kaiming_normal_fan_out": (lambda t: init.kaiming_normal_(t, a=0.1, mode="fan_out"),
                               normal_case(math.sqrt(2 / 1.01) / math.sqrt(FAN_OUT))),
}


@pytest.mark.parametrize("name", DISTRIBUTIONS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_distribution_bounds_and_moments(name, dtype):
    fill, (kind, scale) = DISTRIBUTIONS[name]
    t = mnn.Parameter(minidl.zeros(*SHAPE, dtype=dtype))
    out = fill(t)
    assert out is t and t.dtype.name == dtype and t.is_leaf and t.requires_grad
    v = t.detach().numpy().astype(np.float64)
    assert abs(v.mean()) < 4 * scale / math.sqrt(v.size)
    if kind == "uniform":
        assert np.abs(v).max() <= scale and np.abs(v).max() > 0.999 * scale
        assert v.std() == pytest.approx(scale / math.sqrt(3), rel=0.01)
    else:
        assert v.std() == pytest.approx(scale, rel=0.01)


def truncated_normal_std(mean, std, a, b):
    """Standard deviation of N(mean, std^2) truncated to [a, b] (closed form)."""
    alpha, beta = (a - mean) / std, (b - mean) / std
    pdf = lambda x: math.exp(-x * x / 2) / math.sqrt(2 * math.pi)  # noqa: E731
    cdf = lambda x: 0.5 * (1 + math.erf(x / math.sqrt(2)))  # noqa: E731
    z = cdf(beta) - cdf(alpha)
    var = 1 + (alpha * pdf(alpha) - beta * pdf(beta)) / z - ((pdf(alpha) - pdf(beta)) / z) ** 2
    return std * math.sqrt(var)


@pytest.mark.parametrize("mean, std, a, b", [(0.0, 1.0, -2.0, 2.0), (0.0, 0.02, -0.04, 0.04),
                                             (1.0, 2.0, 0.0, 5.0), (0.0, 1.0, 2.5, 4.0)])
def test_trunc_normal_bounds_and_std(mean, std, a, b):
    far = mean < a - 2 * std or mean > b + 2 * std  # allowed, but PyTorch warns: so do we
    with pytest.warns(UserWarning, match="mean is more than 2 std") if far else nullcontext():
        t = init.trunc_normal_(minidl.empty(*SHAPE), mean, std, a, b)
    v = t.numpy().astype(np.float64)
    assert v.min() >= a and v.max() <= b
    assert v.std() == pytest.approx(truncated_normal_std(mean, std, a, b), rel=0.015)
    # torch's sampler draws the same distribution: compare the two sample means too
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = torch.nn.init.trunc_normal_(torch.empty(*SHAPE, dtype=torch.float64), mean, std, a,
                                          b)
    assert v.mean() == pytest.approx(ref.mean().item(), abs=6 * v.std() / math.sqrt(v.size))


@pytest.mark.parametrize("fill, expected", [
    (lambda t: init.constant_(t, 2.5), np.full((3, 4), 2.5)),
    (lambda t: init.zeros_(t), np.zeros((3, 4))),
    (lambda t: init.ones_(t), np.ones((3, 4))),
    (lambda t: init.eye_(t), np.eye(3, 4)),
])
def test_deterministic_fills(fill, expected):
    t = mnn.Parameter(minidl.randn(3, 4))
    assert fill(t) is t
    np.testing.assert_array_equal(t.detach().numpy(), expected)


def test_seed_and_generator_make_init_repeatable():
    def draw(generator=None):
        return init.kaiming_uniform_(minidl.empty(4, 5), generator=generator).numpy()
    minidl.manual_seed(3)
    first = draw()
    minidl.manual_seed(3)
    np.testing.assert_array_equal(draw(), first)
    g1, g2 = minidl.Generator().manual_seed(9), minidl.Generator().manual_seed(9)
    np.testing.assert_array_equal(draw(g1), draw(g2))


def test_zero_element_kaiming_is_a_no_op_with_warning():
    with pytest.warns(UserWarning, match="Initializing zero-element tensors is a no-op"):
        init.kaiming_uniform_(minidl.empty(0, 3))


# ---- the layers' default initialisation (PyTorch's fan-in rules) ---------------------------

DEFAULT_INIT = {
    "linear": (lambda: mnn.Linear(300, 200), 300),
    "conv1d": (lambda: mnn.Conv1d(12, 64, 5), 60),
    "conv2d": (lambda: mnn.Conv2d(16, 96, 3), 144),
    "conv2d_groups": (lambda: mnn.Conv2d(16, 96, 3, groups=4), 36),
    "conv_transpose2d": (lambda: mnn.ConvTranspose2d(64, 24, 3, groups=2), 12 * 9),
}


@pytest.mark.parametrize("name", DEFAULT_INIT)
def test_layer_default_init_is_uniform_with_bound_one_over_sqrt_fan_in(name):
    make, fan_in = DEFAULT_INIT[name]
    layer = make()
    bound = 1 / math.sqrt(fan_in)
    w = layer.weight.detach().numpy().astype(np.float64)
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.99 * bound
    assert w.std() == pytest.approx(bound / math.sqrt(3), rel=0.03)
    b = layer.bias.detach().numpy()
    assert np.abs(b).max() <= bound and np.abs(b).max() > 0.5 * bound
    # PyTorch's layer of the same shape draws from the same distribution
    torch_layer = make_torch(name)
    tw = torch_layer.weight.detach().numpy()
    assert tw.shape == w.shape and np.abs(tw).max() <= bound * (1 + 1e-6)


def make_torch(name):
    return {"linear": lambda: torch.nn.Linear(300, 200),
            "conv1d": lambda: torch.nn.Conv1d(12, 64, 5),
            "conv2d": lambda: torch.nn.Conv2d(16, 96, 3),
            "conv2d_groups": lambda: torch.nn.Conv2d(16, 96, 3, groups=4),
            "conv_transpose2d": lambda: torch.nn.ConvTranspose2d(64, 24, 3, groups=2)}[name]()


def test_embedding_default_init_is_standard_normal_with_zero_padding_row():
    emb = mnn.Embedding(1000, 64, padding_idx=3)
    w = emb.weight.detach().numpy().astype(np.float64)
    assert not w[3].any()
    rest = np.delete(w, 3, axis=0)
    assert abs(rest.mean()) < 0.02 and rest.std() == pytest.approx(1.0, rel=0.02)


@pytest.mark.parametrize("make", [lambda: mnn.BatchNorm1d(7), lambda: mnn.BatchNorm2d(7),
                                  lambda: mnn.LayerNorm(7), lambda: mnn.GroupNorm(7, 7),
                                  lambda: mnn.RMSNorm(7)])
def test_norm_layers_start_as_identity_affine(make):
    layer = make()
    np.testing.assert_array_equal(layer.weight.detach().numpy(), np.ones(7, np.float32))
    if getattr(layer, "bias", None) is not None:
        np.testing.assert_array_equal(layer.bias.detach().numpy(), np.zeros(7, np.float32))


def test_batchnorm_buffers_start_at_zero_mean_unit_var():
    bn = mnn.BatchNorm2d(4)
    assert bn.running_mean.tolist() == [0.0] * 4 and bn.running_var.tolist() == [1.0] * 4
    assert bn.num_batches_tracked.item() == 0 and bn.num_batches_tracked.dtype == minidl.int64


def test_layer_dtype_argument():
    layer = mnn.Linear(3, 2, dtype=minidl.float64)
    assert layer.weight.dtype == minidl.float64 and layer.bias.dtype == minidl.float64
