#!/usr/bin/env python3
"""One entry point for people who work on minidl, needing only python3 and pip.

    python3 dev.py test            make .venv, install minidl with its test extras, run pytest
    python3 dev.py test --torch    ... also install torch==2.13.0 so the PyTorch parity tests run
    python3 dev.py test --cuda     ... also install CuPy + NVRTC so the kernel compile gate runs
                                   (CI=true implies both --torch and --cuda)
    python3 dev.py bench           make .venv, install, run the benchmark suite (the main job)
    python3 dev.py bench --quick   the same, short (about 2 minutes)

Everything goes into ./.venv so the system Python is left alone. Extra arguments after `--`
are passed to pytest or to the benchmark runner.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
TORCH_PIN = "torch==2.13.0"  # the one version with a local CPU wheel here; others pull gigabytes


def venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def run(cmd, **kw) -> int:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    return subprocess.call([str(c) for c in cmd], cwd=ROOT, **kw)


def ensure_env(extras: str, with_torch: bool, with_cuda: bool = False) -> Path:
    py = venv_python()
    if not py.exists():
        venv.EnvBuilder(with_pip=True).create(VENV)
    if with_cuda:
        extras += ",cuda"
    # the stamp names the pyproject.toml it installed, so a changed dependency list reinstalls
    deps = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()[:12]
    stamp = VENV / f".installed-{extras.replace(',', '-')}{'-torch' if with_torch else ''}-{deps}"
    if not stamp.exists():
        pip = [py, "-m", "pip", "install", "--disable-pip-version-check", "-q"]
        if run(pip + ["-e", f".[{extras}]"]) != 0:
            sys.exit("pip install failed")
        if with_torch and run(pip + [TORCH_PIN]) != 0:
            sys.exit(f"pip install {TORCH_PIN} failed")
        stamp.touch()
    return py


def split_passthrough(argv):
    if "--" in argv:
        i = argv.index("--")
        return argv[:i], argv[i + 1:]
    return argv, []


def main(argv) -> int:
    own, rest = split_passthrough(argv)
    if not own or own[0] not in ("test", "bench"):
        print(__doc__)
        return 2
    command, flags = own[0], set(own[1:])
    in_ci = os.environ.get("CI") == "true"
    with_torch = "--torch" in flags or in_ci
    with_cuda = "--cuda" in flags or in_ci
    env = dict(os.environ)
    shared_data = ROOT.parent / "shared" / "data"
    if "MINIDL_DATA" not in env and shared_data.is_dir():
        env["MINIDL_DATA"] = str(shared_data)
    if command == "test":
        py = ensure_env("test", with_torch, with_cuda)
        return run([py, "-m", "pytest", "tests", *rest], env=env)
    py = ensure_env("test,bench", with_torch)
    mode = ["--quick"] if "--quick" in flags else (["--full"] if "--full" in flags else [])
    return run([py, "benchmarks/run.py", *mode, *rest], env=env)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
