"""The training-op kernels run clean under AddressSanitizer: no out-of-bounds read or write of
global or shared memory at shapes that end in partial tiles, partial chunks and partial
vector packs. The kernels that index through host-built tables (the multi-tensor optimizer's
address table, attention's bias offsets, embedding's segments) are the reason for this test.
ASan must be loaded before Python starts, so the kernels run in one child process."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from minidl.backend.cuda_emu import asan_environment

REPO = Path(__file__).resolve().parents[2]

SCRIPT = r"""
import numpy as np
import minidl.backend.reference as R
from minidl.backend.cuda_emu import emu_ops
ops = emu_ops(sanitize=True)
rng = np.random.default_rng(0)
f32 = lambda *s: rng.standard_normal(s).astype(np.float32)

def close(a, b, what):
    assert np.allclose(a, b, rtol=1e-4, atol=1e-5), what

z, t, dl = f32(37, 45), rng.integers(0, 45, 37), f32(37)
loss_ref, stats_ref = R.cross_entropy_forward(z, t, None, -100, 0.1)
dz_ref = R.cross_entropy_backward(z, t, stats_ref, dl, None, -100, 0.1)
for v in (1, 2, 3):   # row_stats is (N, 2): the last row's second value is the edge to check
    loss, stats = ops.cross_entropy_forward(z, t, None, -100, 0.1, version=v)
    close(loss, loss_ref, "ce")
    close(stats, stats_ref, "ce row_stats")
for v in (1, 2):
    close(ops.cross_entropy_backward(z, t, stats_ref, dl, None, -100, 0.1, version=v), dz_ref, "ce backward")
x = f32(1031)[1:]   # misaligned view: v3 is skipped by the default choice, the others run
for v in (1, 2):
    close(ops.gelu_forward(x, "tanh", version=v), R.gelu_forward(x, "tanh"), "gelu")
x, dy = f32(1031), f32(1031)   # fresh arrays are 16-byte aligned: v3 with its tail of 3
close(ops.gelu_backward(x, dy, "none", version=3), R.gelu_backward(x, dy, "none"), "gelu v3")
params = [f32(16384 + 37), f32(5), f32(3, 7)]
for v in (1, 2):
    state = [[np.zeros_like(p) for p in params] for _ in range(3)]
    ops.adam_step(params, [f32(*p.shape) for p in params], *state, step=1, lr=1e-3, beta1=0.9, beta2=0.99, eps=1e-8,
                  weight_decay=0.1, decoupled=True, amsgrad=True, maximize=False, version=v)
q, k, vv = f32(2, 3, 37, 8), f32(2, 3, 45, 8), f32(2, 3, 45, 5)
bias = f32(2, 1, 1, 45)
for v in (1, 2):
    out, lse = ops.sdpa_forward(q, k, vv, bias, True, None, version=v)
    ref = R.sdpa_forward(q, k, vv, bias, True, None)
    close(out, ref[0], "sdpa")
    grads = ops.sdpa_backward(q, k, vv, out, lse, f32(*out.shape), bias, True, None, True, version=v)
idx, dy = rng.integers(0, 7, (5, 9)), f32(5, 9, 33)
for v in (1, 2):
    close(ops.embedding_backward(idx, dy, 7, 2, version=v), R.embedding_backward(idx, dy, 7, 2), "embedding")
y, mask = ops.dropout_forward(f32(1003), 0.3, rng)
ops.dropout_backward(f32(1003), mask, 0.3, version=1)
img = f32(2, 3, 9, 7)
cols = ops.im2col(img, 3, 2, (2, 1), (1, 1), (1, 2))
for v in (1, 2):
    ops.col2im(cols, img.shape, 3, 2, (2, 1), (1, 1), (1, 2), version=v)
y, am = ops.max_pool2d_forward(img, 3, 2, 1, 1, True)
ops.max_pool2d_backward(f32(*y.shape), am, img.shape)
y = ops.avg_pool2d_forward(img, 3, 2, 1, True, False)
ops.avg_pool2d_backward(f32(*y.shape), img.shape, 3, 2, 1, True, False)
print("all kernels finished")
"""


def _asan_reason():
    out = subprocess.run(["g++", "-print-file-name=libasan.so"], capture_output=True, text=True)
    return None if out.returncode == 0 and "/" in out.stdout else "g++ has no libasan.so (install libasan for GCC)"


@pytest.mark.skipif(_asan_reason() is not None, reason=str(_asan_reason()))
def test_training_kernels_run_clean_under_asan():
    env = asan_environment()
    env["PYTHONPATH"] = str(REPO) + (":" + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    result = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=900)
    assert "AddressSanitizer" not in result.stderr, result.stderr[-4000:]
    assert result.returncode == 0, result.stderr[-4000:]
    assert "all kernels finished" in result.stdout
