"""Turn a results document into REPORT.md (the one-minute read) and OP_PARITY.md (every op).

A results document is what run.py writes to results.json:
    {"meta": {...run facts...}, "sections": [Section.to_json(), ...], "summary": {...}}
Everything here is a pure function of it, so a report can be re-rendered from a saved file
(`run.py --render results.json`) and tested on fake results.
"""
from __future__ import annotations

from .rows import format_value, section_from_json, summarize

NOTE_WIDTH = 220          # characters of a row's note shown in the table (all of it in JSON)
VERDICT_MARK = {"pass": "✅ pass", "fail": "❌ fail", "error": "❌ error", "skipped": "⏭ skipped",
                "no reference": "… no reference", "info": "ℹ info"}


def verdict_cell(verdict: str) -> str:
    base, noisy = verdict.replace(" (noisy)", ""), verdict.endswith("(noisy)")
    return VERDICT_MARK.get(base, base) + (" (noisy)" if noisy else "")


def figure_cell(value, rng, unit) -> str:
    text = format_value(value, unit)
    if rng is not None and value is not None:
        lo, hi = rng
        text += f" ({format_value(lo, unit).split()[0]}–{format_value(hi, unit)})"
    return text


def memory_cell(extra: dict) -> str:
    mem = extra.get("memory")
    if not mem:
        return ""
    parts = []
    for who, m in mem.items():
        bits = []
        if m.get("numpy_peak_mib") is not None:
            bits.append(f"{m['numpy_peak_mib']:.1f} MiB (tracemalloc)")
        if m.get("torch_peak_mib") is not None:
            bits.append(f"{m['torch_peak_mib']:.1f} MiB (profiler)")
        if m.get("rss_peak_mib"):          # 0 / None: served from memory already held
            bits.append(f"RSS +{m['rss_peak_mib']:.1f} MiB")
        parts.append(f"{who}: " + ", ".join(bits))
    return "; ".join(parts)


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _short(text: str, width: int = NOTE_WIDTH) -> str:
    text = _escape(text)
    return text if len(text) <= width else text[:width - 1] + "…"


def section_table(section) -> list:
    has_memory = any(r.extra.get("memory") for r in section.rows)
    head = ["row", "minidl", "reference", "ratio", "target", "verdict"]
    if has_memory:
        head.append("peak memory (one call)")
    head.append("notes")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in section.rows:
        ref = figure_cell(r.reference, r.reference_range, r.unit)
        if r.reference_source:        # where the reference came from, even without a figure
            source = f"<sub>{_escape(r.reference_source)}</sub>"
            ref = source if r.reference is None else f"{ref}<br>{source}"
        cells = [_escape(r.name), figure_cell(r.minidl, r.minidl_range, r.unit), ref,
                 f"{r.ratio:.2f}" if r.ratio is not None else "-",
                 r.target.describe(r.unit) if r.target else "-", verdict_cell(r.verdict)]
        if has_memory:
            cells.append(_escape(memory_cell(r.extra)))
        # a skipped or failed row's note is its explanation (which file, how to fix): keep it whole
        cells.append(_escape(r.note) if r.verdict in ("skipped", "error") else _short(r.note))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def header(meta: dict, counts: dict) -> list:
    v, m, t = meta.get("versions", {}), meta.get("machine", {}), meta.get("thread_counts", {})
    torch_v = v.get("torch") or "not installed (references from benchmarks/reference/*.json)"
    lines = [
        "# minidl benchmark report", "",
        f"Run {meta.get('started', '?')}, mode **{meta.get('mode', '?')}**, "
        f"{meta.get('seconds', 0):.0f} s, commit {m.get('git_commit', '?')}.  ",
        f"Machine: {m.get('cpu', '?')}, {m.get('logical_cpus', '?')} logical CPUs, "
        f"{(m.get('memory_gib') or 0):.0f} GiB. Python {v.get('python')}, NumPy {v.get('numpy')}, "
        f"Numba {v.get('numba')}, PyTorch {torch_v}.  ",
        f"Threads: every library given {meta.get('threads')} "
        f"(PyTorch {t.get('torch', '-')}, Numba {t.get('numba', '-')}, "
        f"OPENBLAS_NUM_THREADS={t.get('OPENBLAS_NUM_THREADS')}, "
        f"OMP_NUM_THREADS={t.get('OMP_NUM_THREADS')}).  ",
    ]
    if m.get("blas_kernels"):
        forced = m.get("openblas_coretype")
        lines.append(f"NumPy's OpenBLAS runs its {m['blas_kernels']} kernels"
                     + (f" (set by OPENBLAS_CORETYPE={forced})" if forced else
                        " (its own choice for this CPU)") + ".  ")
    stall = meta.get("cpu_stall_share")
    load = meta.get("load_average_at_start")
    if stall is not None or load:
        noisy = stall is not None and stall > 0.05
        lines.append(
            f"Machine load: load average {load[0]:.1f} at start; " if load else "Machine load: ")
        if stall is not None:
            lines[-1] += (f"some task waited for a CPU {100 * stall:.0f} % of the run (PSI)"
                          + (" -- **the machine was busy: timings are noisy; trust ratios "
                             "flagged (noisy) least**" if noisy else "") + ".")
    order = ["pass", "fail", "error", "no reference", "skipped", "info"]
    summary = " · ".join(f"{counts[k]} {k}" for k in order if counts.get(k))
    lines += ["", f"**Summary: {summary}**", ""]
    lines.append("Verdicts: pass/fail against the row's target; *(noisy)*: most timing repeats "
                 "waited for a CPU; ratio = minidl / reference (below 1: minidl is faster or "
                 "smaller).")
    return lines


def attention_list(sections) -> list:
    """The rows a reader must see first: every fail and error, by section."""
    lines = []
    for s in sections:
        for r in s.rows:
            base = r.verdict.replace(" (noisy)", "")
            if base in ("fail", "error"):
                figure = format_value(r.minidl, r.unit)
                if r.ratio is not None and r.target is not None and r.target.on == "ratio":
                    figure = f"ratio {r.ratio:.2f}"
                lines.append(f"- **{base}** ({s.title.split(':')[0]}): {_escape(r.name)} -- "
                             f"{figure}, target {r.target.describe(r.unit) if r.target else '-'}"
                             + (" (noisy)" if r.verdict.endswith("(noisy)") else ""))
    return (["", "Needs attention:", ""] + lines) if lines else []


def render(doc: dict, plots: list | None = None) -> str:
    sections = [section_from_json(s) for s in doc["sections"]]
    counts = summarize(sections)
    lines = header(doc["meta"], counts)
    lines += attention_list(sections)
    for i, s in enumerate(sections, 1):
        lines += ["", f"## {i}. {s.title}", f"<sub>{s.seconds:.0f} s</sub>", ""]
        lines += section_table(s) if s.rows else ["(no rows)"]
        if s.notes:
            lines.append("")
            lines += [f"- {_escape(n)}" for n in s.notes]
    if plots:
        lines += ["", "## Plots", ""]
        lines += [f"![{p}](plots/{p})" for p in plots]
    lines += ["", "Raw figures (every sample, versions, thread counts): results.json. "
              "Every op's parity: OP_PARITY.md.", ""]
    return "\n".join(lines)


def render_op_parity(doc: dict) -> str:
    """Per-op table: forward and backward max abs / rel error in each dtype."""
    ops = []
    for s in doc["sections"]:
        if s["key"] == "op_parity":
            ops = s.get("extra", {}).get("ops", [])
    by_op: dict = {}
    for r in ops:
        by_op.setdefault(r["op"], {})[r["dtype"]] = r

    def cell(r, kind, key):
        if r is None:
            return "-"
        if "error" in r:
            return "error"
        if "missing" in r:
            return "n/a"
        e = r.get(kind)
        return "-" if not e else f"{e[key]:.1e}"

    lines = ["# Op parity against PyTorch, every op", "",
             "abs = max |minidl - PyTorch|; rel = max|a - b| / max|b| (normwise); 'tol' = "
             "share of the test suite's tolerance used (<= 1 passes).", "",
             "| op | f32 fwd abs | f32 fwd rel | f32 bwd abs | f32 bwd rel | f32 tol | "
             "f64 fwd abs | f64 fwd rel | f64 bwd abs | f64 bwd rel | f64 tol |",
             "|" + "---|" * 11]
    for op in sorted(by_op):
        row = [op]
        for dtype in ("float32", "float64"):
            r = by_op[op].get(dtype)
            row += [cell(r, "forward", "abs"), cell(r, "forward", "rel"),
                    cell(r, "backward", "abs"), cell(r, "backward", "rel")]
            row.append(f"{r['tol_used']:.2g}" if r and "tol_used" in r else
                       (_short(r.get("error", r.get("missing", "")), 60) if r else "-"))
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"
