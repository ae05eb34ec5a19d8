"""Device names and the registry that maps each device to its backend object."""
from __future__ import annotations

from typing import Callable, Dict


class Device:
    """A device name: `type` ('cpu', 'cuda', 'cuda-emu') and an optional `index`."""

    __slots__ = ("type", "index")

    def __init__(self, type: str, index: int | None = None):
        self.type = type
        self.index = index

    def __eq__(self, other) -> bool:
        if isinstance(other, str):
            other = device(other)
        return (isinstance(other, Device) and self.type == other.type
                and (self.index or 0) == (other.index or 0))

    def __hash__(self) -> int:
        return hash((self.type, self.index or 0))

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __repr__(self) -> str:
        return f"device(type='{self.type}'" + ("" if self.index is None else f", index={self.index}") + ")"


_KNOWN_TYPES = ("cpu", "cuda", "cuda-emu")


def device(spec) -> Device:
    """Parse 'cpu', 'cuda', 'cuda:0', 'cuda-emu' or a Device into a Device."""
    if isinstance(spec, Device):
        return spec
    if not isinstance(spec, str):
        raise TypeError(f"a device must be a string such as 'cpu' or 'cuda:0', got {spec!r}")
    name, _, idx = spec.partition(":")
    if name not in _KNOWN_TYPES:
        raise RuntimeError(f"unknown device '{spec}': expected one of {', '.join(_KNOWN_TYPES)} "
                           "(optionally with ':index', e.g. 'cuda:0')")
    if idx and not idx.isdigit():
        raise RuntimeError(f"invalid device index in '{spec}': expected a non-negative integer")
    return Device(name, int(idx) if idx else None)


_factories: Dict[str, Callable] = {}
_instances: Dict[Device, object] = {}


def register_backend(type_name: str, factory: Callable) -> None:
    """Register `factory(device) -> backend` for a device type (called lazily, once per device)."""
    _factories[type_name] = factory


def get_backend(spec):
    """The backend object for a device, created on first use."""
    dev = device(spec)
    key = Device(dev.type, dev.index or 0) if dev.type != "cpu" else Device("cpu")
    be = _instances.get(key)
    if be is None:
        factory = _factories.get(dev.type)
        if factory is None:
            raise RuntimeError(f"device '{dev}' has no backend in this installation")
        be = factory(key)
        _instances[key] = be
    return be


def available_devices() -> list:
    """Device types whose backend can be created on this machine."""
    found = []
    for type_name in _factories:
        try:
            get_backend(type_name)
            found.append(type_name)
        except Exception:
            pass
    return found
