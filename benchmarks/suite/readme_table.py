"""The README's benchmark table: a short Markdown summary of one results document.

    python benchmarks/run.py --render benchmarks/results/results.json --readme README.md

rewrites the part of README.md between the two marker lines below with the run's date,
machine, load and the rows a reader wants first (overhead, training steps, the
forward+backward op rows, accuracy, training parity); REPORT.md keeps everything. A pure
function of the results document, like report.py, so it is tested on fake results.
"""
from __future__ import annotations

from .report import verdict_cell
from .rows import format_value, section_from_json

START = "<!-- benchmark-table:start (written by benchmarks/run.py --readme) -->"
END = "<!-- benchmark-table:end -->"

# (section key, which rows): the README shows these, in this order
SHOWN = [("overhead", "all"), ("speed_train", "steps"), ("speed_ops", "fwd+bwd"),
         ("accuracy", "all"), ("train_parity", "all")]


def wanted(section_key: str, which: str, row) -> bool:
    if row.verdict.startswith("info") or row.status != "ok":
        return False
    if which == "steps":   # the step-time rows and the memory rows, not the NumPy-floor info
        return "NumPy floor" not in row.name
    if which == "fwd+bwd":
        return row.name.endswith("fwd+bwd") or "step" in row.name
    return True


def _figure(row, value) -> str:
    return format_value(value, row.unit) if value is not None else ""


def render_table(doc: dict) -> str:
    meta, sections = doc["meta"], {s["key"]: section_from_json(s) for s in doc["sections"]}
    m, v = meta.get("machine", {}), meta.get("versions", {})
    stall = meta.get("cpu_stall_share")
    load = ("quiet machine" if stall is not None and stall <= 0.05 else
            f"busy machine: a task waited for a CPU {100 * stall:.0f} % of the run, so read "
            f"speed ratios as rough" if stall is not None else "machine load unknown")
    lines = [f"Latest run: {meta.get('started', '?')[:10]}, {m.get('cpu', '?')} with "
             f"{m.get('logical_cpus', '?')} logical CPUs, mode {meta.get('mode')}, "
             f"{meta.get('seconds', 0):.0f} s, {meta.get('threads')} threads for every library, "
             f"PyTorch {v.get('torch') or 'not installed (stored references)'}, "
             f"commit {m.get('git_commit', '?')} ({load}).", "",
             "| row | minidl | reference | ratio | target | verdict |",
             "|---|---|---|---|---|---|"]
    for key, which in SHOWN:
        section = sections.get(key)
        if section is None:
            continue
        for row in section.rows:
            if not wanted(key, which, row):
                continue
            ratio = f"{row.ratio:.2f}" if row.ratio is not None else ""
            target = row.target.describe(row.unit) if row.target else ""
            name = row.name.replace("|", "\\|")
            # a row judged on its own figure (a loss-curve gap) still names what it was
            # compared with
            reference = _figure(row, row.reference) or row.reference_source.replace("|", "/")
            lines.append(f"| {name} | {_figure(row, row.minidl)} | "
                         f"{reference} | {ratio} | {target} | "
                         f"{verdict_cell(row.verdict)} |")
    return "\n".join(lines)


def replace_in_readme(readme_text: str, table: str) -> str:
    """README text with the block between START and END replaced by `table`."""
    if readme_text.count(START) != 1 or readme_text.count(END) != 1:
        raise ValueError(f"the README must hold exactly one '{START}' line and one '{END}' "
                         f"line, found {readme_text.count(START)} and {readme_text.count(END)}")
    head, rest = readme_text.split(START)
    _, tail = rest.split(END)
    return f"{head}{START}\n{table}\n{END}{tail}"
