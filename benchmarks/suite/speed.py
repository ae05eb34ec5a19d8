"""Shared timing rules of the speed sections.

Every figure is the median over interleaved repeats (A B C A B C ...) after warm-up, from
timing.compare, with the min-max range beside it; each repeat starts once the previous one's
thread pools have gone idle (timing.settle). A repeat during which the process waited
for a CPU (PSI) counts as stalled; a row whose candidates stalled in more than half their
repeats is flagged noisy. Without PyTorch, the reference time is the stored median from
benchmarks/reference/speed.json -- measured in another process, maybe on another machine, so
such ratios carry the ±30 % between-process spread (the report says so).
"""
from __future__ import annotations

import sys

from .context import BENCH_DIR
from .rows import Row, Target

if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

from timing import compare  # noqa: E402

# Targets, minidl time / PyTorch time on the same threads (the project's, as in
# benchmarks/train_steps.py and overhead.py): lower is better.
TARGETS = {
    "op": Target("ratio", "<=", 1.5),          # a single op, forward or forward+backward
    "step/mlp": Target("ratio", "<=", 0.8),    # the MLP step: minidl's fused Adam should win
    "step/cnn": Target("ratio", "<=", 1.2),
    "step/gpt": Target("ratio", "<=", 1.2),
    "optimizer": Target("ratio", "<=", 1.0),   # a fused optimizer step against torch.optim's
    "overhead": Target("ratio", "<=", 0.5),    # per-op bookkeeping (benchmarks/overhead.py)
    "memory": Target("ratio", "<=", 1.2),      # peak memory of a training step
}
SPEED_TARGET = TARGETS["op"]

REPEATS = {"quick": (5, 0.03), "default": (7, 0.05), "full": (11, 0.1)}


def time_all(ctx, candidates: dict) -> dict:
    repeats, target_s = REPEATS[ctx.mode]
    return compare(candidates, repeats=repeats, target_s=target_s, warmup=2)


def summary(stats: dict) -> dict:
    """The JSON-friendly subset of one candidate's timing (seconds)."""
    return {k: stats[k] for k in ("median", "min", "max", "samples", "calls_per_repeat",
                                  "stalled_repeats")}


def is_noisy(*stats) -> bool:
    return any(s["stalled_repeats"] * 2 > len(s["samples"]) for s in stats if s)


def stored_time(ctx, name: str):
    """(stats, source) of a row in the stored speed reference, or (None, reason)."""
    stored = ctx.references.get("speed")
    if stored is None:
        return None, ctx.references.problems.get("speed", "no stored reference")
    stats = stored[0].get(name)
    if stats is None:
        return None, f"'{name}' is not in the stored speed reference"
    return stats, ctx.references.describe("speed") + ", another process"


def time_row(name: str, ours: dict, ref: dict | None, source: str, unit: str = "ms",
             target: Target | None = SPEED_TARGET) -> Row:
    scale = {"ms": 1e3, "us": 1e6, "s": 1.0}[unit]
    row = Row(name, unit, minidl=ours["median"] * scale,
              minidl_range=(ours["min"] * scale, ours["max"] * scale), target=target)
    row.extra["minidl_timing"] = summary(ours)
    if ref is not None:
        row.reference = ref["median"] * scale
        row.reference_range = (ref["min"] * scale, ref["max"] * scale)
        row.reference_source = source
        row.extra["reference_timing"] = summary(ref) if "calls_per_repeat" in ref else ref
    row.noisy = is_noisy(ours, ref if ref and "stalled_repeats" in ref else None)
    return row
