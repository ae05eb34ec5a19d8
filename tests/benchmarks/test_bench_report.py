"""REPORT.md and OP_PARITY.md rendered from a fake results document."""
import json
import os
import platform
import re

import pytest

import run as bench_run
from suite import report
from suite.rows import Row, Section, Target, row_from_json, section_from_json


def fake_doc():
    speed = Section("speed_train", "Training-step speed")
    speed.add(Row("MLP b64", "ms", minidl=2.0, reference=4.0, reference_source="PyTorch 9 (this run)",
                  target=Target("ratio", "<=", 0.8), minidl_range=(1.9, 2.5),
                  reference_range=(3.5, 4.5), noisy=True,
                  extra={"memory": {"minidl": {"numpy_peak_mib": 2.5, "rss_peak_mib": 0.0},
                                    "torch": {"torch_peak_mib": 1.5, "rss_peak_mib": 3.0}}}))
    speed.add(Row("CNN b64", "ms", minidl=30.0, reference=20.0, target=Target("ratio", "<=", 1.2),
                  note="a | pipe and a\nnewline"))
    acc = Section("accuracy", "Accuracy")
    acc.add(Row("MNIST MLP", "%", status="skipped",
                note="MNIST: file train-images-idx3-ubyte.gz not found at /x. set MINIDL_DATA"))
    acc.add(Row("long note", "%", minidl=99.0, target=Target("value", ">=", 98.0),
                note="word " * 200))
    parity = Section("op_parity", "Op parity")
    parity.add(Row("op table, float32", "of tol.", minidl=0.5, target=Target("value", "<=", 1)))
    parity.extra["ops"] = [
        {"op": "ops/add", "dtype": "float32", "forward": {"abs": 1e-7, "rel": 2e-7, "tol_used": .1},
         "backward": {"abs": 3e-7, "rel": 4e-7, "tol_used": .2}, "tol_used": .2},
        {"op": "ops/add", "dtype": "float64", "forward": {"abs": 1e-16, "rel": 2e-16, "tol_used": 0},
         "backward": None, "tol_used": 0.0},
        {"op": "nn/conv/x", "dtype": "float32", "error": "minidl raised ValueError: bad"},
        {"op": "nn/conv/x", "dtype": "float64", "missing": "no reference"},
    ]
    meta = {"mode": "quick", "started": "2030-01-01T00:00:00", "seconds": 12.0, "threads": 2,
            "versions": {"python": "3.11", "numpy": "2.4", "numba": "0.68", "torch": None},
            "machine": {"cpu": "Test CPU", "logical_cpus": 2, "memory_gib": 24.0,
                        "git_commit": "abc123"},
            "thread_counts": {"numba": 2, "OPENBLAS_NUM_THREADS": "2", "OMP_NUM_THREADS": "2"},
            "load_average_at_start": [3.5, 1, 1], "cpu_stall_share": 0.4}
    return {"meta": meta, "sections": [s.to_json() for s in (parity, speed, acc)]}


def table_rows(text, section_title):
    part = re.split(r"\n## \d+\. " + re.escape(section_title), text)[1].split("\n## ", 1)[0]
    return [line for line in part.splitlines() if line.startswith("| ") and "---" not in line][1:]


def test_report_has_summary_and_each_row_with_its_figures():
    text = report.render(fake_doc(), ["loss_curves.png"])
    assert "**Summary: 3 pass · 1 fail · 1 skipped**" in text
    rows = table_rows(text, "Training-step speed")
    assert len(rows) == 2
    mlp = rows[0]
    assert "2 ms (1.9–2.5 ms)" in mlp and "4 ms (3.5–4.5 ms)" in mlp
    assert "0.50" in mlp and "ratio <= 0.8" in mlp and "pass (noisy)" in mlp
    assert "2.5 MiB (tracemalloc)" in mlp and "1.5 MiB (profiler)" in mlp
    assert "RSS +3.0 MiB" in mlp and "RSS +0.0" not in mlp
    assert "1.50" in rows[1] and "fail" in rows[1]


def test_report_keeps_tables_intact():
    text = report.render(fake_doc())
    cnn = table_rows(text, "Training-step speed")[1]
    assert "a \\| pipe and a newline" in cnn          # a pipe in a note must not split the row
    columns = {len(r.replace("\\|", "").split("|")) for r in table_rows(text, "Accuracy")}
    assert len(columns) == 1
    long = table_rows(text, "Accuracy")[1]
    assert long.rstrip(" |").endswith("…") and len(long) < report.NOTE_WIDTH + 200


def test_report_states_machine_versions_threads_and_noise():
    text = report.render(fake_doc())
    for fragment in ("mode **quick**", "Test CPU", "2 logical CPUs", "NumPy 2.4",
                     "PyTorch not installed (references from benchmarks/reference/*.json)",
                     "OPENBLAS_NUM_THREADS=2", "load average 3.5", "40 %", "timings are noisy",
                     "commit abc123"):
        assert fragment in text, fragment


@pytest.mark.parametrize("coretype, says", [
    ("Haswell", "runs its Haswell kernels (set by OPENBLAS_CORETYPE=Haswell)"),
    (None, "runs its Haswell kernels (its own choice for this CPU)")])
def test_report_states_which_blas_kernels_ran(coretype, says):
    doc = fake_doc()
    doc["meta"]["machine"].update(blas_kernels="Haswell", openblas_coretype=coretype)
    assert says in report.render(doc)
    assert "OpenBLAS runs" not in report.render(fake_doc())   # unknown: no claim


def test_blas_kernels_reads_the_loaded_library():
    """NumPy's wheels bundle OpenBLAS; the name comes from the library itself, so forcing a
    kernel set through the environment (read when OpenBLAS loads) must show in a new process."""
    import subprocess
    import sys
    from pathlib import Path
    bench = Path(report.__file__).resolve().parent.parent
    code = "from suite.context import blas_kernels; print(blas_kernels())"
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_CORETYPE"}
    names = {}
    if platform.machine() not in ("x86_64", "AMD64"):
        pytest.skip("the forced names are OpenBLAS's x86-64 kernel sets")
    for forced in ("Haswell", "Nehalem"):
        out = subprocess.run([sys.executable, "-c", code], cwd=bench, capture_output=True,
                             text=True, env=dict(env, OPENBLAS_CORETYPE=forced), timeout=60)
        names[forced] = out.stdout.strip()
    if names["Haswell"] == "None":
        pytest.skip("NumPy's BLAS here is not an OpenBLAS that reports its kernels")
    assert names == {"Haswell": "Haswell", "Nehalem": "Nehalem"}


def test_failures_are_listed_first():
    text = report.render(fake_doc())
    attention = text.split("Needs attention:", 1)[1].split("\n## ", 1)[0]
    assert "**fail** (Training-step speed): CNN b64 -- ratio 1.50, target ratio <= 1.2" in attention
    assert "MLP b64" not in attention and "MNIST MLP" not in attention


def test_skipped_row_carries_the_fix():
    row = table_rows(report.render(fake_doc()), "Accuracy")[0]
    assert "skipped" in row and "set MINIDL_DATA" in row and "train-images-idx3-ubyte.gz" in row


def test_plots_are_linked_only_when_made():
    assert "![loss_curves.png](plots/loss_curves.png)" in report.render(fake_doc(), ["loss_curves.png"])
    assert "## Plots" not in report.render(fake_doc(), [])


def test_op_parity_detail_lists_every_op_and_dtype():
    text = report.render_op_parity(fake_doc())
    add = next(l for l in text.splitlines() if l.startswith("| ops/add"))
    assert add.split(" | ")[1:5] == ["1.0e-07", "2.0e-07", "3.0e-07", "4.0e-07"]
    conv = next(l for l in text.splitlines() if l.startswith("| nn/conv/x"))
    assert "error" in conv and "n/a" in conv


def test_rows_survive_the_json_round_trip():
    doc = json.loads(json.dumps(fake_doc()))
    again = [section_from_json(s) for s in doc["sections"]]
    original = fake_doc()["sections"]
    assert [s.to_json() for s in again] == original
    row = row_from_json(original[1]["rows"][0])
    assert row.minidl_range == (1.9, 2.5) and row.target == Target("ratio", "<=", 0.8)


def test_render_command_writes_the_files(tmp_path):
    results = tmp_path / "results.json"
    results.write_text(json.dumps(fake_doc()))
    assert bench_run.main(["--render", str(results), "--results", str(tmp_path / "out")]) == 0
    text = (tmp_path / "out" / "REPORT.md").read_text()
    assert text.startswith("# minidl benchmark report")
    assert (tmp_path / "out" / "OP_PARITY.md").exists()
    assert json.loads((tmp_path / "out" / "results.json").read_text())["meta"]["mode"] == "quick"


@pytest.mark.parametrize("argv, message", [
    (["--only", "speed,bogus"], "unknown section(s) ['speed', 'bogus']"),
    (["--quick", "--full"], "not allowed with argument"),
])
def test_cli_rejects_bad_arguments(argv, message, capsys):
    with pytest.raises(SystemExit):
        bench_run.parse_args(argv)
    assert message in capsys.readouterr().err
