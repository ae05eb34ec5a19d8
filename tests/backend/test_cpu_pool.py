"""minidl's CPU thread pool (minidl/backend/cpu_pool.py) and its hand-off kernels
(minidl/backend/cpu_kernels/_handoff.py): results against float64 NumPy references, errors,
nesting, threads, fork, and NumPy's BLAS count held at one thread inside and restored after."""
from __future__ import annotations

import multiprocessing
import os
import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minidl
from minidl.backend import cpu_pool

pytestmark = pytest.mark.skipif(not cpu_pool.available(),
                                reason="NumPy's BLAS here is not an OpenBLAS (pthreads) whose "
                                       "thread count can be held per call, so minidl keeps "
                                       "one thread of its own")


@pytest.fixture
def threads():
    """Run with minidl at a given thread count, restored afterwards."""
    before = cpu_pool.num_threads()
    yield cpu_pool.set_threads
    cpu_pool.set_threads(before)


def _blas_threads():
    cpu_pool._BLAS.find()
    return cpu_pool._BLAS.getter()


def _layouts(rng, shape, dtype):
    """The same matrix as a C array, a Fortran array, and a strided window of a bigger one."""
    m = rng.standard_normal(shape).astype(dtype)
    big = np.zeros((shape[0] + 3, shape[1] + 5), dtype)
    window = big[1:1 + shape[0], 2:2 + shape[1]]
    window[...] = m
    return [m, np.asfortranarray(m), window]


# ---- matmul ------------------------------------------------------------------------------

@pytest.mark.parametrize("n_threads", [1, 2, 3])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rows, inner, cols", [
    (64, 784, 512),     # few rows: split by columns
    (512, 64, 784),     # many rows: split by rows
    (300, 200, 100),
    (17, 1000, 999),    # a last share of a different size
    (3, 5, 7),          # below the size worth splitting
])
def test_matmul_matches_a_float64_reference(threads, n_threads, dtype, rows, inner, cols):
    threads(n_threads)
    rng = np.random.default_rng(rows * 7 + cols)
    tol = dict(rtol=2e-5, atol=2e-4) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-10)
    for a in _layouts(rng, (rows, inner), dtype):
        for b in _layouts(rng, (inner, cols), dtype):
            want = a.astype(np.float64) @ b.astype(np.float64)
            got = cpu_pool.matmul(a, b)
            assert got.dtype == dtype and got.shape == (rows, cols)
            np.testing.assert_allclose(got, want, **tol)


def test_matmul_writes_into_out_and_returns_it(threads):
    threads(2)
    rng = np.random.default_rng(1)
    a = rng.standard_normal((96, 700)).astype(np.float32)
    b = rng.standard_normal((700, 300)).astype(np.float32)
    out = np.full((96, 300), np.nan, np.float32)
    assert cpu_pool.matmul(a, b, out=out) is out
    np.testing.assert_allclose(out, a.astype(np.float64) @ b, rtol=2e-5, atol=2e-4)


@pytest.mark.parametrize("n_threads", [1, 2])
def test_stacked_matmul_matches_numpy(threads, n_threads):
    threads(n_threads)
    rng = np.random.default_rng(2)
    a = rng.standard_normal((8, 64, 128))
    b = rng.standard_normal((8, 128, 96))
    np.testing.assert_allclose(cpu_pool.matmul(a, b), np.matmul(a, b), rtol=1e-12, atol=1e-12)
    # a broadcast batch and integer arrays go to NumPy as they are
    np.testing.assert_allclose(cpu_pool.matmul(a, b[:1]), np.matmul(a, b[:1]), rtol=1e-12)
    ai = np.arange(12).reshape(3, 4)
    np.testing.assert_array_equal(cpu_pool.matmul(ai, ai.T), ai @ ai.T)


def test_the_gemm_kernel_against_numpy_for_every_transpose():
    """The Numba GEMM (a C call on raw parameters) for each layout CBLAS can be told about."""
    cpu_pool._Kernels.load()
    h = cpu_pool._handoff()
    rng = np.random.default_rng(3)
    for dtype in (np.float32, np.float64):
        a = rng.standard_normal((37, 53)).astype(dtype)
        b = rng.standard_normal((53, 29)).astype(dtype)
        for aa in (a, np.asfortranarray(a)):
            for bb in (b, np.asfortranarray(b)):
                out = np.zeros((37, 29), dtype)
                (ta, lda), (tb, ldb) = (cpu_pool._blas_layout(x, x.ctypes.data) for x in (aa, bb))
                row = np.zeros(16, np.int64)
                row[:13] = [h.KIND_GEMM, ta, tb, 37, 29, 53, aa.ctypes.data, lda, bb.ctypes.data,
                            ldb, out.ctypes.data, 29, dtype == np.float64]
                cpu_pool._Kernels.gemm(row)
                np.testing.assert_allclose(out, a.astype(np.float64) @ b,
                                           rtol=1e-5 if dtype == np.float32 else 1e-12,
                                           atol=1e-4 if dtype == np.float32 else 1e-12)


def test_blas_layout_refuses_what_blas_cannot_read_in_place():
    x = np.zeros((6, 8), np.float32)
    assert cpu_pool._blas_layout(x[:, ::2], x.ctypes.data) is None          # no unit stride
    assert cpu_pool._blas_layout(x, x.ctypes.data) == (111, 8)               # row-major
    assert cpu_pool._blas_layout(x.T, x.ctypes.data) == (112, 8)             # its transpose


# ---- run, shares --------------------------------------------------------------------------

def test_run_returns_results_in_order_and_uses_another_thread(threads):
    threads(2)
    names = cpu_pool.run([lambda: threading.current_thread().name,
                          lambda: threading.current_thread().name])
    assert names[0] == threading.current_thread().name
    assert names[1].startswith("minidl-cpu-")


def test_run_raises_the_first_error_after_every_task_finished(threads):
    threads(3)
    finished = []

    def slow_ok():
        np.linalg.norm(np.ones(10_000))
        finished.append("ok")
        return 1

    def fails(msg):
        def task():
            raise ValueError(msg)
        return task

    with pytest.raises(ValueError, match="second"):
        cpu_pool.run([slow_ok, fails("second"), fails("third")])
    assert finished == ["ok"]
    assert cpu_pool.run([lambda: 4, lambda: 5, lambda: 6]) == [4, 5, 6]   # still usable


def test_a_region_inside_a_region_runs_serially(threads):
    threads(2)

    def inner():
        return cpu_pool.run([lambda: "a", lambda: "b"])

    assert cpu_pool.run([inner, inner]) == [["a", "b"], ["a", "b"]]


def test_two_user_threads_at_once_both_get_right_answers(threads):
    threads(2)
    rng = np.random.default_rng(4)
    a = rng.standard_normal((256, 300)).astype(np.float32)
    b = rng.standard_normal((300, 200)).astype(np.float32)
    want = a.astype(np.float64) @ b
    errors = []

    def work():
        try:
            for _ in range(30):
                np.testing.assert_allclose(cpu_pool.matmul(a, b), want, rtol=2e-5, atol=2e-4)
        except Exception as err:   # reported below, on the test's thread
            errors.append(err)

    users = [threading.Thread(target=work) for _ in range(2)]
    for t in users:
        t.start()
    for t in users:
        t.join()
    assert not errors


@settings(max_examples=200, deadline=None)
@given(n=st.integers(0, 500), parts=st.integers(1, 8), align=st.integers(1, 16))
def test_shares_cover_the_range_in_aligned_pieces(n, parts, align):
    pieces = cpu_pool.shares(n, parts, align)
    assert pieces[0][0] == 0 and pieces[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(pieces, pieces[1:]))
    assert len(pieces) <= max(1, parts)
    assert all(hi > lo for lo, hi in pieces) or n == 0
    assert all((hi - lo) % align == 0 for lo, hi in pieces[:-1])


def test_split_range_calls_the_body_over_the_whole_range(threads):
    threads(2)
    seen = np.zeros(1000, np.int64)

    def body(lo, hi):
        seen[lo:hi] += 1
        return hi - lo

    assert sum(cpu_pool.split_range(1000, body, work=cpu_pool.PARALLEL_MIN_MACS)) == 1000
    assert sum(cpu_pool.split_range(1000, body, work=0)) == 1000      # small: one piece
    assert (seen == 2).all()


# ---- BLAS held, restored ---------------------------------------------------------------------

def test_blas_is_held_at_one_thread_inside_and_restored_after(threads):
    threads(2)
    from threadpoolctl import threadpool_limits
    with threadpool_limits(limits=2, user_api="blas"):
        assert _blas_threads() == 2
        with cpu_pool.blas_held():
            assert _blas_threads() == 1
            with cpu_pool.blas_held():
                assert _blas_threads() == 1
            assert _blas_threads() == 1          # the outer hold is still on
        assert _blas_threads() == 2
        seen = cpu_pool.run([_blas_threads, _blas_threads])
        assert seen == [1, 1]
        cpu_pool.matmul(np.ones((256, 256), np.float32), np.ones((256, 256), np.float32))
        assert _blas_threads() == 2              # NumPy outside minidl keeps its setting


def test_a_failing_task_still_restores_blas(threads):
    threads(2)
    before = _blas_threads()

    def boom():
        raise RuntimeError("boom")
    with pytest.raises(RuntimeError):
        cpu_pool.run([lambda: None, boom])
    assert _blas_threads() == before


# ---- fork, spin -----------------------------------------------------------------------------

def _child_product(queue):
    a = np.arange(300 * 400, dtype=np.float64).reshape(300, 400) / 1e4
    b = np.ones((400, 200))
    queue.put(float(np.abs(cpu_pool.matmul(a, b) - a @ b).max()))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_the_pool_works_in_a_forked_child(threads):
    threads(2)
    cpu_pool.matmul(np.ones((300, 400)), np.ones((400, 200)))   # the parent's worker exists
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_child_product, args=(queue,))
    child.start()
    child.join(60)
    assert child.exitcode == 0
    assert queue.get(timeout=5) < 1e-9


def test_spin_until_sees_another_threads_store():
    from minidl.backend.cpu_kernels._handoff import spin_until
    flags = np.zeros(2, np.int64)
    assert not spin_until(flags, 0, 7, 100)
    flags[1] = 7
    assert spin_until(flags, 1, 7, 0)
    timer = threading.Timer(0.01, lambda: flags.__setitem__(0, 7))
    timer.start()
    assert spin_until(flags, 0, 7, 1 << 40)      # returns once the other thread stored 7
    timer.join()


# ---- the ops on minidl's threads -------------------------------------------------------------

def test_attention_and_winograd_conv_give_the_same_numbers_on_one_and_two_threads(threads):
    """Work dealt out by (batch, head) pairs and by image chunks. The chunks are smaller with
    two threads (they share the memory budget), so BLAS runs other sizes and may round a few
    elements differently, and the weight gradient's sum over chunks is regrouped: the results
    agree to float32 rounding, not bit for bit."""
    import minidl.nn.functional as F
    rng = np.random.default_rng(5)
    q, k, v = (rng.standard_normal((8, 4, 64, 32)).astype(np.float32) for _ in range(3))
    x = rng.standard_normal((64, 16, 13, 13)).astype(np.float32)
    w = rng.standard_normal((32, 16, 3, 3)).astype(np.float32) * 0.1
    results = []
    for n in (1, 2):
        threads(n)
        tq, tk, tv = (minidl.tensor(a, requires_grad=True) for a in (q, k, v))
        att = F.scaled_dot_product_attention(tq, tk, tv, is_causal=True)
        att.sum().backward()
        tx, tw = minidl.tensor(x, requires_grad=True), minidl.tensor(w, requires_grad=True)
        y = F.conv2d(tx, tw)
        (y * y).sum().backward()
        results.append([att.detach().numpy(), tq.grad.numpy(), tk.grad.numpy(), tv.grad.numpy(),
                        y.detach().numpy(), tx.grad.numpy(), tw.grad.numpy()])
    for one, two in zip(*results[:2]):
        np.testing.assert_allclose(two, one, rtol=1e-4, atol=1e-5 * np.abs(one).max())


def test_layer_norm_and_rms_norm_split_by_rows_match_float64_and_one_thread(threads):
    """Inputs of PARALLEL_MIN_ELEMENTS or more are split by rows over the threads, each share
    summing its own dweight/dbias; (2048, 512) float32 is also large enough for dx's
    streaming stores. Both thread counts must match the float64 formulas, and each other."""
    from minidl.backend.cpu_kernels import norm
    rng = np.random.default_rng(11)
    R, C = 2048, 512
    assert R * C >= norm.PARALLEL_MIN_ELEMENTS
    x = (rng.standard_normal((R, C)) * 2 + 0.5).astype(np.float32)
    w, b = (rng.standard_normal(C).astype(np.float32) for _ in range(2))
    dy = rng.standard_normal((R, C)).astype(np.float32)
    x64, w64, dy64 = x.astype(np.float64), w.astype(np.float64), dy.astype(np.float64)
    mean = x64.mean(1, keepdims=True)
    rstd = 1 / np.sqrt(x64.var(1, keepdims=True) + 1e-5)
    xhat = (x64 - mean) * rstd
    g = dy64 * w64
    ln_truth = (xhat * w64 + b, rstd * (g - g.mean(1, keepdims=True)
                                        - xhat * (g * xhat).mean(1, keepdims=True)),
                (dy64 * xhat).sum(0), dy64.sum(0))
    rrms = 1 / np.sqrt((x64 ** 2).mean(1, keepdims=True) + 1e-6)
    rhat = x64 * rrms
    rms_truth = (rhat * w64, rrms * (g - rhat * (g * rhat).mean(1, keepdims=True)),
                 (dy64 * rhat).sum(0))
    results = []
    for n in (1, 2):
        threads(n)
        y, m, r = norm.layer_norm_forward(x, w, b, 1e-5)
        ln = (y,) + norm.layer_norm_backward(dy, x, w, m, r)
        y, r = norm.rms_norm_forward(x, w, 1e-6)
        rms = (y,) + norm.rms_norm_backward(dy, x, w, r)
        for got, truth in zip(ln + rms, ln_truth + rms_truth):
            np.testing.assert_allclose(got, truth, rtol=1e-4, atol=1e-4 * np.abs(truth).max())
        results.append(ln + rms)
    for one, two in zip(*results):
        np.testing.assert_allclose(two, one, rtol=1e-5, atol=1e-5 * np.abs(one).max())


def _fresh_process_output(code):
    """What `code` prints in a new Python process with OPENBLAS_NUM_THREADS=2, split into
    words (the process must succeed)."""
    import subprocess
    import sys
    env = dict(os.environ, OPENBLAS_NUM_THREADS="2")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, env=env,
                         cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def test_the_first_region_of_a_fresh_process_already_holds_blas():
    code = ("from minidl.backend import cpu_pool\n"
            "get = lambda: cpu_pool._BLAS.getter()\n"
            "print(cpu_pool.run([get, get]), get())\n")
    assert _fresh_process_output(code) == ["[1,", "1]", "2"]


def test_the_thread_count_of_a_fresh_process_is_blas_count_even_if_first_asked_in_a_region():
    """run() asks for the thread count inside blas_held(), where BLAS is held at one thread:
    the count must be the one BLAS had before."""
    code = ("from minidl.backend import cpu_pool\n"
            "cpu_pool.run([lambda: None, lambda: None])\n"
            "print(cpu_pool.num_threads())\n")
    assert _fresh_process_output(code) == ["2"]


def test_tiny_products_skip_the_hold_and_still_match(threads):
    """At most OPENBLAS_SERIAL_MACS multiply-adds: OpenBLAS runs them on the caller anyway,
    so matmul leaves the BLAS count alone for them (and gives NumPy's answer)."""
    threads(2)
    rng = np.random.default_rng(6)
    a = rng.standard_normal((64, 256)).astype(np.float32)
    b = rng.standard_normal((256, 10)).astype(np.float32)
    assert a.shape[0] * a.shape[1] * b.shape[1] <= cpu_pool.OPENBLAS_SERIAL_MACS
    calls = []
    real = cpu_pool.blas_held.__enter__
    cpu_pool.blas_held.__enter__ = lambda self: calls.append(1) or real(self)
    try:
        got = cpu_pool.matmul(a, b)
        cpu_pool.matmul(np.ones((128, 256), np.float32), np.ones((256, 256), np.float32))
    finally:
        cpu_pool.blas_held.__enter__ = real
    np.testing.assert_allclose(got, a.astype(np.float64) @ b, rtol=2e-5, atol=2e-4)
    assert len(calls) == 1        # only the larger product held BLAS


def test_an_interrupted_split_gemm_waits_for_its_workers_before_raising(threads, monkeypatch):
    """The workers write into the caller's arrays by raw pointer: an interruption must not
    let the caller free them first. Here the caller's own share is interrupted at once,
    while the worker's share (a few ms of work) has only just started."""
    threads(2)
    rng = np.random.default_rng(7)
    a = rng.standard_normal((1024, 1024)).astype(np.float32)
    b = rng.standard_normal((1024, 1024)).astype(np.float32)
    cpu_pool.matmul(a, b)                        # workers started, kernels compiled

    def interrupted(row):
        raise KeyboardInterrupt
    monkeypatch.setattr(cpu_pool._Kernels, "gemm", interrupted)
    with pytest.raises(KeyboardInterrupt):
        cpu_pool.matmul(a, b)
    pool = cpu_pool._POOL
    assert pool.finished[0] == pool.numbers[0]   # the worker's share had finished
    monkeypatch.undo()
    np.testing.assert_allclose(cpu_pool.matmul(a, b), a.astype(np.float64) @ b,
                               rtol=1e-4, atol=1e-3)
