"""The kernels are what the `cuda-emu` device really runs, and a model trained on it matches
the cpu device step for step."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import minidl
from minidl.backend.cuda.ops import CudaKernelOps

# Contract ops that have a kernel: a misspelt method name would silently fall back to the
# plain reference on the GPU devices, so each one is looked up through the device's table.
KERNEL_OPS = [
    "softmax_forward", "softmax_backward", "log_softmax_forward", "log_softmax_backward",
    "layer_norm_forward", "layer_norm_backward", "rms_norm_forward", "rms_norm_backward",
    "cross_entropy_forward", "cross_entropy_backward", "gelu_forward", "gelu_backward",
    "silu_forward", "silu_backward", "adam_step", "sgd_step", "sdpa_forward", "sdpa_backward",
    "embedding_backward", "dropout_forward", "dropout_backward", "im2col", "col2im",
    "conv2d_forward", "conv2d_backward", "max_pool2d_forward", "max_pool2d_backward",
    "avg_pool2d_forward", "avg_pool2d_backward",
]


@pytest.mark.parametrize("name", KERNEL_OPS)
def test_the_device_table_takes_the_op_from_the_kernels(name):
    entry = getattr(minidl.backend.get_backend("cuda-emu").fused, name)
    assert isinstance(getattr(entry, "__self__", None), CudaKernelOps), f"{name} resolves to {entry}"


def test_a_small_gpt_trains_identically_on_cuda_emu_and_cpu():
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))
    from gpt_model import GPT, GPTConfig

    rng = np.random.default_rng(0)
    ids = rng.integers(0, 11, size=(3, 4, 9))       # 3 steps of (batch 4, 8 tokens + 1 target)
    curves = {}
    for device in ("cpu", "cuda-emu"):
        minidl.manual_seed(0)
        model = GPT(GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=16)).to(device)
        optimizer = minidl.optim.AdamW(model.parameters(), lr=1e-2)
        losses = []
        for window in ids:
            _, loss = model(minidl.tensor(window[:, :-1], device=device), minidl.tensor(window[:, 1:], device=device))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        curves[device] = np.array(losses)
    # the same float32 maths in different summation orders: close, not bit-equal. (Dropout is
    # off: the devices draw their masks from different generators.)
    np.testing.assert_allclose(curves["cuda-emu"], curves["cpu"], rtol=1e-5)
    assert curves["cuda-emu"][-1] < curves["cuda-emu"][0]
