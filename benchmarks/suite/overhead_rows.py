"""Section 4c, per-op overhead: benchmarks/overhead.py's two rows (1-element add recording the
graph; a tiny backward) as report rows, target minidl <= 0.5x PyTorch."""
from __future__ import annotations

from .context import BENCH_DIR
from .rows import Row, Section
from .speed import TARGETS, REPEATS, stored_time, time_row


def _overhead():
    import sys
    if str(BENCH_DIR) not in sys.path:
        sys.path.insert(0, str(BENCH_DIR))
    import overhead
    return overhead


def run(ctx) -> Section:
    section = Section("overhead", "Per-op overhead (1-element tensors)")
    overhead = _overhead()
    repeats = REPEATS[ctx.mode][0] + 2
    for r in overhead.run(repeats=repeats) if ctx.torch is not None else _minidl_only(overhead, repeats):
        name = r["benchmark"]
        ref, source = (r.get("torch"), ctx.torch_label) if ctx.torch is not None \
            else stored_time(ctx, name)
        row = time_row(name, r["minidl"], ref if isinstance(ref, dict) else None, source, "us",
                       target=TARGETS["overhead"])
        if not isinstance(ref, dict):
            row.note = f"no PyTorch reference: {source}"
        section.add(row)
    section.notes.append("add: `a + b` on 1-element tensors that require grad (records the "
                         "graph); backward: `(a * b).sum().backward()`.")
    return section


def _minidl_only(overhead, repeats):
    from timing import compare
    rows = []
    for name, fn in overhead.minidl_cases().items():
        rows.append({"benchmark": f"overhead/{name}",
                     "minidl": compare({"m": fn}, repeats=repeats, target_s=0.05)["m"]})
    return rows


def stored_payload(ctx) -> dict:
    from timing import compare
    from .speed import summary
    overhead = _overhead()
    return {f"overhead/{name}": summary(compare({"t": fn}, repeats=9, target_s=0.05)["t"])
            for name, fn in overhead.torch_cases().items()}
