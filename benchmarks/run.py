"""The main job: run minidl's benchmark suite and write a report.

    python benchmarks/run.py            # default: about 5-10 minutes on 2 cores
    python benchmarks/run.py --quick    # about 2 minutes: fewer steps and repeats, MLP accuracy only
    python benchmarks/run.py --full     # + 5-epoch accuracy runs, Fashion-MNIST, the GPT on Tiny
                                        #   Shakespeare, PyTorch trained with the same recipes
    python benchmarks/run.py --only op_parity,speed_train     # some sections
    python benchmarks/run.py --render benchmarks/results/results.json   # re-render the report

Sections, in order (benchmarks/suite/ has one module each):
  op_parity     every op-table row, forward and backward, against PyTorch (float32, float64)
  train_parity  MLP, CNN, GPT from identical weights and batches: loss curves side by side
  accuracy      the MNIST examples trained for real: test accuracy against targets
  speed_ops     single ops, forward and forward+backward, against PyTorch
  speed_train   training steps against PyTorch (and the hand-written NumPy floor)
  overhead      per-op bookkeeping on 1-element tensors
  gpu           the CUDA kernel ladder on a GPU, or one row saying there is none

Outputs in benchmarks/results/: REPORT.md (the one-minute read), OP_PARITY.md (every op),
results.json (machine, versions, thread counts, every sample), plots/*.png (with matplotlib).

Every library gets the same number of threads (--threads, default 2; env MINIDL_BENCH_THREADS).
Without PyTorch, references come from benchmarks/reference/*.json (make_reference.py; set
MINIDL_BENCH_NO_TORCH=1 to rehearse that with PyTorch installed); without a data set, the rows
that need it say which file is missing and how to get it.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

SECTIONS = ["op_parity", "train_parity", "accuracy", "speed_ops", "speed_train", "overhead",
            "gpu"]
MODULES = {"overhead": "overhead_rows"}       # section key -> module name, where they differ


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n", 2)[2])
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="short run (about 2 minutes)")
    mode.add_argument("--full", action="store_true", help="include the long accuracy runs")
    ap.add_argument("--only", default="", help=f"comma-separated sections of: {', '.join(SECTIONS)}")
    ap.add_argument("--threads", type=int,
                    default=int(os.environ.get("MINIDL_BENCH_THREADS", "2")),
                    help="threads for every library (default 2)")
    ap.add_argument("--results", default=str(HERE / "results"), help="output folder")
    ap.add_argument("--render", metavar="RESULTS_JSON",
                    help="only re-render REPORT.md and plots from a results.json")
    ap.add_argument("--readme", metavar="README_MD",
                    help="also rewrite the benchmark table in this README (between its "
                         "benchmark-table markers)")
    args = ap.parse_args(argv)
    args.mode = "quick" if args.quick else "full" if args.full else "default"
    args.sections = [s.strip() for s in args.only.split(",") if s.strip()] or SECTIONS
    unknown = [s for s in args.sections if s not in SECTIONS]
    if unknown:
        ap.error(f"unknown section(s) {unknown}; sections are {SECTIONS}")
    return args


def write_outputs(doc: dict, folder: Path) -> Path:
    """results.json, REPORT.md, OP_PARITY.md and the plots; returns REPORT.md's path."""
    from suite import plots, report
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "results.json").write_text(json.dumps(doc, indent=1, default=_json_default))
    names, why = plots.make_all(doc, folder / "plots")
    text = report.render(doc, names)
    if why:
        text += f"\n({why})\n"
    path = folder / "REPORT.md"
    path.write_text(text)
    if any(s["key"] == "op_parity" for s in doc["sections"]):
        (folder / "OP_PARITY.md").write_text(report.render_op_parity(doc))
    return path


def _json_default(obj):
    import numpy as np
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def run_section(key: str, ctx):
    """A section's result; a section that crashes becomes one 'error' row, the rest go on."""
    import importlib
    from suite.rows import Row, Section
    start = time.perf_counter()
    try:
        module = importlib.import_module(f"suite.{MODULES.get(key, key)}")
        section = module.run(ctx)
    except Exception as err:
        section = Section(key, key.replace("_", " "))
        section.add(Row(f"{key} section", "", status="error",
                        note=f"{type(err).__name__}: {err}"))
        section.extra["traceback"] = traceback.format_exc()
        ctx.log(section.extra["traceback"])
    section.seconds = time.perf_counter() - start
    return section


def main(argv=None) -> int:
    args = parse_args(argv)
    from suite.context import pin_threads
    pin_threads(args.threads)              # before NumPy and PyTorch start their pools
    if args.render:
        doc = json.loads(Path(args.render).read_text())
        print(f"wrote {write_outputs(doc, Path(args.results))}")
        if args.readme:
            update_readme(doc, Path(args.readme))
        return 0

    from suite import progress, references
    from suite.context import Context, import_torch
    from suite.rows import summarize
    from timing import cpu_stall_us

    ctx = Context(mode=args.mode, threads=args.threads, torch=import_torch(args.threads),
                  references=references.ReferenceStore(), progress=progress.Progress(),
                  results_dir=Path(args.results))
    ctx.results_dir.mkdir(parents=True, exist_ok=True)
    meta = ctx.meta()
    ctx.log(f"# minidl benchmarks, mode {args.mode}, {args.threads} threads, PyTorch "
            f"{meta['versions']['torch'] or 'not installed: stored references'}")
    start, stall0 = time.perf_counter(), cpu_stall_us()
    sections = []
    for key in args.sections:
        ctx.log(f"\n== {key}")
        sections.append(run_section(key, ctx))
        for row in sections[-1].rows:
            ctx.log(f"  {row.verdict:>14}  {row.name}")
    meta["seconds"] = time.perf_counter() - start
    stall1 = cpu_stall_us()
    if stall0 is not None and stall1 is not None:
        meta["cpu_stall_share"] = (stall1 - stall0) / 1e6 / meta["seconds"]
    counts = summarize(sections)
    doc = {"meta": meta, "sections": [s.to_json() for s in sections], "summary": counts}
    path = write_outputs(doc, ctx.results_dir)
    print(f"\n{path}: " + ", ".join(f"{n} {k}" for k, n in counts.items())
          + f" ({meta['seconds']:.0f} s)")
    if args.readme:
        update_readme(doc, Path(args.readme))
    return 0


def update_readme(doc: dict, readme: Path) -> None:
    """Rewrite the README's benchmark table; the file is replaced whole or not at all."""
    from suite.readme_table import render_table, replace_in_readme
    text = replace_in_readme(readme.read_text(), render_table(doc))
    tmp = readme.with_name(readme.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(readme)
    print(f"wrote the benchmark table in {readme}")


if __name__ == "__main__":
    sys.exit(main())
