"""Section 4b, training-step speed: one optimizer step (forward, loss, backward, update) of the
MLP at batch 64 and 256, the CNN at batch 64 and the GPT at batch 32, float32, against
PyTorch with the same thread count -- and, for the MLP, against the hand-written NumPy floor
(numpy_mlp.py).

Each side trains from the same weights on one fixed batch held as tensors (data loading is not
part of the step). After timing, minidl's model is loaded with PyTorch's current weights and
both compute the loss on the batch again: the losses must agree (1e-4 relative + 1e-6
absolute), so the timed code was still computing the right thing. Memory: one extra step per side, as in speed_ops.
"""
from __future__ import annotations

import numpy as np

from . import memory, models
from .numpy_mlp import NumpyMLP
from .rows import Row, Section, Target
from .speed import TARGETS, stored_time, time_all, time_row
from .workloads import (cnn_workload, gpt_workload, initial_state, make_model, minidl_lib,
                        mlp_workload, torch_lib)

CHECK_RTOL, CHECK_ATOL = 1e-4, 1e-6   # losses after timing must agree this well; the atol
                                      # matters once a fixed batch is memorised (loss ~1e-4)


def losses_disagree(a: float, b: float) -> bool:
    return abs(a - b) > CHECK_RTOL * abs(b) + CHECK_ATOL


def rows_to_time():
    """(row name, workload builder, has a NumPy floor)."""
    return [("MLP 784-512-256-10 + Adam, batch 64", lambda: mlp_workload(64), True),
            ("MLP 784-512-256-10 + Adam, batch 256", lambda: mlp_workload(256), True),
            ("CNN Conv32-Pool-Conv64-Pool-128-10 + Adam, batch 64", lambda: cnn_workload(64),
             False),
            ("GPT 4x128, T 128 + AdamW, batch 32", lambda: gpt_workload(preset="benchmark"),
             False)]


def target_for(name: str):
    return TARGETS["step/" + name.split()[0].lower()]


class StepRunner:
    """One library's model, optimizer and fixed batch; `step()` is one training step."""

    def __init__(self, workload, lib, state):
        self.workload, self.lib = workload, lib
        self.model = make_model(workload, lib, state, "float32")
        self.model.train()
        self.opt = workload.optimizer(lib, self.model.parameters())
        self.x, self.y = workload.batch(0, "float32")

    def step(self):
        loss = self.workload.loss(self.lib, self.model, self.x, self.y)
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        return loss

    def loss_now(self) -> float:
        with self.lib.module.no_grad():
            return float(self.workload.loss(self.lib, self.model, self.x, self.y).item())


def numpy_floor(workload, state):
    net = NumpyMLP(state)
    x, y = workload.batch(0, "float32")
    return net, (lambda: net.step(x, y))


def run(ctx) -> Section:
    section = Section("speed_train", "Training-step speed against PyTorch and the NumPy floor")
    ours_lib = minidl_lib()
    ref_lib = torch_lib(ctx.torch) if ctx.torch is not None else None
    for name, make, has_floor in ctx.progress.bar(rows_to_time(), desc="step speed"):
        try:
            workload = make()
        except models.GPTUnavailable as err:
            section.add(Row(name, "ms", status="skipped", note=str(err)))
            continue
        try:
            for row in time_workload(ctx, name, workload, has_floor, ours_lib, ref_lib):
                section.add(row)
        except Exception as err:
            section.add(Row(name, "ms", status="error", note=f"{type(err).__name__}: {err}"))
    for kind, make in (("MLP", lambda: mlp_workload(64)), ("CNN", lambda: cnn_workload(64))):
        section.add(flat_memory_row(ctx, kind, make(), ours_lib))
    if ctx.full and ctx.torch is not None:
        section.add(gpt_separate_processes(ctx))
    section.notes.append(
        "One step = forward, loss, backward, optimizer step, on a fixed float32 batch. "
        "'NumPy floor' rows: the hand-written NumPy MLP (benchmarks/suite/numpy_mlp.py) as the "
        "reference -- what plain NumPy reaches with no autograd at all. Memory of one extra "
        "step: minidl's NumPy buffers (tracemalloc), PyTorch's tensors (its profiler's memory "
        "timeline), each process's resident-set peak growth when it had to grow; the 'peak "
        "memory' rows compare the first two.")
    return section


def time_workload(ctx, name, workload, has_floor, ours_lib, ref_lib) -> list:
    state = initial_state(workload, ref_lib or ours_lib)
    ours = StepRunner(workload, ours_lib, state)
    cands = {"minidl": ours.step}
    theirs = None
    if ref_lib is not None:
        theirs = StepRunner(workload, ref_lib, state)
        cands["torch"] = theirs.step
    floor = None
    if has_floor:
        floor, cands["numpy"] = numpy_floor(workload, state)
    stats = time_all(ctx, cands)

    if theirs is not None:
        ref, source = stats["torch"], ctx.torch_label
    else:
        ref, source = stored_time(ctx, name)
        ref = ref if isinstance(ref, dict) else None
    row = time_row(name, stats["minidl"], ref, source, target=target_for(name))
    if ref is None:
        row.note = f"no PyTorch reference: {source}"
    row.extra.update(workload.info)
    row.extra["data_source"] = workload.data_source
    row.extra["memory"] = {"minidl": memory.measure(ours.step)}
    if theirs is not None:
        row.extra["memory"]["torch"] = memory.measure(theirs.step, side="torch")
        ours_lib.load_numpy_state(ours.model, ref_lib.state_to_numpy(theirs.model), "float32")
        a, b = ours.loss_now(), theirs.loss_now()
        row.extra["checked"] = {"minidl_loss": a, "torch_loss": b}
        if losses_disagree(a, b):
            row.status = "error"
            row.note = f"loss after timing differs: minidl {a:.6f}, PyTorch {b:.6f}"
    rows = [row]
    mem = row.extra["memory"]
    if theirs is not None and mem["torch"].get("torch_peak_mib"):
        rows.append(Row(f"{name}: peak memory", "MiB", minidl=mem["minidl"]["numpy_peak_mib"],
                        reference=mem["torch"]["torch_peak_mib"],
                        reference_source=ctx.torch_label + ", profiler memory timeline",
                        target=TARGETS["memory"],
                        note="tensor bytes alive at once during one step, above those alive "
                             "before it (minidl: tracemalloc; PyTorch: its profiler)"))
    if floor is not None:
        floor_row = time_row(f"{name}: minidl vs NumPy floor", stats["minidl"], stats["numpy"],
                             "hand-written NumPy (this run)", target=None)
        floor_row.extra["memory"] = {"numpy_floor": memory.measure(cands["numpy"])}
        x, y = workload.batch(0, "float32")
        ours_lib.load_numpy_state(ours.model, floor.state_dict(), "float32")
        a, b = ours.loss_now(), float(floor.loss_and_grads(x, y))
        floor_row.extra["checked"] = {"minidl_loss": a, "numpy_loss": b}
        if losses_disagree(a, b):
            floor_row.status = "error"
            floor_row.note = f"loss differs from the NumPy floor's: {a:.6f} vs {b:.6f}"
        rows.append(floor_row)
    return rows


FLAT_STEPS = {"quick": 200, "default": 1000, "full": 1000}
FLAT_FIRST = 50                 # the mark after warm-up: caches, optimizer state, pools exist
FLAT_TARGET_KIB = 256           # live bytes may not grow more than this (a leak of one
                                # 64-float buffer per step adds 250 KiB over 1,000 steps)


def flat_memory_row(ctx, kind: str, workload, lib) -> Row:
    """Memory must stay flat over many steps: live NumPy/Python bytes (tracemalloc), Python
    objects and the resident set after step FLAT_FIRST and after the last step. A per-step leak
    (a graph kept alive by a hook, a cache keyed by id(), an ever-growing list) shows as growth."""
    steps = FLAT_STEPS[ctx.mode]
    name = f"{kind} batch 64: memory over {steps:,} steps"
    try:
        runner = StepRunner(workload, lib, initial_state(workload, lib))
        marks = memory_marks(runner.step, steps, ctx.progress.bar, desc=f"{kind} memory")
    except Exception as err:
        return Row(name, "KiB", status="error", note=f"{type(err).__name__}: {err}")
    return flat_memory_verdict(name, marks, steps)


def memory_marks(step, steps: int, bar=None, desc: str = "") -> dict:
    """{step number: (live traced MiB, Python objects, RSS MiB)} after FLAT_FIRST and the last."""
    import gc
    import tracemalloc
    marks = {}
    tracemalloc.start()
    try:
        numbers = range(1, steps + 1)
        for i in (bar(numbers, desc=desc) if bar else numbers):
            step()
            if i in (FLAT_FIRST, steps):
                gc.collect()
                marks[i] = (tracemalloc.get_traced_memory()[0] / 2 ** 20,
                            len(gc.get_objects()), memory.rss_mib())
    finally:
        tracemalloc.stop()
    return marks


def flat_memory_verdict(name: str, marks: dict, steps: int) -> Row:
    (b0, n0, r0), (b1, n1, r1) = marks[FLAT_FIRST], marks[steps]
    row = Row(name, "KiB", minidl=(b1 - b0) * 1024,
              target=Target("value", "<=", FLAT_TARGET_KIB),
              note=f"growth of live NumPy/Python bytes from step {FLAT_FIRST} to step {steps} "
                   f"({b0:.2f} -> {b1:.2f} MiB); Python objects {n0:,} -> {n1:,}; "
                   f"resident set {_mib(r0)} -> {_mib(r1)} MiB")
    row.extra["flat_memory"] = {"after_first": marks[FLAT_FIRST], "after_last": marks[steps],
                                "steps": steps}
    return row


def _mib(x) -> str:
    return "?" if x is None else f"{x:.0f}"


def stored_payload(ctx) -> dict:
    """What make_reference.py stores: PyTorch's step times."""
    lib = torch_lib(ctx.torch)
    data = {}
    for name, make, _ in rows_to_time():
        try:
            workload = make()
        except models.GPTUnavailable:
            continue
        runner = StepRunner(workload, lib, initial_state(workload, lib))
        from .speed import summary
        data[name] = summary(time_all(ctx, {"s": runner.step})["s"])
    return data


def gpt_separate_processes(ctx) -> Row:
    """The GPT step again, each library in its own worker process (benchmarks/gpt_step.py):
    no thread pool of one library can slow the other, at the price of two processes."""
    name = "GPT 4x128, T 128, batch 32, separate processes (benchmarks/gpt_step.py)"
    try:
        import gpt_step
        cfg = dict(model=dict(vocab_size=65, block_size=128, n_layer=4, n_head=4, n_embd=128),
                   batch_size=32, seed=0, threads=ctx.threads)
        steps = 10
        first, stats = gpt_step.summarize(gpt_step.run(cfg, steps, 2, 0.05), steps)
    except Exception as err:
        return Row(name, "ms", status="error", note=f"{type(err).__name__}: {err}")

    def as_timing(s):
        return {"median": s["median"], "min": s["min"], "max": s["max"], "samples": [],
                "calls_per_repeat": 1, "stalled_repeats": s["stalled"]}
    row = time_row(name, as_timing(stats["minidl"]), as_timing(stats["torch"]),
                   ctx.torch_label + ", own process", target=TARGETS["step/gpt"])
    row.noisy = any(s["stalled"] * 2 > s["n"] for s in stats.values())
    row.note = (f"AdamW(lr=1e-3) + clip_grad_norm_, random batches; first losses "
                f"{first['minidl']:.5f} / {first['torch']:.5f}")
    row.extra["gpt_step"] = stats
    return row
