"""Store PyTorch's results in benchmarks/reference/*.json, for benchmark runs without PyTorch.

    python benchmarks/make_reference.py                 # op parity, training curves, speed
    python benchmarks/make_reference.py --accuracy      # + PyTorch trained with the examples'
                                                        #   recipes (5 epochs each: ~15 min)
    python benchmarks/make_reference.py --only speed

Needs PyTorch (pip install torch==2.13.0, the version the files were made with). Each file
records in its "meta" the versions (PyTorch, NumPy, Python), the machine, the thread count and
the date, and benchmarks/reference/README.md lists them; the report cites them.

Files:
  op_parity.json     PyTorch's outputs and gradients for every op-table row in float32 and
                     float64, stored bit-exactly, with a digest of the inputs they came from
  train_parity.json  PyTorch's loss curves (100 steps) of the MLP, CNN and GPT from the NumPy-
                     drawn initial weights (their SHA-256 stored with them)
  speed.json         PyTorch's timings of every speed row (median, min, max, all samples) --
                     machine-specific: ratios against them carry the between-process spread
  accuracy.json      (--accuracy) test accuracy per epoch of the examples' recipes
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

PARTS = ["op_parity", "train_parity", "speed", "accuracy"]


def make(part: str, ctx) -> dict:
    if part == "op_parity":
        from suite import op_parity
        entries, problems = op_parity.load_entries(True)
        for p in problems:
            ctx.log(f"  could not load: {p}")
        return op_parity.stored_payload(entries, ctx.torch)
    if part == "train_parity":
        from suite import train_parity
        return train_parity.stored_payload(ctx)
    if part == "speed":
        from suite import overhead_rows, speed_ops, speed_train
        data = speed_ops.stored_payload(ctx)
        data.update(speed_train.stored_payload(ctx))
        data.update(overhead_rows.stored_payload(ctx))
        return data
    if part == "accuracy":
        from suite import accuracy
        from suite.torch_recipes import train_classifier
        data = {}
        for job in accuracy.every_run():
            ctx.log(f"  {job.key} on {job.dataset}, {job.epochs} epochs")
            result = train_classifier(ctx.torch, accuracy.example(job.example), job.dataset,
                                      job.epochs, log=lambda m: ctx.log("    " + m))
            data[job.name] = result
        return data
    raise ValueError(part)


def write_readme(store) -> None:
    lines = ["# Stored PyTorch references", "",
             "Made by `python benchmarks/make_reference.py`; used by `benchmarks/run.py` when "
             "PyTorch is not installed. Regenerate after changing a benchmark's inputs (rows "
             "whose inputs no longer match the stored digest are reported as such).", "",
             "speed.json holds timings of one machine at one moment: a run elsewhere compares "
             "against them across processes and machines, so its ratios are indicative only. "
             "'CPU stall' is the share of the time some task waited for a CPU (Linux PSI) while "
             "the file was made: above a few percent, its timings are inflated.", "",
             "| file | PyTorch | NumPy | Python | threads | machine | date | CPU stall while made |",
             "|---|---|---|---|---|---|---|---|"]
    for path in sorted(store.folder.glob("*.json")):
        got = store.get(path.stem)
        if got is None:
            continue
        meta = got[1]
        v = meta.get("versions", {})
        lines.append(f"| {path.name} | {v.get('torch')} | {v.get('numpy')} | {v.get('python')} "
                     f"| {meta.get('threads')} | {meta.get('machine', {}).get('cpu')} | "
                     f"{meta.get('date', '')[:10]} | "
                     + (f"{100 * meta['cpu_stall_share']:.0f} %" if "cpu_stall_share" in meta
                        else "-") + " |")
    (store.folder / "README.md").write_text("\n".join(lines) + "\n")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accuracy", action="store_true", help="also the long accuracy runs")
    ap.add_argument("--only", default="", help=f"comma-separated parts of {PARTS}")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    from suite.context import pin_threads
    pin_threads(args.threads)
    from suite import progress, references
    from suite.context import Context, import_torch, load_average, machine, versions
    torch = import_torch(args.threads)
    if torch is None:
        sys.exit("make_reference.py needs PyTorch: pip install torch==2.13.0")
    store = references.ReferenceStore()
    ctx = Context(mode="default", threads=args.threads, torch=torch, references=store,
                  progress=progress.Progress())
    parts = [p for p in args.only.split(",") if p] or \
        [p for p in PARTS if p != "accuracy" or args.accuracy]
    meta = {"made_by": "benchmarks/make_reference.py", "versions": versions(torch),
            "machine": machine(), "threads": args.threads}
    from timing import cpu_stall_us
    for part in parts:
        ctx.log(f"== {part}")
        start, stall = time.perf_counter(), cpu_stall_us()
        data = make(part, ctx)
        seconds = time.perf_counter() - start
        part_meta = dict(meta, load_average=load_average(), seconds=seconds)
        if stall is not None:          # how busy the machine was: timings depend on it
            part_meta["cpu_stall_share"] = (cpu_stall_us() - stall) / 1e6 / seconds
        path = store.save(part, data, part_meta)
        ctx.log(f"   wrote {path} ({path.stat().st_size / 1024:.0f} KiB)")
    write_readme(store)
    return 0


if __name__ == "__main__":
    sys.exit(main())
