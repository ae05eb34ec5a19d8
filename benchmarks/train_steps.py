"""Training steps and single ops, minidl against PyTorch on the CPU, side by side.

    python benchmarks/train_steps.py                 # every row
    python benchmarks/train_steps.py --only mlp64,cnn64,op/softmax
    python benchmarks/train_steps.py --memory        # + peak memory of each training step
    python benchmarks/train_steps.py --flat 1000     # + memory over 1,000 steps (MLP, CNN)
    python benchmarks/train_steps.py --isolated      # one process per library (2 threads)

Every row builds the same model (or op) in both libraries with the same weights and inputs,
then times the two interleaved (A B A B ..., benchmarks/timing.py `compare`) and reports the
ratio of medians, minidl / PyTorch: lower is better. PyTorch runs on the same 2 threads.
The MLP rows also time a hand-written NumPy step (benchmarks/suite/numpy_mlp.py), the floor
an engine on NumPy could reach if its bookkeeping cost nothing.

Each row prints how many repeats waited for a CPU (PSI, /proc/pressure/cpu) and the CPU
pressure over the whole row: on 2 shared cores a loaded machine moves single timings by tens
of percent, so only the interleaved ratio of one run means anything.

Threads (MINIDL_BENCH_THREADS, default 2; set OPENBLAS_NUM_THREADS to the same number). At 2
threads, run with --isolated: in one process the two libraries' thread pools steal each
other's cores (see compare_isolated). And a 2-thread GEMM needs both cores at once: while
another process runs, OpenBLAS's GEMMs slow down 10-50x and the figures mean nothing. On a
shared machine, 1 thread for both libraries (MINIDL_BENCH_THREADS=1 OPENBLAS_NUM_THREADS=1)
gives the comparison that survives the load.

Targets (ratio): per-op overhead <= 0.5 (benchmarks/overhead.py), MLP step <= 0.8, CNN step
<= 1.2, each op forward+backward <= 1.5, each step's peak memory <= 1.2x PyTorch's.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tracemalloc
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import minidl  # noqa: E402
from timing import compare, fmt_time  # noqa: E402

THREADS = int(os.environ.get("MINIDL_BENCH_THREADS", "2"))
TARGETS = {"step/mlp": 0.8, "step/cnn": 1.2, "op": 1.5, "memory": 1.2}


def _torch():
    import torch
    torch.set_num_threads(THREADS)
    return torch


# ---- the models, written once for both libraries ---------------------------------------------

def mlp(nn):
    return nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(),
                         nn.Linear(256, 10))


def cnn(nn):
    # 28 -> 26 -> 13 -> 11 -> 5: 64 * 5 * 5 = 1600 features
    return nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(1600, 128), nn.ReLU(), nn.Linear(128, 10))


def _copy_weights(src_minidl, dst_torch, torch):
    state = {k: torch.from_numpy(np.array(v.detach().numpy())) for k, v in
             src_minidl.state_dict().items()}
    dst_torch.load_state_dict(state)


class TrainPair:
    """One model in both libraries with equal weights, one batch, Adam, cross-entropy."""

    def __init__(self, kind: str, batch: int, seed: int = 0):
        torch = _torch()
        rng = np.random.default_rng(seed)
        shape = (batch, 784) if kind == "mlp" else (batch, 1, 28, 28)
        x = rng.standard_normal(shape, dtype=np.float32)
        y = rng.integers(0, 10, batch)
        build = mlp if kind == "mlp" else cnn
        minidl.manual_seed(seed)
        self.model = build(minidl.nn)
        self.tmodel = build(torch.nn)
        _copy_weights(self.model, self.tmodel, torch)
        self.opt = minidl.optim.Adam(self.model.parameters(), lr=1e-3)
        self.topt = torch.optim.Adam(self.tmodel.parameters(), lr=1e-3)
        self.x, self.y = minidl.tensor(x), minidl.tensor(y)
        self.tx, self.ty = torch.from_numpy(x), torch.from_numpy(y)
        self.state = {k: v.detach().numpy() for k, v in self.model.state_dict().items()}
        self.x_np, self.y_np = x, y
        self.F, self.tF = minidl.nn.functional, torch.nn.functional

    def step(self):
        self.opt.zero_grad()
        loss = self.F.cross_entropy(self.model(self.x), self.y)
        loss.backward()
        self.opt.step()
        return loss

    def torch_step(self):
        self.topt.zero_grad()
        loss = self.tF.cross_entropy(self.tmodel(self.tx), self.ty)
        loss.backward()
        self.topt.step()
        return loss

    def numpy_step(self):
        """The hand-written NumPy MLP (None when the suite's floor is not available)."""
        try:
            from suite.numpy_mlp import NumpyMLP
        except ImportError:
            return None
        floor = NumpyMLP(self.state)
        return lambda: floor.step(self.x_np, self.y_np)


# ---- single ops, forward + backward ----------------------------------------------------------

def _op_rows():
    """name -> builder(lib) returning a callable that runs forward + backward once.

    `lib` is minidl or torch; inputs come from one seeded NumPy generator, so both libraries
    see the same numbers."""

    def inputs(lib, *specs):
        rng = np.random.default_rng(0)
        out = []
        for shape, grad in specs:
            a = rng.standard_normal(shape, dtype=np.float32)
            t = lib.tensor(a) if lib is minidl else lib.from_numpy(a)
            if grad:
                t.requires_grad_(True)
            out.append(t)
        return out

    def run(outputs_fn, leaves, grad_shape=None):
        def call():
            for t in leaves:
                t.grad = None
            out = outputs_fn()
            out.backward(upstream[0]) if upstream[0] is not None else out.backward()
        upstream = [None]
        if grad_shape is not None:
            g = np.random.default_rng(1).standard_normal(grad_shape, dtype=np.float32)
            lib = type(leaves[0]).__module__.split(".")[0]
            upstream[0] = minidl.tensor(g) if lib == "minidl" else _torch().from_numpy(g)
        return call

    def F(lib):
        return lib.nn.functional

    def softmax(lib):
        (x,) = inputs(lib, ((64, 128, 128), True))
        return run(lambda: F(lib).softmax(x, -1), [x], x.shape)

    def log_softmax(lib):
        (x,) = inputs(lib, ((64, 128, 128), True))
        return run(lambda: F(lib).log_softmax(x, -1), [x], x.shape)

    def layer_norm(lib):
        x, w, b = inputs(lib, ((4096, 512), True), ((512,), True), ((512,), True))
        return run(lambda: F(lib).layer_norm(x, (512,), w, b), [x, w, b], x.shape)

    def gelu(lib):
        (x,) = inputs(lib, ((4096, 512), True))
        return run(lambda: F(lib).gelu(x, approximate="tanh"), [x], x.shape)

    def conv2d(lib):
        x, w, b = inputs(lib, ((64, 32, 13, 13), True), ((64, 32, 3, 3), True), ((64,), True))
        return run(lambda: F(lib).conv2d(x, w, b), [x, w, b], (64, 64, 11, 11))

    def conv2d_first(lib):  # the CNN's first layer: one input channel, no input gradient
        x, w, b = inputs(lib, ((64, 1, 28, 28), False), ((32, 1, 3, 3), True), ((32,), True))
        return run(lambda: F(lib).conv2d(x, w, b), [w, b], (64, 32, 26, 26))

    def max_pool2d(lib):
        (x,) = inputs(lib, ((64, 32, 26, 26), True))
        return run(lambda: F(lib).max_pool2d(x, 2), [x], (64, 32, 13, 13))

    def sdpa(lib):
        q, k, v = inputs(lib, *[((32, 4, 128, 32), True)] * 3)
        return run(lambda: F(lib).scaled_dot_product_attention(q, k, v, is_causal=True),
                   [q, k, v], q.shape)

    def cross_entropy(lib):
        (x,) = inputs(lib, ((4096, 65), True))
        t = np.random.default_rng(2).integers(0, 65, 4096)
        t = lib.tensor(t) if lib is minidl else lib.from_numpy(t)
        return run(lambda: F(lib).cross_entropy(x, t), [x])

    def embedding(lib):
        (w,) = inputs(lib, ((65, 128), True))
        i = np.random.default_rng(2).integers(0, 65, (32, 128))
        i = lib.tensor(i) if lib is minidl else lib.from_numpy(i)
        return run(lambda: F(lib).embedding(i, w), [w], (32, 128, 128))

    def matmul(lib):
        a, b = inputs(lib, ((256, 784), True), ((784, 512), True))
        return run(lambda: a @ b, [a, b], (256, 512))

    def batch_norm(lib):
        x, w, b = inputs(lib, ((64, 32, 26, 26), True), ((32,), True), ((32,), True))
        rm = lib.zeros(32)
        rv = lib.ones(32)
        return run(lambda: F(lib).batch_norm(x, rm, rv, w, b, training=True), [x, w, b],
                   x.shape)

    return {f.__name__: f for f in (softmax, log_softmax, layer_norm, gelu, conv2d,
                                    conv2d_first, max_pool2d, sdpa, cross_entropy, embedding,
                                    matmul, batch_norm)}


OP_ROWS = _op_rows()
STEP_ROWS = {"mlp64": ("mlp", 64), "mlp256": ("mlp", 256), "cnn64": ("cnn", 64)}


# ---- memory ----------------------------------------------------------------------------------

def minidl_peak_bytes(fn) -> int:
    """Peak bytes of NumPy buffers live at once during fn(), above those live before it.

    Scratch buffers that kernels keep between calls are working memory of the step too, so
    they are dropped first and counted when fn() makes them again."""
    try:
        from minidl.backend.cpu_kernels import conv as _conv
        _conv._SCRATCH.__dict__.clear()
    except (ImportError, AttributeError):
        pass
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        fn()
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


def torch_peak_bytes(fn) -> int | None:
    """The same figure for PyTorch, from its profiler's allocation timeline (a private API:
    None when it is not available)."""
    torch = _torch()
    try:
        from torch.profiler import ProfilerActivity, profile
        from torch.profiler import _memory_profiler as mp
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True,
                     record_shapes=True, with_stack=True):
            pass
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True,
                     record_shapes=True, with_stack=True) as prof:
            fn()
        current = peak = 0
        for _, action, _, size in mp.MemoryProfile(prof.profiler.kineto_results).timeline:
            if action == mp.Action.CREATE:
                current += size
            elif action == mp.Action.DESTROY:
                current -= size
            peak = max(peak, current)
        return peak
    except Exception:   # noqa: BLE001 (private profiler API: any failure means "unknown")
        del torch
        return None


def rss_mib() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def flat_memory(steps: int, kind: str = "mlp") -> dict:
    """RSS, live NumPy bytes and Python objects after step 50 and after the last: a leak
    shows as growth."""
    pair = TrainPair(kind, 64)
    marks = {}
    tracemalloc.start()
    for i in range(1, steps + 1):
        pair.step()
        if i in (50, steps):
            gc.collect()
            marks[i] = (rss_mib(), tracemalloc.get_traced_memory()[0] / 2 ** 20,
                        len(gc.get_objects()))
    tracemalloc.stop()
    return {"model": kind, "steps": steps, "after_50": marks[50], "after_last": marks[steps]}


# ---- one library per process ------------------------------------------------------------------
#
# In one process, two thread pools fight: OpenBLAS's worker keeps spinning for up to ~0.1 s
# after each GEMM and PyTorch's OpenMP workers spin after each parallel region, so at 2
# threads whichever library runs second finds a core taken (we saw PyTorch's softmax go from
# 0.66 ms to 15 ms). With --isolated each library lives in its own process; the parent still
# interleaves them (A B A B ...) and pauses between switches so the last one's pool is asleep.

def _serve(conn, lib: str, row: str, threads: int) -> None:
    """Worker process: build `row` for `lib`, then time `n` calls per request."""
    import time
    if lib == "torch":
        _torch().set_num_threads(threads)
    else:
        minidl.set_num_threads(threads)          # NumPy's BLAS, for minidl and the NumPy floor
    if row in STEP_ROWS:
        pair = TrainPair(*STEP_ROWS[row])
        fn = {"minidl": pair.step, "torch": pair.torch_step, "numpy": None}[lib] or \
            pair.numpy_step()
    else:
        fn = OP_ROWS[row](minidl if lib == "minidl" else _torch())
    for _ in range(3):
        fn()
    while (n := conn.recv()) is not None:
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        conn.send((time.perf_counter() - t0) / n)


def compare_isolated(row: str, libs, repeats: int, target_s: float, pause_s: float = 0.2):
    """compare() with each library in its own process; same result layout."""
    import multiprocessing
    import statistics
    import time
    from timing import cpu_stall_us
    ctx = multiprocessing.get_context("spawn")
    conns, procs = {}, []
    for lib in libs:
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_serve, args=(child, lib, row, THREADS), daemon=True)
        proc.start()
        conns[lib] = parent
        procs.append(proc)
    try:
        numbers = {}
        for lib, conn in conns.items():
            conn.send(1)
            numbers[lib] = max(1, int(target_s / max(conn.recv(), 1e-7)))
        samples = {lib: [] for lib in libs}
        stalled = {lib: 0 for lib in libs}
        for _ in range(repeats):
            for lib, conn in conns.items():
                time.sleep(pause_s)
                s0 = cpu_stall_us()
                conn.send(numbers[lib])
                dt = conn.recv()
                s1 = cpu_stall_us()
                samples[lib].append(dt)
                if s0 is not None and s1 - s0 > 0.05 * dt * numbers[lib] * 1e6:
                    stalled[lib] += 1
    finally:
        for conn in conns.values():
            conn.send(None)
        for proc in procs:
            proc.join(timeout=10)
    return {lib: {"median": statistics.median(v), "min": min(v), "max": max(v), "samples": v,
                  "calls_per_repeat": numbers[lib], "stalled_repeats": stalled[lib]}
            for lib, v in samples.items()}


# ---- running ---------------------------------------------------------------------------------

def _pressure() -> str:
    try:
        return Path("/proc/pressure/cpu").read_text().splitlines()[0]
    except OSError:
        return "n/a"


def time_step_row(name: str, repeats: int, memory: bool, isolated: bool = False) -> dict:
    kind, batch = STEP_ROWS[name]
    pair = TrainPair(kind, batch)
    floor = pair.numpy_step() if kind == "mlp" else None
    if isolated:
        libs = ["minidl", "torch"] + (["numpy"] if floor is not None else [])
        res = compare_isolated(name, libs, repeats, target_s=0.2)
    else:
        cands = {"minidl": pair.step, "torch": pair.torch_step}
        if floor is not None:
            cands["numpy"] = floor
        res = compare(cands, repeats=repeats, target_s=0.2)
    row = {"benchmark": f"step/{name}", "target": TARGETS[f"step/{kind}"], **res}
    if memory:
        for _ in range(3):   # optimizer state and kernels exist before the step is measured
            pair.step()
            pair.torch_step()
        row["peak_minidl"] = minidl_peak_bytes(pair.step)
        row["peak_torch"] = torch_peak_bytes(pair.torch_step)
    return row


def time_op_row(name: str, repeats: int, isolated: bool = False) -> dict:
    if isolated:
        res = compare_isolated(name, ["minidl", "torch"], repeats, target_s=0.1)
    else:
        build = OP_ROWS[name]
        res = compare({"minidl": build(minidl), "torch": build(_torch())}, repeats=repeats,
                      target_s=0.1)
    return {"benchmark": f"op/{name}", "target": TARGETS["op"], **res}


def run(only=None, repeats: int = 7, memory: bool = False, isolated: bool = False) -> list[dict]:
    names = [f"step/{n}" for n in STEP_ROWS] + [f"op/{n}" for n in OP_ROWS]
    if only:
        names = [n for n in names if any(n == o or n.split("/")[1] == o for o in only)]
    rows = []
    for name in names:
        kind, short = name.split("/")
        before = _pressure()
        row = (time_step_row(short, repeats, memory, isolated) if kind == "step"
               else time_op_row(short, repeats, isolated))
        row["ratio"] = row["minidl"]["median"] / row["torch"]["median"]
        row["pressure_before"], row["pressure_after"] = before, _pressure()
        rows.append(row)
        print(_format(row), flush=True)
    return rows


def _format(r: dict) -> str:
    stalls = "/".join(str(r[k]["stalled_repeats"]) for k in ("minidl", "torch"))
    text = (f"{r['benchmark']:22s} {fmt_time(r['minidl']['median']):>10s} "
            f"{fmt_time(r['torch']['median']):>10s} {r['ratio']:6.2f}  <= {r['target']:<4}"
            f" stalled {stalls:6s}")
    if "numpy" in r:
        text += f" numpy {fmt_time(r['numpy']['median'])}"
    if "peak_minidl" in r:
        tp = r["peak_torch"]
        text += (f" peak {r['peak_minidl'] / 2 ** 20:.2f} MiB vs "
                 + (f"{tp / 2 ** 20:.2f} MiB ({r['peak_minidl'] / tp:.2f}x)" if tp else "n/a"))
    return text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", help="comma-separated row names (mlp64, cnn64, softmax, ...)")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--memory", action="store_true", help="peak memory of each training step")
    ap.add_argument("--flat", type=int, metavar="STEPS",
                    help="memory over STEPS training steps of the MLP and the CNN")
    ap.add_argument("--isolated", action="store_true",
                    help="each library in its own process (no thread-pool fights; see above)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    print(f"CPU pressure at start: {_pressure()}")
    print(f"{'row':22s} {'minidl':>10s} {'torch':>10s} {'ratio':>6s}  target")
    rows = run(args.only.split(",") if args.only else None, args.repeats, args.memory,
               args.isolated)
    if args.flat:
        for kind in ("mlp", "cnn"):
            flat = flat_memory(args.flat, kind)
            (r0, n0, o0), (r1, n1, o1) = flat["after_50"], flat["after_last"]
            print(f"memory over {flat['steps']} {kind.upper()} steps (after step 50 -> after the "
                  f"last): RSS {r0:.1f} -> {r1:.1f} MiB, live NumPy {n0:.2f} -> {n1:.2f} MiB, "
                  f"Python objects {o0} -> {o1}")
            rows.append({"benchmark": f"memory/flat_{kind}", **flat})
    print(f"CPU pressure at end: {_pressure()}")
    if args.json:
        print(json.dumps(rows, indent=1, default=float))


if __name__ == "__main__":
    main()
