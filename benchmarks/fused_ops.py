"""Time the CPU fused ops: minidl's fast kernels and plain references against PyTorch.

    python benchmarks/fused_ops.py                 # every row
    python benchmarks/fused_ops.py --only softmax,layer_norm --repeats 21

Each row builds its inputs once and offers, per implementation ("fast" = minidl.backend
.cpu_kernels, "reference" = minidl.backend.reference, "torch" = torch.nn.functional), a forward
call and a forward+backward call. All implementations of a row are timed in the same process,
interleaved (fast, reference, torch, fast, ...), and we report the median of the repeats and
the ratio of medians against PyTorch: ratios are what transfer between runs on a busy 2-core
machine, absolute times move by +-30 %.

A repeat during which the process waited for a CPU (Linux pressure-stall information,
/proc/pressure/cpu, grew by more than a tenth of the repeat's time) is dropped when enough
clean repeats remain; the 'noisy' column counts them.

To add a row: write a function returning {impl: (forward, forward_backward)} with the
callables taking no arguments, and append Row(name, shape, that_function) to ROWS.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import minidl.backend.cpu_kernels as fast       # noqa: E402
from timing import settle                       # noqa: E402
import minidl.backend.reference as reference    # noqa: E402

try:
    import torch
    import torch.nn.functional as F
except ImportError:                               # the table then shows minidl only
    torch = None

IMPLS = ("fast", "reference", "torch")


@dataclass
class Row:
    name: str
    shape: str
    make: Callable[[], dict]    # -> {impl: (forward, forward_backward)}


def _rand(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _torch_pair(forward, leaves, grad):
    """(forward without grad, forward + backward with grad) for a torch function."""
    def fwd():
        with torch.no_grad():
            forward()

    def fwd_bwd():
        for leaf in leaves:
            leaf.grad = None
        forward().backward(grad)
    return fwd, fwd_bwd


# ---- rows: row-wise and elementwise ops ----------------------------------------------------

def _softmax_like(fwd_name, bwd_name, torch_fn):
    def make():
        x, dy = _rand((64, 128, 128), 1), _rand((64, 128, 128), 2)
        impls = {}
        for label, mod in (("fast", fast), ("reference", reference)):
            f, b = getattr(mod, fwd_name), getattr(mod, bwd_name)
            impls[label] = (lambda f=f: f(x), lambda f=f, b=b: b(f(x), dy))
        if torch is not None:
            tx = torch.from_numpy(x).requires_grad_()
            impls["torch"] = _torch_pair(lambda: torch_fn(tx, -1), [tx], torch.from_numpy(dy))
        return impls
    return make


def _layer_norm():
    x, dy = _rand((4096, 512), 3), _rand((4096, 512), 4)
    w, b = _rand(512, 5), _rand(512, 6)
    impls = {}
    for label, mod in (("fast", fast), ("reference", reference)):
        def fwd_bwd(mod=mod):
            _, mean, rstd = mod.layer_norm_forward(x, w, b, 1e-5)
            mod.layer_norm_backward(dy, x, w, mean, rstd)
        impls[label] = (lambda mod=mod: mod.layer_norm_forward(x, w, b, 1e-5), fwd_bwd)
    if torch is not None:
        tx, tw, tb = (torch.from_numpy(a).requires_grad_() for a in (x, w, b))
        impls["torch"] = _torch_pair(lambda: F.layer_norm(tx, (512,), tw, tb, 1e-5),
                                     [tx, tw, tb], torch.from_numpy(dy))
    return impls


def _rms_norm():
    x, dy, w = _rand((4096, 512), 3), _rand((4096, 512), 4), _rand(512, 5)
    impls = {}
    for label, mod in (("fast", fast), ("reference", reference)):
        def fwd_bwd(mod=mod):
            _, rstd = mod.rms_norm_forward(x, w, 1e-6)
            mod.rms_norm_backward(dy, x, w, rstd)
        impls[label] = (lambda mod=mod: mod.rms_norm_forward(x, w, 1e-6), fwd_bwd)
    if torch is not None:
        tx, tw = (torch.from_numpy(a).requires_grad_() for a in (x, w))
        impls["torch"] = _torch_pair(lambda: F.rms_norm(tx, (512,), tw, 1e-6), [tx, tw],
                                     torch.from_numpy(dy))
    return impls


def _elementwise(fwd_name, bwd_name, torch_fn, extra=()):
    def make():
        x, dy = _rand((4096, 512), 7), _rand((4096, 512), 8)
        impls = {}
        for label, mod in (("fast", fast), ("reference", reference)):
            f, b = getattr(mod, fwd_name), getattr(mod, bwd_name)
            impls[label] = (lambda f=f: f(x, *extra),
                            lambda f=f, b=b: (f(x, *extra), b(x, dy, *extra)))
        if torch is not None:
            tx = torch.from_numpy(x).requires_grad_()
            impls["torch"] = _torch_pair(lambda: torch_fn(tx), [tx], torch.from_numpy(dy))
        return impls
    return make


def _dropout():
    x, dy, p = _rand((4096, 512), 9), _rand((4096, 512), 10), 0.1
    impls = {}
    for label, mod in (("fast", fast), ("reference", reference)):
        rng = np.random.default_rng(11)

        def fwd_bwd(mod=mod, rng=rng):
            _, mask = mod.dropout_forward(x, p, rng)
            mod.dropout_backward(dy, mask, p)
        impls[label] = (lambda mod=mod, rng=rng: mod.dropout_forward(x, p, rng), fwd_bwd)
    if torch is not None:
        tx = torch.from_numpy(x).requires_grad_()
        impls["torch"] = _torch_pair(lambda: F.dropout(tx, p, training=True), [tx],
                                     torch.from_numpy(dy))
    return impls


def _cross_entropy():
    """Mean loss over the batch (PyTorch's default reduction) and its gradient."""
    N, C = 4096, 65
    logits = _rand((N, C), 12)
    target = np.random.default_rng(13).integers(0, C, N)
    dloss = np.full(N, 1.0 / N, dtype=np.float32)   # d(mean)/d(loss_i)
    impls = {}
    for label, mod in (("fast", fast), ("reference", reference)):
        def fwd(mod=mod):
            loss, row_stats = mod.cross_entropy_forward(logits, target, None, -100, 0.0)
            return loss.mean(), row_stats     # row_stats (N, 2): row max, log sum exp(z - max)

        def fwd_bwd(mod=mod, fwd=fwd):
            _, row_stats = fwd()
            mod.cross_entropy_backward(logits, target, row_stats, dloss, None, -100, 0.0)
        impls[label] = (fwd, fwd_bwd)
    if torch is not None:
        tl, tt = torch.from_numpy(logits).requires_grad_(), torch.from_numpy(target)
        impls["torch"] = _torch_pair(lambda: F.cross_entropy(tl, tt), [tl], None)
    return impls


def _embedding():
    """Forward is the row gather weight[indices] (no fused op); backward the scatter-add."""
    E, D = 65, 128
    weight = _rand((E, D), 14)
    indices = np.random.default_rng(15).integers(0, E, (32, 128))
    dy = _rand((32, 128, D), 16)
    impls = {}
    for label, mod in (("fast", fast), ("reference", reference)):
        impls[label] = (lambda: weight[indices],
                        lambda mod=mod: (weight[indices],
                                         mod.embedding_backward(indices, dy, E, None)))
    if torch is not None:
        tw, ti = torch.from_numpy(weight).requires_grad_(), torch.from_numpy(indices)
        impls["torch"] = _torch_pair(lambda: F.embedding(ti, tw), [tw], torch.from_numpy(dy))
    return impls


ROWS = [
    Row("softmax", "(64,128,128)", _softmax_like("softmax_forward", "softmax_backward",
                                                 lambda t, d: F.softmax(t, d))),
    Row("log_softmax", "(64,128,128)", _softmax_like(
        "log_softmax_forward", "log_softmax_backward", lambda t, d: F.log_softmax(t, d))),
    Row("layer_norm", "(4096,512)", _layer_norm),
    Row("rms_norm", "(4096,512)", _rms_norm),
    Row("gelu_tanh", "(4096,512)", _elementwise(
        "gelu_forward", "gelu_backward", lambda t: F.gelu(t, approximate="tanh"), ("tanh",))),
    Row("gelu_erf", "(4096,512)", _elementwise(
        "gelu_forward", "gelu_backward", lambda t: F.gelu(t), ("none",))),
    Row("silu", "(4096,512)", _elementwise("silu_forward", "silu_backward",
                                           lambda t: F.silu(t))),
    Row("dropout p=0.1", "(4096,512)", _dropout),
    Row("cross_entropy", "(4096,65)", _cross_entropy),
    Row("embedding", "(32,128) of (65,128)", _embedding),
]


# ---- timing --------------------------------------------------------------------------------

def _cpu_stall_us() -> int | None:
    """Total microseconds some task waited for a CPU (Linux PSI), or None if unavailable."""
    try:
        with open("/proc/pressure/cpu") as f:
            return int(f.readline().split("total=")[1])
    except (OSError, IndexError, ValueError):
        return None


def _time_once(fn, calls: int) -> tuple[float, bool]:
    """Seconds per call over `calls` calls, and whether the CPU was contended meanwhile."""
    stall_before = _cpu_stall_us()
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    elapsed = time.perf_counter() - start
    stall_after = _cpu_stall_us()
    noisy = stall_before is not None and (stall_after - stall_before) > 0.1 * elapsed * 1e6
    return elapsed / calls, noisy


def _calls_for(fn, target_seconds=0.01) -> int:
    fn()                                    # warm up (and compile)
    start = time.perf_counter()
    fn()
    once = max(time.perf_counter() - start, 1e-6)
    return max(1, int(target_seconds / once))


def measure(row: Row, repeats: int) -> dict:
    """{(impl, 'fwd'|'fwd+bwd'): (median seconds, noisy repeats)} for one row."""
    impls = row.make()
    jobs = [(impl, kind, fn) for impl in IMPLS if impl in impls
            for kind, fn in zip(("fwd", "fwd+bwd"), impls[impl])]
    calls = {(impl, kind): _calls_for(fn) for impl, kind, fn in jobs}
    samples = {key: [] for key in calls}
    for _ in range(repeats):               # interleaved: every job once per repeat
        for impl, kind, fn in jobs:
            settle()                       # the previous job's thread pools are asleep again
            samples[(impl, kind)].append(_time_once(fn, calls[(impl, kind)]))
    result = {}
    for key, runs in samples.items():
        clean = [t for t, noisy in runs if not noisy]
        use = clean if len(clean) >= max(3, repeats // 2) else [t for t, _ in runs]
        result[key] = (statistics.median(use), len(runs) - len(clean))
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument("--only", default="", help="comma-separated row names")
    args = parser.parse_args(argv)
    wanted = {name.strip() for name in args.only.split(",") if name.strip()}
    rows = [row for row in ROWS if not wanted or row.name in wanted]
    if wanted and not rows:
        parser.error(f"no row named {sorted(wanted)}; rows are {[r.name for r in ROWS]}")
    if torch is not None:
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; "
              f"numpy {np.__version__}; medians of {args.repeats} interleaved repeats")
    header = (f"{'op':<14} {'shape':<21} {'pass':<8} {'fast ms':>8} {'ref ms':>8} "
              f"{'torch ms':>9} {'fast/torch':>10} {'ref/torch':>9} {'noisy':>5}")
    print(header)
    print("-" * len(header))
    for row in rows:
        result = measure(row, args.repeats)
        for kind in ("fwd", "fwd+bwd"):
            t = {impl: result.get((impl, kind), (float("nan"), 0)) for impl in IMPLS}
            torch_ms = t["torch"][0] * 1e3
            noisy = sum(n for _, n in t.values())
            print(f"{row.name:<14} {row.shape:<21} {kind:<8} {t['fast'][0] * 1e3:8.3f} "
                  f"{t['reference'][0] * 1e3:8.3f} {torch_ms:9.3f} "
                  f"{t['fast'][0] * 1e3 / torch_ms:10.2f} "
                  f"{t['reference'][0] * 1e3 / torch_ms:9.2f} {noisy:5d}", flush=True)


if __name__ == "__main__":
    main()
