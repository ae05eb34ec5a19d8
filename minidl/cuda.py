"""`minidl.cuda`: is a GPU here, and what is it doing? (Mirrors the torch.cuda names.)"""
from __future__ import annotations


def _cupy():
    try:
        import cupy
        return cupy
    except ImportError:
        return None


def is_available() -> bool:
    """True when CuPy is installed and sees at least one CUDA device."""
    cp = _cupy()
    if cp is None:
        return False
    try:
        return cp.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


def device_count() -> int:
    return _cupy().cuda.runtime.getDeviceCount() if is_available() else 0


def _require():
    if not is_available():
        raise RuntimeError("no CUDA device is available (CuPy missing or no GPU); "
                           "minidl.cuda.is_available() tells before you call this")
    return _cupy()


def synchronize(device: int | None = None) -> None:
    """Wait for every kernel queued on the device to finish (timing needs this)."""
    cp = _require()
    cp.cuda.Device(device or 0).synchronize()


def memory_allocated() -> int:
    """Bytes held by live arrays in CuPy's memory pool."""
    return _require().get_default_memory_pool().used_bytes()


def memory_reserved() -> int:
    """Bytes the pool holds from the driver (live arrays plus cached free blocks)."""
    return _require().get_default_memory_pool().total_bytes()


def empty_cache() -> None:
    _require().get_default_memory_pool().free_all_blocks()


def get_device_name(device: int | None = None) -> str:
    cp = _require()
    return cp.cuda.runtime.getDeviceProperties(device or 0)["name"].decode()
