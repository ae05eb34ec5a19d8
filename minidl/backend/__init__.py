"""Floor 1: where arrays live.

A *backend* is one small object per device. It offers

* `xp` — the array namespace (NumPy on the CPU, CuPy on a GPU); ops above this floor call
  `x._be.xp.exp(...)` instead of importing numpy, so one op definition serves every device;
* `fused` — the table of fused array-level ops (softmax, layer_norm, cross_entropy, attention,
  optimizer steps, im2col, pooling, ...), each with the same signature on every device
  (the contract is documented in `minidl/backend/reference/`, whose plain implementations are
  the fallback for any entry a device does not speed up);
* a few conversions (`asarray`, `to_numpy`) and the device's random-number source.

Devices are named as in PyTorch: 'cpu', 'cuda', 'cuda:1', plus 'cuda-emu' (NumPy arrays whose
fused ops run our CUDA C kernels through the CPU emulation harness).
"""
from __future__ import annotations

from .device import Device, device, register_backend, get_backend, available_devices
from . import cpu as _cpu  # noqa: F401  (registers 'cpu')
from . import gpu as _gpu  # noqa: F401  (registers 'cuda' and 'cuda-emu'; nothing heavy is imported yet)

__all__ = ["Device", "device", "register_backend", "get_backend", "available_devices"]
