"""Compile gate: every kernel file must compile cleanly for the GPUs we target, without a GPU.

Two compilers, because they are the two that will ever see the code:
  * NVRTC (what cupy.RawModule uses at run time), driven through cupy.cuda.nvrtc, which works
    with no GPU. NVRTC has no -Werror, so any text in the program log fails the gate.
  * nvcc --cubin with every warning an error, and ptxas told to warn about register spills
    and local-memory use (a per-thread array the compiler could not keep in registers).
Both run for sm_80 (A100) and sm_90 (H100).

    python -m minidl.backend.cuda.compile_gate            # all files, both compilers
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from .source import gpu_source, kernel_files

ARCHS = ("sm_80", "sm_90")
PTXAS_WARNINGS = ("-warn-spills", "-warn-lmem-usage")


class CompileGateError(RuntimeError):
    """A kernel file produced a compiler error or warning."""


def nvrtc_available() -> str | None:
    """None when NVRTC can be used, else the reason it cannot."""
    try:
        from cupy.cuda import nvrtc
        nvrtc.getVersion()
    except Exception as exc:  # ImportError, or the NVRTC library wheel is missing
        return f"NVRTC unavailable ({type(exc).__name__}: {exc}); pip install cupy-cuda12x nvidia-cuda-nvrtc-cu12"
    return None


def nvcc_available() -> str | None:
    return None if shutil.which("nvcc") else "nvcc is not on PATH (install the CUDA toolkit)"


def nvrtc_check(path: Path, arch: str) -> None:
    """Compile with NVRTC to a cubin for `arch`; raise CompileGateError on any log output."""
    from cupy.cuda import nvrtc

    path = Path(path)
    options = (f"--gpu-architecture={arch}", "--std=c++17", "-default-device",
               *(f"-Xptxas={w}" for w in PTXAS_WARNINGS))
    program = nvrtc.createProgram(gpu_source(path), path.name, (), ())
    try:
        try:
            nvrtc.compileProgram(program, options)
        except nvrtc.NVRTCError as exc:
            raise CompileGateError(f"NVRTC {arch} failed on {path.name}:\n{nvrtc.getProgramLog(program)}") from exc
        log = nvrtc.getProgramLog(program).strip().strip("\x00")
        if log:
            raise CompileGateError(f"NVRTC {arch} warned on {path.name}:\n{log}")
        if not nvrtc.getCUBIN(program):
            raise CompileGateError(f"NVRTC {arch} produced no cubin for {path.name}")
    finally:
        nvrtc.destroyProgram(program)


def nvcc_check(path: Path, arch: str) -> None:
    """Compile with nvcc --cubin, warnings as errors; raise CompileGateError on any warning,
    register spill or local-memory stack frame.

    ptxas' -warn-lmem-usage does not fire for a per-thread array that lives in the stack
    frame (e.g. one indexed with a run-time value), so `ptxas -v` is read as well: every
    kernel must report "0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads".
    """
    path = Path(path)
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / path.name
        source.write_text(gpu_source(path))
        command = ["nvcc", "--cubin", f"-arch={arch}", "-std=c++17", "-Werror", "all-warnings",
                   "-Xptxas", ",".join(("-v",) + PTXAS_WARNINGS), "-o", str(Path(tmp) / "out.cubin"),
                   str(source)]
        result = subprocess.run(command, capture_output=True, text=True)
    lines = (result.stdout + result.stderr).strip().splitlines()
    problems = [line for line in lines if not line.startswith("ptxas info") and "bytes stack frame" not in line]
    problems += [f"{function}: {line.strip()}" for function, line in _frames(lines)
                 if not line.strip().startswith("0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads")]
    if result.returncode != 0 or problems:
        raise CompileGateError(f"nvcc {arch} on {path.name}:\n" + "\n".join(problems or lines))


def _frames(lines):
    """(kernel, 'N bytes stack frame, ...') pairs from ptxas -v output."""
    function = "?"
    for line in lines:
        if "Function properties for" in line:
            function = line.rsplit(" ", 1)[-1]
        elif "bytes stack frame" in line:
            yield function, line


def run_gate(files=None, compilers=("nvrtc", "nvcc")) -> list[str]:
    """Check every file with every available compiler; return the failure messages."""
    failures = []
    checks = {"nvrtc": (nvrtc_available, nvrtc_check), "nvcc": (nvcc_available, nvcc_check)}
    for compiler in compilers:
        available, check = checks[compiler]
        reason = available()
        if reason:
            print(f"skipping {compiler}: {reason}")
            continue
        for path in files or kernel_files():
            for arch in ARCHS:
                try:
                    check(path, arch)
                    print(f"ok    {compiler:5s} {arch} {path.name}")
                except CompileGateError as exc:
                    print(f"FAIL  {compiler:5s} {arch} {path.name}")
                    failures.append(str(exc))
    return failures


def main(argv=None) -> int:
    failures = run_gate([Path(a) for a in (argv or [])] or None)
    for message in failures:
        print(message, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
