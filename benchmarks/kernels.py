"""Time every version of a kernel ladder on a GPU; validate them on the CPU emulator otherwise.

    python benchmarks/kernels.py softmax      # or: log_softmax softmax_backward layer_norm sum matmul all

On a GPU: each version is timed with CUDA events (median of repeats, interleaved with the
reference so both see the same clocks), re-checked against a float64 NumPy reference after
timing, and reported as GB/s (memory-bound ops, bytes read + written once) or TFLOP/s
(matmul), with the share of the device's peak bandwidth and the ratio to the reference
(PyTorch when it has CUDA, else CuPy). On a CPU there is nothing meaningful to time: the same
validation runs on the emulator (cuda-emu) at a small shape and the script says so.
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from minidl.backend.cuda.registry import versions  # noqa: E402

GPU_SHAPES = {"rows": 4096, "cols": 4096, "n": 1 << 26, "mnk": 2048}
EMU_SHAPES = {"rows": 9, "cols": 333, "n": 10_000, "mnk": 70}


def _softmax_ref(x, log):
    x = x.astype(np.float64)
    s = x - x.max(-1, keepdims=True)
    return s - np.log(np.exp(s).sum(-1, keepdims=True)) if log else np.exp(s) / np.exp(s).sum(-1, keepdims=True)


def make_case(op, shapes, rng):
    """(inputs, run(ops, version, inputs), float64 reference, bytes moved, flops, torch-reference)."""
    if op in ("softmax", "log_softmax"):
        x = rng.standard_normal((shapes["rows"], shapes["cols"])).astype(np.float32)
        log = op == "log_softmax"
        run = (lambda ops, v, a: ops.log_softmax_forward(a[0], version=v)) if log else \
              (lambda ops, v, a: ops.softmax_forward(a[0], version=v))
        torch_ref = ("log_softmax" if log else "softmax", lambda t, a: getattr(t, "log_softmax" if log else "softmax")(a[0], dim=-1))
        return (x,), run, _softmax_ref(x, log), 2 * x.nbytes, 0, torch_ref, "softmax_forward"
    if op == "softmax_backward":
        x = rng.standard_normal((shapes["rows"], shapes["cols"]))
        y, dy = _softmax_ref(x, False).astype(np.float32), rng.standard_normal(x.shape).astype(np.float32)
        expected = y * (dy - (dy.astype(np.float64) * y).sum(-1, keepdims=True))
        run = lambda ops, v, a: ops.softmax_backward(a[0], a[1], version=v)
        torch_ref = None
        return (y, dy), run, expected, 3 * y.nbytes, 0, torch_ref, "softmax_backward"
    if op == "layer_norm":
        x = rng.standard_normal((shapes["rows"], shapes["cols"])).astype(np.float32)
        xd = x.astype(np.float64)
        expected = (xd - xd.mean(-1, keepdims=True)) / np.sqrt(xd.var(-1, keepdims=True) + 1e-5)
        run = lambda ops, v, a: ops.layer_norm_forward(a[0], None, None, 1e-5, version=v)[0]
        torch_ref = ("layer_norm", lambda t, a: t.nn.functional.layer_norm(a[0], a[0].shape[-1:]))
        return (x,), run, expected, 2 * x.nbytes, 0, torch_ref, "layer_norm_forward"
    if op == "sum":
        x = rng.standard_normal(shapes["n"]).astype(np.float32)
        run = lambda ops, v, a: ops.sum_all(a[0], version=v)
        return (x,), run, x.astype(np.float64).sum(), x.nbytes, 0, ("sum", lambda t, a: a[0].sum()), "sum"
    if op == "matmul":
        n = shapes["mnk"]
        a, b = (rng.standard_normal((n, n)).astype(np.float32) for _ in range(2))
        run = lambda ops, v, arr: ops.matmul(arr[0], arr[1], version=v)
        return (a, b), run, a.astype(np.float64) @ b, 3 * a.nbytes, 2 * n**3, ("matmul", lambda t, arr: arr[0] @ arr[1]), "matmul"
    raise SystemExit(f"unknown op {op!r}; choose from softmax log_softmax softmax_backward layer_norm sum matmul all")


def check(got, expected, n_terms):
    got = np.asarray(got, dtype=np.float64)
    tol = 1e-5 * max(1.0, np.sqrt(n_terms)) * max(1.0, np.abs(expected).max())
    err = float(np.abs(got - expected).max())
    return err <= tol, err


def gpu_available():
    try:
        import cupy
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


def validate_on_emulator(op):
    from minidl.backend.cuda_emu import emu_ops, schedule

    ops, rng = emu_ops(), np.random.default_rng(0)
    inputs, run, expected, _, _, _, reg_op = make_case(op, EMU_SHAPES, rng)
    ok_all = True
    for v in versions(reg_op):
        for order in ("forward", "reverse"):
            with schedule(order):
                ok, err = check(run(ops, v, inputs), expected, inputs[0].shape[-1])
            ok_all &= ok
            print(f"  {op:17s} v{v}  {order:7s}  max |error| {err:.2e}  {'ok' if ok else 'WRONG'}")
    return ok_all


def time_on_gpu(op, repeats=20):
    import cupy

    from minidl.backend.cuda.ops import cuda_ops

    ops, rng = cuda_ops(), np.random.default_rng(0)
    host_inputs, run, expected, nbytes, flops, torch_ref, reg_op = make_case(op, GPU_SHAPES, rng)
    inputs = tuple(cupy.asarray(a) for a in host_inputs)
    props = cupy.cuda.runtime.getDeviceProperties(0)
    peak_bw = 2 * props["memoryClockRate"] * 1e3 * props["memoryBusWidth"] / 8

    def timed(fn):
        fn()  # warm-up (and compile)
        start, stop = cupy.cuda.Event(), cupy.cuda.Event()
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        return cupy.cuda.get_elapsed_time(start, stop) / 1e3

    reference = None
    try:
        import torch
        if torch.cuda.is_available() and torch_ref:
            t_inputs = tuple(torch.as_tensor(a, device="cuda") for a in host_inputs)
            reference = (f"torch.{torch_ref[0]}", lambda: torch_ref[1](torch, t_inputs))
    except ImportError:
        pass
    print(f"{props['name'].decode()}: peak memory bandwidth {peak_bw / 1e9:.0f} GB/s")
    for v in versions(reg_op):
        ours, ref = [], []
        for _ in range(repeats):  # interleaved: A B A B
            ours.append(timed(lambda: run(ops, v, inputs)))
            if reference:
                ref.append(timed(reference[1]))
        ok, err = check(cupy.asnumpy(run(ops, v, inputs)), expected, host_inputs[0].shape[-1])
        t = statistics.median(ours)
        rate = f"{flops / t / 1e12:7.2f} TFLOP/s" if flops else f"{nbytes / t / 1e9:7.1f} GB/s ({100 * nbytes / t / peak_bw:4.1f}% of peak)"
        vs = f"  {statistics.median(ref) / t:5.2f}x {reference[0]}" if reference else ""
        print(f"  {op:17s} v{v}  {t * 1e3:8.3f} ms  {rate}{vs}  {'ok' if ok else f'WRONG (error {err:.2e})'}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("op", choices=["softmax", "log_softmax", "softmax_backward", "layer_norm", "sum", "matmul", "all"])
    args = parser.parse_args(argv)
    ops = ["softmax", "log_softmax", "softmax_backward", "layer_norm", "sum", "matmul"] if args.op == "all" else [args.op]
    if gpu_available():
        for op in ops:
            time_on_gpu(op)
        return 0
    print("No CUDA GPU here: NO TIMING WAS POSSIBLE. Validating every version on the CPU "
          "emulator (cuda-emu) instead; emulator run times say nothing about GPU speed.")
    ok = all([validate_on_emulator(op) for op in ops])
    print("all versions correct" if ok else "SOME VERSIONS ARE WRONG")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
