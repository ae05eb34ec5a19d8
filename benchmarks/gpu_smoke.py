"""Does minidl work on this GPU? One command checks everything.

    python benchmarks/gpu_smoke.py                 # full run on a GPU, tiny run on cuda-emu otherwise
    python benchmarks/gpu_smoke.py --skip-tests    # only the training comparisons

On a machine with an NVIDIA GPU (CuPy installed), device 'cuda':
  1. the kernel tests on the GPU (tests/kernels, the `gpu` rows: every version of every kernel
     against float64 references) and the compile gate;
  2. the op tables (tests/ops, tests/ops_nn) on 'cuda': forward and backward against PyTorch;
  3. the MNIST MLP (Adam) and the small GPT (AdamW) trained a few hundred steps on 'cuda' and on
     'cpu' from the same initial weights and the same batches; the loss curves must agree (the
     first steps closely, the end of the run within a few percent: float32 sums in a different
     order drift apart slowly), and the time per step of both devices is reported.
Without a GPU it says so, runs steps 2 and 3 on 'cuda-emu' (the same CUDA kernels on the CPU
emulator) at tiny sizes, and exits 0 when they pass: the plumbing is checked, GPU speed is not.

MNIST and Tiny Shakespeare are used when present under $MINIDL_DATA; otherwise synthetic
stand-ins with a learnable rule (the comparison is between devices, not against a target).
Exit status 0 when every step passes.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "examples"))

import minidl  # noqa: E402
import minidl.nn as nn  # noqa: E402

SIZES = {  # per mode: steps and model sizes
    "gpu": dict(mlp_steps=300, mlp_batch=64, gpt_steps=300, gpt=dict(block_size=64, n_embd=128, n_head=4, n_layer=4),
                gpt_batch=32),
    "emu": dict(mlp_steps=40, mlp_batch=32, gpt_steps=25, gpt=dict(block_size=16, n_embd=32, n_head=2, n_layer=1),
                gpt_batch=4),
}
EARLY_STEPS = 3          # these losses must agree to float32 accuracy
EARLY_RTOL = 2e-3
LATE_RTOL = 0.05         # mean loss of the last fifth of the run


def run_pytest(args, label):
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args]
    print(f"\n== {label}: {' '.join(command[1:])}", flush=True)
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    result = subprocess.run(command, cwd=REPO, env=env)
    return result.returncode == 0


# ---- data: the real sets when present, synthetic stand-ins otherwise ----

def mnist_arrays(rng):
    from minidl.data import MNIST, DatasetError

    try:
        images, labels = MNIST(train=True).arrays(standardize=True)
        return images, labels, "MNIST"
    except (DatasetError, OSError):
        images = rng.standard_normal((4096, 1, 28, 28)).astype(np.float32)
        rule = rng.standard_normal((28 * 28, 10)).astype(np.float32)
        return images, (images.reshape(len(images), -1) @ rule).argmax(1).astype(np.int64), "synthetic MNIST"


def text_ids(rng):
    from minidl.data import DatasetError, TinyShakespeare

    try:
        data = TinyShakespeare(split="train", block_size=8)
        return data.data, data.vocab_size, "Tiny Shakespeare"
    except (DatasetError, OSError):
        # an order-1 Markov chain over 65 symbols with a few likely successors each
        vocab = 65
        table = rng.dirichlet(np.full(vocab, 0.05), size=vocab)
        ids = np.empty(20000, np.int64)
        ids[0] = 0
        u = rng.random(len(ids))
        for t in range(1, len(ids)):
            ids[t] = min(int(np.searchsorted(table[ids[t - 1]].cumsum(), u[t])), vocab - 1)
        return ids, vocab, "synthetic text"


# ---- training on one device ----

def train_mlp(device, images, labels, steps, batch, seed=0):
    from mnist_mlp import build_model

    minidl.manual_seed(seed)
    model = build_model().to(device)
    optimizer = minidl.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    order = np.random.default_rng(seed).integers(0, len(images), size=(steps, batch))
    losses, start = [], time.perf_counter()
    for rows in order:
        loss = loss_fn(model(minidl.tensor(images[rows], device=device)), minidl.tensor(labels[rows], device=device))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return np.array(losses), (time.perf_counter() - start) / steps


def train_gpt(device, ids, vocab, steps, batch, shape, seed=0):
    from gpt_model import GPT, GPTConfig

    minidl.manual_seed(seed)
    model = GPT(GPTConfig(vocab_size=vocab, **shape)).to(device)
    decay = [p for p in model.parameters() if p.ndim >= 2]
    other = [p for p in model.parameters() if p.ndim < 2]
    optimizer = minidl.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": other, "weight_decay": 0.0}],
                                   lr=1e-3, betas=(0.9, 0.99))
    rng = np.random.default_rng(seed)
    T = shape["block_size"]
    losses, start = [], time.perf_counter()
    for _ in range(steps):
        starts = rng.integers(0, len(ids) - T - 1, size=batch)
        window = ids[starts[:, None] + np.arange(T + 1)[None, :]]
        _, loss = model(minidl.tensor(window[:, :-1], device=device), minidl.tensor(window[:, 1:], device=device))
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        losses.append(loss.item())
    return np.array(losses), (time.perf_counter() - start) / steps


def compare(name, device, cpu, dev, seconds_cpu, seconds_dev):
    early = np.abs(dev[:EARLY_STEPS] - cpu[:EARLY_STEPS]) / np.abs(cpu[:EARLY_STEPS])
    tail = max(1, len(cpu) // 5)
    late = abs(dev[-tail:].mean() - cpu[-tail:].mean()) / cpu[-tail:].mean()
    learned = dev[-tail:].mean() < dev[:tail].mean()
    ok = bool(early.max() <= EARLY_RTOL and late <= LATE_RTOL and learned)
    print(f"  {'step':>6s} {'cpu loss':>10s} {device + ' loss':>15s}")
    for step in sorted({0, 1, len(cpu) // 2, len(cpu) - 1}):
        print(f"  {step + 1:6d} {cpu[step]:10.4f} {dev[step]:15.4f}")
    print(f"  first {EARLY_STEPS} steps: max relative difference {early.max():.1e} (limit {EARLY_RTOL:.0e}); "
          f"last {tail} steps: mean differs by {100 * late:.2f} % (limit {100 * LATE_RTOL:.0f} %); "
          f"loss fell: {learned}")
    print(f"  time per step: cpu {1e3 * seconds_cpu:.1f} ms, {device} {1e3 * seconds_dev:.1f} ms "
          f"({seconds_cpu / seconds_dev:.2f}x)")
    print(f"  {name}: {'PASS' if ok else 'FAIL'}")
    return ok


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip-tests", action="store_true", help="only the training comparisons")
    args = parser.parse_args(argv)
    gpu = minidl.cuda.is_available()
    device, mode = ("cuda", "gpu") if gpu else ("cuda-emu", "emu")
    if not gpu:
        print("NO CUDA GPU IS PRESENT (minidl.cuda.is_available() is False). Running the same checks on "
              "'cuda-emu' at tiny sizes instead: our CUDA kernels run on the CPU emulator; this says nothing "
              "about GPU speed.")
    results = {}
    if not args.skip_tests:
        if gpu:
            results["kernel tests on the GPU"] = run_pytest(["tests/kernels", "-k", "gpu or compile or ladder"],
                                                            "kernels")
        select = "cuda and not emu" if gpu else "cuda-emu or cuda_emu"
        results[f"op tables on {device}"] = run_pytest(["tests/ops", "tests/ops_nn", "-k", select], "op tables")
    size = SIZES[mode]
    rng = np.random.default_rng(0)
    images, labels, mnist_name = mnist_arrays(rng)
    print(f"\n== MNIST MLP on {mnist_name}, {size['mlp_steps']} steps of {size['mlp_batch']}, Adam")
    cpu_curve, cpu_s = train_mlp("cpu", images, labels, size["mlp_steps"], size["mlp_batch"])
    dev_curve, dev_s = train_mlp(device, images, labels, size["mlp_steps"], size["mlp_batch"])
    results["MNIST MLP curves"] = compare("MNIST MLP", device, cpu_curve, dev_curve, cpu_s, dev_s)
    ids, vocab, text_name = text_ids(rng)
    print(f"\n== GPT {size['gpt']} on {text_name}, {size['gpt_steps']} steps of {size['gpt_batch']}, AdamW")
    cpu_curve, cpu_s = train_gpt("cpu", ids, vocab, size["gpt_steps"], size["gpt_batch"], size["gpt"])
    dev_curve, dev_s = train_gpt(device, ids, vocab, size["gpt_steps"], size["gpt_batch"], size["gpt"])
    results["GPT curves"] = compare("GPT", device, cpu_curve, dev_curve, cpu_s, dev_s)
    print("\n== summary" + ("" if gpu else " (cuda-emu at tiny sizes: NO GPU was tested)"))
    for name, ok in results.items():
        print(f"  {'PASS' if ok else 'FAIL'}  {name}")
    return 0 if all(results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
