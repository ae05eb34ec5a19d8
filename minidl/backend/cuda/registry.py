"""Which kernel implements which op, how it is launched, and what shapes it accepts.

One entry per (op, version) of a kernel ladder. The `.cu` file's header lists the same
entries as `[op vN] kernel_a, kernel_b`; tests/kernels/test_ladder_sync.py fails if the
header, this registry and the file's `__global__` functions ever disagree.

The building blocks (Problem, Launch, KernelVersion, the shape limits) live in
kernel_version.py; the ladders of the training ops (cross-entropy, activations, optimizer
steps, attention, embedding, dropout, pooling) in ladders_training.py.
"""
from __future__ import annotations

from .kernel_version import (GRID_YZ_MAX, INT32_MAX, KernelVersion, Launch, Problem,  # noqa: F401
                             ShapeLimitError, block_multiple_of_32, block_power_of_two, ceil_div,
                             cols_fit_int, grid_x_blocks, matmul_limits, rows_fit_grid_x)
from .ladders_training import TRAINING_ENTRIES


# ---- the ladders ----

def _one_thread_per_row(p: Problem, block: int) -> Launch:
    return Launch((max(1, ceil_div(p.rows, block)),), (block,))


def _one_block_per_row(p: Problem, block: int) -> Launch:
    return Launch((p.rows,), (block,))


def _tree_smem_per_row(p: Problem, block: int) -> Launch:
    return Launch((p.rows,), (block,), block * p.itemsize)


def one_thread_per_column(p: Problem, block: int) -> Launch:
    """Second kernel of layer_norm_backward v1 (dweight / dbias)."""
    return Launch((max(1, ceil_div(p.cols, block)),), (block,))


def _matmul_launch(tile: int):
    def launch(p: Problem, block: int) -> Launch:
        return Launch((ceil_div(p.n, tile), ceil_div(p.m, tile), p.batch), (16, 16))
    return launch


SUM_V3_MAX_BLOCKS = 256  # grid-stride versions: a fixed grid large enough to fill an H100


def _sum_grid_stride(p: Problem, block: int) -> Launch:
    return Launch((max(1, min(SUM_V3_MAX_BLOCKS, ceil_div(p.n, block))),), (block,))


_ENTRIES = [
    KernelVersion("softmax_forward", 1, "softmax.cu", ("softmax_fwd_v1",),
                  "one thread per row, three passes", 128, _one_thread_per_row, (cols_fit_int,)),
    KernelVersion("softmax_forward", 2, "softmax.cu", ("softmax_fwd_v2",),
                  "block per row, shared-memory tree reduction", 256, _tree_smem_per_row,
                  (block_power_of_two, rows_fit_grid_x, cols_fit_int)),
    KernelVersion("softmax_forward", 3, "softmax.cu", ("softmax_fwd_v3",),
                  "block per row, warp-shuffle reduction", 256, _one_block_per_row,
                  (block_multiple_of_32, rows_fit_grid_x, cols_fit_int)),
    KernelVersion("softmax_forward", 4, "softmax.cu", ("softmax_fwd_v4",),
                  "online softmax: max and sum in one read", 256, _one_block_per_row,
                  (block_multiple_of_32, rows_fit_grid_x, cols_fit_int)),
    KernelVersion("softmax_backward", 1, "softmax.cu", ("softmax_bwd_v1",),
                  "one thread per row", 128, _one_thread_per_row, (cols_fit_int,)),
    KernelVersion("softmax_backward", 2, "softmax.cu", ("softmax_bwd_v2",),
                  "block per row, warp-shuffle reduction", 256, _one_block_per_row,
                  (block_multiple_of_32, rows_fit_grid_x, cols_fit_int)),
    KernelVersion("layer_norm_forward", 1, "layernorm.cu", ("layer_norm_fwd_v1",),
                  "one thread per row, two-pass variance", 128, _one_thread_per_row, (cols_fit_int,)),
    KernelVersion("layer_norm_forward", 2, "layernorm.cu", ("layer_norm_fwd_v2",),
                  "block per row, warp-shuffle reductions", 256, _one_block_per_row,
                  (block_multiple_of_32, rows_fit_grid_x, cols_fit_int)),
    KernelVersion("layer_norm_backward", 1, "layernorm.cu", ("layer_norm_bwd_v1", "layer_norm_bwd_params_v1"),
                  "thread per row for dx, thread per column for dweight/dbias", 128, _one_thread_per_row,
                  (cols_fit_int,)),
    KernelVersion("layer_norm_backward", 2, "layernorm.cu", ("layer_norm_bwd_v2",),
                  "block per row, atomics for dweight/dbias", 256, _one_block_per_row,
                  (block_multiple_of_32, rows_fit_grid_x, cols_fit_int)),
    KernelVersion("sum", 1, "reduce.cu", ("sum_v1",), "one atomicAdd per element", 256,
                  lambda p, b: Launch((max(1, ceil_div(p.n, b)),), (b,)), (grid_x_blocks,)),
    KernelVersion("sum", 2, "reduce.cu", ("sum_v2",), "shared-memory tree per block, one atomic per block",
                  256, lambda p, b: Launch((max(1, ceil_div(p.n, b)),), (b,), b * p.itemsize),
                  (block_power_of_two, grid_x_blocks)),
    KernelVersion("sum", 3, "reduce.cu", ("sum_v3",), "grid-stride loop + warp shuffles", 256,
                  _sum_grid_stride, (block_multiple_of_32,)),
    KernelVersion("sum", 4, "reduce.cu", ("sum_v4_partials", "sum_v4_finish"),
                  "deterministic two-pass, no atomics", 256, _sum_grid_stride, (block_multiple_of_32,)),
    KernelVersion("matmul", 1, "matmul.cu", ("matmul_v1",), "one thread per output", 256,
                  _matmul_launch(16), (matmul_limits(16),)),
    KernelVersion("matmul", 2, "matmul.cu", ("matmul_v2",), "16x16 shared-memory tiles", 256,
                  _matmul_launch(16), (matmul_limits(16),)),
    KernelVersion("matmul", 3, "matmul.cu", ("matmul_v3",), "64x64 tiles, 4x4 register blocking", 256,
                  _matmul_launch(64), (matmul_limits(64),)),
]

_ENTRIES += TRAINING_ENTRIES

REGISTRY: dict[tuple[str, int], KernelVersion] = {(e.op, e.version): e for e in _ENTRIES}


def versions(op: str) -> list[int]:
    found = sorted(v for (o, v) in REGISTRY if o == op)
    if not found:
        ops = sorted({o for o, _ in REGISTRY})
        raise KeyError(f"no kernels registered for op {op!r}; registered ops: {ops}")
    return found


def lookup(op: str, version: int | None = None) -> KernelVersion:
    """The entry for (op, version); version None means the highest (the best) one."""
    available = versions(op)
    version = available[-1] if version is None else version
    if (op, version) not in REGISTRY:
        raise KeyError(f"{op} has no version {version}; available: {available}")
    return REGISTRY[(op, version)]


def entries_for_file(file_name: str) -> list[KernelVersion]:
    return [e for e in _ENTRIES if e.file == file_name]
