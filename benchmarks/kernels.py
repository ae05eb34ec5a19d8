"""Time every version of a kernel ladder on a GPU; validate them on the CPU emulator otherwise.

    python benchmarks/kernels.py softmax          # one op
    python benchmarks/kernels.py all              # every op below

On a GPU: each version is timed with CUDA events (median of repeats, interleaved with the
reference so both see the same clocks), re-checked against a float64 NumPy reference after
timing, and reported as GB/s (memory-bound ops: bytes read + written once) or TFLOP/s
(matmul, attention), with the share of the device's peak bandwidth and the ratio to PyTorch
when it has CUDA. On a CPU there is nothing meaningful to time: the same validation runs on
the emulator (cuda-emu) at small shapes, in both schedule orders, and the script says so.
"""
from __future__ import annotations

import argparse
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from minidl.backend.cuda.registry import versions  # noqa: E402

GPU = dict(rows=4096, cols=4096, n=1 << 26, mnk=2048, classes=8192, bh=64, t=1024, d=64, vocab=50304, tokens=16384)
EMU = dict(rows=9, cols=333, n=10_000, mnk=70, classes=67, bh=3, t=40, d=16, vocab=100, tokens=300)


@dataclass
class Case:
    reg_op: str                             # registry op whose versions are run
    make: Callable[[], tuple]               # fresh host inputs (ops that update in place get new copies)
    run: Callable                           # run(ops, version, device inputs) -> array to check
    expected: np.ndarray                    # float64 reference of that array
    nbytes: int = 0                         # bytes moved once (memory-bound ops)
    flops: float = 0.0                      # arithmetic (compute-bound ops)
    torch_ref: Optional[tuple] = None       # (name, factory(torch, device inputs) -> callable)
    terms: int = 1                          # terms summed per output: scales the tolerance


def _softmax_ref(x, log):
    x = x.astype(np.float64)
    s = x - x.max(-1, keepdims=True)
    return s - np.log(np.exp(s).sum(-1, keepdims=True)) if log else np.exp(s) / np.exp(s).sum(-1, keepdims=True)


def _gelu_tanh(x):
    x = x.astype(np.float64)
    return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))


def _adam_case(s, rng):
    sizes = [s["n"] // 4, s["n"] // 8, 1000, 10]  # a few big tensors and some small ones
    base = [rng.standard_normal(n).astype(np.float32) for n in sizes]
    grads = [rng.standard_normal(n).astype(np.float32) for n in sizes]
    hyper = dict(step=1, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01, decoupled=True, amsgrad=False,
                 maximize=False)
    p0, g0 = base[0].astype(np.float64), grads[0].astype(np.float64)
    p0 = p0 * (1 - 1e-3 * 0.01)
    m_hat, v_hat = g0, g0 * g0        # step 1: the bias corrections undo the (1 - beta) factors
    expected = p0 - 1e-3 * m_hat / (np.sqrt(v_hat) + 1e-8)

    def make():
        return ([p.copy() for p in base], grads, [np.zeros_like(p) for p in base], [np.zeros_like(p) for p in base])

    def run(ops, v, a):
        ops.adam_step(a[0], a[1], a[2], a[3], None, version=v, **hyper)
        return a[0][0]

    def torch_factory(torch, a):
        params = [torch.nn.Parameter(p.clone()) for p in a[0]]
        for p, g in zip(params, a[1]):
            p.grad = g
        opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.01, fused=True)
        return opt.step
    return Case("adam_step", make, run, expected, nbytes=7 * 4 * sum(sizes), torch_ref=("optim.AdamW(fused)",
                                                                                        torch_factory))


def _sdpa_case(s, rng, backward):
    shape = (s["bh"], s["t"], s["d"])
    q, k, v, dout = (rng.standard_normal(shape).astype(np.float32) for _ in range(4))
    scale = 1 / np.sqrt(s["d"])
    sc = scale * q.astype(np.float64) @ np.swapaxes(k, -1, -2)
    sc = np.where(np.tril(np.ones((s["t"], s["t"]), bool)), sc, -np.inf)
    p = np.exp(sc - sc.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    out = p @ v
    flops = 2 * 2 * s["bh"] * s["t"] ** 2 * s["d"] / 2  # two matmuls, causal half
    if not backward:
        return Case("sdpa_forward", lambda: (q, k, v), lambda ops, ver, a: ops.sdpa_forward(*a, None, True, None,
                                                                                              version=ver)[0],
                    out, flops=flops, terms=s["t"],
                    torch_ref=("sdpa", lambda torch, a: lambda: torch.nn.functional.scaled_dot_product_attention(
                        *a, is_causal=True)))
    lse = np.log(np.exp(sc - sc.max(-1, keepdims=True)).sum(-1)) + sc.max(-1)
    dp = dout @ np.swapaxes(v, -1, -2)
    dq = scale * (p * (dp - (dout * out).sum(-1, keepdims=True))) @ k
    inputs = (q, k, v, out.astype(np.float32), lse.astype(np.float32), dout)
    return Case("sdpa_backward", lambda: inputs,
                lambda ops, ver, a: ops.sdpa_backward(*a, None, True, None, False, version=ver)[0],
                dq, flops=2.5 * flops, terms=s["t"])


def make_case(op, s, rng):
    if op in ("softmax", "log_softmax"):
        x = rng.standard_normal((s["rows"], s["cols"])).astype(np.float32)
        log = op == "log_softmax"
        name = "log_softmax" if log else "softmax"
        run = (lambda ops, v, a: getattr(ops, name + "_forward")(a[0], version=v))
        return Case("softmax_forward", lambda: (x,), run, _softmax_ref(x, log), 2 * x.nbytes,
                    torch_ref=(name, lambda torch, a: lambda: getattr(torch, name)(a[0], dim=-1)), terms=s["cols"])
    if op == "softmax_backward":
        x = rng.standard_normal((s["rows"], s["cols"]))
        y, dy = _softmax_ref(x, False).astype(np.float32), rng.standard_normal(x.shape).astype(np.float32)
        expected = y * (dy - (dy.astype(np.float64) * y).sum(-1, keepdims=True))
        return Case("softmax_backward", lambda: (y, dy), lambda ops, v, a: ops.softmax_backward(a[0], a[1], version=v),
                    expected, 3 * y.nbytes, terms=s["cols"])
    if op == "layer_norm":
        x = rng.standard_normal((s["rows"], s["cols"])).astype(np.float32)
        xd = x.astype(np.float64)
        expected = (xd - xd.mean(-1, keepdims=True)) / np.sqrt(xd.var(-1, keepdims=True) + 1e-5)
        return Case("layer_norm_forward", lambda: (x,),
                    lambda ops, v, a: ops.layer_norm_forward(a[0], None, None, 1e-5, version=v)[0], expected,
                    2 * x.nbytes, torch_ref=("layer_norm", lambda torch, a: lambda: torch.nn.functional.layer_norm(
                        a[0], a[0].shape[-1:])), terms=s["cols"])
    if op == "sum":
        x = rng.standard_normal(s["n"]).astype(np.float32)
        return Case("sum", lambda: (x,), lambda ops, v, a: ops.sum_all(a[0], version=v), x.astype(np.float64).sum(),
                    x.nbytes, torch_ref=("sum", lambda torch, a: a[0].sum), terms=x.size)
    if op == "matmul":
        n = s["mnk"]
        a, b = (rng.standard_normal((n, n)).astype(np.float32) for _ in range(2))
        return Case("matmul", lambda: (a, b), lambda ops, v, arr: ops.matmul(arr[0], arr[1], version=v),
                    a.astype(np.float64) @ b, 3 * a.nbytes, 2 * n**3,
                    ("matmul", lambda torch, arr: lambda: arr[0] @ arr[1]), terms=n)
    if op == "cross_entropy":
        z = (rng.standard_normal((s["rows"], s["classes"])) * 3).astype(np.float32)
        t = rng.integers(0, s["classes"], s["rows"])
        zd = z.astype(np.float64)
        lse = np.log(np.exp(zd - zd.max(1, keepdims=True)).sum(1)) + zd.max(1)
        return Case("cross_entropy_forward", lambda: (z, t),
                    lambda ops, v, a: ops.cross_entropy_forward(a[0], a[1], None, -100, 0.1, version=v)[0],
                    0.9 * (lse - zd[np.arange(len(t)), t]) + 0.1 * (lse - zd.mean(1)), z.nbytes,
                    torch_ref=("cross_entropy", lambda torch, a: lambda: torch.nn.functional.cross_entropy(
                        a[0], a[1], reduction="none", label_smoothing=0.1)), terms=s["classes"])
    if op == "gelu":
        x = rng.standard_normal(s["n"] // 4).astype(np.float32)
        return Case("activation_forward", lambda: (x,), lambda ops, v, a: ops.gelu_forward(a[0], "tanh", version=v),
                    _gelu_tanh(x), 2 * x.nbytes,
                    torch_ref=("gelu", lambda torch, a: lambda: torch.nn.functional.gelu(a[0], approximate="tanh")))
    if op == "adam":
        return _adam_case(s, rng)
    if op in ("sdpa", "sdpa_backward"):
        return _sdpa_case(s, rng, op == "sdpa_backward")
    if op == "embedding_backward":
        idx = rng.integers(0, s["vocab"], s["tokens"])
        dy = rng.standard_normal((s["tokens"], s["d"])).astype(np.float32)
        expected = np.zeros((s["vocab"], s["d"]))
        np.add.at(expected, idx, dy.astype(np.float64))
        return Case("embedding_backward", lambda: (idx, dy),
                    lambda ops, v, a: ops.embedding_backward(a[0], a[1], s["vocab"], None, version=v), expected,
                    2 * dy.nbytes + 4 * s["vocab"] * s["d"], terms=8)
    raise SystemExit(f"unknown op {op!r}; choose from {' '.join(OPS)} all")


OPS = ["softmax", "log_softmax", "softmax_backward", "layer_norm", "sum", "matmul", "cross_entropy", "gelu", "adam",
       "sdpa", "sdpa_backward", "embedding_backward"]


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

    ops = emu_ops()
    case = make_case(op, EMU, np.random.default_rng(0))
    ok_all = True
    for v in versions(case.reg_op):
        for order in ("forward", "reverse"):
            with schedule(order):
                ok, err = check(case.run(ops, v, case.make()), case.expected, case.terms)
            ok_all &= ok
            print(f"  {op:18s} v{v}  {order:7s}  max |error| {err:.2e}  {'ok' if ok else 'WRONG'}")
    return ok_all


def _convert(host, to_device):
    """Apply `to_device` to every array of a (nested) tuple / list of host arrays."""
    if isinstance(host, (list, tuple)):
        return type(host)(_convert(a, to_device) for a in host)
    return to_device(host)


def time_on_gpu(op, repeats=20):
    import cupy

    from minidl.backend.cuda.ops import cuda_ops

    ops = cuda_ops()
    case = make_case(op, GPU, np.random.default_rng(0))
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
        if torch.cuda.is_available() and case.torch_ref:
            t_inputs = _convert(case.make(), lambda a: torch.as_tensor(a, device="cuda"))
            reference = (f"torch.{case.torch_ref[0]}", case.torch_ref[1](torch, t_inputs))
    except ImportError:
        pass
    print(f"{props['name'].decode()}: peak memory bandwidth {peak_bw / 1e9:.0f} GB/s")
    for v in versions(case.reg_op):
        inputs = _convert(case.make(), cupy.asarray)
        ours, ref = [], []
        for _ in range(repeats):  # interleaved: A B A B
            ours.append(timed(lambda: case.run(ops, v, inputs)))
            if reference:
                ref.append(timed(reference[1]))
        ok, err = check(cupy.asnumpy(case.run(ops, v, _convert(case.make(), cupy.asarray))), case.expected, case.terms)
        t = statistics.median(ours)
        rate = f"{case.flops / t / 1e12:7.2f} TFLOP/s" if case.flops else \
            f"{case.nbytes / t / 1e9:7.1f} GB/s ({100 * case.nbytes / t / peak_bw:4.1f}% of peak)"
        vs = f"  {statistics.median(ref) / t:5.2f}x {reference[0]}" if reference else ""
        print(f"  {op:18s} v{v}  {t * 1e3:8.3f} ms  {rate}{vs}  {'ok' if ok else f'WRONG (error {err:.2e})'}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("op", choices=OPS + ["all"])
    args = parser.parse_args(argv)
    ops = OPS if args.op == "all" else [args.op]
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
