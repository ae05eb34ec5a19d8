"""A checkpoint survives a failed save, and a damaged checkpoint is refused with a message
that names the file and says what is wrong.

The file layout the tampering helpers rely on is the safetensors format itself: 8 bytes of
little-endian header length, the JSON header, then the tensor bytes."""
import errno
import json
import os
import struct

import numpy as np
import pytest
import safetensors.numpy

import minidl
import minidl.io as mio
from minidl.io import CheckpointError, load, save

OLD = {"w": minidl.tensor(np.arange(6, dtype=np.float32).reshape(2, 3)), "epoch": 1}
NEW = {"w": minidl.tensor(np.full((200, 300), 7, np.float32)), "epoch": 2}


@pytest.fixture
def old_checkpoint(tmp_path):
    path = tmp_path / "ck.safetensors"
    save(OLD, path)
    return path


# ---- atomic save --------------------------------------------------------------------------
def fail_half_way(tensors, filename, metadata=None):
    """Stands in for safetensors' writer: writes half the file, then the disk is full."""
    data = safetensors.numpy.save(tensors, metadata=metadata)
    with open(filename, "wb") as f:
        f.write(data[: len(data) // 2])
    raise OSError(errno.ENOSPC, "No space left on device")


def raise_io_error(*args, **kwargs):
    raise OSError(errno.EIO, "Input/output error")


def interrupt(*args, **kwargs):
    raise KeyboardInterrupt


FAILURES = [
    ("write fails half way", safetensors.numpy, "save_file", fail_half_way, OSError),
    ("fsync fails", os, "fsync", raise_io_error, OSError),
    ("rename fails", os, "replace", raise_io_error, OSError),
    ("Ctrl-C during the write", safetensors.numpy, "save_file", interrupt, KeyboardInterrupt),
]


@pytest.mark.parametrize("what,module,name,fake,error", FAILURES, ids=[f[0] for f in FAILURES])
def test_failed_save_leaves_the_old_file_and_no_temporary(what, module, name, fake, error,
                                                          old_checkpoint, monkeypatch):
    before = old_checkpoint.read_bytes()
    monkeypatch.setattr(module, name, fake)
    with pytest.raises(error):
        save(NEW, old_checkpoint)
    monkeypatch.undo()
    assert old_checkpoint.read_bytes() == before
    assert [p.name for p in old_checkpoint.parent.iterdir()] == [old_checkpoint.name]
    got = load(old_checkpoint)
    assert got["epoch"] == 1


def test_successful_save_replaces_and_keeps_permissions(old_checkpoint):
    os.chmod(old_checkpoint, 0o640)
    save(NEW, old_checkpoint)
    assert load(old_checkpoint)["epoch"] == 2
    assert os.stat(old_checkpoint).st_mode & 0o777 == 0o640
    assert [p.name for p in old_checkpoint.parent.iterdir()] == [old_checkpoint.name]


def test_new_file_gets_the_umask_permissions(tmp_path):
    umask = os.umask(0o022)
    try:
        save(OLD, tmp_path / "fresh")
    finally:
        os.umask(umask)
    assert os.stat(tmp_path / "fresh").st_mode & 0o777 == 0o644


# ---- damaged files ------------------------------------------------------------------------
def split(path):
    data = path.read_bytes()
    n = struct.unpack("<Q", data[:8])[0]
    return json.loads(data[8:8 + n]), data[8 + n:]


def rewrite(path, header, body):
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + body)


def truncate_to(n):
    return lambda path: path.write_bytes(path.read_bytes()[:n])


def truncate_by(n):
    return lambda path: path.write_bytes(path.read_bytes()[:-n])


def flip_data_byte(path):
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x40
    path.write_bytes(bytes(data))


def edit_header(change):
    def tamper(path):
        header, body = split(path)
        change(header)
        rewrite(path, header, body)
    return tamper


def set_dtype(header):
    header["w"]["dtype"] = "I32"             # same size: only the meaning of the bytes changes


def swap_shape(header):
    header["w"]["shape"] = header["w"]["shape"][::-1]


def rename_tensor(header):
    header["w2"] = header.pop("w")


def break_structure(header):
    header["__metadata__"][mio.STRUCTURE_KEY] = "{not json"


def malform_structure(header):
    header["__metadata__"][mio.STRUCTURE_KEY] = '{"$dict": [["w"]]}'


def garbage(path):
    path.write_bytes(b"this is not a checkpoint at all, just some text\n" * 3)


def append_bytes(path):
    path.write_bytes(path.read_bytes() + b"\0" * 16)


DAMAGE = [
    ("empty file", truncate_to(0), "0 bytes long, too short .* empty or truncated"),
    ("cut in the length field", truncate_to(5), "5 bytes long, too short"),
    ("cut in the header", truncate_to(40), "the header is \\d+ bytes but the file has only 32 "
                                           ".* truncated"),
    ("cut in the data", truncate_by(3), "need \\d+ bytes of data but the file holds only "
                                        "\\d+; the file is truncated"),
    ("a flipped bit in a tensor", flip_data_byte, "tensor 'w' fails its checksum"),
    ("dtype changed in the header", edit_header(set_dtype),
     "tensor 'w' is int32 \\[2, 3\\] in the header but was saved as float32 \\[2, 3\\]"),
    ("shape changed in the header", edit_header(swap_shape),
     "tensor 'w' is float32 \\[3, 2\\] in the header but was saved as float32 \\[2, 3\\]"),
    ("tensor renamed", edit_header(rename_tensor), "refers to tensor 'w', which the file does "
                                                   "not contain"),
    ("structure not JSON", edit_header(break_structure), "metadata is not valid JSON"),
    ("structure malformed", edit_header(malform_structure), "metadata is malformed"),
    ("not a safetensors file", garbage, "implausible; it is not a safetensors file"),
    ("bytes appended", append_bytes, "16 unexpected bytes follow the tensor data"),
]


@pytest.mark.parametrize("what,damage,message", DAMAGE, ids=[d[0] for d in DAMAGE])
def test_damaged_file_is_refused_naming_file_and_problem(what, damage, message, old_checkpoint):
    damage(old_checkpoint)
    with pytest.raises(CheckpointError, match=message) as info:
        load(old_checkpoint)
    assert f"cannot load '{old_checkpoint}'" in str(info.value)


def test_checkpoint_error_is_a_value_error():
    assert issubclass(CheckpointError, ValueError)
