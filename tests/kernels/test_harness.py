"""The CPU emulator must catch each class of kernel bug it promises to catch (KERNELS.md).

Each test runs a deliberately broken kernel from buggy/bugs.cu and checks the report names
the bug and the faulty file:line; control kernels prove that correct code passes.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest

from minidl.backend.cuda_emu import EmuModule, KernelFault, schedule
from minidl.backend.cuda_emu.build import build
from minidl.backend.kernel_source import kernels_dir

BUGS = Path(__file__).parent / "buggy" / "bugs.cu"


def marker_line(tag: str) -> int:
    for number, line in enumerate(BUGS.read_text().splitlines(), start=1):
        if re.search(rf"BUG: {tag}\b", line):
            return number
    raise AssertionError(f"no marker {tag} in {BUGS}")


@pytest.fixture(scope="module")
def bugs():
    return EmuModule(BUGS, prelude=kernels_dir() / "prelude.cuh")


def _x(n=64):
    return np.arange(n, dtype=np.float32) + 1


# ---- barriers ----

@pytest.mark.parametrize("order", ["forward", "reverse"])
def test_early_return_before_barrier_is_a_reported_deadlock(bugs, order):
    y = np.zeros(64, np.float32)
    with schedule(order), pytest.raises(KernelFault) as info:
        bugs.get_function("early_return_barrier")((1,), (64,), (_x(), y, np.int32(40)))
    message = str(info.value)
    assert "deadlock" in message
    assert f"threads 0-39 wait at __syncthreads (bugs.cu:{marker_line('early_return_barrier')})" in message
    assert "threads 40-63 returned" in message


def test_divergent_barrier_names_both_lines(bugs):
    with pytest.raises(KernelFault, match="divergent __syncthreads") as info:
        bugs.get_function("divergent_barrier")((1,), (64,), (np.zeros(64, np.float32),))
    message = str(info.value)
    assert f"bugs.cu:{marker_line('divergent_barrier_a')}" in message
    assert f"bugs.cu:{marker_line('divergent_barrier_b')}" in message


@pytest.mark.parametrize("order", ["forward", "reverse"])
def test_missing_barrier_reads_the_nan_fill_of_shared_memory(bugs, order):
    x = _x()
    expected = np.roll(x, 1) + np.roll(x, -1)
    y = np.zeros(64, np.float32)
    with schedule(order):
        bugs.get_function("neighbour_sum")((1,), (64,), (x, y, np.int32(64)), shared_mem=256)
        np.testing.assert_array_equal(y, expected)  # the correct kernel: exact in both orders
        bugs.get_function("missing_barrier")((1,), (64,), (x, y, np.int32(64)), shared_mem=256)
    assert np.isnan(y).sum() >= 63, f"{order}: the missing barrier went unnoticed: {y}"


def test_reverse_order_exposes_a_race_that_forward_order_hides(bugs):
    x = _x()
    expected = np.concatenate([[0], x[:-1]])
    kernel = bugs.get_function("missing_barrier_left")
    y = np.zeros(64, np.float32)
    with schedule("forward"):
        kernel((1,), (64,), (x, y, np.int32(64)), shared_mem=256)
    np.testing.assert_array_equal(y, expected)  # forward order hides this race ...
    with schedule("reverse"):
        kernel((1,), (64,), (x, y, np.int32(64)), shared_mem=256)
    assert np.isnan(y[1:]).all()                # ... reverse order exposes it


def test_dynamic_shared_memory_is_refilled_before_every_block(bugs):
    # Block 1 must not see block 0's values: with 2 blocks the missing barrier still shows NaN.
    x = _x()
    y = np.zeros(64, np.float32)
    kernel = bugs.get_function("missing_barrier")
    kernel((2,), (64,), (x, y, np.int32(64)), shared_mem=256)
    assert np.isnan(y).sum() >= 63


# ---- warp intrinsics ----

def test_shuffle_mask_naming_returned_lanes_is_a_reported_deadlock(bugs):
    with pytest.raises(KernelFault) as info:
        bugs.get_function("shuffle_partial_mask")((1,), (32,), (np.zeros(32, np.float32),))
    message = str(info.value)
    assert f"threads 0-15 wait at __shfl_down_sync (bugs.cu:{marker_line('shuffle_partial_mask')})" in message
    assert "threads 16-31 returned" in message


def test_shuffle_reading_a_lane_outside_the_mask_is_reported(bugs):
    with pytest.raises(KernelFault, match=rf"bugs.cu:{marker_line('shuffle_outside_mask')}: lane 15 reads lane 16"):
        bugs.get_function("shuffle_outside_mask")((1,), (32,), (np.zeros(32, np.float32),))


# ---- arguments checked against the C signature ----

def test_float64_array_for_float_pointer_is_rejected(bugs):
    with pytest.raises(TypeError, match=r"argument 0 `const float\* x`: expected a float32 array, got numpy array of dtype float64"):
        bugs.get_function("neighbour_sum")((1,), (64,), (_x().astype(np.float64), np.zeros(64, np.float32), np.int32(64)))


@pytest.mark.parametrize("bad", [np.int64(64), 64, np.float32(64)], ids=["int64", "python-int", "float32"])
def test_wrong_scalar_type_for_int_is_rejected(bugs, bad):
    with pytest.raises(TypeError, match=r"argument 2 `int n`: expected a numpy.int32 scalar"):
        bugs.get_function("neighbour_sum")((1,), (64,), (_x(), np.zeros(64, np.float32), bad))


def test_other_argument_mistakes_are_rejected(bugs):
    kernel = bugs.get_function("neighbour_sum")
    y = np.zeros(64, np.float32)
    with pytest.raises(TypeError, match="takes 3 arguments"):
        kernel((1,), (64,), (_x(), y))
    with pytest.raises(TypeError, match="C-contiguous"):
        kernel((1,), (64,), (_x(128)[::2], y, np.int32(64)))
    readonly = np.zeros(64, np.float32)
    readonly.flags.writeable = False
    with pytest.raises(TypeError, match="writes through this pointer but the array is read-only"):
        kernel((1,), (64,), (_x(), readonly, np.int32(64)))


# ---- launch limits ----

def test_launch_limits(bugs):
    kernel = bugs.get_function("neighbour_sum")
    args = (_x(), np.zeros(64, np.float32), np.int32(64))
    with pytest.raises(ValueError, match="1 to 1024 threads"):
        kernel((1,), (1056,), args)
    with pytest.raises(ValueError, match="1 to 1024 threads"):
        kernel((1,), (32, 33), args)
    with pytest.raises(ValueError, match="opt in first"):
        kernel((1,), (64,), args, shared_mem=48 * 1024 + 4)
    kernel.max_dynamic_shared_size_bytes = 64 * 1024
    try:
        kernel((1,), (64,), args, shared_mem=48 * 1024 + 4)  # allowed once opted in
        with pytest.raises(ValueError, match="maximum of an H100 block"):
            kernel((1,), (64,), args, shared_mem=228 * 1024)
    finally:
        kernel.max_dynamic_shared_size_bytes = 0


# ---- build cache ----

def test_builds_are_cached_by_content(tmp_path, monkeypatch):
    monkeypatch.setenv("MINIDL_CACHE", str(tmp_path / "cache"))
    source = tmp_path / "tiny.cu"
    source.write_text('extern "C" __global__ void fill(float* y) { y[threadIdx.x] = 1.0f; }\n')
    prelude = kernels_dir() / "prelude.cuh"
    first, _ = build(source, prelude)
    stamp = first.stat().st_mtime_ns
    again, _ = build(source, prelude)
    assert again == first and again.stat().st_mtime_ns == stamp  # not rebuilt
    source.write_text('extern "C" __global__ void fill(float* y) { y[threadIdx.x] = 2.0f; }\n')
    changed, _ = build(source, prelude)
    assert changed != first and changed.exists()
    assert os.path.commonpath([changed, tmp_path]) == str(tmp_path)
