"""Verdict logic: one row per situation the report must name correctly."""
import math

import pytest

from suite.rows import Row, Section, Target, format_value, judge, summarize

T_RATIO = Target("ratio", "<=", 1.0)
T_ACC = Target("value", ">=", 98.0)
T_ERR = Target("value", "<", 1e-4)

CASES = [
    # (id, row, expected verdict)
    ("ratio met", Row("a", "ms", minidl=1.0, reference=2.0, target=T_RATIO), "pass"),
    ("ratio equal to the threshold", Row("a", "ms", minidl=2.0, reference=2.0, target=T_RATIO),
     "pass"),
    ("ratio missed", Row("a", "ms", minidl=3.0, reference=2.0, target=T_RATIO), "fail"),
    ("ratio without reference", Row("a", "ms", minidl=3.0, target=T_RATIO), "no reference"),
    ("noisy pass", Row("a", "ms", minidl=1.0, reference=2.0, target=T_RATIO, noisy=True),
     "pass (noisy)"),
    ("noisy fail", Row("a", "ms", minidl=5.0, reference=2.0, target=T_RATIO, noisy=True),
     "fail (noisy)"),
    ("accuracy met", Row("a", "%", minidl=98.2, reference=98.4, target=T_ACC), "pass"),
    ("accuracy missed", Row("a", "%", minidl=97.9, target=T_ACC), "fail"),
    ("strict bound missed at the threshold", Row("a", "rel", minidl=1e-4, target=T_ERR), "fail"),
    ("error below a strict bound", Row("a", "rel", minidl=1e-6, target=T_ERR), "pass"),
    ("infinite error fails", Row("a", "", minidl=math.inf, target=Target("value", "<=", 1)),
     "fail"),
    ("no target is info", Row("a", "ms", minidl=1.0, reference=2.0), "info"),
    ("not measured is skipped", Row("a", "ms", target=T_RATIO), "skipped"),
    ("NaN figure is skipped", Row("a", "ms", minidl=float("nan"), target=T_RATIO), "skipped"),
    ("explicit skip wins", Row("a", "ms", minidl=1.0, reference=2.0, target=T_RATIO,
                               status="skipped"), "skipped"),
    ("error wins", Row("a", "ms", minidl=1.0, reference=2.0, target=T_RATIO, status="error"),
     "error"),
]


@pytest.mark.parametrize("row, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_judge(row, expected):
    assert judge(row) == expected
    assert row.verdict == expected


@pytest.mark.parametrize("minidl, reference, ratio", [
    (1.0, 4.0, 0.25), (3.0, 2.0, 1.5), (1.0, None, None), (None, 2.0, None), (1.0, 0.0, None),
    (1.0, math.inf, None)])
def test_ratio(minidl, reference, ratio):
    assert Row("a", "ms", minidl=minidl, reference=reference).ratio == ratio


@pytest.mark.parametrize("kwargs, message", [
    (dict(on="speed", op="<=", threshold=1), "Target.on must be 'value' or 'ratio', got 'speed'"),
    (dict(on="ratio", op="=<", threshold=1), "Target.op must be one of"),
])
def test_bad_target_names_what_was_given(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Target(**kwargs)


def test_summarize_folds_noisy_into_its_verdict():
    s = Section("x", "X")
    for row in CASES:
        s.add(Row(**{**row[1].__dict__, "verdict": ""}))
    counts = summarize([s])
    assert counts["pass"] == 5 and counts["fail"] == 5 and counts["skipped"] == 3
    assert counts["info"] == 1 and counts["error"] == 1 and counts["no reference"] == 1
    assert sum(counts.values()) == len(CASES)


@pytest.mark.parametrize("value, unit, text", [
    (1.234, "ms", "1.23 ms"), (123.4, "ms", "123 ms"), (2.5e-6, "rel", "2.5e-06"),
    (98.123, "%", "98.12 %"), (3.1, "us", "3.1 µs"), (None, "ms", "-"), (float("nan"), "%", "-"),
    (1.5, "loss", "1.5000")])
def test_format_value(value, unit, text):
    assert format_value(value, unit) == text
