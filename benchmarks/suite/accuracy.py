"""Section 3, accuracy against published results: the examples trained for real.

Rows run examples/mnist_mlp.py and examples/mnist_cnn.py (their `train` functions, the very
code users read) and compare the test accuracy with the target and with a reference:
  --full        PyTorch trained with the same recipe in this run (torch_recipes.py);
  otherwise     PyTorch's same-recipe result stored by make_reference.py --accuracy, if any,
                else a published figure (PUBLISHED, cited; a different recipe, so a sanity
                check of the order of magnitude, not a like-for-like ratio).
Which rows run depends on the mode: --quick trains the MLP for 2 epochs; the default adds the
CNN for 2 epochs; --full trains MLP and CNN for 5 epochs, the CNN on Fashion-MNIST for 5,
and the GPT on Tiny Shakespeare. (A run's learning rate is annealed over its own length, so
a 2-epoch result is a 2-epoch run's, never epoch 2 of a longer one.)
Missing data makes a row 'skipped' with the loader's message: which file was looked for
where, and how to fix it (set MINIDL_DATA, or pass download=True).
"""
from __future__ import annotations

import sys
from dataclasses import dataclass

from .context import ROOT
from .rows import Row, Section, Target

# Published reference figures (recipes differ from ours: these bound what "right" looks like).
PUBLISHED = {
    "mlp": (98.40, "published: Keras examples/mnist_mlp.py, 512-512 MLP with dropout, RMSprop, "
                   "'98.40% test accuracy after 20 epochs'"),
    "cnn": (99.25, "published: Keras examples/mnist_cnn.py, Conv32-Conv64-Pool + dropout, "
                   "'99.25% test accuracy after 12 epochs'; keras.io 'Simple MNIST convnet' "
                   "(Conv32-Pool-Conv64-Pool): about 99%"),
    "fashion": (91.6, "published: Fashion-MNIST benchmark table (zalandoresearch), '2 Conv+"
                      "pooling' 0.876-0.916 test accuracy"),
    "gpt": (1.88, "published: nanoGPT README, 4-layer 128-wide char-level GPT trained on CPU "
                  "(block 64, 2000 iters): validation loss about 1.88"),
}


@dataclass
class AccuracyRun:
    key: str                 # mlp | cnn | fashion
    example: str             # module name under examples/
    dataset: str             # mnist | fashion-mnist
    epochs: int              # epochs trained
    target: float            # test accuracy (%) it must reach

    @property
    def name(self) -> str:
        return f"{self.key}/{self.dataset}/{self.epochs}"


MLP2 = AccuracyRun("mlp", "mnist_mlp", "mnist", 2, 97.5)
CNN2 = AccuracyRun("cnn", "mnist_cnn", "mnist", 2, 98.8)
FULL = [AccuracyRun("mlp", "mnist_mlp", "mnist", 5, 98.0),
        AccuracyRun("cnn", "mnist_cnn", "mnist", 5, 99.0),
        AccuracyRun("fashion", "mnist_cnn", "fashion-mnist", 5, 90.0)]


def plan(mode: str) -> list:
    return {"quick": [MLP2], "default": [MLP2, CNN2], "full": FULL}[mode]


def every_run() -> list:
    """All runs of every mode (what make_reference.py --accuracy trains in PyTorch)."""
    return [MLP2, CNN2] + FULL


def example(name: str):
    folder = str(ROOT / "examples")
    if folder not in sys.path:
        sys.path.insert(0, folder)
    import importlib
    return importlib.import_module(name)


def train_minidl(run: AccuracyRun, log) -> dict:
    module = example(run.example)
    kwargs = {"dataset": run.dataset} if run.example == "mnist_cnn" else {}
    return module.train(epochs=run.epochs, log=log, **kwargs)


def reference_for(ctx, run: AccuracyRun, torch_result):
    """(value, source) for one row: PyTorch now, else stored, else published."""
    if torch_result is not None:
        return torch_result["test_accuracy"][-1], ctx.torch_label + ", same recipe"
    stored = ctx.references.get("accuracy")
    if stored is not None:
        record = stored[0].get(run.name)
        if record and len(record["test_accuracy"]) == run.epochs:
            return (record["test_accuracy"][-1],
                    ctx.references.describe("accuracy") + ", same recipe")
    value, source = PUBLISHED[run.key]
    return value, source


def run(ctx) -> Section:
    section = Section("accuracy", "Accuracy against PyTorch and published results")
    from minidl.data import DatasetError
    for job in plan(ctx.mode):
        label = f"{job.dataset} {'MLP' if job.key == 'mlp' else 'CNN'}, {job.epochs} epochs"
        ctx.log(f"  training {label} (minidl)")
        try:
            ours = train_minidl(job, lambda m: ctx.log("    " + m))
        except DatasetError as err:
            section.add(Row(f"{label}, test accuracy", "%", status="skipped", note=str(err)))
            continue
        theirs = None
        if ctx.full and ctx.torch is not None:
            from .torch_recipes import train_classifier
            ctx.log(f"  training {label} (PyTorch, same recipe)")
            theirs = train_classifier(ctx.torch, example(job.example), job.dataset, job.epochs,
                                      log=lambda m: ctx.log("    " + m))
        ref, source = reference_for(ctx, job, theirs)
        row = Row(f"{label}, test accuracy", "%", minidl=ours["test_accuracy"][-1],
                  reference=ref, reference_source=source,
                  target=Target("value", ">=", job.target))
        row.note = f"minidl trained in {ours['seconds']:.0f} s"
        if theirs is not None:
            row.note += f", PyTorch in {theirs['seconds']:.0f} s"
        row.extra = {"minidl_per_epoch": ours["test_accuracy"],
                     "reference_per_epoch": theirs["test_accuracy"] if theirs else None}
        section.add(row)
    if ctx.full:
        section.add(gpt_row(ctx))
    else:
        section.notes.append("--full adds 5-epoch runs, Fashion-MNIST, the Tiny Shakespeare "
                             "GPT and PyTorch trained with the same recipe in the same run.")
    return section


def gpt_row(ctx) -> Row:
    """Tiny Shakespeare validation loss of examples/gpt_shakespeare.py's full recipe."""
    row = Row("Tiny Shakespeare GPT, validation loss (nats/char)", "loss",
              target=Target("value", "<", 1.75), reference=PUBLISHED["gpt"][0],
              reference_source=PUBLISHED["gpt"][1])
    try:
        trainer = example("gpt_shakespeare")
        cfg = dict(trainer.FULL)
    except (ImportError, AttributeError) as err:
        row.status = "skipped"
        row.note = f"examples/gpt_shakespeare.py (train and FULL) is not usable: {err}"
        return row
    ctx.log(f"  training the GPT on Tiny Shakespeare: {cfg['steps']} steps (minidl)")
    try:
        result = trainer.train(cfg, log=lambda m: ctx.log("    " + m))
    except SystemExit as err:            # the example exits with the loader's message
        row.status, row.note = "skipped", str(err)
        return row
    row.minidl = float(result["val_loss"])
    row.note = (f"{result['steps']} steps of {cfg['batch_size']}x{cfg['block_size']} in "
                f"{result['seconds']:.0f} s; first loss {result['first_loss']:.3f}; PyTorch is "
                f"not retrained here (it would double a 10-20 minute run)")
    row.extra = {"curve": result["curve"], "config": cfg}
    return row
