"""`minidl.nn`: Module, Parameter, layers, losses, `functional`, `init` and `utils`.

    import minidl.nn as nn
    import minidl.nn.functional as F

    model = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
    loss = nn.CrossEntropyLoss()(model(x), y)

Every layer has PyTorch's constructor signature, parameter names, shapes and default
initialisation, so `model.load_state_dict({k: v.detach().numpy() for k, v in
torch_model.state_dict().items()})` reproduces a PyTorch model's outputs.
"""
from . import functional
from . import init
from . import utils
from .parameter import Parameter
from .module import Module
from .hooks import RemovableHandle
from .containers import Sequential, ModuleList, ModuleDict, Identity
from .linear import Linear
from .conv import Conv1d, Conv2d, ConvTranspose2d
from .pooling import MaxPool2d, AvgPool2d, AdaptiveAvgPool2d
from .normalization import BatchNorm1d, BatchNorm2d, LayerNorm, RMSNorm, GroupNorm
from .dropout import Dropout
from .sparse import Embedding
from .flatten import Flatten, Unflatten
from .activation import (ReLU, LeakyReLU, ELU, GELU, SiLU, Sigmoid, Tanh, Softmax, LogSoftmax,
                         Softplus)
from .loss import (L1Loss, MSELoss, SmoothL1Loss, HuberLoss, NLLLoss, CrossEntropyLoss, BCELoss,
                   BCEWithLogitsLoss, KLDivLoss)
from .attention import MultiheadAttention
from .transformer import (TransformerEncoderLayer, TransformerDecoderLayer, TransformerEncoder,
                          TransformerDecoder, Transformer)
from .positional import (SinusoidalPositionalEncoding, LearnedPositionalEmbedding,
                         sinusoidal_positional_encoding, rope_cache, apply_rope)

__all__ = [
    "functional", "init", "utils", "Parameter", "Module", "RemovableHandle",
    "Sequential", "ModuleList", "ModuleDict", "Identity", "Linear", "Conv1d", "Conv2d",
    "ConvTranspose2d", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "BatchNorm1d",
    "BatchNorm2d", "LayerNorm", "RMSNorm", "GroupNorm", "Dropout", "Embedding", "Flatten",
    "Unflatten", "ReLU", "LeakyReLU", "ELU", "GELU", "SiLU", "Sigmoid", "Tanh", "Softmax",
    "LogSoftmax", "Softplus", "L1Loss", "MSELoss", "SmoothL1Loss", "HuberLoss", "NLLLoss",
    "CrossEntropyLoss", "BCELoss", "BCEWithLogitsLoss", "KLDivLoss", "MultiheadAttention",
    "TransformerEncoderLayer", "TransformerDecoderLayer", "TransformerEncoder",
    "TransformerDecoder", "Transformer", "SinusoidalPositionalEncoding",
    "LearnedPositionalEmbedding", "sinusoidal_positional_encoding", "rope_cache", "apply_rope",
]
