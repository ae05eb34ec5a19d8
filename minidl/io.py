"""Checkpoints: `save(obj, path)` and `load(path)`, in the safetensors format.

What can be saved: a Tensor, a state_dict (a dict of Tensors), or any nesting of dicts,
lists and tuples holding Tensors, NumPy arrays, numbers, strings, booleans and None — e.g.
`{'model': model.state_dict(), 'optim': opt.state_dict(), 'epoch': 3}`.

How it is stored. A safetensors file is an 8-byte little-endian header length, a JSON header
(name -> dtype, shape, byte range; plus a free string->string `__metadata__` map), then the raw
tensor bytes. Every Tensor and array of `obj` becomes one safetensors entry, named by its path
in `obj` ('model.fc1.weight', 'optim.state.0.exp_avg'), so PyTorch, JAX or plain NumPy
(`safetensors.numpy.load_file`) read the tensors directly. Everything else — the nesting, the
numbers, which entries were Tensors — is one JSON document in the metadata under
'minidl.structure', along with each tensor's dtype, shape, device and CRC-32 checksum.

Why not pickle, as torch.save does: unpickling runs code named by the file, so loading a
checkpoint from someone else is running their program. Here loading only parses JSON and
copies bytes. The checksums catch a tampered or bit-rotten file; the header checks catch a
truncated one; each problem raises `CheckpointError` naming the file and what is wrong.

Why atomic: a checkpoint is written while training, and a crash (or a full disk) in the middle
of overwriting the only copy would lose both the old and the new state. `save` writes to a
temporary file in the same folder, flushes it to disk (fsync), and only then renames it over
the target (`os.replace`, atomic on POSIX and Windows): the target is always either the old
file or the complete new one.
"""
from __future__ import annotations

import json
import os
import struct
import tempfile
import zlib

import numpy as np
import safetensors
import safetensors.numpy as st_numpy

from .backend import get_backend
from .tensor import Tensor

__all__ = ["save", "load", "CheckpointError"]

STRUCTURE_KEY = "minidl.structure"
FORMAT_KEY = "minidl.format"
FORMAT_VERSION = "1"
_MAX_HEADER_BYTES = 100 * 1024 * 1024   # the safetensors library's own limit


class CheckpointError(ValueError):
    """A file that cannot be loaded: truncated, corrupted, or not a minidl/safetensors file."""


# ---- save ---------------------------------------------------------------------------------

def save(obj, f) -> None:
    """Save `obj` (Tensor, state_dict, or nested dict/list/tuple of Tensors, arrays and
    plain values) to the path `f` atomically, or to a writable binary file object."""
    arrays = {}
    structure = _encode(obj, "", arrays)
    metadata = {FORMAT_KEY: FORMAT_VERSION,
                STRUCTURE_KEY: json.dumps(structure, separators=(",", ":"))}
    if hasattr(f, "write"):
        f.write(st_numpy.save(arrays, metadata=metadata))
        return
    path = os.fspath(f)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp",
                               dir=folder)
    os.close(fd)
    try:
        st_numpy.save_file(arrays, tmp, metadata=metadata)
        os.chmod(tmp, _file_mode(path))
        _fsync(tmp, os.O_RDONLY)      # the bytes are on disk before the name points at them
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    try:
        _fsync(folder, os.O_RDONLY)   # make the rename itself durable (POSIX folders)
    except OSError:
        pass                          # e.g. Windows cannot open a folder: the rename stands


def _fsync(path: str, flags: int) -> None:
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _file_mode(path: str) -> int:
    """Keep an existing file's permissions; a new one gets the usual 0o666 & ~umask
    (mkstemp made the temporary file private, 0o600)."""
    try:
        return os.stat(path).st_mode & 0o7777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _encode(obj, path: str, arrays: dict):
    """The JSON description of obj; its Tensors and arrays go into `arrays` by name.
    Containers are tagged objects ({"$dict": [[key, value], ...]}, {"$list": [...]}, ...),
    so plain JSON values never collide with them; dict keys keep their type (str or int)."""
    if isinstance(obj, Tensor):
        entry = _store(_contiguous(obj._be.to_numpy(obj._data)), path or "tensor", arrays)
        entry.update({"$tensor": entry.pop("name"), "device": str(obj.device)})
        if obj.requires_grad:
            entry["requires_grad"] = True
        return entry
    if isinstance(obj, np.ndarray):
        entry = _store(_contiguous(obj), path or "array", arrays)
        entry["$array"] = entry.pop("name")
        return entry
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        items = []
        for key, value in obj.items():
            if isinstance(key, np.integer):
                key = int(key)
            if not isinstance(key, (str, int)) or isinstance(key, bool):
                raise TypeError(f"minidl.save: dict keys must be str or int, got "
                                f"{type(key).__name__} {key!r} at {_where(path)}")
            items.append([key, _encode(value, _join(path, key), arrays)])
        return {"$dict": items}
    if isinstance(obj, (list, tuple)):
        tag = "$list" if isinstance(obj, list) else "$tuple"
        return {tag: [_encode(v, _join(path, i), arrays) for i, v in enumerate(obj)]}
    raise TypeError(
        f"minidl.save cannot store a value of type {type(obj).__name__} (at {_where(path)}): "
        "it saves Tensors, NumPy arrays, numbers, strings, booleans, None and dicts/lists/"
        "tuples of them, never code. Save a module's or optimizer's state_dict() instead")


def _contiguous(arr: np.ndarray) -> np.ndarray:
    # not np.ascontiguousarray: it turns 0-d arrays into shape (1,)
    return arr if arr.flags.c_contiguous else arr.copy(order="C")


def _store(arr: np.ndarray, name: str, arrays: dict) -> dict:
    unique, n = name, 1
    while unique in arrays:            # e.g. {'a.b': x, 'a': {'b': y}}
        unique, n = f"{name}#{n}", n + 1
    arrays[unique] = arr
    return {"name": unique, "dtype": arr.dtype.name, "shape": list(arr.shape),
            "crc32": zlib.crc32(memoryview(arr).cast("B")) if arr.size else 0}


def _join(path: str, key) -> str:
    return f"{path}.{key}" if path else str(key)


def _where(path: str) -> str:
    return f"'{path}'" if path else "the top level"


# ---- load ---------------------------------------------------------------------------------

def load(f, map_location=None, weights_only=True):
    """Load what `save` wrote, or the tensors of any safetensors file (as a dict of Tensors).

    map_location: None puts each tensor back on the device it was saved from; a device
    ('cpu', 'cuda:0') puts all of them there; a dict {'cuda:0': 'cpu'} remaps devices.
    `weights_only` is accepted for PyTorch compatibility: loading never runs code anyway."""
    if not (map_location is None or isinstance(map_location, (str, dict))
            or hasattr(map_location, "type")):
        raise TypeError("map_location must be None, a device (e.g. 'cpu') or a dict mapping "
                        f"saved devices to new ones, got {type(map_location).__name__}")
    if hasattr(f, "read"):
        name, data = getattr(f, "name", "<file object>"), f.read()
        header = _read_header(name, data, len(data))
        read_arrays = lambda: st_numpy.load(data)  # noqa: E731
    else:
        name = os.fspath(f)
        with open(name, "rb") as fh:
            head = fh.read(8)
            size = os.fstat(fh.fileno()).st_size
            length = struct.unpack("<Q", head)[0] if len(head) == 8 else 0
            if len(head) == 8 and length <= min(size - 8, _MAX_HEADER_BYTES):
                head += fh.read(length)
        header = _read_header(name, head, size)
        read_arrays = lambda: st_numpy.load_file(name)  # noqa: E731
    try:
        arrays = read_arrays()
    except safetensors.SafetensorError as err:
        raise CheckpointError(f"cannot load '{name}': the safetensors reader rejects it "
                              f"({err}); the file is corrupted") from None
    metadata = header.get("__metadata__") or {}
    structure = metadata.get(STRUCTURE_KEY)
    if structure is None:              # a safetensors file from elsewhere: its tensors
        return {key: _to_tensor(arrays[key], {}, map_location, name, key)
                for key in header if key != "__metadata__"}
    try:
        structure = json.loads(structure)
    except ValueError as err:
        raise CheckpointError(f"cannot load '{name}': its '{STRUCTURE_KEY}' metadata is not "
                              f"valid JSON ({err}); the file was altered") from None
    try:
        return _decode(structure, arrays, map_location, name)
    except CheckpointError:
        raise
    except (TypeError, ValueError, KeyError, AttributeError) as err:
        raise CheckpointError(f"cannot load '{name}': its '{STRUCTURE_KEY}' metadata is "
                              f"malformed ({type(err).__name__}: {err}); the file was "
                              "altered") from None


def _read_header(name: str, data: bytes, size: int) -> dict:
    """Parse the safetensors header from the start of the file and check that the file holds
    every byte the header promises (a truncated file fails here, with its sizes)."""
    if size < 8:
        raise CheckpointError(f"cannot load '{name}': the file is {size} bytes long, too short "
                              "for a safetensors header; it is empty or truncated")
    length = struct.unpack("<Q", data[:8])[0]
    if length > _MAX_HEADER_BYTES:
        raise CheckpointError(f"cannot load '{name}': the first 8 bytes give a header length "
                              f"of {length} bytes, which is implausible; it is not a "
                              "safetensors file or its start is corrupted")
    if 8 + length > size:
        raise CheckpointError(f"cannot load '{name}': the header is {length} bytes but the "
                              f"file has only {size - 8} after the length field; the file is "
                              "truncated")
    try:
        header = json.loads(bytes(data[8:8 + length]))
    except ValueError as err:
        raise CheckpointError(f"cannot load '{name}': the header is not valid JSON ({err}); "
                              "it is not a safetensors file or it is corrupted") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"cannot load '{name}': the header is not a JSON object")
    needed = 0
    for key, info in header.items():
        if key != "__metadata__":
            try:
                needed = max(needed, int(info["data_offsets"][1]))
            except (TypeError, KeyError, IndexError, ValueError):
                raise CheckpointError(f"cannot load '{name}': header entry '{key}' has no "
                                      "valid data_offsets; the file is corrupted") from None
    have = size - 8 - length
    if have < needed:
        raise CheckpointError(f"cannot load '{name}': the tensors need {needed} bytes of data "
                              f"but the file holds only {have}; the file is truncated")
    if have > needed:
        raise CheckpointError(f"cannot load '{name}': {have - needed} unexpected bytes follow "
                              "the tensor data; the file is corrupted")
    return header


def _decode(node, arrays: dict, map_location, name: str):
    if not isinstance(node, dict):
        return node
    if "$tensor" in node or "$array" in node:
        key = node.get("$tensor", node.get("$array"))
        arr = arrays.get(key)
        if arr is None:
            raise CheckpointError(f"cannot load '{name}': its structure refers to tensor "
                                  f"'{key}', which the file does not contain")
        _verify(arr, node, key, name)
        if "$array" in node:
            return arr
        return _to_tensor(arr, node, map_location, name, key)
    if "$dict" in node:
        return {k: _decode(v, arrays, map_location, name) for k, v in node["$dict"]}
    if "$list" in node:
        return [_decode(v, arrays, map_location, name) for v in node["$list"]]
    if "$tuple" in node:
        return tuple(_decode(v, arrays, map_location, name) for v in node["$tuple"])
    raise CheckpointError(f"cannot load '{name}': unknown entry {sorted(node)} in its "
                          "structure; the file was altered or written by a newer minidl")


def _verify(arr: np.ndarray, node: dict, key: str, name: str) -> None:
    if arr.dtype.name != node.get("dtype") or list(arr.shape) != node.get("shape"):
        raise CheckpointError(
            f"cannot load '{name}': tensor '{key}' is {arr.dtype.name} {list(arr.shape)} in "
            f"the header but was saved as {node.get('dtype')} {node.get('shape')}; the file "
            "was altered")
    crc = zlib.crc32(memoryview(_contiguous(arr)).cast("B")) if arr.size else 0
    if crc != node.get("crc32"):
        raise CheckpointError(f"cannot load '{name}': tensor '{key}' fails its checksum "
                              f"(CRC-32 {crc:#010x}, saved {node.get('crc32')!r}); its bytes "
                              "changed after saving — the file is corrupted")


def _to_tensor(arr: np.ndarray, node: dict, map_location, name: str, key: str) -> Tensor:
    saved = node.get("device", "cpu")
    device = _target_device(saved, map_location)
    try:
        be = get_backend(device)
    except (RuntimeError, ImportError, OSError) as err:
        raise CheckpointError(f"cannot load '{name}': tensor '{key}' (saved on '{saved}') "
                              f"would go to '{device}', which is not available here ({err}); "
                              "pass map_location='cpu'") from None
    if not arr.flags.writeable:        # a tensor must be updatable in place
        arr = arr.copy()
    t = Tensor._wrap(be.from_numpy(arr), be, None, 0)
    if node.get("requires_grad"):
        t.requires_grad = True
    return t


def _target_device(saved: str, map_location) -> str:
    if map_location is None:
        return saved
    if isinstance(map_location, dict):
        return str(map_location.get(saved, saved))
    return str(map_location)
