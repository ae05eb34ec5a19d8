"""Per-op overhead: the cost of the autograd machinery itself, on 1-element tensors.

    python benchmarks/overhead.py

Two rows, each timed side by side with PyTorch (same 2 threads) when it is installed:
  add      1-element `a + b` with the graph recorded
  backward `(a * b).sum().backward()` on 1-element leaves
Target: minidl at or below 0.5x PyTorch's time.

Each row is a statement compiled into the timing loop (`timing.Statement`, as `timeit` does),
not a function the loop calls: at these sizes a wrapper's call (~35-45 ns) would be a visible
part of both libraries' times.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import minidl  # noqa: E402
from timing import Statement, compare, fmt_time  # noqa: E402

TARGET = 0.5

# the same source for both libraries: only the tensors differ
STATEMENTS = {"add": "a + b", "backward": "(a * b).sum().backward()"}


def _cases(a, b) -> dict:
    return {name: Statement(stmt, {"a": a, "b": b}) for name, stmt in STATEMENTS.items()}


def minidl_cases():
    return _cases(minidl.tensor([1.0], requires_grad=True), minidl.tensor([2.0], requires_grad=True))


def torch_cases():
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(int(os.environ.get("MINIDL_BENCH_THREADS", "2")))
    return _cases(torch.tensor([1.0], requires_grad=True), torch.tensor([2.0], requires_grad=True))


def run(repeats: int = 9) -> list[dict]:
    ours, theirs = minidl_cases(), torch_cases()
    rows = []
    for name in ours:
        cands = {"minidl": ours[name]}
        if theirs:
            cands["torch"] = theirs[name]
        res = compare(cands, repeats=repeats, target_s=0.05)
        row = {"benchmark": f"overhead/{name}", "minidl": res["minidl"]}
        if theirs:
            row["torch"] = res["torch"]
            row["ratio"] = res["minidl"]["median"] / res["torch"]["median"]
            row["target"] = TARGET
        rows.append(row)
    return rows


def main() -> None:
    rows = run()
    print(f"{'row':22s} {'minidl':>12s} {'torch':>12s} {'ratio':>7s}  target")
    for r in rows:
        t = fmt_time(r["torch"]["median"]) if "torch" in r else "-"
        ratio = f"{r['ratio']:.2f}" if "ratio" in r else "-"
        print(f"{r['benchmark']:22s} {fmt_time(r['minidl']['median']):>12s} {t:>12s} {ratio:>7s}  <= {TARGET}")
    if "--json" in sys.argv:
        print(json.dumps(rows, indent=1, default=float))


if __name__ == "__main__":
    main()
