"""A backend's table of fused ops, resolved lazily by name.

Each device lists the modules that hold its fast versions, most specific first; a name that
none of them defines falls back to the plain reference in `minidl.backend.reference`, which is
written against any array module. Lookups happen once per name and are then cached as plain
attributes, so `be.fused.softmax_forward(x)` costs one attribute read on the hot path.
Importing lazily also keeps `import minidl` quick: Numba kernels load on first use.
"""
from __future__ import annotations

import importlib


class FusedTable:
    """`sources`: module names (imported on first use) or zero-argument factories returning an
    object whose attributes are fused ops (e.g. the CUDA kernel ops of a device)."""

    def __init__(self, device_name: str, sources):
        self._device_name = device_name
        self._module_names = list(sources) + ["minidl.backend.reference"]
        self._modules = None

    def _load_modules(self):
        mods = []
        for name in self._module_names:
            try:
                mods.append(name() if callable(name) else importlib.import_module(name))
            except ImportError as err:
                # a device's fast module may be missing (e.g. no compiler); the reference serves
                if name == "minidl.backend.reference":
                    raise
                mods.append(None)
                self._import_errors = getattr(self, "_import_errors", []) + [f"{name}: {err}"]
        self._modules = [m for m in mods if m is not None]

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        if self._modules is None:
            self._load_modules()
        for mod in self._modules:
            fn = getattr(mod, name, None)
            if fn is not None:
                setattr(self, name, fn)  # cache: later lookups skip __getattr__
                return fn
        raise NotImplementedError(
            f"fused op '{name}' is not available on device '{self._device_name}' "
            f"(looked in {', '.join(map(str, self._module_names))})")

    def override(self, name: str, fn) -> None:
        """Replace one entry (used by tests and by devices that pick a kernel version)."""
        setattr(self, name, fn)
