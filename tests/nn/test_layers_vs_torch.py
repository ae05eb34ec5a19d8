"""Every layer against PyTorch's: the same constructor call on both sides, PyTorch's (perturbed)
weights copied into minidl through load_state_dict, then forward output, input gradient, every
parameter gradient and every buffer compared, in train and eval mode, float32 and float64.

A new case is one row in CASES: (id, builder taking the `nn` namespace, input shape[, options]).
"""
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import pytest

import minidl
import minidl.nn as mnn

from .helpers import assert_close, torch_state_to_minidl

torch = pytest.importorskip("torch")
tnn = torch.nn
# PyTorch notes that 'same' padding with an even kernel copies the input; nothing to act on
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")


@dataclass
class Case:
    name: str
    build: Callable
    shape: tuple
    int_input: Optional[int] = None  # draw integer inputs in [0, int_input) (embedding indices)


CASES = [
    Case("linear", lambda nn: nn.Linear(5, 3), (4, 5)),
    Case("linear_3d_no_bias", lambda nn: nn.Linear(5, 3, bias=False), (2, 4, 5)),
    Case("linear_1d_input", lambda nn: nn.Linear(5, 2), (5,)),
    Case("conv1d", lambda nn: nn.Conv1d(3, 4, 3, stride=2, padding=1), (2, 3, 9)),
    Case("conv1d_unbatched", lambda nn: nn.Conv1d(3, 4, 3), (3, 9)),
    Case("conv1d_dilated_groups", lambda nn: nn.Conv1d(4, 6, 3, dilation=2, groups=2), (2, 4, 11)),
    Case("conv1d_same", lambda nn: nn.Conv1d(2, 3, 4, padding="same"), (2, 2, 7)),
    Case("conv2d", lambda nn: nn.Conv2d(3, 4, 3), (2, 3, 7, 6)),
    Case("conv2d_unbatched", lambda nn: nn.Conv2d(3, 4, 3, padding=1), (3, 5, 6)),
    Case("conv2d_unbatched_reflect", lambda nn: nn.Conv2d(2, 3, 3, padding=1,
                                                          padding_mode="reflect"), (2, 5, 4)),
    Case("conv2d_stride_pad", lambda nn: nn.Conv2d(3, 5, (3, 2), stride=(2, 1), padding=(1, 2)),
         (2, 3, 8, 7)),
    Case("conv2d_dilation_groups_nobias",
         lambda nn: nn.Conv2d(4, 6, 3, dilation=2, groups=2, bias=False), (2, 4, 9, 9)),
    Case("conv2d_depthwise", lambda nn: nn.Conv2d(3, 6, 3, padding=1, groups=3), (2, 3, 5, 5)),
    Case("conv2d_same_odd", lambda nn: nn.Conv2d(2, 3, 3, padding="same"), (2, 2, 6, 5)),
    Case("conv2d_same_even_dilated", lambda nn: nn.Conv2d(2, 3, (4, 2), padding="same",
                                                          dilation=(1, 3)), (2, 2, 7, 8)),
    Case("conv2d_valid", lambda nn: nn.Conv2d(2, 3, 3, padding="valid"), (1, 2, 5, 6)),
    Case("conv2d_reflect", lambda nn: nn.Conv2d(2, 3, 3, padding=1, padding_mode="reflect"),
         (2, 2, 5, 6)),
    Case("conv2d_replicate", lambda nn: nn.Conv2d(2, 3, 3, padding=(2, 1),
                                                  padding_mode="replicate"), (2, 2, 5, 6)),
    Case("conv2d_circular", lambda nn: nn.Conv2d(2, 3, 3, padding=1, padding_mode="circular"),
         (2, 2, 5, 6)),
    Case("conv_transpose2d", lambda nn: nn.ConvTranspose2d(4, 3, 3), (2, 4, 5, 4)),
    Case("conv_transpose2d_stride", lambda nn: nn.ConvTranspose2d(4, 2, 3, stride=2, padding=1,
                                                                  output_padding=1),
         (2, 4, 4, 5)),
    Case("conv_transpose2d_groups_dilation",
         lambda nn: nn.ConvTranspose2d(4, 6, 2, stride=(1, 2), groups=2, dilation=2, bias=False),
         (2, 4, 3, 4)),
    Case("maxpool", lambda nn: nn.MaxPool2d(2), (2, 3, 6, 6)),
    Case("maxpool_unbatched", lambda nn: nn.MaxPool2d(2), (3, 6, 6)),
    Case("maxpool_overlap_pad", lambda nn: nn.MaxPool2d(3, stride=2, padding=1), (2, 2, 7, 6)),
    Case("maxpool_ceil_dilation", lambda nn: nn.MaxPool2d(2, stride=2, dilation=2,
                                                          ceil_mode=True), (1, 2, 7, 7)),
    Case("avgpool", lambda nn: nn.AvgPool2d(2), (2, 3, 6, 6)),
    Case("avgpool_pad_exclude", lambda nn: nn.AvgPool2d(3, stride=2, padding=1,
                                                        count_include_pad=False), (2, 2, 7, 6)),
    Case("avgpool_ceil", lambda nn: nn.AvgPool2d((3, 2), stride=2, ceil_mode=True), (1, 2, 8, 7)),
    Case("adaptive_avgpool", lambda nn: nn.AdaptiveAvgPool2d((2, 3)), (2, 3, 7, 8)),
    Case("adaptive_avgpool_global", lambda nn: nn.AdaptiveAvgPool2d(1), (2, 3, 5, 4)),
    Case("flatten", lambda nn: nn.Flatten(), (2, 3, 4, 5)),
    Case("flatten_middle", lambda nn: nn.Flatten(1, 2), (2, 3, 4, 5)),
    Case("unflatten", lambda nn: nn.Unflatten(1, (3, 4)), (2, 12, 5)),
    Case("embedding", lambda nn: nn.Embedding(10, 4), (3, 5), int_input=10),
    Case("embedding_padding", lambda nn: nn.Embedding(10, 4, padding_idx=2), (4, 6), int_input=4),
    Case("batchnorm1d_2d", lambda nn: nn.BatchNorm1d(5), (8, 5)),
    Case("batchnorm1d_3d", lambda nn: nn.BatchNorm1d(3, momentum=0.3), (4, 3, 6)),
    Case("batchnorm1d_no_affine", lambda nn: nn.BatchNorm1d(4, affine=False), (6, 4)),
    Case("batchnorm2d", lambda nn: nn.BatchNorm2d(3), (4, 3, 5, 5)),
    Case("batchnorm2d_cumulative", lambda nn: nn.BatchNorm2d(3, momentum=None, eps=1e-3),
         (2, 3, 4, 5)),
    Case("batchnorm2d_untracked", lambda nn: nn.BatchNorm2d(3, track_running_stats=False),
         (3, 3, 4, 4)),
    Case("batchnorm2d_no_bias", lambda nn: nn.BatchNorm2d(3, bias=False), (3, 3, 4, 4)),
    Case("layernorm", lambda nn: nn.LayerNorm(6), (3, 4, 6)),
    Case("layernorm_2d_shape", lambda nn: nn.LayerNorm((4, 6), eps=1e-3), (3, 4, 6)),
    Case("layernorm_no_affine", lambda nn: nn.LayerNorm(6, elementwise_affine=False), (5, 6)),
    Case("layernorm_no_bias", lambda nn: nn.LayerNorm(6, bias=False), (5, 6)),
    Case("rmsnorm", lambda nn: nn.RMSNorm(6), (3, 4, 6)),
    Case("rmsnorm_eps_2d_shape", lambda nn: nn.RMSNorm((4, 6), eps=1e-5), (3, 4, 6)),
    Case("rmsnorm_no_affine", lambda nn: nn.RMSNorm(6, elementwise_affine=False), (5, 6)),
    Case("groupnorm", lambda nn: nn.GroupNorm(2, 6), (3, 6, 4, 5)),
    Case("groupnorm_3d_no_affine", lambda nn: nn.GroupNorm(3, 6, affine=False), (2, 6, 7)),
    Case("groupnorm_instance_like", lambda nn: nn.GroupNorm(4, 4, eps=1e-3), (2, 4, 3, 3)),
    Case("dropout_p0", lambda nn: nn.Dropout(0.0), (4, 5)),
    Case("relu", lambda nn: nn.ReLU(), (4, 5)),
    Case("leaky_relu", lambda nn: nn.LeakyReLU(0.2), (4, 5)),
    Case("elu", lambda nn: nn.ELU(alpha=0.7), (4, 5)),
    Case("gelu", lambda nn: nn.GELU(), (4, 5)),
    Case("gelu_tanh", lambda nn: nn.GELU(approximate="tanh"), (4, 5)),
    Case("silu", lambda nn: nn.SiLU(), (4, 5)),
    Case("sigmoid", lambda nn: nn.Sigmoid(), (4, 5)),
    Case("tanh", lambda nn: nn.Tanh(), (4, 5)),
    Case("softmax", lambda nn: nn.Softmax(dim=-1), (3, 4, 5)),
    Case("softmax_dim1", lambda nn: nn.Softmax(dim=1), (3, 4, 5)),
    Case("log_softmax", lambda nn: nn.LogSoftmax(dim=1), (3, 7)),
    Case("softplus", lambda nn: nn.Softplus(), (4, 5)),
    Case("softplus_beta_threshold", lambda nn: nn.Softplus(beta=2.0, threshold=1.5), (4, 5)),
    Case("identity", lambda nn: nn.Identity(), (4, 5)),
    Case("mlp", lambda nn: nn.Sequential(nn.Linear(6, 8), nn.GELU(), nn.LayerNorm(8),
                                         nn.Linear(8, 3)), (4, 6)),
    Case("cnn", lambda nn: nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4),
                                         nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                                         nn.Linear(16, 3)), (3, 1, 4, 4)),
]


def perturb(module):
    """Move PyTorch's parameters and buffers away from their trivial starting values (ones,
    zeros, unit variance), so that every term of the formulas is exercised."""
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, t in module.state_dict().items():
            if not t.is_floating_point():
                continue
            noise = torch.randn(t.shape, generator=gen, dtype=t.dtype)
            if name.endswith("running_var"):
                t.copy_(0.5 + noise.abs())
            else:
                t.add_(0.3 * noise)


def twins(case, dtype):
    theirs = case.build(tnn)
    ours = case.build(mnn)
    if dtype == "float64":
        theirs.double()
        ours.double()
    perturb(theirs)
    torch_state_to_minidl(theirs, ours)
    return ours, theirs


def draw_input(case, dtype, rng, device="cpu"):
    if case.int_input is not None:
        x = rng.integers(0, case.int_input, size=case.shape)
        return minidl.tensor(x, device=device), torch.tensor(x)
    x = rng.standard_normal(case.shape).astype(dtype)
    return (minidl.tensor(x, device=device, requires_grad=True),
            torch.tensor(x, requires_grad=True))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_layer_matches_pytorch(case, mode, dtype, device):
    rng = np.random.default_rng(7)
    ours, theirs = twins(case, dtype)
    ours.to(device)
    ours.train(mode == "train")
    theirs.train(mode == "train")
    x_ours, x_theirs = draw_input(case, dtype, rng, device)

    out_ours, out_theirs = ours(x_ours), theirs(x_theirs)
    assert out_ours.dtype.name == dtype
    assert_close(out_ours, out_theirs, dtype, "forward")

    upstream = rng.standard_normal(tuple(out_theirs.shape)).astype(dtype)
    (out_ours * minidl.tensor(upstream, device=device)).sum().backward()
    out_theirs.backward(torch.tensor(upstream))
    if case.int_input is None:
        assert_close(x_ours.grad, x_theirs.grad, dtype, "input grad")
    for name, p in theirs.named_parameters():
        assert_close(ours.get_parameter(name).grad, p.grad, dtype, f"grad of {name}")
    ours_buffers = dict(ours.named_buffers())
    for name, b in theirs.named_buffers():  # running statistics after the step
        assert_close(ours_buffers[name], b, dtype, f"buffer {name}")


@pytest.mark.parametrize("case", [c for c in CASES if c.name.startswith(("conv2d", "linear"))],
                         ids=lambda c: c.name)
def test_gradcheck_float64(case):
    """Float64 finite differences, independent of PyTorch, through the layer's parameters."""
    layer = case.build(mnn).double()
    x = minidl.randn(*case.shape, dtype=minidl.float64, requires_grad=True)
    params = list(layer.parameters())

    def fn(inp, *ps):
        return layer(inp)
    assert minidl.autograd.gradcheck(fn, (x, *params))


# ---- options that the table cannot express -------------------------------------------------

def test_maxpool_return_indices_match_pytorch():
    x = np.random.default_rng(1).standard_normal((2, 3, 6, 5)).astype("float32")
    out, idx = mnn.MaxPool2d(2, return_indices=True)(minidl.tensor(x))
    t_out, t_idx = tnn.MaxPool2d(2, return_indices=True)(torch.tensor(x))
    assert_close(out, t_out)
    np.testing.assert_array_equal(idx.numpy(), t_idx.numpy())
    assert idx.dtype == minidl.int64  # as PyTorch's, whatever the backend keeps for backward


@pytest.mark.parametrize("output_size", [(9, 11), (10, 12), [2, 4, 10, 11]])
def test_conv_transpose2d_output_size(output_size):
    ours, theirs = twins(Case("ct", lambda nn: nn.ConvTranspose2d(4, 2, 3, stride=2, padding=1),
                              ()), "float32")
    x = np.random.default_rng(2).standard_normal((2, 4, 5, 6)).astype("float32")
    out = ours(minidl.tensor(x), output_size=output_size)
    assert_close(out, theirs(torch.tensor(x), output_size=output_size))


def test_conv_transpose2d_output_size_out_of_range():
    layer = mnn.ConvTranspose2d(4, 2, 3, stride=2, padding=1)
    with pytest.raises(ValueError, match=r"requested an output size of \[12, 11\], but valid "
                                         r"sizes range from \[9, 11\] to \[10, 12\]"):
        layer(minidl.randn(1, 4, 5, 6), output_size=(12, 11))


def test_embedding_padding_row_gets_no_gradient_and_max_norm_renormalises():
    emb = mnn.Embedding(6, 3, padding_idx=1)
    emb(minidl.tensor([[1, 2, 1], [0, 1, 5]])).sum().backward()
    grad = emb.weight.grad.numpy()
    assert not grad[1].any() and grad[2].tolist() == [1.0, 1.0, 1.0]

    t_emb = tnn.Embedding(6, 3, max_norm=0.5)
    ours = mnn.Embedding(6, 3, max_norm=0.5)
    torch_state_to_minidl(t_emb, ours)
    idx = np.array([[0, 3, 3], [5, 2, 0]])
    assert_close(ours(minidl.tensor(idx)), t_emb(torch.tensor(idx)))
    assert_close(ours.weight, t_emb.weight, what="rows renormalised in place")


def test_embedding_from_pretrained_shares_and_freezes():
    weights = minidl.randn(4, 3)
    emb = mnn.Embedding.from_pretrained(weights)
    assert not emb.weight.requires_grad and emb.padding_idx is None
    np.testing.assert_array_equal(emb(minidl.tensor([2])).numpy()[0], weights.numpy()[2])
    assert mnn.Embedding.from_pretrained(weights, freeze=False).weight.requires_grad


@pytest.mark.parametrize("build, error, message", [
    (lambda: mnn.Embedding(5, 2, padding_idx=5), ValueError, "padding_idx must be within"),
    (lambda: mnn.Embedding(5, 2, sparse=True), ValueError, "sparse=True"),
    (lambda: mnn.Embedding.from_pretrained(minidl.randn(3)), ValueError, "2-dimensional"),
    (lambda: mnn.Conv2d(3, 4, 3, groups=2), ValueError, "in_channels must be divisible by groups"),
    (lambda: mnn.Conv2d(4, 3, 3, groups=2), ValueError, "out_channels must be divisible by groups"),
    (lambda: mnn.Conv2d(4, 4, 3, padding="half"), ValueError, "Invalid padding string 'half'"),
    (lambda: mnn.Conv2d(4, 4, 3, stride=2, padding="same"), ValueError,
     "padding='same' is not supported for strided convolutions"),
    (lambda: mnn.Conv2d(4, 4, 3, padding_mode="mirror"), ValueError, "padding_mode must be one of"),
    (lambda: mnn.Conv2d(4, 4, (3, 3, 3)), ValueError, "kernel_size must be an int or a tuple of 2"),
    (lambda: mnn.ConvTranspose2d(4, 4, 3, padding_mode="reflect"), ValueError,
     'Only "zeros" padding mode is supported for ConvTranspose2d'),
    (lambda: mnn.GroupNorm(4, 6), ValueError,
     r"num_channels \(6\) must be divisible by num_groups"),
    (lambda: mnn.Dropout(1.5), ValueError,
     "dropout probability has to be between 0 and 1, but got 1.5"),
    (lambda: mnn.GELU("fast"), ValueError, "approximate must be 'none' or 'tanh'"),
    (lambda: mnn.Unflatten(1, 6), TypeError, "unflattened_size must be a tuple of ints"),
])
def test_constructor_errors(build, error, message):
    with pytest.raises(error, match=message):
        build()


@pytest.mark.parametrize("layer, shape, wanted", [
    (lambda: mnn.BatchNorm1d(3), (2, 3, 4, 4), "expected 2D or 3D input (got 4D input)"),
    (lambda: mnn.BatchNorm2d(3), (2, 3, 4), "expected 4D input (got 3D input)"),
])
def test_batchnorm_input_rank_errors(layer, shape, wanted):
    with pytest.raises(ValueError, match=wanted.replace("(", r"\(").replace(")", r"\)")):
        layer()(minidl.randn(*shape))


def test_softmax_without_dim_warns_and_uses_pytorch_legacy_dim():
    x = np.random.default_rng(3).standard_normal((2, 3, 4)).astype("float32")
    with pytest.warns(UserWarning, match="Implicit dimension choice for softmax"):
        ours = mnn.Softmax()(minidl.tensor(x))
    with pytest.warns(UserWarning):
        theirs = tnn.Softmax()(torch.tensor(x))
    assert_close(ours, theirs)
