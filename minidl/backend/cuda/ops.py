"""The fused ops that minidl's CUDA kernels implement, for the `cuda` and `cuda-emu` devices.

    from minidl.backend.cuda_emu import emu_ops
    ops = emu_ops()                     # NumPy arrays, kernels run by the CPU emulator
    y = ops.softmax_forward(x)          # the highest version of the ladder
    y = ops.softmax_forward(x, version=2, block=64)

Each family lives in its own mixin file beside this one; this class only joins them to a
Launcher (which holds the device's module loader and array module). Every method named like
an op of the fused-op contract (same signature, plus the keyword-only `version` / `block`)
is what the `cuda` and `cuda-emu` devices run for that op; other contract ops fall back to
the plain reference. Extras beyond the contract: matmul, sum_all, bias_gelu_* / bias_silu_*
(bias fused into the activation), philox_uniform.
"""
from __future__ import annotations

from .activation_ops import ActivationOps
from .attention_ops import AttentionOps
from .conv_ops import ConvPoolOps
from .dropout_ops import DropoutOps
from .embedding_ops import EmbeddingOps
from .launch import Launcher
from .loss_ops import CrossEntropyOps
from .matmul_ops import MatmulOps
from .optim_ops import OptimOps
from .norm_ops import NormOps
from .reduce_ops import ReduceOps
from .softmax_ops import SoftmaxOps


class CudaKernelOps(SoftmaxOps, NormOps, ReduceOps, MatmulOps, CrossEntropyOps,
                    ActivationOps, OptimOps, AttentionOps,
                    EmbeddingOps, DropoutOps, ConvPoolOps):
    def __init__(self, launcher: Launcher):
        self.launcher = launcher
        self.xp = launcher.xp

    @property
    def device(self) -> str:
        return self.launcher.loader.name


def cuda_ops(versions: dict[str, int] | None = None) -> CudaKernelOps:
    """The ops of a real GPU (needs CuPy and a device)."""
    from .launch import CupyLoader

    return CudaKernelOps(Launcher(CupyLoader(), versions))
