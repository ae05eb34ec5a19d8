"""Where a minidl training step spends its time, by cProfile.

    python benchmarks/profile_step.py                 # MLP b64, MLP b256, CNN b64, GPT b32
    python benchmarks/profile_step.py --only mlp64 --steps 50 --top 25

Each workload is the benchmark suite's own (benchmarks/suite/workloads.py): the same model,
optimizer and fixed float32 batch as the step-speed rows. A few warm-up steps run first
(Numba compiles, buffers settle), then `--steps` steps run under cProfile.

The report groups the time by what it is spent on. Each function's own time ("tottime":
time in its body, not in the Python functions it calls) goes to the group of the file it
lives in:

  autograd engine   minidl/autograd/engine.py: the backward walk itself
  autograd records  the rest of minidl/autograd and minidl/tensor.py: making nodes, edges,
                    result Tensors, version checks
  ops and layers    minidl/ops, minidl/nn, minidl/optim, and the operator fast paths of
                    minidl/autograd/function.py (`x + y` computes there)
  kernels           minidl/backend, NumPy's own Python, and the C functions called by them
                    or by the ops
  other             everything else (the benchmark's own loop, the standard library)

A C function (cProfile's "~") goes to its callers' group when they are autograd code, whose
C calls (heappush, dict lookups) are bookkeeping; otherwise to "kernels".

Two traps when reading it:
* cProfile records a C call only when the callee is a builtin function or method
  (`np.ascontiguousarray`, `ndarray.reshape`). A NumPy ufunc (`np.maximum(x, 0)`, `np.matmul`)
  or a Numba kernel is another kind of object, so its time is counted as the own time of the
  Python function that called it. The "ops and layers" group therefore holds the ufunc work
  an op runs directly, and "kernels" the Numba work of minidl/backend.
* cProfile adds a fixed cost to every Python call, so it overstates the Python groups. The
  report therefore also prints the step's time without the profiler and the graph's node
  count, and times the machinery per node without the profiler on a chain of 1-element ops
  (for PyTorch too, when it is installed).
"""
from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from suite.speed_train import StepRunner  # noqa: E402
from suite.workloads import (cnn_workload, gpt_workload, initial_state, minidl_lib,  # noqa: E402
                             mlp_workload)

WORKLOADS = {
    "mlp64": ("MLP 784-512-256-10 + Adam, batch 64", lambda: mlp_workload(64)),
    "mlp256": ("MLP 784-512-256-10 + Adam, batch 256", lambda: mlp_workload(256)),
    "cnn64": ("CNN Conv32-Pool-Conv64-Pool-128-10 + Adam, batch 64", lambda: cnn_workload(64)),
    "gpt32": ("GPT 4x128, T 128 + AdamW, batch 32", lambda: gpt_workload(preset="benchmark")),
}

GROUPS = ("autograd engine", "autograd records", "ops and layers", "kernels", "other")
# functions of minidl/autograd/function.py that run an op's arithmetic themselves
_COMPUTING = ("operator_fast_path",)   # `x + y` and `x - y` (cProfile names code objects)


def group_of(filename: str, name: str = "") -> str:
    """The report's group for function `name` defined in `filename` ("~" for C functions,
    whose group depends on the caller: see `split_c_time`)."""
    path = filename.replace("\\", "/")
    if filename == "~" or "/numpy/" in path:
        return "kernels"
    if "/minidl/" not in path:
        return "other"
    inside = path.rsplit("/minidl/", 1)[1]
    if inside == "autograd/engine.py":
        return "autograd engine"
    if inside == "autograd/function.py" and name in _COMPUTING:
        return "ops and layers"
    if inside.startswith("autograd/") or inside == "tensor.py":
        return "autograd records"
    if inside.startswith("backend/"):
        return "kernels"
    return "ops and layers"


def split_c_time(callers: dict) -> dict:
    """{group: seconds} for one C function, from pstats' callers map {caller: (calls,
    primitive calls, own time, total time)}: autograd callers keep their share."""
    shares = {}
    for (filename, _, name), entry in callers.items():
        group = group_of(filename, name)
        if not group.startswith("autograd"):
            group = "kernels"
        shares[group] = shares.get(group, 0.0) + entry[2]
    return shares


def node_count(loss) -> int:
    """How many graph nodes backward will visit from `loss` (before it runs)."""
    seen, stack = set(), [loss.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or node in seen or node.is_leaf_node:
            continue
        seen.add(node)
        stack.extend(edge[0] for edge in node.next_edges if edge is not None)
    return len(seen)


def unprofiled_step_s(runner, repeats: int = 7, per_repeat: int = 5) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(per_repeat):
            runner.step()
        times.append((time.perf_counter() - t0) / per_repeat)
    return statistics.median(times)


def profile(key: str, steps: int, top: int) -> dict:
    title, make = WORKLOADS[key]
    lib = minidl_lib()
    workload = make()
    runner = StepRunner(workload, lib, initial_state(workload, lib))
    for _ in range(3):
        runner.step()
    step_s = unprofiled_step_s(runner)
    nodes = node_count(workload.loss(lib, runner.model, runner.x, runner.y))

    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(steps):
        runner.step()
    profiler.disable()
    stats = pstats.Stats(profiler)

    by_group = dict.fromkeys(GROUPS, 0.0)
    rows = []
    for (filename, line, name), (_, ncalls, tottime, _, callers) in stats.stats.items():
        if filename == "~":
            for group, seconds in split_c_time(callers).items():
                by_group[group] += seconds
        else:
            by_group[group_of(filename, name)] += tottime
        rows.append((tottime, ncalls, f"{_short(filename)}:{line}({name})"))
    total = sum(by_group.values())
    rows.sort(reverse=True)
    return {"key": key, "title": title, "step_s": step_s, "nodes": nodes, "steps": steps,
            "total_s": total, "by_group": by_group, "top": rows[:top]}


def _short(filename: str) -> str:
    path = filename.replace("\\", "/")
    for marker in ("/minidl/", "/numpy/", "/benchmarks/"):
        if marker in path:
            return marker.strip("/") + "/" + path.rsplit(marker, 1)[1]
    return path.rsplit("/", 1)[-1]


def print_report(r: dict) -> None:
    steps, total = r["steps"], r["total_s"]
    print(f"\n== {r['title']}")
    print(f"step without the profiler: {r['step_s'] * 1e3:.2f} ms; with it: "
          f"{total / steps * 1e3:.2f} ms; graph nodes per step: {r['nodes']}")
    print(f"{'group':18s} {'ms/step':>9s} {'share':>7s}")
    for g in GROUPS:
        t = r["by_group"][g]
        print(f"{g:18s} {t / steps * 1e3:9.3f} {t / total:7.1%}")
    print(f"\n{'ms/step':>9s} {'calls/step':>10s}  function (own time)")
    for tottime, ncalls, where in r["top"]:
        print(f"{tottime / steps * 1e3:9.3f} {ncalls / steps:10.1f}  {where}")


def walk_cost_per_node(module, n: int = 1000, repeats: int = 7) -> tuple:
    """(forward, backward) seconds per op of a chain of n 1-element `y = y * 1.0001`, without
    the profiler: what recording one node and walking back through it cost when the
    arithmetic is next to nothing (an upper bound for the machinery of every node)."""
    forward, backward = [], []
    for _ in range(repeats):
        x = module.tensor([1.0], requires_grad=True)
        t0 = time.perf_counter()
        y = x
        for _ in range(n):
            y = y * 1.0001
        t1 = time.perf_counter()
        y.backward()
        t2 = time.perf_counter()
        forward.append((t1 - t0) / n)
        backward.append((t2 - t1) / n)
    return statistics.median(forward), statistics.median(backward)


def print_walk_costs() -> None:
    import minidl
    rows = [("minidl", walk_cost_per_node(minidl))]
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None:
        rows.append((f"PyTorch {torch.__version__}", walk_cost_per_node(torch)))
    print("\n== the machinery per node, without the profiler (a chain of 1,000 "
          "1-element `y = y * 1.0001`)")
    for name, (fwd, bwd) in rows:
        print(f"{name:22s} record {fwd * 1e6:6.2f} us/op   walk back {bwd * 1e6:6.2f} us/node")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=sorted(WORKLOADS), action="append",
                        help="profile only this workload (repeatable)")
    parser.add_argument("--steps", type=int, default=20, help="profiled steps per workload")
    parser.add_argument("--top", type=int, default=15, help="functions listed per workload")
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error(f"--steps must be at least 1, got {args.steps}")
    for key in args.only or list(WORKLOADS):
        print_report(profile(key, args.steps, args.top))
    print_walk_costs()


if __name__ == "__main__":
    main()
