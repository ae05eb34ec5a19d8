"""Train a character-level GPT on Tiny Shakespeare, then write some Shakespeare.

    MINIDL_DATA=/path/to/data python examples/gpt_shakespeare.py           # ~20 min, 2 cores
    python examples/gpt_shakespeare.py --quick                             # < 1 min smoke run

The model is examples/gpt_model.py (decoder-only, pre-LayerNorm, causal self-attention through
F.scaled_dot_product_attention, GELU MLP 4x wide, tied input/output embeddings). Default:
context 128, d_model 128, 4 heads, 4 layers, batch 32; ~0.8 M parameters.

Training: AdamW (weight decay on matrices only: decaying LayerNorm scales and biases towards
zero only hurts), linear warm-up then cosine decay of the learning rate, gradients clipped to
norm 1. Data: the first 90% of the text trains, the last 10% validates (split by position,
never shuffled: neighbouring windows overlap). Each batch is B random windows of T + 1
characters: x = window[:-1], y = window[1:], so every position predicts its next character.

Target: validation loss < 1.75 nats/char (the unigram entropy of the text is 3.3; a uniform
guess over 65 characters is ln 65 = 4.17). The script asserts it reached the target.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

import minidl  # noqa: E402
import minidl.nn as nn  # noqa: E402
from minidl.data import DatasetError, TinyShakespeare  # noqa: E402
from gpt_model import GPT, GPTConfig  # noqa: E402

FULL = dict(block_size=128, n_embd=128, n_head=4, n_layer=4, batch_size=32, steps=2500,
            lr=2e-3, warmup=100, eval_every=250, eval_batches=40, target=1.75)
QUICK = dict(block_size=32, n_embd=48, n_head=4, n_layer=2, batch_size=16, steps=150,
             lr=3e-3, warmup=10, eval_every=50, eval_batches=8, target=None)


def load_text(data_root):
    """(train ids, val ids, dataset) or a clear exit when the file is missing."""
    try:
        train = TinyShakespeare(root=data_root, split="train", block_size=8)
        val = TinyShakespeare(root=data_root, split="val", block_size=8)
    except DatasetError as err:
        sys.exit(f"gpt_shakespeare: Tiny Shakespeare is not available.\n{err}\n"
                 f"Set MINIDL_DATA (or pass --data) to the folder holding tinyshakespeare/input.txt.")
    return train.data, val.data, train


def get_batch(ids, batch_size, block_size, rng):
    """B random windows: x = ids[i : i+T], y = ids[i+1 : i+T+1] (int64 NumPy arrays)."""
    starts = rng.integers(0, len(ids) - block_size - 1, size=batch_size)
    offsets = starts[:, None] + np.arange(block_size + 1)[None, :]
    window = ids[offsets]
    return window[:, :-1], window[:, 1:]


def estimate_loss(model, ids, cfg, n_batches, seed=1234):
    """Mean cross-entropy over n_batches fixed random windows (the same ones every time)."""
    rng = np.random.default_rng(seed)
    model.eval()
    total = 0.0
    with minidl.no_grad():
        for _ in range(n_batches):
            x, y = get_batch(ids, cfg["batch_size"], cfg["block_size"], rng)
            _, loss = model(minidl.tensor(x), minidl.tensor(y))
            total += loss.item()
    model.train()
    return total / n_batches


def make_optimizer(model, lr, weight_decay=0.1):
    """AdamW with two groups: decay for matrices (Linear weights, embeddings), none for the
    1-D parameters (biases, LayerNorm scales and shifts)."""
    decay = [p for p in model.parameters() if p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.ndim < 2]
    return minidl.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                               {"params": no_decay, "weight_decay": 0.0}],
                              lr=lr, betas=(0.9, 0.99))


def train(cfg, data_root=None, seed=0, log=print, max_seconds=None):
    """Train; returns a dict with the loss curve, final validation loss, timings and model."""
    minidl.manual_seed(seed)
    rng = np.random.default_rng(seed)
    train_ids, val_ids, dataset = load_text(data_root)
    model = GPT(GPTConfig(vocab_size=dataset.vocab_size, block_size=cfg["block_size"],
                          n_layer=cfg["n_layer"], n_head=cfg["n_head"], n_embd=cfg["n_embd"]))
    opt = make_optimizer(model, cfg["lr"])
    sched = minidl.optim.lr_scheduler.warmup_cosine(opt, cfg["warmup"], cfg["steps"],
                                                    min_lr_ratio=0.1)
    log(f"GPT: {model.num_parameters() / 1e6:.2f} M parameters, {cfg['steps']} steps of "
        f"{cfg['batch_size']} x {cfg['block_size']} characters")
    curve = []                 # (step, train loss (mean since last eval), val loss, seconds)
    recent = []
    start = time.perf_counter()
    first_loss = None
    for step in range(1, cfg["steps"] + 1):
        x, y = get_batch(train_ids, cfg["batch_size"], cfg["block_size"], rng)
        _, loss = model(minidl.tensor(x), minidl.tensor(y))
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        recent.append(loss.item())
        if first_loss is None:
            first_loss = recent[0]
        out_of_time = max_seconds is not None and time.perf_counter() - start > max_seconds
        if step % cfg["eval_every"] == 0 or step == cfg["steps"] or out_of_time:
            val = estimate_loss(model, val_ids, cfg, cfg["eval_batches"])
            elapsed = time.perf_counter() - start
            curve.append((step, float(np.mean(recent)), val, elapsed))
            log(f"step {step:5d}  train {np.mean(recent):.4f}  val {val:.4f}  "
                f"lr {sched.get_last_lr()[0]:.2e}  {elapsed:7.1f} s  "
                f"({1000 * elapsed / step:.0f} ms/step)")
            recent = []
        if out_of_time:
            log(f"stopping: the time budget of {max_seconds:.0f} s is spent")
            break
    return dict(model=model, dataset=dataset, curve=curve, first_loss=first_loss,
                val_loss=curve[-1][2], seconds=time.perf_counter() - start, steps=step)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="folder holding tinyshakespeare/input.txt "
                                       "(default: $MINIDL_DATA)")
    parser.add_argument("--quick", action="store_true", help="a tiny model for a smoke run")
    parser.add_argument("--steps", type=int)
    parser.add_argument("--lr", type=float)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--max-minutes", type=float, default=20.0,
                        help="stop training when this much time is spent (default 20)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--top-k", type=int, default=10)
    parser.add_argument("--sample-chars", type=int, default=400)
    parser.add_argument("--log-json", help="write the loss curve and timings here")
    args = parser.parse_args(argv)

    cfg = dict(QUICK if args.quick else FULL)
    for key in ("steps", "lr", "batch_size"):
        if getattr(args, key) is not None:
            cfg[key] = getattr(args, key)
    result = train(cfg, args.data, args.seed, max_seconds=60 * args.max_minutes)

    model, ds = result["model"], result["dataset"]
    prompt = minidl.tensor(ds.encode("\n").reshape(1, 1))
    out = model.generate(prompt, args.sample_chars, temperature=args.temperature,
                         top_k=args.top_k,
                         generator=minidl.Generator().manual_seed(args.seed))
    print(f"\n--- sample (temperature {args.temperature}, top-k {args.top_k}) ---")
    print(ds.decode(out[0]))
    print("---")
    print(f"trained {result['steps']} steps in {result['seconds']:.0f} s; "
          f"first loss {result['first_loss']:.3f}, final validation loss "
          f"{result['val_loss']:.4f} nats/char")
    if args.log_json:
        Path(args.log_json).write_text(json.dumps(
            {k: result[k] for k in ("curve", "first_loss", "val_loss", "seconds", "steps")},
            indent=1))

    if args.quick:
        # a smoke run: the model must clearly learn (uniform guessing is ln 65 = 4.17)
        assert result["val_loss"] < 0.8 * result["first_loss"], \
            f"quick run did not learn: {result['first_loss']:.3f} -> {result['val_loss']:.3f}"
    else:
        assert result["val_loss"] < cfg["target"], \
            f"validation loss {result['val_loss']:.4f} did not reach {cfg['target']}"
    print("target reached")
    return result


if __name__ == "__main__":
    main()
