"""What every section hands back: rows of (minidl figure, reference figure, ratio, verdict).

A `Row` is one line of the report. Its verdict comes from its `Target`, applied either to
minidl's own figure ("value": an error, an accuracy, a loss) or to the ratio minidl/reference
("ratio": a time against PyTorch's time). `judge` is the one place that turns figures into
words, so the report, the JSON and the tests all agree on what "pass" means.

Verdicts:
  pass / fail      the target was met / missed
  ... (noisy)      appended to a timing verdict when most repeats waited for a CPU (PSI):
                   the figure is real but the machine was busy, so do not trust it alone
  info             a figure with no target (e.g. the NumPy floor)
  no reference     the target is a ratio but no reference figure exists (no PyTorch, no file)
  skipped          the row could not run; `note` says exactly why and how to fix it
  error            the row raised; `note` holds the error
"""
from __future__ import annotations

import math
import operator
from dataclasses import asdict, dataclass, field
from typing import Optional

_OPS = {"<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt}


@dataclass
class Target:
    on: str            # "value" (minidl's figure) or "ratio" (minidl / reference)
    op: str            # one of <=, >=, <, >
    threshold: float

    def __post_init__(self):
        if self.on not in ("value", "ratio"):
            raise ValueError(f"Target.on must be 'value' or 'ratio', got {self.on!r}")
        if self.op not in _OPS:
            raise ValueError(f"Target.op must be one of {sorted(_OPS)}, got {self.op!r}")

    def met(self, x: float) -> bool:
        return bool(_OPS[self.op](x, self.threshold))

    def describe(self, unit: str = "") -> str:
        if self.on == "ratio":
            return f"ratio {self.op} {self.threshold:g}"
        return f"{self.op} {format_value(self.threshold, unit)}"


@dataclass
class Row:
    name: str
    unit: str                                # ms, us, %, loss, rel, s, MiB
    minidl: Optional[float] = None
    reference: Optional[float] = None
    reference_source: str = ""               # "PyTorch 2.13.0 (this run)", "published: ..."
    target: Optional[Target] = None
    status: str = "ok"                       # ok | skipped | error
    note: str = ""
    noisy: bool = False
    minidl_range: Optional[tuple] = None     # (min, max) over repeats
    reference_range: Optional[tuple] = None
    extra: dict = field(default_factory=dict)  # raw detail for the JSON (samples, curves, ...)
    verdict: str = ""

    @property
    def ratio(self) -> Optional[float]:
        if self.minidl is None or self.reference is None or self.reference == 0:
            return None
        if not (math.isfinite(self.minidl) and math.isfinite(self.reference)):
            return None
        return self.minidl / self.reference

    def to_json(self) -> dict:
        d = asdict(self)
        d["ratio"] = self.ratio
        d["target_text"] = self.target.describe(self.unit) if self.target else ""
        return d


def judge(row: Row) -> str:
    """The verdict of one row (also stored on it)."""
    if row.status in ("skipped", "error"):
        verdict = row.status
    elif row.minidl is None or (isinstance(row.minidl, float) and math.isnan(row.minidl)):
        verdict = "skipped"
    elif row.target is None:
        verdict = "info"
    else:
        x = row.minidl if row.target.on == "value" else row.ratio
        if x is None:
            verdict = "no reference"
        else:
            verdict = "pass" if row.target.met(x) else "fail"
            if row.noisy:
                verdict += " (noisy)"
    row.verdict = verdict
    return verdict


@dataclass
class Section:
    key: str                                 # op_parity, train_parity, ...
    title: str
    rows: list = field(default_factory=list)
    notes: list = field(default_factory=list)  # sentences printed under the table
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)

    def add(self, row: Row) -> Row:
        judge(row)
        self.rows.append(row)
        return row

    def to_json(self) -> dict:
        return {"key": self.key, "title": self.title, "seconds": self.seconds,
                "notes": self.notes, "rows": [r.to_json() for r in self.rows],
                "extra": self.extra}


def row_from_json(d: dict) -> Row:
    """Inverse of Row.to_json (used to re-render a report from a results file)."""
    target = Target(**d["target"]) if d.get("target") else None
    fields = {k: d[k] for k in Row.__dataclass_fields__ if k in d and k != "target"}
    for k in ("minidl_range", "reference_range"):
        if fields.get(k) is not None:
            fields[k] = tuple(fields[k])
    return Row(target=target, **fields)


def section_from_json(d: dict) -> Section:
    return Section(key=d["key"], title=d["title"], rows=[row_from_json(r) for r in d["rows"]],
                   notes=list(d.get("notes", [])), seconds=d.get("seconds", 0.0),
                   extra=d.get("extra", {}))


def summarize(sections) -> dict:
    """Counts of verdicts over all rows: {'pass': n, 'fail': n, ...} (noisy folded in)."""
    counts: dict = {}
    for s in sections:
        for r in s.rows:
            key = r.verdict.replace(" (noisy)", "")
            counts[key] = counts.get(key, 0) + 1
    return counts


def format_value(x, unit: str) -> str:
    """A figure with its unit, at a precision that suits the unit."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if unit == "s":
        return f"{x:.3g} s" if x < 10 else f"{x:.0f} s"
    if unit == "ms":
        return f"{x:.3g} ms" if x < 100 else f"{x:.0f} ms"
    if unit == "us":
        return f"{x:.3g} µs"
    if unit == "%":
        return f"{x:.2f} %"
    if unit == "rel":
        return f"{x:.1e}"
    if unit == "MiB":
        return f"{x:.1f} MiB"
    if unit == "loss":
        return f"{x:.4f}"
    return f"{x:.4g}" + (f" {unit}" if unit else "")
