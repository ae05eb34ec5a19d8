"""Section 4a, op speed: single ops through the public API (minidl.nn.functional against
torch.nn.functional), forward alone (under no_grad) and forward + backward, float32.

Shapes are those of the training workloads (and of /work/shared/PERFORMANCE.md's table), so a
row says what that op costs inside the MLP, CNN or GPT step. This times what a user gets --
dispatch, autograd recording and the fused kernel together; benchmarks/fused_ops.py times the
kernels alone. After timing, both sides run once more and their outputs and gradients are
compared, so a fast wrong answer cannot pass.

To add an op: append an OpSpec to OPS.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from . import memory
from .rows import Row, Section
from .speed import TARGETS, stored_time, time_all, time_row
from .workloads import minidl_lib, torch_lib


@dataclass
class OpSpec:
    name: str
    shape: str
    make_inputs: Callable          # rng -> {name: array}
    grad: tuple                    # names of inputs that require grad
    call: Callable                 # (F, lib, tensors) -> output tensor


def _f32(rng, *shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


OPS = [
    OpSpec("softmax", "(64,128,128) dim -1", lambda r: {"x": _f32(r, 64, 128, 128)}, ("x",),
           lambda F, lib, t: F.softmax(t["x"], -1)),
    OpSpec("log_softmax", "(64,128,128) dim -1", lambda r: {"x": _f32(r, 64, 128, 128)}, ("x",),
           lambda F, lib, t: F.log_softmax(t["x"], -1)),
    OpSpec("layer_norm", "(4096,512)",
           lambda r: {"x": _f32(r, 4096, 512), "w": _f32(r, 512), "b": _f32(r, 512)},
           ("x", "w", "b"), lambda F, lib, t: F.layer_norm(t["x"], (512,), t["w"], t["b"], 1e-5)),
    OpSpec("gelu (tanh)", "(4096,512)", lambda r: {"x": _f32(r, 4096, 512)}, ("x",),
           lambda F, lib, t: F.gelu(t["x"], approximate="tanh")),
    OpSpec("conv2d", "b64 32->64 3x3 on 13x13",
           lambda r: {"x": _f32(r, 64, 32, 13, 13), "w": _f32(r, 64, 32, 3, 3, scale=0.06),
                      "b": _f32(r, 64)},
           ("x", "w", "b"), lambda F, lib, t: F.conv2d(t["x"], t["w"], t["b"])),
    OpSpec("max_pool2d", "(64,32,26,26) k2", lambda r: {"x": _f32(r, 64, 32, 26, 26)}, ("x",),
           lambda F, lib, t: F.max_pool2d(t["x"], 2)),
    OpSpec("sdpa causal", "(32,4,128,32)",
           lambda r: {k: _f32(r, 32, 4, 128, 32) for k in "qkv"}, ("q", "k", "v"),
           lambda F, lib, t: F.scaled_dot_product_attention(t["q"], t["k"], t["v"],
                                                            is_causal=True)),
    OpSpec("cross_entropy", "(4096,65)",
           lambda r: {"x": _f32(r, 4096, 65), "y": r.integers(0, 65, 4096)}, ("x",),
           lambda F, lib, t: F.cross_entropy(t["x"], t["y"])),
    OpSpec("embedding", "(32,128) of (65,128)",
           lambda r: {"i": r.integers(0, 65, (32, 128)), "w": _f32(r, 65, 128)}, ("w",),
           lambda F, lib, t: F.embedding(t["i"], t["w"])),
    OpSpec("matmul", "(1024,1024) @ (1024,1024)",
           lambda r: {"a": _f32(r, 1024, 1024), "b": _f32(r, 1024, 1024)}, ("a", "b"),
           lambda F, lib, t: t["a"] @ t["b"]),
]


class OpRunner:
    """One op on one library: forward, forward+backward, and its results for checking."""

    def __init__(self, spec: OpSpec, lib, arrays: dict, upstream_seed: int = 1):
        self.spec, self.lib = spec, lib
        self.tensors = {k: lib.tensor(a) for k, a in arrays.items()}
        for k in spec.grad:
            self.tensors[k].requires_grad_(True)
        with lib.module.no_grad():
            out = spec.call(lib.F, lib, self.tensors)
        shape = tuple(out.shape)
        self.dy = None if not shape else lib.tensor(
            np.random.default_rng(upstream_seed).standard_normal(shape).astype(np.float32))

    def forward(self):
        with self.lib.module.no_grad():
            return self.spec.call(self.lib.F, self.lib, self.tensors)

    def forward_backward(self):
        for k in self.spec.grad:
            self.tensors[k].grad = None
        out = self.spec.call(self.lib.F, self.lib, self.tensors)
        out.backward(self.dy) if self.dy is not None else out.backward()
        return out

    def results(self) -> list:
        out = self.forward_backward()
        return [out.detach().numpy()] + [self.tensors[k].grad.numpy() for k in self.spec.grad]


def max_error(ours: list, ref: list) -> float:
    """Largest normwise relative error max|a - b| / max|b| over every output and gradient.
    Float32 results of sums over up to a few thousand terms agree to ~1e-6..1e-5 this way."""
    worst = 0.0
    for a, b in zip(ours, ref):
        a, b = a.astype(np.float64), b.astype(np.float64)
        worst = max(worst, float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30)))
    return worst


CHECK_LIMIT = 1e-4     # normwise relative error above which a timed op counts as wrong


def adamw_runner(lib):
    """One AdamW step on the MLP's parameters (nn.Linear layout), gradients set once."""
    rng = np.random.default_rng(0)
    shapes = [(512, 784), (512,), (256, 512), (256,), (10, 256), (10,)]
    params = []
    for s in shapes:
        p = lib.tensor((rng.standard_normal(s) * 0.05).astype(np.float32)).requires_grad_(True)
        p.grad = lib.tensor((rng.standard_normal(s) * 0.01).astype(np.float32))
        params.append(p)
    opt = lib.optim.AdamW(params, lr=1e-3, weight_decay=0.01)
    return opt.step, params


def run(ctx) -> Section:
    section = Section("speed_ops", "Op speed against PyTorch (float32, same threads)")
    ours_lib = minidl_lib()
    ref_lib = torch_lib(ctx.torch) if ctx.torch is not None else None
    for spec in ctx.progress.bar(OPS, desc="op speed"):
        for row in time_op(ctx, spec, ours_lib, ref_lib):
            section.add(row)
    section.add(time_adamw(ctx, ours_lib, ref_lib))
    section.notes.append(
        "fwd: forward under no_grad; fwd+bwd: forward recording the graph, then backward of "
        "one fixed upstream gradient. Medians of interleaved repeats (min-max in brackets). "
        "Outputs and gradients of both libraries are compared again after timing (normwise "
        "relative error, must stay below 1e-4). Memory: minidl's NumPy-side peak "
        "(tracemalloc) and each side's resident-set peak growth for one fwd+bwd call.")
    return section


def time_op(ctx, spec: OpSpec, ours_lib, ref_lib) -> list:
    arrays = spec.make_inputs(np.random.default_rng(0))
    rows = []
    try:
        ours = OpRunner(spec, ours_lib, arrays)
        cands = {"minidl fwd": ours.forward, "minidl fwd+bwd": ours.forward_backward}
        theirs = None
        if ref_lib is not None:
            theirs = OpRunner(spec, ref_lib, arrays)
            cands.update({"torch fwd": theirs.forward, "torch fwd+bwd": theirs.forward_backward})
        stats = time_all(ctx, cands)
    except Exception as err:
        return [Row(f"{spec.name} {spec.shape}", "ms", status="error",
                    note=f"{type(err).__name__}: {err}")]
    check = max_error(ours.results(), theirs.results()) if theirs is not None else None
    mem = {"minidl": memory.measure(ours.forward_backward)}
    if theirs is not None:
        mem["torch"] = memory.measure(theirs.forward_backward, side="torch")
    for kind in ("fwd", "fwd+bwd"):
        name = f"{spec.name} {spec.shape} {kind}"
        if theirs is not None:
            ref, source = stats[f"torch {kind}"], ctx.torch_label
        else:
            ref, source = stored_time(ctx, name)
        row = time_row(name, stats[f"minidl {kind}"], ref if isinstance(ref, dict) else None,
                       source)
        if ref is None:
            row.note = f"no PyTorch reference: {source}"
        if check is not None:
            row.extra["checked"] = check
            if check > CHECK_LIMIT:
                row.status = "error"
                row.note = f"outputs differ from PyTorch after timing (normwise rel. error {check:.2g})"
        if kind == "fwd+bwd":
            row.extra["memory"] = mem
        rows.append(row)
    return rows


def time_adamw(ctx, ours_lib, ref_lib) -> Row:
    name = "AdamW step, MLP params (535,818 floats)"
    ours_step, ours_params = adamw_runner(ours_lib)
    cands = {"minidl": ours_step}
    if ref_lib is not None:
        ref_step, ref_params = adamw_runner(ref_lib)
        cands["torch"] = ref_step
    stats = time_all(ctx, cands)
    if ref_lib is not None:
        ref, source = stats["torch"], ctx.torch_label + ", torch.optim.AdamW defaults"
    else:
        ref, source = stored_time(ctx, name)
    row = time_row(name, stats["minidl"], ref if isinstance(ref, dict) else None, source,
                   target=TARGETS["optimizer"])
    row.extra["memory"] = {"minidl": memory.measure(ours_step)}
    if ref_lib is not None:
        row.extra["memory"]["torch"] = memory.measure(ref_step, side="torch")
        # the two took different numbers of steps; check one fresh step from equal states
        a, pa = adamw_runner(ours_lib)
        b, pb = adamw_runner(ref_lib)
        for _ in range(3):
            a(), b()
        row.extra["checked"] = max_error([p.detach().numpy() for p in pa],
                                         [p.detach().numpy() for p in pb])
        if row.extra["checked"] > CHECK_LIMIT:
            row.status = "error"
            row.note = f"parameters differ from PyTorch's after 3 steps ({row.extra['checked']:.2g})"
    return row


def stored_payload(ctx) -> dict:
    """What make_reference.py stores: PyTorch's timings of every op row."""
    lib = torch_lib(ctx.torch)
    data = {}
    for spec in ctx.progress.bar(OPS, desc="op speed (torch)"):
        runner = OpRunner(spec, lib, spec.make_inputs(np.random.default_rng(0)))
        stats = time_all(ctx, {"fwd": runner.forward, "fwd+bwd": runner.forward_backward})
        for kind in ("fwd", "fwd+bwd"):
            data[f"{spec.name} {spec.shape} {kind}"] = _plain(stats[kind])
    step, _ = adamw_runner(lib)
    data["AdamW step, MLP params (535,818 floats)"] = _plain(time_all(ctx, {"s": step})["s"])
    return data


def _plain(stats):
    from .speed import summary
    return summary(stats)
