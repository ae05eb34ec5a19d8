"""Section 1, op parity: every row of the op tables, forward and backward, against PyTorch in
float32 and float64.

The tables are the test suite's own (tests/ops/optable.py ROWS and the CASES lists of
tests/ops_nn/test_nn_*.py), so a new op row is measured here with no extra work. Inputs are
drawn exactly as the tests draw them; one seeded upstream gradient is pushed back through the
first output on both sides.

Per op and dtype we record, over every float output (forward) and every input gradient
(backward): the max absolute error, the max relative error (normwise: max|a - b| / max|b|,
which stays meaningful where b crosses zero), and the share of the tests' own tolerance used
(max of |a - b| / (atol + rtol |b|): at most 1 means the test's assert_allclose passes).

Without PyTorch the reference outputs and gradients come from benchmarks/reference/
op_parity.json (stored bit-exactly); rows whose inputs no longer match the stored digest are
reported as such rather than compared against the wrong numbers.
"""
from __future__ import annotations

import hashlib
import importlib
import sys
import types
import warnings
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from .context import ROOT
from .references import decode_array, encode_array
from .rows import Row, Section, Target

DTYPES = ("float32", "float64")
# The tests' tolerances (tests/ops/test_op_table.py and tests/ops_nn/nn_harness.py).
OPTABLE_TOL = {"float32": (1e-4, None), "float64": (1e-10, 1e-12)}   # (rtol, atol); grads x10
NN_TOL = {"float32": (1e-4, 1e-5), "float64": (1e-9, 1e-11)}


@dataclass
class Entry:
    """One op of either table, made uniform."""
    name: str
    make_arrays: Callable             # dtype name -> list of NumPy arrays
    grad_indices: Callable            # arrays -> tuple of input positions that require grad
    call: Callable                    # (library, tensors) -> output or tuple of outputs
    tol: Callable                     # (dtype, is_grad) -> (rtol, atol)


# ---- loading the tables ----------------------------------------------------------------------

def _optable_entries():
    sys.path.insert(0, str(ROOT))
    optable = importlib.import_module("tests.ops.optable")
    entries = []
    for row in optable.ROWS:
        def make(dtype, row=row):
            rng = np.random.default_rng(0)
            out = []
            for i, shape in enumerate(row.shapes):
                if i in row.ints:
                    out.append(rng.integers(0, row.ints[i], size=shape).astype(np.int64))
                else:
                    out.append(optable.draw(shape, row.domain, rng, np.dtype(dtype)))
            return out

        def grads(arrays, row=row):
            return tuple(i for i, a in enumerate(arrays) if a.dtype.kind == "f") if row.grad else ()

        def call(lib, tensors, row=row):
            fn = row.torch_fn if (lib == "torch" and row.torch_fn) else row.fn
            return fn(*tensors)

        def tol(dtype, is_grad, row=row):
            rtol, atol = OPTABLE_TOL[dtype]
            atol = row.atol32 if atol is None else atol
            return (rtol * 10, atol * 10) if is_grad else (rtol, atol)

        entries.append(Entry(f"ops/{row.name}", make, grads, call, tol))
    return entries


class _AbsentTorch(types.SimpleNamespace):
    """Stands in for `torch` while the nn tables are imported without PyTorch: the tables only
    touch torch inside lambdas that are never called with it then."""


def _import_nn_modules(have_torch: bool):
    folder = ROOT / "tests" / "ops_nn"
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    problems, modules = [], []
    import pytest
    real = pytest.importorskip
    if not have_torch:   # nn_harness calls pytest.importorskip("torch") at import time
        pytest.importorskip = lambda name, *a, **k: _AbsentTorch(
            nn=_AbsentTorch(functional=_AbsentTorch()), float64=None, float32=None)
    try:
        for path in sorted(folder.glob("test_nn_*.py")):
            try:
                modules.append(importlib.import_module(path.stem))
            except BaseException as err:      # pytest's Skipped is a BaseException
                if isinstance(err, KeyboardInterrupt):
                    raise
                problems.append(f"{path.name}: {type(err).__name__}: {err}")
    finally:
        pytest.importorskip = real
    return modules, problems


def _nn_entries(have_torch: bool):
    modules, problems = _import_nn_modules(have_torch)
    entries = []
    for module in modules:
        for case in getattr(module, "CASES", []):
            def make(dtype, case=case):
                rng = np.random.default_rng(0)
                return [maker(rng, dtype) for maker in case.inputs]

            def grads(arrays, case=case):
                if case.grad is not None:
                    return tuple(case.grad)
                return tuple(i for i, a in enumerate(arrays) if a.dtype.kind == "f")

            def call(lib, tensors, case=case):
                if lib == "torch":
                    import torch.nn.functional as F
                else:
                    import minidl.nn.functional as F
                return case.fn(F, *tensors)

            def tol(dtype, is_grad, case=case):
                # the harness's rule: a case's override dict replaces the default whole, and
                # what it leaves out takes assert_allclose's defaults (rtol 1e-7, atol 0)
                override = getattr(case, "tol32" if dtype == "float32" else "tol64", None)
                if override:
                    return override.get("rtol", 1e-7), override.get("atol", 0.0)
                return NN_TOL[dtype]

            entries.append(Entry(f"nn/{module.__name__[len('test_nn_'):]}/{case.id}", make,
                                 grads, call, tol))
    return entries, problems


def load_entries(have_torch: bool):
    entries, problems = [], []
    try:
        entries += _optable_entries()
    except Exception as err:
        problems.append(f"tests/ops/optable.py: {type(err).__name__}: {err}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nn_entries, nn_problems = _nn_entries(have_torch)
    return entries + nn_entries, problems + nn_problems


# ---- running one side ------------------------------------------------------------------------

def _outputs(out):
    return list(out) if isinstance(out, (tuple, list)) else [out]


def input_digest(arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(str((a.dtype.str, a.shape)).encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


def run_side(entry: Entry, lib: str, dtype: str, torch=None):
    """(outputs, grads {input index: array}) as NumPy arrays, computed by minidl or torch."""
    arrays = entry.make_arrays(dtype)
    wanted = entry.grad_indices(arrays)
    if lib == "torch":
        tensors = [torch.tensor(a, requires_grad=i in wanted) for i, a in enumerate(arrays)]
    else:
        import minidl
        tensors = [minidl.tensor(a, requires_grad=i in wanted) for i, a in enumerate(arrays)]
    outs = _outputs(entry.call(lib, tensors))
    out_np = [o.detach().numpy() for o in outs]
    grads = {}
    if wanted:
        upstream = np.random.default_rng(1).standard_normal(out_np[0].shape).astype(out_np[0].dtype)
        g = torch.tensor(upstream) if lib == "torch" else __import__("minidl").tensor(upstream)
        outs[0].backward(g)
        for i in wanted:
            if tensors[i].grad is not None:
                grads[i] = tensors[i].grad.numpy()
    return out_np, grads


def compare(ours, ref, rtol, atol) -> dict:
    """Errors of one array against its reference."""
    if ours.shape != ref.shape:
        return {"shape_mismatch": [list(ours.shape), list(ref.shape)], "tol_used": float("inf")}
    if ref.dtype.kind != "f":
        wrong = int(np.count_nonzero(ours != ref))
        return {"abs": float(wrong), "rel": float(wrong), "tol_used": 0.0 if wrong == 0 else float("inf")}
    a, b = ours.astype(np.float64), ref.astype(np.float64)
    both_nan = np.isnan(a) & np.isnan(b)
    with np.errstate(invalid="ignore"):                       # inf - inf where both are inf
        diff = np.where(both_nan, 0.0, np.abs(a - b))
    diff = np.where(np.isinf(a) & (a == b), 0.0, diff)
    if diff.size == 0:
        return {"abs": 0.0, "rel": 0.0, "tol_used": 0.0}
    finite_ref = np.abs(np.where(np.isfinite(b), b, 0.0))
    scale = finite_ref.max() if finite_ref.size else 0.0
    allowed = atol + rtol * finite_ref
    with np.errstate(divide="ignore", invalid="ignore"):    # allowed may be 0 (atol=0, b=0)
        used = np.where(diff == 0, 0.0, np.where(np.isnan(diff), np.inf, diff / allowed))
    return {"abs": float(np.nanmax(diff)) if np.isfinite(diff).any() else float("inf"),
            "rel": float(np.nanmax(diff) / scale) if scale > 0 else float(np.nanmax(diff)),
            "tol_used": float(used.max())}


def _worst(items) -> dict:
    out = {"abs": 0.0, "rel": 0.0, "tol_used": 0.0}
    for e in items:
        for k in out:
            out[k] = max(out[k], e.get(k, float("inf")))
    return out


# ---- the section -----------------------------------------------------------------------------

def reference_side(entry, dtype, ctx, stored):
    """PyTorch's (outputs, grads) for an entry: computed now, or decoded from the stored file."""
    if ctx.torch is not None:
        return run_side(entry, "torch", dtype, ctx.torch), ctx.torch_label
    if stored is None:
        return None, ""
    record = stored[0].get(dtype, {}).get(entry.name)
    if record is None:
        return None, "not in the stored reference"
    if record["input_digest"] != input_digest(entry.make_arrays(dtype)):
        return None, "inputs changed since the reference was stored"
    outs = [decode_array(o) for o in record["outputs"]]
    grads = {int(i): decode_array(g) for i, g in record["grads"].items()}
    return (outs, grads), "stored"


def measure_entry(entry, dtype, ctx, stored) -> dict:
    result = {"op": entry.name, "dtype": dtype}
    try:
        ours = run_side(entry, "minidl", dtype)
    except Exception as err:
        result["error"] = f"minidl raised {type(err).__name__}: {err}"
        return result
    try:
        ref, source = reference_side(entry, dtype, ctx, stored)
    except Exception as err:
        result["error"] = f"PyTorch raised {type(err).__name__}: {err}"
        return result
    if ref is None:
        result["missing"] = source or "no reference"
        return result
    (o_out, o_grad), (r_out, r_grad) = ours, ref
    if len(o_out) != len(r_out):
        result["error"] = f"minidl gave {len(o_out)} outputs, PyTorch {len(r_out)}"
        return result
    fwd = [compare(a, b, *entry.tol(dtype, False)) for a, b in zip(o_out, r_out)]
    bwd = []
    for i, b in r_grad.items():
        if i not in o_grad:
            bwd.append({"abs": float("inf"), "rel": float("inf"), "tol_used": float("inf"),
                        "missing_grad": i})
        else:
            bwd.append(compare(o_grad[i], b, *entry.tol(dtype, True)))
    result["forward"], result["backward"] = _worst(fwd), (_worst(bwd) if bwd else None)
    result["tol_used"] = max(result["forward"]["tol_used"],
                             result["backward"]["tol_used"] if bwd else 0.0)
    return result


def run(ctx) -> Section:
    section = Section("op_parity", "Op parity against PyTorch (forward and backward)")
    entries, problems = load_entries(ctx.torch is not None)
    stored = None
    if ctx.torch is None:
        stored = ctx.references.get("op_parity")
        if stored is None:
            problems.append(ctx.references.problems.get("op_parity", "no stored reference"))
    section.notes += [f"Could not load: {p}" for p in problems]
    results = []
    jobs = [(e, d) for d in DTYPES for e in entries]
    with warnings.catch_warnings():       # PyTorch's deprecation chatter on some table rows
        warnings.simplefilter("ignore")
        for entry, dtype in ctx.progress.bar(jobs, desc="op parity"):
            results.append(measure_entry(entry, dtype, ctx, stored))
    section.extra["ops"] = results
    source = ctx.torch_label or ctx.references.describe("op_parity")
    for table in ("ops", "nn"):
        for dtype in DTYPES:
            mine = [r for r in results if r["dtype"] == dtype and r["op"].startswith(table + "/")]
            if mine:
                section.add(summary_row(table, dtype, mine, source))
    section.notes.append(
        "Each row summarises one table in one dtype. 'minidl' is the worst share of the test "
        "suite's own tolerance used by any op (<= 1: every op's forward and gradients pass the "
        "tests' assert_allclose); max abs / rel errors and the op that reached them are in the "
        "note; rel = max|a - b| / max|b| per array. Every op: results/OP_PARITY.md.")
    return section


def summary_row(table: str, dtype: str, results: list, source: str) -> Row:
    compared = [r for r in results if "tol_used" in r]
    errors = [r for r in results if "error" in r]
    missing = [r for r in results if "missing" in r]
    label = {"ops": "op table (tests/ops/optable.py)", "nn": "nn table (tests/ops_nn)"}[table]
    row = Row(name=f"{label}, {dtype}", unit="of tol.", reference_source=source,
              target=Target("value", "<=", 1.0))
    if not compared and not errors:
        row.status = "skipped"
        row.note = f"no reference for any of {len(results)} ops ({missing[0]['missing'] if missing else ''})"
        return row
    worst = max(compared, key=lambda r: r["tol_used"]) if compared else None
    row.minidl = float("inf") if errors else (worst["tol_used"] if worst else None)

    def top(kind, key):
        best = max(compared, key=lambda r: max(r[kind][key] if r.get(kind) else 0.0, 0.0))
        value = best[kind][key] if best.get(kind) else 0.0
        return f"{value:.1e} ({best['op']})"

    failing = [r["op"] for r in compared if r["tol_used"] > 1.0]
    parts = [f"{len(compared)} ops compared",
             f"fwd max abs {top('forward', 'abs')}, max rel {top('forward', 'rel')}"]
    if any(r.get("backward") for r in compared):
        parts.append(f"bwd max abs {top('backward', 'abs')}, max rel {top('backward', 'rel')}")
    if failing:
        parts.append(f"outside tolerance: {', '.join(failing[:6])}"
                     + (f" and {len(failing) - 6} more" if len(failing) > 6 else ""))
    if errors:
        parts.append(f"{len(errors)} raised: " + "; ".join(f"{r['op']}: {r['error'][:80]}"
                                                          for r in errors[:3]))
    if missing:
        parts.append(f"{len(missing)} without reference")
    row.note = "; ".join(parts)
    row.extra = {"failing": failing, "errors": [r["op"] for r in errors]}
    return row


def stored_payload(entries, torch) -> dict:
    """What make_reference.py stores: PyTorch's outputs and gradients for every op."""
    data = {}
    for dtype in DTYPES:
        data[dtype] = {}
        for entry in entries:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    outs, grads = run_side(entry, "torch", dtype, torch)
            except Exception:
                continue
            data[dtype][entry.name] = {
                "input_digest": input_digest(entry.make_arrays(dtype)),
                "outputs": [encode_array(o) for o in outs],
                "grads": {str(i): encode_array(g) for i, g in grads.items()}}
    return data
