"""One GPT training step, minidl against PyTorch: the same model, weights and batches.

    python benchmarks/gpt_step.py [--steps 15] [--batch-size 32] [--block-size 128]
    python benchmarks/gpt_step.py --quick          # a tiny model, a few steps (CI smoke run)

The model is examples/gpt_model.py, built from the same source lines on both libraries
(4 layers, d_model 128, 4 heads, context 128, vocabulary 65, tied embeddings by default).
PyTorch's initial weights are copied into minidl, and each step is

    logits, loss = model(x, y); opt.zero_grad(); loss.backward();
    clip_grad_norm_(params, 1.0); opt.step()          with AdamW(lr=1e-3, weight_decay=0.1)

on the same random batches. Each library runs in its own worker process and the two are
stepped alternately (A B A B ...), so drifts of a shared machine hit both alike, and the
thread pools of the two libraries (OpenBLAS's for minidl, OpenMP's for PyTorch) never
compete inside one process: idle pool threads keep spinning for a while after their last
job and would tax whichever library ran next.

Reported: median step time (and forward / backward / optimizer parts) per library, the
ratio minidl / PyTorch, the first losses of both (they must agree: same function), and how
many steps waited for a CPU according to the kernel's pressure counter (PSI). Steps that
waited are reported separately; on a busy machine only their ratio is meaningful.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "examples"))
sys.path.insert(0, str(HERE))

from timing import cpu_stall_us, fmt_time  # noqa: E402


def _worker(lib_name, cfg, state, conn):
    """Build the model on one library, then run one timed step per request."""
    import numpy as np
    import gpt_model
    if lib_name == "torch":
        import torch as lib
        lib.set_num_threads(cfg["threads"])
        tensor = lambda a: lib.from_numpy(np.ascontiguousarray(a))  # noqa: E731
    else:
        import minidl as lib
        import minidl.optim  # noqa: F401
        lib.set_num_threads(cfg["threads"])           # NumPy's BLAS threads
        tensor = lib.tensor
    model = gpt_model.make_gpt_class(lib)(gpt_model.GPTConfig(**cfg["model"]))
    model.load_state_dict({k: tensor(v) for k, v in state.items()})
    model.train()
    opt = lib.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.1)
    rng = np.random.default_rng(cfg["seed"])
    B, T, V = cfg["batch_size"], cfg["model"]["block_size"], cfg["model"]["vocab_size"]
    params = list(model.parameters())

    def step():
        x, y = tensor(rng.integers(0, V, (B, T))), tensor(rng.integers(0, V, (B, T)))
        t0 = time.perf_counter()
        _, loss = model(x, y)
        t1 = time.perf_counter()
        opt.zero_grad()
        loss.backward()
        t2 = time.perf_counter()
        lib.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        value = loss.item()
        t3 = time.perf_counter()
        return dict(total=t3 - t0, forward=t1 - t0, backward=t2 - t1, optimizer=t3 - t2,
                    loss=value)

    conn.send("ready")
    while conn.recv() == "step":
        s0 = cpu_stall_us()
        result = step()
        s1 = cpu_stall_us()
        result["stall_us"] = None if s0 is None or s1 is None else s1 - s0
        conn.send(result)


def initial_state(cfg):
    """PyTorch's initial weights (GPT-2 style init) as NumPy arrays."""
    import torch
    import gpt_model
    torch.manual_seed(cfg["seed"])
    model = gpt_model.torch_gpt_class()(gpt_model.GPTConfig(**cfg["model"]))
    return gpt_model.numpy_state_dict(model)


def run(cfg, steps, warmup, pause):
    ctx = mp.get_context("spawn")
    state = initial_state(cfg)
    workers = {}
    for name in ("minidl", "torch"):
        mine, theirs = ctx.Pipe()
        proc = ctx.Process(target=_worker, args=(name, cfg, state, theirs), daemon=True)
        proc.start()
        workers[name] = (proc, mine)
    for _, conn in workers.values():
        assert conn.recv() == "ready"
    results = {name: [] for name in workers}
    for i in range(warmup + steps):
        for name, (_, conn) in workers.items():
            time.sleep(pause)                  # let the other library's idle threads park
            conn.send("step")
            r = conn.recv()
            if i >= warmup or i == 0:
                results[name].append(r)
    for proc, conn in workers.values():
        conn.send("stop")
        proc.join(timeout=30)
    return results


def summarize(results, steps):
    first = {name: rs[0]["loss"] for name, rs in results.items()}
    timed = {name: rs[1:] if len(rs) > steps else rs for name, rs in results.items()}
    out = {}
    for name, rs in timed.items():
        quiet = [r for r in rs if r["stall_us"] is not None
                 and r["stall_us"] < 0.05 * r["total"] * 1e6]
        out[name] = dict(
            median=statistics.median(r["total"] for r in rs),
            parts={k: statistics.median(r[k] for r in rs)
                   for k in ("forward", "backward", "optimizer")},
            min=min(r["total"] for r in rs), max=max(r["total"] for r in rs),
            stalled=len(rs) - len(quiet), n=len(rs),
            quiet_median=statistics.median(r["total"] for r in quiet) if quiet else None)
    return first, out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=15, help="timed steps per library")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--block-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2, help="threads for each library (PyTorch intra-op, NumPy BLAS)")
    parser.add_argument("--pause", type=float, default=0.05,
                        help="seconds between steps (idle thread pools park)")
    parser.add_argument("--quick", action="store_true", help="tiny model, 3 steps")
    args = parser.parse_args(argv)
    model = dict(vocab_size=65, block_size=args.block_size, n_layer=4, n_head=4, n_embd=128)
    steps, warmup = args.steps, args.warmup
    batch = args.batch_size
    if args.quick:
        model.update(block_size=32, n_layer=1, n_embd=32)
        steps, warmup, batch = 3, 1, 4
    cfg = dict(model=model, batch_size=batch, seed=0, threads=args.threads)
    results = run(cfg, steps, warmup, args.pause)
    first, stats = summarize(results, steps)

    print(f"GPT step: {model['n_layer']} layers, d_model {model['n_embd']}, "
          f"{model['n_head']} heads, context {model['block_size']}, batch {batch}; "
          f"AdamW + grad clipping; {steps} interleaved steps per library (medians)")
    print(f"first-step loss: minidl {first['minidl']:.6f}  torch {first['torch']:.6f}")
    print(f"{'':8} {'step':>10} {'forward':>10} {'backward':>10} {'optim':>10} "
          f"{'min':>10} {'max':>10} {'stalled':>8} {'quiet median':>13}")
    for name, s in stats.items():
        p = s["parts"]
        quiet = fmt_time(s["quiet_median"]) if s["quiet_median"] is not None else "-"
        print(f"{name:8} {fmt_time(s['median']):>10} {fmt_time(p['forward']):>10} "
              f"{fmt_time(p['backward']):>10} {fmt_time(p['optimizer']):>10} "
              f"{fmt_time(s['min']):>10} {fmt_time(s['max']):>10} "
              f"{s['stalled']:>4}/{s['n']:<3} {quiet:>13}")
    ratio = stats["minidl"]["median"] / stats["torch"]["median"]
    print(f"ratio minidl / torch (median step): {ratio:.2f}")
    if stats["minidl"]["quiet_median"] and stats["torch"]["quiet_median"]:
        print(f"ratio over steps that did not wait for a CPU: "
              f"{stats['minidl']['quiet_median'] / stats['torch']['quiet_median']:.2f}")
    assert abs(first["minidl"] - first["torch"]) < 1e-3 * abs(first["torch"]), \
        "the two models do not compute the same loss: the comparison would be meaningless"
    return stats


if __name__ == "__main__":
    main()
