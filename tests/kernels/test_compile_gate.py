"""Every kernel file compiles without a single warning under NVRTC and nvcc, for sm_80 and
sm_90; and the gate really fails on a warning or on local-memory use."""
from __future__ import annotations

from pathlib import Path

import pytest

from minidl.backend.cuda.compile_gate import (ARCHS, CompileGateError, nvcc_available, nvcc_check,
                                              nvrtc_available, nvrtc_check)
from minidl.backend.cuda.source import kernel_files

BUGGY = Path(__file__).parent / "buggy"
FILES = kernel_files()
needs_nvrtc = pytest.mark.skipif(nvrtc_available() is not None, reason=str(nvrtc_available()))
needs_nvcc = pytest.mark.skipif(nvcc_available() is not None, reason=str(nvcc_available()))


@needs_nvrtc
@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_nvrtc_compiles_cleanly(path, arch):
    nvrtc_check(path, arch)


@needs_nvcc
@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_nvcc_compiles_without_warnings_spills_or_local_memory(path, arch):
    nvcc_check(path, arch)


@needs_nvrtc
def test_nvrtc_gate_fails_on_a_warning():
    with pytest.raises(CompileGateError, match="declared but never referenced"):
        nvrtc_check(BUGGY / "compile_warning.cu", "sm_80")


@needs_nvcc
def test_nvcc_gate_fails_on_a_warning_and_on_local_memory():
    with pytest.raises(CompileGateError, match="declared but never referenced"):
        nvcc_check(BUGGY / "compile_warning.cu", "sm_80")
    with pytest.raises(CompileGateError, match="stack frame"):
        nvcc_check(BUGGY / "local_memory.cu", "sm_80")
