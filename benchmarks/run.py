"""The main job: run minidl's benchmark suite and print a report.

    python benchmarks/run.py [--quick | --full]

Sections run in order; each one that needs something missing (PyTorch, a data set) says so
and the others go on.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))


def section_overhead(args):
    import overhead
    rows = overhead.run(repeats=5 if args.quick else 9)
    print("\n## Per-op overhead (1-element tensors)\n")
    print("| row | minidl | torch | ratio | target |\n|---|---|---|---|---|")
    from timing import fmt_time
    for r in rows:
        t = fmt_time(r["torch"]["median"]) if "torch" in r else "(torch not installed)"
        ratio = f"{r['ratio']:.2f}" if "ratio" in r else "-"
        print(f"| {r['benchmark']} | {fmt_time(r['minidl']['median'])} | {t} | {ratio} | <= {overhead.TARGET} |")
    return rows


def section_demo(args):
    sys.path.insert(0, str(HERE.parent / "examples"))
    import tiny_regression
    print("\n## Training demo: tiny regression with plain autograd\n")
    t0 = time.perf_counter()
    losses = tiny_regression.train(steps=300 if args.quick else 600, log_every=100)
    print(f"\nloss {losses[0]:.4f} -> {losses[-1]:.4f} in {time.perf_counter() - t0:.2f} s")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="short run (about 2 minutes)")
    ap.add_argument("--full", action="store_true", help="include the long accuracy runs")
    args = ap.parse_args()
    print("# minidl benchmarks")
    section_overhead(args)
    section_demo(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
