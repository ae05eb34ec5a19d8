"""Fused CPU ops for CNNs and attention: fast vs reference vs PyTorch, interleaved.

    python benchmarks/fused_ops_conv.py [--quick] [--only conv2d,sdpa,...]
    OPENBLAS_NUM_THREADS=1 python benchmarks/fused_ops_conv.py --threads 1   # one core each

Each row times one op's forward + backward (or one optimizer step) at the sizes of the
MNIST CNN and the small GPT: minidl's fast CPU version, its plain reference, and PyTorch
(2 threads) when installed. Candidates run interleaved (A B C A B C ...); the table shows
medians with min-max and the ratio of medians fast / torch and fast / reference, all from
the same run. Repeats that waited for a CPU (PSI) are counted in the `stalled` column.

On a machine where other processes compete for the 2 cores, two-thread GEMMs (OpenBLAS and
PyTorch alike) wait for whole scheduler slices at their barriers and the numbers mean
little; the one-thread run above is the fair comparison then.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from minidl.backend import cpu_kernels as fast  # noqa: E402
from minidl.backend import reference as ref  # noqa: E402
from timing import compare, fmt_time  # noqa: E402

try:
    import torch
    import torch.nn.functional as TF
    torch.set_num_threads(2)
except ImportError:       # the torch column is then left out
    torch = None

RNG = np.random.default_rng(0)


def _randn(*shape):
    return RNG.standard_normal(shape, dtype=np.float32)


# ---------------------------------------------------------------------------------------
# rows: each returns (description, {name: callable})

def row_conv2d(x_shape, w_shape, padding):
    x, w, b = _randn(*x_shape), _randn(*w_shape), _randn(w_shape[0])
    y, _ = fast.conv2d_forward(x, w, b, 1, padding, 1, 1)
    dy = _randn(*y.shape)

    def ours(mod):
        def step():
            y, saved = mod.conv2d_forward(x, w, b, 1, padding, 1, 1)
            mod.conv2d_backward(dy, x, w, saved, 1, padding, 1, 1, True, True, True)
        return step
    cands = {"fast": ours(fast), "reference": ours(ref)}
    if torch is not None:
        def torch_step():
            xt, wt, bt = (torch.from_numpy(a).requires_grad_() for a in (x, w, b))
            TF.conv2d(xt, wt, bt, 1, padding).backward(torch.from_numpy(dy))
        cands["torch"] = torch_step
    C, O = x_shape[1], w_shape[0]
    return f"conv2d b{x_shape[0]} {C}->{O} {w_shape[2]}x{w_shape[3]} on {x_shape[2]}x{x_shape[3]} fwd+bwd", cands


def row_max_pool(shape):
    x = _randn(*shape)
    y, _ = fast.max_pool2d_forward(x, 2, 2, 0, 1, False)
    dy = _randn(*y.shape)

    def ours(mod):
        def step():
            y, idx = mod.max_pool2d_forward(x, 2, 2, 0, 1, False)
            mod.max_pool2d_backward(dy, idx, x.shape)
        return step
    cands = {"fast": ours(fast), "reference": ours(ref)}
    if torch is not None:
        def torch_step():
            TF.max_pool2d(torch.from_numpy(x).requires_grad_(), 2, 2).backward(torch.from_numpy(dy))
        cands["torch"] = torch_step
    return f"max_pool2d 2x2 {shape} fwd+bwd", cands


def row_avg_pool(shape):
    x = _randn(*shape)
    dy = _randn(shape[0], shape[1], (shape[2] + 2 - 3) // 2 + 1, (shape[3] + 2 - 3) // 2 + 1)

    def ours(mod):
        def step():
            mod.avg_pool2d_forward(x, 3, 2, 1, False, True)
            mod.avg_pool2d_backward(dy, x.shape, 3, 2, 1, False, True)
        return step
    cands = {"fast": ours(fast), "reference": ours(ref)}
    if torch is not None:
        def torch_step():
            TF.avg_pool2d(torch.from_numpy(x).requires_grad_(), 3, 2, 1).backward(torch.from_numpy(dy))
        cands["torch"] = torch_step
    return f"avg_pool2d 3x3 s2 p1 {shape} fwd+bwd", cands


def row_adaptive(shape):
    x = _randn(*shape)
    dy = _randn(shape[0], shape[1], 1, 1)

    def ours(mod):
        def step():
            mod.adaptive_avg_pool2d_forward(x, (1, 1))
            mod.adaptive_avg_pool2d_backward(dy, x.shape)
        return step
    cands = {"fast": ours(fast), "reference": ours(ref)}
    if torch is not None:
        def torch_step():
            TF.adaptive_avg_pool2d(torch.from_numpy(x).requires_grad_(), 1).backward(torch.from_numpy(dy))
        cands["torch"] = torch_step
    return f"adaptive_avg_pool2d {shape}->(1,1) fwd+bwd", cands


MLP_SHAPES = [(512, 784), (512,), (256, 512), (256,), (10, 256), (10,)]


def row_adam():
    params = [_randn(*s) for s in MLP_SHAPES]
    grads = [_randn(*s) * 1e-2 for s in MLP_SHAPES]
    kw = dict(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01, decoupled=True,
              amsgrad=False, maximize=False)

    def ours(mod):
        ps = [p.copy() for p in params]
        m, v = [np.zeros_like(p) for p in ps], [np.zeros_like(p) for p in ps]
        step_count = [0]

        def step():
            step_count[0] += 1
            mod.adam_step(ps, grads, m, v, None, step=step_count[0], **kw)
        return step
    cands = {"fast": ours(fast), "reference": ours(ref)}
    if torch is not None:
        for name, extra in (("torch", {}), ("torch fused", {"fused": True})):
            tp = [torch.from_numpy(p.copy()).requires_grad_() for p in params]
            for t, g in zip(tp, grads):
                t.grad = torch.from_numpy(g)
            opt = torch.optim.AdamW(tp, lr=1e-3, weight_decay=0.01, **extra)
            cands[name] = opt.step
    return "AdamW step, MLP 784-512-256-10 params", cands


def row_sgd():
    params = [_randn(*s) for s in MLP_SHAPES]
    grads = [_randn(*s) * 1e-2 for s in MLP_SHAPES]
    kw = dict(lr=1e-2, momentum=0.9, dampening=0.0, nesterov=True, weight_decay=1e-4,
              maximize=False)

    def ours(mod):
        ps = [p.copy() for p in params]
        bufs = [np.zeros_like(p) for p in ps]
        return lambda: mod.sgd_step(ps, grads, bufs, first_step=False, **kw)
    cands = {"fast": ours(fast), "reference": ours(ref)}
    if torch is not None:
        tp = [torch.from_numpy(p.copy()).requires_grad_() for p in params]
        for t, g in zip(tp, grads):
            t.grad = torch.from_numpy(g)
        cands["torch"] = torch.optim.SGD(tp, lr=1e-2, momentum=0.9, nesterov=True,
                                         weight_decay=1e-4).step
    return "SGD nesterov step, MLP params", cands


def row_sdpa(shape, causal):
    q, k, v, dout = (_randn(*shape) for _ in range(4))

    def ours(mod):
        def step():
            out, lse = mod.sdpa_forward(q, k, v, None, causal, None)
            mod.sdpa_backward(q, k, v, out, lse, dout, None, causal, None, False)
        return step
    cands = {"fast": ours(fast), "reference": ours(ref)}
    if torch is not None:
        def torch_step():
            qt, kt, vt = (torch.from_numpy(a).requires_grad_() for a in (q, k, v))
            TF.scaled_dot_product_attention(qt, kt, vt, is_causal=causal).backward(
                torch.from_numpy(dout))
        cands["torch"] = torch_step
    return f"sdpa {'causal ' if causal else ''}{shape} fwd+bwd", cands


ROWS = {
    "conv2d": lambda: row_conv2d((64, 32, 13, 13), (64, 32, 3, 3), 0),
    "conv2d_first": lambda: row_conv2d((64, 1, 28, 28), (32, 1, 3, 3), 0),
    "conv2d_pad": lambda: row_conv2d((32, 64, 16, 16), (64, 64, 3, 3), 1),
    "max_pool": lambda: row_max_pool((64, 32, 26, 26)),
    "max_pool_small": lambda: row_max_pool((64, 64, 11, 11)),
    "avg_pool": lambda: row_avg_pool((32, 64, 16, 16)),
    "adaptive": lambda: row_adaptive((64, 128, 7, 7)),
    "adam": row_adam,
    "sgd": row_sgd,
    "sdpa": lambda: row_sdpa((32, 4, 128, 32), True),
    "sdpa_full": lambda: row_sdpa((32, 4, 128, 32), False),
}


def run(names=None, repeats: int = 7):
    rows = []
    for name in names or ROWS:
        title, cands = ROWS[name]()
        stats = compare(cands, repeats=repeats, target_s=0.1)
        rows.append((title, stats))
    return rows


def print_table(rows):
    print("| op | fast | reference | torch | fast/torch | fast/reference | stalled |")
    print("|---|---|---|---|---|---|---|")
    for title, st in rows:
        cell = lambda n: (f"{fmt_time(st[n]['median'])} ({fmt_time(st[n]['min'])}-"
                          f"{fmt_time(st[n]['max'])})") if n in st else "-"
        torch_name = "torch fused" if "torch fused" in st else "torch"
        vs_torch = (f"{st['fast']['median'] / st[torch_name]['median']:.2f}"
                    + (" (vs fused)" if torch_name == "torch fused" else "")) if torch_name in st else "-"
        vs_ref = st["fast"]["median"] / st["reference"]["median"]
        torch_cell = cell("torch") + (f"; fused {fmt_time(st['torch fused']['median'])}"
                                      if "torch fused" in st else "")
        stalled = sum(s["stalled_repeats"] for s in st.values())
        print(f"| {title} | {cell('fast')} | {cell('reference')} | {torch_cell} | {vs_torch} "
              f"| {vs_ref:.2f} | {stalled} |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="3 repeats instead of 7")
    ap.add_argument("--threads", type=int, default=2,
                    help="PyTorch threads (set OPENBLAS_NUM_THREADS to match for NumPy)")
    ap.add_argument("--only", default="", help=f"comma-separated rows of: {', '.join(ROWS)}")
    args = ap.parse_args()
    names = [n for n in args.only.split(",") if n] or None
    unknown = [n for n in names or [] if n not in ROWS]
    if unknown:
        ap.error(f"unknown rows {unknown}; choose from {', '.join(ROWS)}")
    if torch is None:
        print("(PyTorch is not installed: the torch columns are left empty)")
    else:
        torch.set_num_threads(args.threads)
    blas = os.environ.get("OPENBLAS_NUM_THREADS", "all cores")
    print(f"threads: torch {args.threads if torch is not None else '-'}, OpenBLAS {blas}\n")
    print_table(run(names, repeats=3 if args.quick else 7))
    return 0


if __name__ == "__main__":
    sys.exit(main())
