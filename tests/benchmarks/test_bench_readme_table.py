"""The README's benchmark table (suite/readme_table.py and run.py --readme)."""
import json

import pytest

import run as bench_run
from suite.readme_table import END, START, render_table, replace_in_readme
from suite.rows import Row, Section, Target

from test_bench_report import fake_doc


def doc_with_ops():
    doc = fake_doc()
    ops = Section("speed_ops", "Op speed")
    ops.add(Row("softmax fwd", "ms", minidl=0.2, reference=0.3, target=Target("ratio", "<=", 1.5)))
    ops.add(Row("softmax fwd+bwd", "ms", minidl=0.6, reference=0.3,
                target=Target("ratio", "<=", 1.5)))
    ops.add(Row("numpy floor", "ms", minidl=1.0, reference=2.0))   # info: no target
    doc["sections"].append(ops.to_json())
    return doc


def test_table_keeps_the_key_rows_with_figures_and_verdicts():
    table = render_table(doc_with_ops())
    rows = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line]
    names = [r.split(" | ")[0].lstrip("| ") for r in rows[1:]]
    # step rows, then the fwd+bwd op rows, then accuracy; the fwd-only, info and skipped rows go
    assert names == ["MLP b64", "CNN b64", "softmax fwd+bwd", "long note"]
    softmax = rows[names.index("softmax fwd+bwd") + 1]
    assert "0.6 ms" in softmax and "2.00" in softmax and "fail" in softmax


def test_a_row_without_a_reference_figure_names_its_reference():
    doc = fake_doc()
    parity = Section("train_parity", "Training parity")
    parity.add(Row("MLP float32", "rel", minidl=1e-7, target=Target("value", "<", 1e-3),
                   reference_source="PyTorch 9 (this run)"))
    doc["sections"].append(parity.to_json())
    line = next(l for l in render_table(doc).splitlines() if l.startswith("| MLP float32"))
    assert "| PyTorch 9 (this run) |" in line and "pass" in line


def test_table_states_date_machine_and_noise():
    table = render_table(fake_doc())
    for fragment in ("2030-01-01", "Test CPU", "2 logical CPUs", "mode quick", "commit abc123",
                     "40 %", "rough"):
        assert fragment in table, fragment


def test_replace_keeps_the_rest_of_the_readme():
    text = f"# Title\n\nbefore\n{START}\nold table\n{END}\nafter\n"
    new = replace_in_readme(text, "NEW")
    assert new == f"# Title\n\nbefore\n{START}\nNEW\n{END}\nafter\n"


@pytest.mark.parametrize("text", ["no markers here", f"{START}\n{START}\n{END}"])
def test_replace_refuses_a_readme_without_exactly_one_block(text):
    with pytest.raises(ValueError, match="exactly one"):
        replace_in_readme(text, "x")


def test_render_command_rewrites_only_the_table(tmp_path):
    results = tmp_path / "results.json"
    results.write_text(json.dumps(doc_with_ops()))
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{START}\nstale\n{END}\noutro\n")
    assert bench_run.main(["--render", str(results), "--results", str(tmp_path / "out"),
                           "--readme", str(readme)]) == 0
    text = readme.read_text()
    assert text.startswith("intro\n") and text.endswith("outro\n") and "stale" not in text
    assert "softmax fwd+bwd" in text


def test_the_project_readme_has_the_block():
    from pathlib import Path
    text = (Path(bench_run.__file__).resolve().parents[1] / "README.md").read_text()
    assert text.count(START) == 1 and text.count(END) == 1
