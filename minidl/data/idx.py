"""Reader for the IDX format of MNIST and Fashion-MNIST (usually gzip-compressed).

Layout of a decompressed IDX file, every integer big-endian:

    byte 0-1   0x00 0x00
    byte 2     type of the values: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
               0x0D float32, 0x0E float64
    byte 3     number of dimensions, ndim
    then       ndim uint32 sizes, the first one being the number of items
    then       prod(sizes) values in row-major (C) order

Read as one big-endian uint32, the first four bytes are the "magic number": 2051 = 0x00000803
is uint8 with 3 dims (N, rows, cols: images); 2049 = 0x00000801 is uint8 with 1 dim (N: labels).

The trap: multi-byte values are big-endian, while x86 and ARM are little-endian. Reading the
header with np.uint32 would give 2051 as 50855936. We say ">u4" (">" = big-endian) and convert
multi-byte payloads to native byte order after reading.
"""
from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from .files import DatasetError

IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049


def _read_bytes(path: Path) -> bytes:
    """Whole content of the file, gunzipped when the name ends in .gz."""
    if path.suffix != ".gz":
        return path.read_bytes()
    try:
        with gzip.open(path, "rb") as f:
            return f.read()
    except EOFError as error:
        raise DatasetError(f"{path}: truncated gzip file ({error}); the download was probably "
                           f"cut short: delete it and download it again") from error
    except (gzip.BadGzipFile, zlib.error) as error:
        raise DatasetError(f"{path}: not a valid gzip file ({error})") from error


def parse_idx(raw: bytes, source: str = "IDX data", expected_magic: int | None = None) -> np.ndarray:
    """Parse the bytes of a decompressed IDX file into an array of native byte order.

    `source` names the data in error messages; `expected_magic` (2051 or 2049) is checked.
    """
    if len(raw) < 4:
        raise DatasetError(f"{source}: truncated: {len(raw)} bytes, an IDX header needs at least 4")
    magic = int.from_bytes(raw[:4], "big")
    if expected_magic is not None and magic != expected_magic:
        raise DatasetError(f"{source}: bad IDX magic number {magic} (0x{magic:08x}), expected "
                           f"{expected_magic} (0x{expected_magic:08x}); is this the right file?")
    zeros, type_code, ndim = raw[0:2], raw[2], raw[3]
    if zeros != b"\x00\x00" or type_code not in IDX_TYPES or ndim == 0:
        raise DatasetError(f"{source}: bad IDX magic number {magic} (0x{magic:08x}): expected "
                           f"0x0000TTNN with type TT in {sorted(IDX_TYPES)} and NN >= 1 dims")
    header_size = 4 + 4 * ndim
    if len(raw) < header_size:
        raise DatasetError(f"{source}: truncated: the header declares {ndim} dims "
                           f"({header_size} header bytes) but the data has only {len(raw)} bytes")
    shape = tuple(int(n) for n in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(IDX_TYPES[type_code])
    expected = header_size + int(np.prod(shape)) * dtype.itemsize
    if len(raw) != expected:
        what = "truncated" if len(raw) < expected else "has trailing bytes"
        raise DatasetError(f"{source}: {what}: header says shape {shape} of {dtype.name}, "
                           f"which needs {expected} bytes, but the data has {len(raw)} bytes")
    values = np.frombuffer(raw, dtype=dtype, offset=header_size).reshape(shape)
    # frombuffer gives a read-only view of `raw`; astype makes a writable, native-order copy.
    return values.astype(dtype.newbyteorder("="))


def read_idx(path, expected_magic: int | None = None) -> np.ndarray:
    """Read an IDX file (gzip-compressed if its name ends in .gz) into a NumPy array."""
    path = Path(path)
    return parse_idx(_read_bytes(path), str(path), expected_magic)
