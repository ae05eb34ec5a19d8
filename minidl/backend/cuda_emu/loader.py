"""The module loader of the `cuda-emu` device: kernel file name -> EmuModule (built once)."""
from __future__ import annotations

import threading

import numpy as np

from minidl.backend.kernel_source import kernels_dir

from .module import EmuModule


class EmuLoader:
    """Loads `kernels/<file>` into the CPU emulator; the array module is NumPy."""

    xp = np
    name = "cuda-emu"

    def __init__(self, directory=None, sanitize: bool | None = None):
        self.directory = directory
        self.sanitize = sanitize
        self._modules: dict[str, EmuModule] = {}
        self._lock = threading.Lock()

    def module(self, file_name: str) -> EmuModule:
        with self._lock:
            if file_name not in self._modules:
                directory = self.directory or kernels_dir()
                self._modules[file_name] = EmuModule(directory / file_name, sanitize=self.sanitize)
            return self._modules[file_name]
