"""Printing: every layer's repr, and nested trees, must read exactly as PyTorch's."""
import pytest

import minidl.nn as mnn

torch = pytest.importorskip("torch")
tnn = torch.nn

LAYERS = {
    "linear": lambda nn: nn.Linear(4, 3),
    "linear_nobias": lambda nn: nn.Linear(4, 3, bias=False),
    "conv1d": lambda nn: nn.Conv1d(2, 4, 3, stride=2, padding=1, bias=False),
    "conv2d": lambda nn: nn.Conv2d(3, 8, 3),
    "conv2d_options": lambda nn: nn.Conv2d(4, 8, (3, 5), stride=(2, 1), padding=(1, 2),
                                           dilation=2, groups=2, padding_mode="reflect"),
    "conv2d_same": lambda nn: nn.Conv2d(3, 8, 4, padding="same"),
    "conv2d_valid": lambda nn: nn.Conv2d(3, 8, 4, padding="valid"),
    "conv_transpose2d": lambda nn: nn.ConvTranspose2d(4, 2, 3, stride=2, padding=1,
                                                      output_padding=1, groups=2),
    "maxpool": lambda nn: nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True),
    "avgpool": lambda nn: nn.AvgPool2d(2),
    "adaptive": lambda nn: nn.AdaptiveAvgPool2d((2, 3)),
    "flatten": lambda nn: nn.Flatten(),
    "unflatten": lambda nn: nn.Unflatten(1, (2, 3)),
    "dropout": lambda nn: nn.Dropout(0.25),
    "embedding": lambda nn: nn.Embedding(10, 3, padding_idx=-1, max_norm=1.0, norm_type=3.0),
    "batchnorm1d": lambda nn: nn.BatchNorm1d(5, momentum=None, affine=False),
    "batchnorm2d": lambda nn: nn.BatchNorm2d(5, eps=1e-3, track_running_stats=False),
    "batchnorm2d_nobias": lambda nn: nn.BatchNorm2d(5, bias=False),
    "layernorm": lambda nn: nn.LayerNorm((3, 4), elementwise_affine=False),
    "layernorm_nobias": lambda nn: nn.LayerNorm(4, bias=False),
    "rmsnorm": lambda nn: nn.RMSNorm(4, eps=1e-6),
    "groupnorm": lambda nn: nn.GroupNorm(2, 4, affine=False),
    "relu": lambda nn: nn.ReLU(inplace=True),
    "leaky_relu": lambda nn: nn.LeakyReLU(0.2),
    "elu": lambda nn: nn.ELU(alpha=0.5, inplace=True),
    "gelu": lambda nn: nn.GELU(approximate="tanh"),
    "silu": lambda nn: nn.SiLU(),
    "sigmoid": lambda nn: nn.Sigmoid(),
    "tanh": lambda nn: nn.Tanh(),
    "softmax": lambda nn: nn.Softmax(dim=-1),
    "log_softmax": lambda nn: nn.LogSoftmax(1),
    "softplus": lambda nn: nn.Softplus(beta=2.0, threshold=10.0),
    "identity": lambda nn: nn.Identity(),
    "cross_entropy": lambda nn: nn.CrossEntropyLoss(label_smoothing=0.1),
    "kl_div": lambda nn: nn.KLDivLoss(reduction="batchmean"),
}


@pytest.mark.parametrize("name", LAYERS)
def test_layer_repr_matches_pytorch(name):
    assert repr(LAYERS[name](mnn)) == repr(LAYERS[name](tnn))


def tree(nn):
    return nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.ReLU(),
        nn.Sequential(nn.Linear(2, 2), nn.ModuleList([nn.Linear(2, 2) for _ in range(3)]
                                                    + [nn.Tanh(), nn.Tanh(), nn.ReLU()])),
        nn.ModuleDict({"head": nn.Linear(2, 1), "act": nn.Sigmoid()}),
        nn.ModuleList(),
    )


def test_nested_tree_repr_matches_pytorch():
    assert repr(tree(mnn)) == repr(tree(tnn))


def test_custom_extra_repr_and_multiline_children():
    class Block(mnn.Module):
        def __init__(self):
            super().__init__()
            self.inner = mnn.Sequential(mnn.Linear(2, 2))

        def extra_repr(self):
            return "width=2\ndepth=1"

    assert repr(Block()) == ("Block(\n  width=2\n  depth=1\n  (inner): Sequential(\n"
                             "    (0): Linear(in_features=2, out_features=2, bias=True)\n  )\n)")
