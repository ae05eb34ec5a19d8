"""Time one Adam step on the MNIST MLP's parameters: minidl against torch.optim.Adam.

    python benchmarks/optim_step.py [--repeats 9] [--dtype float32]

Parameters: 784x512, 512, 512x256, 256, 256x10, 10 (the MLP 784-512-256-10, 535,818 floats).
Gradients are set once; each call is one `optimizer.step()`. Candidates, timed in one process,
interleaved, medians over the repeats:

  minidl            minidl.optim.Adam -> the cpu backend's fused adam_step (serial Numba)
  minidl/reference  the same optimizer over the plain NumPy reference formulas (unfused)
  kernel only       the fused adam_step called directly on the arrays: the floor, so the
                    difference to 'minidl' is the optimizer's own Python bookkeeping
  torch             torch.optim.Adam defaults (on CPU: one tensor at a time)
  torch foreach     foreach=True (multi-tensor ops)
  torch fused       fused=True (one fused kernel; PyTorch >= 2.4 on CPU)

Ratios are minidl's median over each torch variant's median (below 1: minidl is faster).
Repeats during which the process waited for a CPU (PSI) are counted in 'stalled'.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import minidl                                    # noqa: E402
import minidl.optim as optim                     # noqa: E402
from minidl.backend import get_backend           # noqa: E402
from minidl.backend import reference             # noqa: E402
from timing import compare, fmt_time             # noqa: E402

try:
    import torch
except ImportError:                              # minidl rows only
    torch = None

SHAPES = [(512, 784), (512,), (256, 512), (256,), (10, 256), (10,)]   # nn.Linear layout


def make_arrays(dtype):
    rng = np.random.default_rng(0)
    params = [(rng.standard_normal(s) * 0.05).astype(dtype) for s in SHAPES]
    grads = [(rng.standard_normal(s) * 0.01).astype(dtype) for s in SHAPES]
    return params, grads


def minidl_step(dtype, fused_table_override=None):
    params, grads = make_arrays(dtype)
    ps = [minidl.tensor(p, requires_grad=True) for p in params]
    for p, g in zip(ps, grads):
        p.grad = minidl.tensor(g)
    opt = optim.Adam(ps, lr=1e-3)
    if fused_table_override is None:
        return opt.step
    table = get_backend("cpu").fused

    def step():
        real = table.adam_step
        table.override("adam_step", fused_table_override)
        try:
            opt.step()
        finally:
            table.override("adam_step", real)
    return step


def kernel_only(dtype):
    params, grads = make_arrays(dtype)
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    adam_step = get_backend("cpu").fused.adam_step
    count = [0]

    def step():
        count[0] += 1
        adam_step(params, grads, m, v, None, step=count[0], lr=1e-3, beta1=0.9, beta2=0.999,
                  eps=1e-8, weight_decay=0.0, decoupled=False, amsgrad=False, maximize=False)
    return step


def torch_step(dtype, **flags):
    params, grads = make_arrays(dtype)
    ps = [torch.tensor(p, requires_grad=True) for p in params]
    for p, g in zip(ps, grads):
        p.grad = torch.tensor(g)
    opt = torch.optim.Adam(ps, lr=1e-3, **flags)
    opt.step()                                    # surface "not supported" errors here
    return opt.step


def candidates(dtype):
    cands = {"minidl": minidl_step(dtype),
             "minidl/reference": minidl_step(dtype, reference.adam_step),
             "kernel only": kernel_only(dtype)}
    if torch is not None:
        cands["torch"] = torch_step(dtype)
        cands["torch foreach"] = torch_step(dtype, foreach=True)
        try:
            cands["torch fused"] = torch_step(dtype, fused=True)
        except (RuntimeError, TypeError) as err:  # older PyTorch: no fused Adam on CPU
            print(f"(torch fused Adam unavailable: {err})")
    return cands


def run(repeats: int = 9, dtype: str = "float32") -> dict:
    return compare(candidates(np.dtype(dtype)), repeats=repeats, target_s=0.1)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    args = ap.parse_args()
    n = sum(int(np.prod(s)) for s in SHAPES)
    threads = f", torch {torch.__version__} with {torch.get_num_threads()} threads" \
        if torch is not None else " (torch not installed)"
    print(f"# One Adam step, MNIST MLP parameters ({n:,} {args.dtype}){threads}\n")
    stats = run(args.repeats, args.dtype)
    print("| candidate | median | min - max | stalled | minidl / this |")
    print("|---|---|---|---|---|")
    ours = stats["minidl"]["median"]
    for name, s in stats.items():
        print(f"| {name} | {fmt_time(s['median'])} | {fmt_time(s['min'])} - "
              f"{fmt_time(s['max'])} | {s['stalled_repeats']}/{len(s['samples'])} | "
              f"{ours / s['median']:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
