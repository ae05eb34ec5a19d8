"""Root resolution, checksum errors and atomic, verified downloads (through file:// URLs)."""
import hashlib
import io
from pathlib import Path

import pytest

from minidl.data import DatasetError, DatasetNotFoundError, download_file, resolve_root
from minidl.data import files as files_module

PAYLOAD = b"minidl test payload\n" * 1000
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


def test_root_argument_wins_over_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("MINIDL_DATA", str(tmp_path / "env"))
    assert resolve_root(tmp_path / "arg") == (tmp_path / "arg", "the root argument")


def test_environment_wins_over_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MINIDL_DATA", str(tmp_path / "env"))
    assert resolve_root(None) == (tmp_path / "env", "$MINIDL_DATA")


def test_default_cache_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("MINIDL_DATA", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert resolve_root(None)[0] == tmp_path / ".cache" / "minidl" / "data"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert resolve_root(None)[0] == tmp_path / "xdg" / "minidl" / "data"


def test_missing_file_says_where_it_looked_and_how_to_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("MINIDL_DATA", str(tmp_path))
    with pytest.raises(DatasetNotFoundError) as info:
        files_module.find_file("input.txt", "tinyshakespeare", None, None, "TinyShakespeare")
    message = str(info.value)
    assert str(tmp_path / "tinyshakespeare" / "input.txt") in message
    assert "$MINIDL_DATA" in message  # where the root came from
    for fix in ("root=", "MINIDL_DATA=", "download=True"):
        assert fix in message
    assert isinstance(info.value, FileNotFoundError)


def test_checksum_mismatch_names_both_hashes(tmp_path):
    path = tmp_path / "tinyshakespeare" / "input.txt"
    path.parent.mkdir()
    path.write_bytes(PAYLOAD + b"!")
    with pytest.raises(DatasetError) as info:
        files_module.find_file("input.txt", "tinyshakespeare", tmp_path, PAYLOAD_SHA, "X")
    message = str(info.value)
    assert str(path) in message and PAYLOAD_SHA in message
    assert hashlib.sha256(PAYLOAD + b"!").hexdigest() in message
    assert "download=True" in message


def _source(tmp_path, data=PAYLOAD, name="source.bin"):
    path = tmp_path / "server" / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(data)
    return path.as_uri()


def test_download_writes_the_verified_file_and_no_temporaries(tmp_path):
    target = tmp_path / "cache" / "ds" / "file.bin"
    download_file([_source(tmp_path)], target, PAYLOAD_SHA)
    assert target.read_bytes() == PAYLOAD
    assert sorted(p.name for p in target.parent.iterdir()) == ["file.bin"]


def test_download_with_wrong_hash_leaves_nothing(tmp_path):
    target = tmp_path / "cache" / "file.bin"
    with pytest.raises(DatasetError) as info:
        download_file([_source(tmp_path, PAYLOAD + b"tampered")], target, PAYLOAD_SHA)
    assert "SHA-256 mismatch" in str(info.value) and "source.bin" in str(info.value)
    assert list(target.parent.iterdir()) == []


def test_download_falls_through_to_the_next_mirror(tmp_path):
    missing = (tmp_path / "server" / "nothing-here.bin").as_uri()
    target = tmp_path / "cache" / "file.bin"
    download_file([missing, _source(tmp_path)], target, PAYLOAD_SHA)
    assert target.read_bytes() == PAYLOAD


def test_every_mirror_failing_lists_each_attempt(tmp_path):
    urls = [(tmp_path / f"gone{i}.bin").as_uri() for i in range(2)]
    with pytest.raises(DatasetError) as info:
        download_file(urls, tmp_path / "cache" / "file.bin", PAYLOAD_SHA, "MNIST")
    message = str(info.value)
    assert message.startswith("MNIST") and all(url in message for url in urls)
    assert "MINIDL_DATA" in message


class _DyingResponse(io.BytesIO):
    """A response whose connection drops after the first chunk."""
    headers = {"Content-Length": str(len(PAYLOAD))}

    def read(self, size=-1):
        if self.tell() > 0:
            raise ConnectionResetError("connection reset by peer")
        return super().read(10)


def test_interrupted_download_keeps_the_old_file_untouched(tmp_path, monkeypatch):
    target = tmp_path / "cache" / "file.bin"
    target.parent.mkdir()
    target.write_bytes(b"old content")
    monkeypatch.setattr(files_module.urllib.request, "urlopen",
                        lambda url, timeout: _DyingResponse(PAYLOAD))
    with pytest.raises(DatasetError, match="connection reset"):
        download_file(["http://example.invalid/file.bin"], target, PAYLOAD_SHA)
    assert target.read_bytes() == b"old content"
    assert [p.name for p in target.parent.iterdir()] == ["file.bin"]


def test_ensure_file_downloads_only_when_missing_or_corrupt(tmp_path):
    url = _source(tmp_path)
    ensure = lambda: files_module.ensure_file("f.bin", "ds", tmp_path / "root", PAYLOAD_SHA,
                                              [url], True, True, "X")
    path = ensure()
    assert path == tmp_path / "root" / "ds" / "f.bin" and path.read_bytes() == PAYLOAD
    Path(url[len("file://"):]).unlink()  # the mirror is gone: a good local file is enough
    assert ensure().read_bytes() == PAYLOAD
    path.write_bytes(b"corrupt")           # ... but a corrupt one must be fetched again
    with pytest.raises(DatasetError, match="could not download"):
        ensure()
