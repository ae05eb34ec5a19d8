"""Stored references: exact array round trip, and every fallback path a run without PyTorch
takes (missing file, unreadable file, changed inputs, other weights, other data)."""
import json
from types import SimpleNamespace

import numpy as np
import pytest

from suite import op_parity, speed, train_parity
from suite.references import ReferenceStore, decode_array, encode_array


@pytest.mark.parametrize("array", [
    np.array([1.0, -0.0, np.inf, np.nan, 1e-300], dtype=np.float64),
    np.float32([[1 / 3, 2 / 3], [1e-38, -7.5]]),
    np.arange(6, dtype=np.int64).reshape(2, 3),
    np.array(3.5, dtype=np.float32),                        # 0-d
    np.zeros((0, 4), dtype=np.float64),                     # empty
    np.array([True, False]),
], ids=["f64-specials", "f32", "int64", "0-d", "empty", "bool"])
def test_arrays_round_trip_bit_exactly(array):
    back = decode_array(json.loads(json.dumps(encode_array(array))))
    assert back.dtype == array.dtype and back.shape == array.shape
    assert back.tobytes() == array.tobytes()


def test_missing_file_says_how_to_make_it(tmp_path):
    store = ReferenceStore(tmp_path)
    assert store.get("speed") is None
    assert "make_reference.py" in store.problems["speed"] and "speed.json" in store.problems["speed"]
    assert store.describe("speed") == ""


def test_unreadable_file_is_reported(tmp_path):
    (tmp_path / "speed.json").write_text("{not json")
    store = ReferenceStore(tmp_path)
    assert store.get("speed") is None
    assert "unreadable" in store.problems["speed"]


def test_saved_reference_is_read_back_with_its_provenance(tmp_path):
    store = ReferenceStore(tmp_path)
    store.save("speed", {"row": {"median": 0.001}}, {"versions": {"torch": "9.9"}, "date": "2030-02-03T04:05:06"})
    data, meta = ReferenceStore(tmp_path).get("speed")
    assert data == {"row": {"median": 0.001}}
    assert ReferenceStore(tmp_path).describe("speed") == "stored PyTorch 9.9 (2030-02-03)"


def ctx_with(tmp_path, name=None, data=None):
    store = ReferenceStore(tmp_path)
    if name:
        store.save(name, data, {"versions": {"torch": "9.9"}})
    return SimpleNamespace(torch=None, torch_label="", references=store)


# ---- op parity -----------------------------------------------------------------------------

def tiny_entry():
    def make(dtype):
        return [np.arange(3, dtype=dtype) + 1.0]
    return op_parity.Entry("ops/double", make, lambda arrays: (0,),
                           lambda lib, ts: ts[0] * 2.0, lambda dtype, is_grad: (1e-6, 1e-7))


def stored_op(entry, dtype, outputs, grads, digest=None):
    return {dtype: {entry.name: {
        "input_digest": digest or op_parity.input_digest(entry.make_arrays(dtype)),
        "outputs": [op_parity.encode_array(o) for o in outputs],
        "grads": {str(i): op_parity.encode_array(g) for i, g in grads.items()}}}}


def test_op_parity_compares_against_stored_outputs_and_grads(tmp_path):
    entry = tiny_entry()
    rng = np.random.default_rng(1)
    upstream = rng.standard_normal(3)
    good = stored_op(entry, "float64", [np.array([2.0, 4.0, 6.0])], {0: 2.0 * upstream})
    ctx = ctx_with(tmp_path, "op_parity", good)
    result = op_parity.measure_entry(entry, "float64", ctx, ctx.references.get("op_parity"))
    assert result["tol_used"] < 1e-6, result
    bad = stored_op(entry, "float64", [np.array([2.0, 4.0, 6.5])], {0: 2.0 * upstream})
    ctx = ctx_with(tmp_path / "bad", "op_parity", bad)
    result = op_parity.measure_entry(entry, "float64", ctx, ctx.references.get("op_parity"))
    assert result["forward"]["abs"] == pytest.approx(0.5) and result["tol_used"] > 1


def test_op_parity_refuses_a_reference_made_from_other_inputs(tmp_path):
    entry = tiny_entry()
    stale = stored_op(entry, "float64", [np.zeros(3)], {}, digest="0" * 16)
    ctx = ctx_with(tmp_path, "op_parity", stale)
    result = op_parity.measure_entry(entry, "float64", ctx, ctx.references.get("op_parity"))
    assert result["missing"] == "inputs changed since the reference was stored"


def test_op_parity_without_any_reference(tmp_path):
    ctx = ctx_with(tmp_path)
    result = op_parity.measure_entry(tiny_entry(), "float32", ctx, None)
    assert result["missing"] == "no reference"


@pytest.mark.parametrize("ours, ref, expected", [
    (np.array([1.0, np.nan]), np.array([1.0, np.nan]), 0.0),          # NaN where PyTorch has NaN
    (np.array([1.0, np.nan]), np.array([1.0, 2.0]), np.inf),          # NaN where it has a number
    (np.array([np.inf, 1.0]), np.array([np.inf, 1.0]), 0.0),
    (np.array([0.0, 0.0]), np.array([0.0, 0.0]), 0.0),                 # atol 0 and b 0: no 0/0
    (np.array([1, 2]), np.array([1, 3]), np.inf),                       # integer outputs: exact
    (np.zeros(3), np.zeros(4), np.inf),                                 # shape mismatch
])
def test_compare_edge_cases(ours, ref, expected):
    assert op_parity.compare(ours, ref, 1e-6, 0.0)["tol_used"] == expected


# ---- training parity and speed --------------------------------------------------------------

CURVE = {"MLP/float32": {"losses": [2.3, 2.0, 1.5], "weights_sha256": "abc",
                         "data_source": "mnist"}}


@pytest.mark.parametrize("digest, source, steps, expect", [
    ("abc", "mnist", 3, None),
    ("abd", "mnist", 3, "initial weights differ"),
    ("abc", "synthetic", 3, "stored curve used mnist data, this run synthetic"),
    ("abc", "mnist", 4, "stored curve has 3 steps, need 4"),
])
def test_stored_loss_curve_is_used_only_for_the_same_run(tmp_path, digest, source, steps, expect):
    ctx = ctx_with(tmp_path, "train_parity", CURVE)
    curve, why = train_parity.reference_curve(ctx, "MLP/float32", digest, source, steps)
    if expect is None:
        assert curve == [2.3, 2.0, 1.5][:steps] and why == ""
    else:
        assert curve is None and expect in why


def test_stored_curve_missing_key_and_file(tmp_path):
    ctx = ctx_with(tmp_path, "train_parity", CURVE)
    assert "CNN/float64 is not in the stored reference" in \
        train_parity.reference_curve(ctx, "CNN/float64", "abc", "mnist", 3)[1]
    assert "make_reference.py" in train_parity.reference_curve(
        ctx_with(tmp_path / "empty"), "MLP/float32", "abc", "mnist", 3)[1]


def test_speed_falls_back_to_stored_timing_and_says_so(tmp_path):
    stats = {"median": 0.002, "min": 0.001, "max": 0.003, "samples": [0.001, 0.002, 0.003],
             "calls_per_repeat": 5, "stalled_repeats": 0}
    ctx = ctx_with(tmp_path, "speed", {"MLP b64": stats})
    ref, source = speed.stored_time(ctx, "MLP b64")
    assert ref == stats and "stored PyTorch 9.9" in source and "another process" in source
    ours = dict(stats, median=0.001, min=0.0009, max=0.0012)
    row = speed.time_row("MLP b64", ours, ref, source)
    assert row.ratio == pytest.approx(0.5) and row.reference == pytest.approx(2.0)
    assert speed.stored_time(ctx, "CNN")[0] is None
