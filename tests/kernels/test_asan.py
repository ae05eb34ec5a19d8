"""Out-of-bounds global and shared-memory accesses are reported with file:line by the
AddressSanitizer build of the emulator. ASan must be loaded before Python starts, so each
case runs in a child process."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from minidl.backend.cuda_emu import asan_environment

REPO = Path(__file__).resolve().parents[2]
BUGS = Path(__file__).parent / "buggy" / "bugs.cu"

SCRIPT = """
import sys
import numpy as np
from minidl.backend.cuda_emu import EmuModule
from minidl.backend.kernel_source import kernels_dir
module = EmuModule(sys.argv[1], prelude=kernels_dir() / "prelude.cuh")
x = np.arange(64, dtype=np.float32)
y = np.zeros(64, np.float32)
module.get_function(sys.argv[2])((1,), (64,), (x, y, np.int32(64)), shared_mem=256)
print("kernel finished", float(y[1]))
"""


def _asan_reason():
    out = subprocess.run(["g++", "-print-file-name=libasan.so"], capture_output=True, text=True)
    return None if out.returncode == 0 and "/" in out.stdout else "g++ has no libasan.so (install libasan for GCC)"


pytestmark = pytest.mark.skipif(_asan_reason() is not None, reason=str(_asan_reason()))


def run_under_asan(kernel: str) -> subprocess.CompletedProcess:
    env = asan_environment()
    env["PYTHONPATH"] = str(REPO) + (":" + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return subprocess.run([sys.executable, "-c", SCRIPT, str(BUGS), kernel], env=env,
                          capture_output=True, text=True, timeout=300)


def marker_line(tag: str) -> int:
    for number, line in enumerate(BUGS.read_text().splitlines(), start=1):
        if re.search(rf"BUG: {tag}\b", line):
            return number
    raise AssertionError(tag)


def test_correct_kernel_runs_clean_under_asan():
    result = run_under_asan("neighbour_sum")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "kernel finished 2.0" in result.stdout
    assert "AddressSanitizer" not in result.stderr


@pytest.mark.parametrize("kernel", ["global_out_of_bounds", "shared_out_of_bounds"])
def test_out_of_bounds_access_is_reported_with_file_and_line(kernel):
    result = run_under_asan(kernel)
    assert result.returncode != 0
    assert "kernel finished" not in result.stdout
    assert "AddressSanitizer: heap-buffer-overflow" in result.stderr, result.stderr[-3000:]
    assert f"bugs.cu:{marker_line(kernel)}" in result.stderr, result.stderr[-3000:]


def test_sanitized_build_refuses_to_load_without_the_runtime():
    from minidl.backend.cuda_emu import EmuModule, asan_runtime_loaded

    if asan_runtime_loaded():
        pytest.skip("this test process itself runs under ASan")
    with pytest.raises(RuntimeError, match="LD_PRELOAD"):
        EmuModule(BUGS, sanitize=True)
