"""The CUDA sources ship inside the wheel and are found both installed and from a checkout."""
from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from minidl.backend.kernel_source import kernels_dir

ROOT = Path(__file__).resolve().parent.parent


def test_kernels_found_from_the_checkout():
    found = kernels_dir()
    assert (found / "prelude.cuh").is_file()
    assert sorted(p.name for p in found.glob("*.cu")) == sorted(p.name for p in (ROOT / "kernels").glob("*.cu"))


def test_wheel_contains_every_kernel_source(tmp_path):
    if not (ROOT / "pyproject.toml").is_file():
        pytest.skip("not running from a source checkout")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                           str(tmp_path), str(ROOT)], capture_output=True, text=True, timeout=600)
    if proc.returncode != 0 and "No matching distribution" in proc.stderr:
        pytest.skip("the build backend (hatchling) cannot be downloaded here")
    assert proc.returncode == 0, proc.stderr
    (wheel,) = tmp_path.glob("minidl-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for src in (ROOT / "kernels").iterdir():
        if src.suffix in (".cu", ".cuh"):
            assert f"minidl/kernels/{src.name}" in names, src.name
    assert "minidl/backend/kernel_source.py" in names
