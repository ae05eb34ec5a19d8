"""Shared fixtures of the kernel tests: devices, schedule orders, float64 references.

Every kernel test runs on `cuda-emu` (the CPU emulator, always) and on `cuda` when CuPy and a
GPU are present. On the emulator each test runs in forward and reverse schedule order.
"""
from __future__ import annotations

import numpy as np
import pytest

from minidl.backend.cuda_emu import emu_ops, schedule


def _gpu_reason():
    try:
        import cupy
        if cupy.cuda.runtime.getDeviceCount() > 0:
            return None
        return "no CUDA device"
    except Exception as exc:  # no cupy, or no driver
        return f"no usable CUDA device ({type(exc).__name__})"


_OPS = {}


def _ops_for(device):
    if device not in _OPS:
        if device == "cuda-emu":
            _OPS[device] = emu_ops()
        else:
            from minidl.backend.cuda.ops import cuda_ops
            _OPS[device] = cuda_ops()
    return _OPS[device]


DEVICE_ORDERS = [
    pytest.param(("cuda-emu", "forward"), id="emu-fwd"),
    pytest.param(("cuda-emu", "reverse"), id="emu-rev"),
    pytest.param(("cuda", None), id="gpu", marks=pytest.mark.skipif(_gpu_reason() is not None, reason=str(_gpu_reason()))),
]


class DeviceOps:
    """The ops of one device, with helpers to move arrays in and out."""

    def __init__(self, ops):
        self.ops = ops
        self.xp = ops.xp

    def put(self, array):
        return self.xp.asarray(array)

    def get(self, array):
        return array.get() if hasattr(array, "get") else np.asarray(array)


@pytest.fixture(params=DEVICE_ORDERS)
def dev(request):
    device, order = request.param
    ops = DeviceOps(_ops_for(device))
    if order is None:
        yield ops
    else:
        with schedule(order):
            yield ops


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
