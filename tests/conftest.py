"""Shared test fixtures: the device list every device-parametrized suite runs over.

'cpu' always; 'cuda-emu' when its backend is registered and the emulation harness builds;
'cuda' when CuPy sees a GPU. Adding a device here runs every table on it without copying tests.
"""
from __future__ import annotations

import os

import numpy as np
import pytest

import minidl


def _available_devices():
    devices = ["cpu"]
    for name in ("cuda-emu", "cuda"):
        try:
            minidl.backend.get_backend(name)
        except Exception:
            continue
        devices.append(name)
    return devices


DEVICES = _available_devices()


@pytest.fixture(params=DEVICES)
def device(request):
    return request.param


@pytest.fixture(autouse=True)
def _seed():
    minidl.manual_seed(0)
    np.random.seed(0)
    yield


def pytest_report_header(config):
    return [f"minidl devices under test: {', '.join(DEVICES)}",
            f"MINIDL_DATA={os.environ.get('MINIDL_DATA', '(unset: real-data tests skip)')}"]
