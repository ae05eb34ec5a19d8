"""Where dataset files live, how they are checked, and how they are fetched.

Root folder, first match wins:
  1. the `root` argument a dataset was given,
  2. the environment variable MINIDL_DATA,
  3. the cache folder: $XDG_CACHE_HOME/minidl/data, or ~/.cache/minidl/data.

Under the root each dataset has its own folder, with the publishers' file names:
  mnist/train-images-idx3-ubyte.gz  (and the three other IDX files)
  fashion-mnist/...                 (same four names)
  tinyshakespeare/input.txt

Every file is checked against the SHA-256 its publisher's copy has, so a truncated download or
a different file of the same name is caught before any training runs on it. Downloads are
written to a temporary file next to the target and renamed only once the hash matches: a
crash or Ctrl-C mid-download never leaves a half-written file under the real name.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.request
from pathlib import Path

ENV_VAR = "MINIDL_DATA"
_CHUNK = 1 << 20  # bytes read at a time while hashing or downloading


class DatasetError(OSError):
    """A dataset file is missing, corrupt, or not in the format expected."""


class DatasetNotFoundError(DatasetError, FileNotFoundError):
    """A dataset file is not where it was looked for."""


def resolve_root(root=None) -> tuple[Path, str]:
    """Return (root folder, where that choice came from) following the order above."""
    if root is not None:
        return Path(root).expanduser(), "the root argument"
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser(), f"${ENV_VAR}"
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "minidl" / "data", "the default cache folder"


def sha256_of(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _how_to_fix(folder: Path, root: Path, root_source: str) -> str:
    return (f"Looked in {folder} (root {root} taken from {root_source}). To fix: pass "
            f"root='/folder/holding/{folder.name}', or set {ENV_VAR}=/folder/holding/{folder.name}, "
            f"or pass download=True to fetch the files into {folder}.")


def find_file(name: str, folder: str, root, sha256: str | None, dataset: str) -> Path:
    """Path of root/folder/name after checking it exists and (if `sha256`) its hash.

    Raises DatasetNotFoundError or DatasetError with a message saying where it looked and how
    to fix it.
    """
    root_path, root_source = resolve_root(root)
    path = root_path / folder / name
    if not path.is_file():
        raise DatasetNotFoundError(
            f"{dataset}: file {name} not found at {path}. "
            + _how_to_fix(path.parent, root_path, root_source))
    if sha256 is not None:
        actual = sha256_of(path)
        if actual != sha256:
            raise DatasetError(
                f"{dataset}: {path} is corrupt or not the published file: its SHA-256 is "
                f"{actual}, expected {sha256}. Delete it and pass download=True, or point "
                f"root/{ENV_VAR} at a good copy. " + _how_to_fix(path.parent, root_path, root_source))
    return path


def download_file(urls, path, sha256: str, dataset: str = "download") -> Path:
    """Fetch the first of `urls` that answers into `path`, verifying its SHA-256.

    Tries each mirror in turn; a mirror that fails or serves a file with the wrong hash is
    skipped. Writes to a temporary file in the same folder and renames it into place, so
    `path` is either the whole verified file or untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    failures = []
    for url in urls:
        try:
            _fetch_verified(url, path, sha256)
            return path
        except (OSError, ValueError) as error:  # URLError and HTTPError are OSErrors
            failures.append(f"  {url}: {error}")
    raise DatasetError(f"{dataset}: could not download {path.name} into {path.parent}; "
                       f"tried:\n" + "\n".join(failures) +
                       f"\nDownload it by hand and put it there, or set {ENV_VAR} to a folder "
                       f"that already holds {path.parent.name}/{path.name}.")


def _fetch_verified(url: str, path: Path, sha256: str) -> None:
    digest = hashlib.sha256()
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as response:
            total = response.headers.get("Content-Length")
            with _progress_bar(int(total) if total else None, path.name) as bar:
                for chunk in iter(lambda: response.read(_CHUNK), b""):
                    out.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
        if digest.hexdigest() != sha256:
            raise ValueError(f"SHA-256 mismatch: got {digest.hexdigest()}, expected {sha256}")
        os.chmod(tmp_name, 0o644)  # mkstemp makes owner-only files; a data cache may be shared
        os.replace(tmp_name, path)  # atomic on POSIX and Windows within one folder
    except BaseException:
        if os.path.exists(tmp_name):
            os.remove(tmp_name)
        raise


class _NoProgress:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, n):
        pass


def _progress_bar(total, name):
    """A tqdm bar when tqdm is installed and stderr is a terminal; otherwise nothing."""
    try:
        from tqdm import tqdm
    except ImportError:
        return _NoProgress()
    return tqdm(total=total, desc=name, unit="B", unit_scale=True, disable=None)


def ensure_file(name: str, folder: str, root, sha256: str, urls, download: bool,
                verify: bool, dataset: str) -> Path:
    """The checked path of root/folder/name; with download=True a missing or corrupt file is
    fetched first (downloads are always verified, whatever `verify` says)."""
    if download:
        root_path, _ = resolve_root(root)
        path = root_path / folder / name
        if not (path.is_file() and sha256_of(path) == sha256):
            download_file(urls, path, sha256, dataset)
        return path
    return find_file(name, folder, root, sha256 if verify else None, dataset)
