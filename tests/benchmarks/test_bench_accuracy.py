"""The accuracy section's plumbing, with training replaced by fakes: which rows each mode
runs, where the reference comes from (PyTorch now > stored > published), and what a row says
when the data set is missing."""
from types import SimpleNamespace

import pytest

from minidl.data import DatasetNotFoundError
from suite import accuracy
from suite.progress import Progress
from suite.references import ReferenceStore
from suite.rows import judge


def ctx_for(tmp_path, mode="default", stored=None):
    store = ReferenceStore(tmp_path)
    if stored is not None:
        store.save("accuracy", stored, {"versions": {"torch": "9.9"}, "date": "2030-01-01"})
    return SimpleNamespace(mode=mode, full=mode == "full", quick=mode == "quick", torch=None,
                           torch_label="", references=store, progress=Progress(),
                           log=lambda m: None)


@pytest.mark.parametrize("mode, rows", [
    ("quick", [("mlp", 2, 97.5)]),
    ("default", [("mlp", 2, 97.5), ("cnn", 2, 98.8)]),
    ("full", [("mlp", 5, 98.0), ("cnn", 5, 99.0), ("fashion", 5, 90.0)]),
])
def test_plan_per_mode(mode, rows):
    assert [(job.key, job.epochs, job.target) for job in accuracy.plan(mode)] == rows


def test_the_stored_reference_covers_every_mode():
    names = {job.name for job in accuracy.every_run()}
    for mode in ("quick", "default", "full"):
        assert {job.name for job in accuracy.plan(mode)} <= names


@pytest.mark.parametrize("job", accuracy.every_run(), ids=lambda j: j.name)
def test_targets_agree_with_the_examples(job):
    """The example asserts the same target the report judges by."""
    example = accuracy.example(job.example)
    args = (job.epochs, job.dataset) if job.example == "mnist_cnn" else (job.epochs,)
    assert example.target_for(*args) == job.target


def fake_training(monkeypatch, accuracies):
    monkeypatch.setattr(accuracy, "train_minidl",
                        lambda job, log: {"test_accuracy": accuracies[job.key][:job.epochs],
                                          "losses": [], "seconds": 1.0})


def test_rows_use_published_figures_without_pytorch_or_stored_results(tmp_path, monkeypatch):
    fake_training(monkeypatch, {"mlp": [97.0, 97.6], "cnn": [98.5, 98.7]})
    section = accuracy.run(ctx_for(tmp_path))
    mlp, cnn = section.rows
    assert (mlp.minidl, mlp.verdict) == (97.6, "pass")
    assert (cnn.minidl, cnn.verdict) == (98.7, "fail")            # target 98.8 after 2 epochs
    assert mlp.reference == 98.40 and mlp.reference_source.startswith("published: Keras")
    assert cnn.reference == 99.25 and "99.25%" in cnn.reference_source


def test_stored_same_recipe_result_beats_published(tmp_path, monkeypatch):
    fake_training(monkeypatch, {"mlp": [97.0, 97.6], "cnn": [98.5, 98.9]})
    stored = {"mlp/mnist/2": {"test_accuracy": [96.9, 97.7]},
              "cnn/mnist/5": {"test_accuracy": [98.0, 98.5, 98.8, 99.0, 99.1]}}
    mlp, cnn = accuracy.run(ctx_for(tmp_path, stored=stored)).rows
    assert mlp.reference == 97.7 and "stored PyTorch 9.9" in mlp.reference_source
    assert "same recipe" in mlp.reference_source
    assert cnn.reference_source.startswith("published")   # only a 5-epoch run stored: not it


def test_missing_data_makes_rows_skipped_with_the_loaders_message(tmp_path, monkeypatch):
    message = ("MNIST: file train-images-idx3-ubyte.gz not found at /nowhere/mnist/... "
               "To fix: set MINIDL_DATA=/folder/holding/mnist, or pass download=True")

    def missing(job, log):
        raise DatasetNotFoundError(message)
    monkeypatch.setattr(accuracy, "train_minidl", missing)
    rows = accuracy.run(ctx_for(tmp_path, mode="quick")).rows
    assert [r.verdict for r in rows] == ["skipped"]
    assert rows[0].note == message


def test_gpt_row_reports_missing_text(tmp_path, monkeypatch):
    fake = SimpleNamespace(FULL={"steps": 3, "batch_size": 2, "block_size": 4})

    def train(cfg, log):
        raise SystemExit("gpt_shakespeare: Tiny Shakespeare is not available. Set MINIDL_DATA")
    fake.train = train
    monkeypatch.setattr(accuracy, "example", lambda name: fake)
    row = accuracy.gpt_row(ctx_for(tmp_path, mode="full"))
    assert judge(row) == "skipped" and "Set MINIDL_DATA" in row.note


def test_gpt_row_judges_validation_loss(tmp_path, monkeypatch):
    fake = SimpleNamespace(FULL={"steps": 3, "batch_size": 2, "block_size": 4},
                           train=lambda cfg, log: {"val_loss": 1.70, "first_loss": 4.2,
                                                   "steps": 3, "seconds": 1.0, "curve": []})
    monkeypatch.setattr(accuracy, "example", lambda name: fake)
    row = accuracy.gpt_row(ctx_for(tmp_path, mode="full"))
    assert (row.minidl, judge(row), row.reference) == (1.70, "pass", 1.88)
