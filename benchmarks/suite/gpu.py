"""Section 5, GPU: on a machine with a CUDA GPU, run the kernel ladder (benchmarks/kernels.py
all) and the GPU smoke test (benchmarks/gpu_smoke.py), keep their output in results/gpu.log
and report whether each passed; without a GPU, one row saying so."""
from __future__ import annotations

import subprocess
import sys

from .context import BENCH_DIR
from .rows import Row, Section, Target

SCRIPTS = [("kernel ladder (benchmarks/kernels.py all)", ["kernels.py", "all"]),
           ("GPU smoke test (benchmarks/gpu_smoke.py)", ["gpu_smoke.py"])]


def gpu_name() -> str | None:
    import minidl
    if not minidl.cuda.is_available():
        return None
    try:
        return minidl.cuda.get_device_name()
    except Exception:          # a device is there but its name is not: still a GPU
        return "CUDA device"


def run(ctx) -> Section:
    section = Section("gpu", "GPU")
    name = gpu_name()
    if name is None:
        section.add(Row("GPU benchmarks", "", status="skipped",
                        note="no CUDA GPU on this machine (minidl.cuda.is_available() is False); "
                             "the CUDA kernels are checked on the CPU emulator by tests/kernels"))
        return section
    log_path = ctx.results_dir / "gpu.log"
    with open(log_path, "w") as log:
        for label, args in SCRIPTS:
            script = BENCH_DIR / args[0]
            if not script.exists():
                section.add(Row(label, "", status="skipped", note=f"{script} does not exist"))
                continue
            ctx.log(f"  running {label} on {name} ...")
            log.write(f"\n===== {label} =====\n")
            log.flush()
            done = subprocess.run([sys.executable, str(script), *args[1:]], stdout=log,
                                  stderr=subprocess.STDOUT, cwd=BENCH_DIR.parent)
            section.add(Row(f"{label} on {name}", "exit status", minidl=done.returncode,
                            target=Target("value", "<=", 0),
                            note="every check passed" if done.returncode == 0 else
                            "a check failed; output in results/gpu.log"))
    return section
