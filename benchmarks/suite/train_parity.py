"""Section 2, training parity: the MLP, the CNN and the GPT trained side by side.

Both libraries start from identical weights (drawn with NumPy, loaded into the PyTorch model,
whose state_dict is then copied into minidl -- see weights.py), see identical batches, and
take the same optimizer steps. We record both loss curves and, per step, the relative
difference |loss_minidl - loss_torch| / |loss_torch|. Targets over the first 100 steps:
< 1e-4 in float64 (only summation order differs, so the curves should agree to ~1e-12 at
first; Adam's division by sqrt(v) lets tiny differences grow later) and < 1e-3 in float32.

Without PyTorch the PyTorch curves come from benchmarks/reference/train_parity.json, used
only if the stored weights' SHA-256 and data source match this run's.
"""
from __future__ import annotations

import time

from . import models, weights
from .rows import Row, Section, Target
from .workloads import (cnn_workload, gpt_workload, initial_state, minidl_lib, mlp_workload,
                        torch_lib, train_curve)

TARGETS = {"float64": 1e-4, "float32": 1e-3}
DTYPES = ("float64", "float32")


def max_rel_diff(ours, ref) -> list:
    return [abs(a - b) / max(abs(b), 1e-30) for a, b in zip(ours, ref)]


def steps_for(ctx, name: str) -> int:
    if ctx.quick:
        return 20 if name == "GPT" else 30
    return 100


def workloads(ctx):
    """(name, builder) pairs; builders may raise models.GPTUnavailable."""
    return [("MLP", lambda: mlp_workload(64)), ("CNN", lambda: cnn_workload(64)),
            ("GPT", lambda: gpt_workload(preset="parity"))]


def reference_curve(ctx, key, digest, source, steps):
    """The stored PyTorch curve for `key`, or (None, reason)."""
    stored = ctx.references.get("train_parity")
    if stored is None:
        return None, ctx.references.problems.get("train_parity", "no stored reference")
    record = stored[0].get(key)
    if record is None:
        return None, f"{key} is not in the stored reference"
    if record["weights_sha256"] != digest:
        return None, f"{key}: this run's initial weights differ from the stored run's"
    if record["data_source"] != source:
        return None, f"{key}: stored curve used {record['data_source']} data, this run {source}"
    if len(record["losses"]) < steps:
        return None, f"{key}: stored curve has {len(record['losses'])} steps, need {steps}"
    return record["losses"][:steps], ""


def run(ctx) -> Section:
    section = Section("train_parity", "Training parity: same weights, same batches, loss curves")
    ours_lib = minidl_lib()
    ref_lib = torch_lib(ctx.torch) if ctx.torch is not None else None
    curves = {}
    for name, make in workloads(ctx):
        try:
            workload = make()
        except models.GPTUnavailable as err:
            for dtype in DTYPES:
                section.add(Row(f"{name} {dtype}", "rel", status="skipped", note=str(err)))
            continue
        steps = steps_for(ctx, name)
        # build the PyTorch model first and copy its weights, as a user porting a model would
        state = initial_state(workload, ref_lib or ours_lib)
        digest = weights.digest(state)
        ref_curves = {}
        for dtype in DTYPES:
            key = f"{name}/{dtype}"
            label = f"{name} {dtype}, {steps} steps, {workload.info.get('optimizer', '')}"
            row = Row(label, "rel", target=Target("value", "<", TARGETS[dtype]))
            t0 = time.perf_counter()
            try:
                ours = train_curve(workload, ours_lib, state, dtype, steps, ctx.progress)
                if ref_lib is not None:
                    ref = train_curve(workload, ref_lib, state, dtype, steps, ctx.progress)
                    row.reference_source = ctx.torch_label
                else:
                    ref, why = reference_curve(ctx, key, digest, workload.data_source, steps)
                    row.reference_source = ctx.references.describe("train_parity") if ref else ""
            except Exception as err:
                row.status, row.note = "error", f"{type(err).__name__}: {err}"
                section.add(row)
                continue
            row.extra = {"minidl_losses": ours, "reference_losses": ref, "steps": steps,
                         "weights_sha256": digest, "data_source": workload.data_source,
                         "seconds": time.perf_counter() - t0, **workload.info}
            curves[key] = row.extra
            if ref is None:
                row.status, row.note = "skipped", f"no PyTorch reference: {why}"
            else:
                ref_curves[dtype] = ref
                diffs = max_rel_diff(ours, ref)
                row.minidl = max(diffs)
                row.extra["rel_diff"] = diffs
                worst = diffs.index(row.minidl)
                row.note = (f"loss {ours[0]:.4f} -> {ours[-1]:.4f} (PyTorch {ref[0]:.4f} -> "
                            f"{ref[-1]:.4f}); largest gap at step {worst + 1}; "
                            f"data: {workload.data_source}")
                if dtype == "float32" and "float64" in ref_curves:
                    # how far rounding alone moves this recipe: PyTorch float32 vs float64
                    floor = max(max_rel_diff(ref, ref_curves["float64"]))
                    row.extra["torch_float32_vs_float64"] = floor
                    row.note += f"; PyTorch's own float32-vs-float64 gap: {floor:.1e}"
                if dtype == "float32" and name == "CNN" and ref_lib is not None:
                    spread = conv_backend_spread(ctx, workload, ref_lib, state, steps, ref)
                    if spread is not None:
                        row.extra["torch_native_conv_vs_onednn"] = spread
                        row.note += (f"; PyTorch's own native conv path vs its oneDNN path: "
                                     f"{spread:.1e}")
            if workload.data_missing:
                row.note += f" (real data missing: {workload.data_missing.split('. ')[0]})"
            section.add(row)
    section.extra["curves"] = curves
    section.notes.append(
        "'minidl' is the largest per-step relative difference of the two loss curves. Curves "
        "are plotted in plots/loss_curves.png.")
    if ctx.quick:
        section.notes.append("--quick runs 30 steps (GPT 20) instead of 100.")
    return section


def conv_backend_spread(ctx, workload, ref_lib, state, steps, ref):
    """The same float32 CNN run in PyTorch with oneDNN switched off (its native im2col + GEMM
    convolution, the algorithm minidl uses), against PyTorch's default run.

    Why (the mechanism we measured): after ReLU, MNIST's blank background gives many exactly
    tied values in a max-pool window (30 % of the first pool's windows). Which tied input receives the gradient depends on the last bit of each conv
    output, so a convolution that sums in another order (any other GEMM blocking) routes some
    gradients differently (about 100 of 5,000 tied windows of the second pool at step 60), and Adam, which normalises every weight's step, lets that grow.
    This figure shows how far that alone moves the float32 curve within PyTorch itself."""
    torch = ctx.torch
    try:
        with torch.backends.mkldnn.flags(enabled=False):
            native = train_curve(workload, ref_lib, state, "float32", steps, ctx.progress)
    except Exception:  # an older PyTorch without the switch: the row simply goes without it
        return None
    return max(max_rel_diff(native, ref))


def stored_payload(ctx, steps: int = 100) -> dict:
    """What make_reference.py stores: PyTorch's curves for every workload and dtype."""
    lib = torch_lib(ctx.torch)
    data = {}
    for name, make in workloads(ctx):
        try:
            workload = make()
        except models.GPTUnavailable:
            continue
        state = initial_state(workload, lib)
        for dtype in DTYPES:
            data[f"{name}/{dtype}"] = {
                "losses": train_curve(workload, lib, state, dtype, steps, ctx.progress),
                "weights_sha256": weights.digest(state), "data_source": workload.data_source,
                **workload.info}
    return data
