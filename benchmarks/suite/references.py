"""Stored PyTorch results in benchmarks/reference/*.json, for runs without PyTorch.

`benchmarks/make_reference.py` writes one file per section. Each file is

    {"meta": {"made_by": ..., "versions": {...torch, numpy, python...}, "machine": {...},
              "threads": ..., "date": ...},
     "data": {...whatever the section stores...}}

Arrays are stored exactly: dtype, shape and the raw little-endian bytes in base64, so a
float64 reference survives the round trip bit for bit (decimal text would not).

A section asks `ReferenceStore.get(name)`; a missing or unreadable file gives None and the
section says "no reference" for its rows, with the reason in `problems`.
"""
from __future__ import annotations

import base64
import datetime
import json
from pathlib import Path

import numpy as np

DEFAULT_DIR = Path(__file__).resolve().parent.parent / "reference"


def encode_array(a) -> dict:
    a = np.asarray(a)                 # (not ascontiguousarray: it turns 0-d arrays into 1-d)
    little = a.astype(a.dtype.newbyteorder("<"), order="C")
    return {"dtype": little.dtype.str, "shape": list(a.shape),
            "base64": base64.b64encode(little.tobytes()).decode()}


def decode_array(d: dict) -> np.ndarray:
    raw = base64.b64decode(d["base64"])
    return np.frombuffer(raw, dtype=np.dtype(d["dtype"])).reshape(d["shape"]).copy()


class ReferenceStore:
    def __init__(self, folder=DEFAULT_DIR):
        self.folder = Path(folder)
        self._cache: dict = {}
        self.problems: dict = {}              # name -> why it could not be loaded

    def path(self, name: str) -> Path:
        return self.folder / f"{name}.json"

    def get(self, name: str):
        """(data, meta) of a stored reference, or None (reason in self.problems[name])."""
        if name in self._cache:
            return self._cache[name]
        path = self.path(name)
        result = None
        if not path.is_file():
            self.problems[name] = (f"{path} does not exist: run `python benchmarks/make_reference.py` "
                                   f"where PyTorch is installed")
        else:
            try:
                doc = json.loads(path.read_text())
                result = (doc["data"], doc["meta"])
            except (OSError, ValueError, KeyError) as err:
                self.problems[name] = f"{path} is unreadable ({err}); regenerate it"
        self._cache[name] = result
        return result

    def describe(self, name: str) -> str:
        """'stored: PyTorch 2.13.0, <date>' for the report's reference column."""
        got = self.get(name)
        if got is None:
            return ""
        meta = got[1]
        torch_v = meta.get("versions", {}).get("torch", "?")
        return f"stored PyTorch {torch_v} ({meta.get('date', '?')[:10]})"

    def save(self, name: str, data, meta: dict) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        meta = dict(meta)
        meta.setdefault("date", datetime.datetime.now().isoformat(timespec="seconds"))
        path = self.path(name)
        path.write_text(json.dumps({"meta": meta, "data": data}, indent=1, sort_keys=True))
        self._cache.pop(name, None)
        return path
