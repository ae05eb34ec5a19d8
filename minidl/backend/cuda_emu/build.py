"""Build one kernel file into a shared library for the CPU emulator, with a cache.

The translation unit is: the emulator header, then `#line`-marked copies of the prelude and
of the kernel file (so every message names `softmax.cu:42`, not a generated file), then one
generated launcher per `extern "C" __global__` kernel. A launcher unpacks the `void**`
argument array into the kernel's real parameter types and first proves, with a
static_assert, that the signature the host parsed is the kernel's true C signature.

Built libraries are cached under $MINIDL_CACHE/emu (default ~/.cache/minidl/emu), named by a
hash of everything that goes into them: a second build of unchanged inputs costs nothing.
"""
from __future__ import annotations

import functools
import hashlib
import os
import subprocess
import tempfile
from pathlib import Path

from minidl.backend.cuda.signatures import Signature, parse_kernels

HARNESS_DIR = Path(__file__).resolve().parent
HEADERS = ("cuda_emu.h", "emu_runtime.h")

BASE_FLAGS = ["-std=c++20", "-shared", "-fPIC", "-fvisibility=hidden", "-fno-gnu-unique",
              "-Wall", "-Wno-unknown-pragmas", "-Wno-unused-function"]
OPT_FLAGS = ["-O2", "-g0"]
# -O1 keeps ASan's reports exact while staying quick; -g gives file:line in them.
ASAN_FLAGS = ["-O1", "-g", "-fsanitize=address", "-fno-omit-frame-pointer"]


class KernelBuildError(RuntimeError):
    """g++ rejected a kernel file; the message carries the compiler's output."""


def cache_dir() -> Path:
    root = os.environ.get("MINIDL_CACHE")
    base = Path(root) if root else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "minidl"
    path = base / "emu"
    path.mkdir(parents=True, exist_ok=True)
    return path


@functools.lru_cache(maxsize=None)
def compiler_identity() -> str:
    try:
        out = subprocess.run(["g++", "--version"], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise KernelBuildError("the CUDA emulator needs g++ (version 10 or newer) on PATH") from exc
    return out.stdout.splitlines()[0]


def _launcher(sig: Signature) -> str:
    unpack = ", ".join(f"*static_cast<{p.c_type}*>(a[{i}])" for i, p in enumerate(sig.params))
    return (
        f'extern "C" __attribute__((visibility("default"))) int minidl_emu_launch_{sig.name}(\n'
        f"        const unsigned* dims, unsigned long long smem, int reverse, void** a) {{\n"
        f"    static_assert(std::is_same_v<decltype(&{sig.name}), {sig.c_function_type()}>,\n"
        f'                  "the host parsed a different signature for {sig.name}");\n'
        f"    return ::emu::launch(dims, smem, reverse, [](void* p) {{\n"
        f"        void** a = static_cast<void**>(p);\n"
        f"        (void)a;\n"
        f"        {sig.name}({unpack});\n"
        f"    }}, a);\n"
        f"}}\n"
    )


def translation_unit(kernel_path: Path, prelude_path: Path) -> tuple[str, dict[str, Signature]]:
    kernel_src = kernel_path.read_text()
    signatures = parse_kernels(kernel_src)
    parts = [
        f'#include "{HARNESS_DIR / "cuda_emu.h"}"',
        f'#line 1 "{prelude_path.name}"',
        prelude_path.read_text(),
        f'#line 1 "{kernel_path.name}"',
        kernel_src,
        '#line 1 "<emulator launchers>"',
        "extern \"C\" __attribute__((visibility(\"default\"))) const char* minidl_emu_last_error() {",
        "    return ::emu::g.error.c_str();",
        "}",
    ]
    parts += [_launcher(sig) for sig in signatures.values()]
    return "\n".join(parts) + "\n", signatures


def build(kernel_path: Path, prelude_path: Path, sanitize: bool = False) -> tuple[Path, dict[str, Signature]]:
    """Return (path of the built .so, kernel signatures); builds only on a cache miss."""
    source, signatures = translation_unit(kernel_path, prelude_path)
    flags = BASE_FLAGS + (ASAN_FLAGS if sanitize else OPT_FLAGS)
    digest = hashlib.sha256()
    for piece in [source, compiler_identity(), " ".join(flags)] + [(HARNESS_DIR / h).read_text() for h in HEADERS]:
        digest.update(piece.encode())
        digest.update(b"\0")
    tag = "asan" if sanitize else "opt"
    target = cache_dir() / f"{kernel_path.stem}-{tag}-{digest.hexdigest()[:20]}.so"
    if target.exists():
        return target, signatures
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        src_file = Path(tmp) / f"{kernel_path.stem}.cpp"
        src_file.write_text(source)
        tmp_target = Path(tmp) / target.name
        result = subprocess.run(["g++", *flags, str(src_file), "-o", str(tmp_target)],
                                capture_output=True, text=True)
        if result.returncode != 0:
            raise KernelBuildError(
                f"g++ could not build {kernel_path} for the CUDA emulator:\n{result.stderr[:6000]}"
            )
        os.replace(tmp_target, target)  # atomic: concurrent builders never see half a file
    return target, signatures
