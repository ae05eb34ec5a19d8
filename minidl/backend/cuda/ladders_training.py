"""The ladders of the training ops: one KernelVersion per (op, version), as in each .cu header.

Files: crossentropy.cu, activation.cu, adam.cu, attention.cu, embedding.cu, dropout.cu,
im2col.cu, pool.cu. The launch functions turn a Problem into grid / block / shared memory;
the limits say, before a launch, what a version cannot do.
"""
from __future__ import annotations

from .kernel_version import (GRID_YZ_MAX, INT32_MAX, KernelVersion, Launch, Problem, block_multiple_of_32,
                             ceil_div, cols_fit_int, rows_fit_grid_x)

# ---- launch shapes shared by several families ----

ELEMENTWISE_MAX_BLOCKS = 1024   # grid-stride kernels: enough blocks to fill an H100 (132 SMs)


def one_thread_per_row(p: Problem, block: int) -> Launch:
    return Launch((max(1, ceil_div(p.rows, block)),), (block,))


def one_block_per_row(p: Problem, block: int) -> Launch:
    return Launch((max(1, p.rows),), (block,))


def one_warp_per_row(p: Problem, block: int) -> Launch:
    return Launch((max(1, ceil_div(p.rows, block // 32)),), (block,))


def one_thread_per_element(p: Problem, block: int) -> Launch:
    return Launch((max(1, ceil_div(p.n, block)),), (block,))


def grid_stride(p: Problem, block: int) -> Launch:
    return Launch((max(1, min(ELEMENTWISE_MAX_BLOCKS, ceil_div(p.n, block))),), (block,))


# ---- limits ----

def elements_fit_one_thread_each(p: Problem, block: int):
    if ceil_div(p.n, block) > INT32_MAX:
        return f"n = {p.n} needs more than {INT32_MAX} blocks of {block} threads (one thread per element)"


def rows_fit_warps_grid(p: Problem, block: int):
    if ceil_div(p.rows, max(1, block // 32)) > INT32_MAX:
        return f"{p.rows} rows need more than {INT32_MAX} blocks of {block // 32} warps"


def pointers_16_byte_aligned(p: Problem, block: int):
    if not p.aligned16:
        return "every array must start on a 16-byte boundary (128-bit loads); got a misaligned one"


def bias_stripes(rows: int) -> int:
    """Rows per stripe of bias_act_bwd_v1: at least 64, and few enough stripes for gridDim.y."""
    return max(64, ceil_div(rows, GRID_YZ_MAX))


def _bias_backward_launch(p: Problem, block: int) -> Launch:
    return Launch((max(1, ceil_div(p.cols, block)), max(1, ceil_div(p.rows, bias_stripes(p.rows)))), (block,))


# ---- cross-entropy (crossentropy.cu) ----

CROSS_ENTROPY = [
    KernelVersion("cross_entropy_forward", 1, "crossentropy.cu", ("ce_fwd_v1",),
                  "one thread per row, three passes", 128, one_thread_per_row, (cols_fit_int,)),
    KernelVersion("cross_entropy_forward", 2, "crossentropy.cu", ("ce_fwd_v2",),
                  "block per row, one read: online softmax + smoothing sums", 256, one_block_per_row,
                  (block_multiple_of_32, rows_fit_grid_x, cols_fit_int)),
    KernelVersion("cross_entropy_forward", 3, "crossentropy.cu", ("ce_fwd_v3",),
                  "warp per row, several rows per block", 128, one_warp_per_row,
                  (block_multiple_of_32, rows_fit_warps_grid, cols_fit_int)),
    KernelVersion("cross_entropy_backward", 1, "crossentropy.cu", ("ce_bwd_v1",),
                  "one thread per row, one pass", 128, one_thread_per_row, (cols_fit_int,)),
    KernelVersion("cross_entropy_backward", 2, "crossentropy.cu", ("ce_bwd_v2",),
                  "block per row, coalesced over the columns", 256, one_block_per_row,
                  (block_multiple_of_32, rows_fit_grid_x, cols_fit_int)),
]

# ---- GELU / SiLU (activation.cu) ----

ACTIVATION = [
    KernelVersion("activation_forward", 1, "activation.cu", ("act_fwd_v1",), "one thread per element", 256,
                  one_thread_per_element, (block_multiple_of_32, elements_fit_one_thread_each)),
    KernelVersion("activation_forward", 2, "activation.cu", ("act_fwd_v2",), "grid-stride loop", 256,
                  grid_stride, (block_multiple_of_32,)),
    KernelVersion("activation_forward", 3, "activation.cu", ("act_fwd_v3",), "128-bit vector loads", 256,
                  grid_stride, (block_multiple_of_32, pointers_16_byte_aligned)),
    KernelVersion("activation_backward", 1, "activation.cu", ("act_bwd_v1",), "one thread per element", 256,
                  one_thread_per_element, (block_multiple_of_32, elements_fit_one_thread_each)),
    KernelVersion("activation_backward", 2, "activation.cu", ("act_bwd_v2",), "grid-stride loop", 256,
                  grid_stride, (block_multiple_of_32,)),
    KernelVersion("activation_backward", 3, "activation.cu", ("act_bwd_v3",), "128-bit vector loads", 256,
                  grid_stride, (block_multiple_of_32, pointers_16_byte_aligned)),
    KernelVersion("bias_activation_forward", 1, "activation.cu", ("bias_act_fwd_v1",),
                  "bias added on the fly, grid-stride", 256, grid_stride, (block_multiple_of_32, cols_fit_int)),
    KernelVersion("bias_activation_backward", 1, "activation.cu", ("bias_act_bwd_v1",),
                  "thread per column over a stripe of rows, one atomicAdd per stripe", 128,
                  _bias_backward_launch, (block_multiple_of_32, cols_fit_int)),
]

# ---- optimizer steps (adam.cu) ----

OPTIM_CHUNK = 16384   # elements per block of the multi-tensor kernels (64 per thread at 256 threads)


def one_block_per_chunk(p: Problem, block: int) -> Launch:
    """Multi-tensor kernels: p.n is the number of chunks."""
    return Launch((max(1, p.n),), (block,))


def chunks_fit_grid_x(p: Problem, block: int):
    if p.n > INT32_MAX:
        return f"at most {INT32_MAX} chunks of {OPTIM_CHUNK} elements in one launch, got {p.n}"


OPTIM = [
    KernelVersion("adam_step", 1, "adam.cu", ("adam_v1",), "one launch per tensor, grid-stride", 256,
                  grid_stride, (block_multiple_of_32,)),
    KernelVersion("adam_step", 2, "adam.cu", ("adam_multi_v2",), "every tensor in one launch: address + chunk tables",
                  256, one_block_per_chunk, (block_multiple_of_32, chunks_fit_grid_x)),
    KernelVersion("sgd_step", 1, "adam.cu", ("sgd_v1",), "one launch per tensor, grid-stride", 256,
                  grid_stride, (block_multiple_of_32,)),
    KernelVersion("sgd_step", 2, "adam.cu", ("sgd_multi_v2",), "every tensor in one launch: address + chunk tables",
                  256, one_block_per_chunk, (block_multiple_of_32, chunks_fit_grid_x)),
]

# ---- attention (attention.cu) ----

ATT_BQ, ATT_BK = 16, 32                 # queries / keys per tile of the flash kernels
ATT_MAX_SMEM = 163 * 1024               # the A100's opt-in maximum per block (H100: 227 KiB)


def flash_forward_smem(p: Problem) -> int:
    return (ATT_BQ * p.d + ATT_BK * (p.d + 1) + ATT_BK * p.dv + ATT_BQ * ATT_BK + ATT_BQ * p.dv
            + 3 * ATT_BQ) * p.itemsize


def flash_backward_smem(p: Problem) -> int:
    return (ATT_BK * (p.d + 1) + ATT_BK * (p.dv + 1) + ATT_BK * p.d + ATT_BK * p.dv + ATT_BQ * p.d
            + ATT_BQ * p.dv + ATT_BQ * ATT_BK + 2 * ATT_BQ) * p.itemsize


def _per_score(p: Problem, block: int) -> Launch:
    """v1: one thread per (query, key) of ONE (batch, head)."""
    return Launch((max(1, ceil_div(p.tq * p.tk, block)),), (block,))


def _flash_forward_launch(p: Problem, block: int) -> Launch:
    return Launch((max(1, p.batch), max(1, ceil_div(p.tq, ATT_BQ))), (block,), flash_forward_smem(p))


def _flash_backward_launch(p: Problem, block: int) -> Launch:
    return Launch((max(1, p.batch), max(1, ceil_div(p.tk, ATT_BK))), (block,), flash_backward_smem(p))


def attention_sizes_fit(p: Problem, block: int):
    if max(p.tq, p.tk, p.d, p.dv) > INT32_MAX or ceil_div(p.tq * max(p.tk, p.d, p.dv), block) > INT32_MAX \
            or ceil_div(p.tk * max(p.d, p.dv), block) > INT32_MAX:
        return f"Tq, Tk, D, Dv = {(p.tq, p.tk, p.d, p.dv)} need more than {INT32_MAX} blocks of {block} threads"


def _flash_limits(smem, tiles_of):
    def limit(p: Problem, block: int):
        if block not in (32, 64, 128, 256, 512):
            return f"blockDim.x must be 32, 64, 128, 256 or 512 (its warps share {ATT_BQ} rows), got {block}"
        if p.batch > INT32_MAX or tiles_of(p) > GRID_YZ_MAX:
            return f"batch * heads <= {INT32_MAX} and at most {GRID_YZ_MAX} tiles on gridDim.y, got {p.batch}, {tiles_of(p)}"
        if smem(p) > ATT_MAX_SMEM:
            return (f"head dims D = {p.d}, Dv = {p.dv} need {smem(p)} bytes of shared memory in "
                    f"{p.itemsize * 8}-bit floats, more than the {ATT_MAX_SMEM} an A100 block can have")
    return limit


ATTENTION = [
    KernelVersion("sdpa_forward", 1, "attention.cu", ("sdpa_scores_v1", "sdpa_softmax_v1", "sdpa_pv_v1"),
                  "scores of one (batch, head) in a global buffer, thread per element", 128, _per_score,
                  (block_multiple_of_32, attention_sizes_fit)),
    KernelVersion("sdpa_forward", 2, "attention.cu", ("sdpa_fwd_v2",),
                  "flash attention: key tiles in shared memory, online softmax", 128, _flash_forward_launch,
                  (_flash_limits(flash_forward_smem, lambda p: ceil_div(p.tq, ATT_BQ)),)),
    KernelVersion("sdpa_backward", 1, "attention.cu",
                  ("sdpa_scores_v1", "sdpa_probs_v1", "sdpa_dv_v1", "sdpa_ds_v1", "sdpa_dq_v1", "sdpa_dk_v1"),
                  "one (Tq, Tk) global buffer for S, P, dS; thread per element", 128, _per_score,
                  (block_multiple_of_32, attention_sizes_fit)),
    KernelVersion("sdpa_backward", 2, "attention.cu", ("sdpa_bwd_delta_v2", "sdpa_bwd_v2"),
                  "flash backward: key block in shared memory, P recomputed from lse, dq by atomics", 128,
                  _flash_backward_launch, (_flash_limits(flash_backward_smem, lambda p: ceil_div(p.tk, ATT_BK)),)),
]

# ---- embedding backward (embedding.cu) ----

def _per_segment_launch(p: Problem, block: int) -> Launch:
    """p.rows: segments of equal indices; p.cols: the embedding dim."""
    return Launch((max(1, p.rows), max(1, ceil_div(p.cols, block))), (block,))


def segments_fit_grid(p: Problem, block: int):
    if p.rows > INT32_MAX or ceil_div(p.cols, block) > GRID_YZ_MAX:
        return f"{p.rows} segments (<= {INT32_MAX}) and ceil(D / {block}) (<= {GRID_YZ_MAX}) blocks, D = {p.cols}"


EMBEDDING = [
    KernelVersion("embedding_backward", 1, "embedding.cu", ("emb_bwd_atomic_v1",),
                  "thread per element, atomicAdd into the table", 256, grid_stride,
                  (block_multiple_of_32, cols_fit_int)),
    KernelVersion("embedding_backward", 2, "embedding.cu", ("emb_bwd_sorted_v2",),
                  "stable sort, one block per segment of equal indices: deterministic", 128, _per_segment_launch,
                  (block_multiple_of_32, segments_fit_grid)),
]

# ---- dropout with a regenerated mask (dropout.cu) ----

def _per_group_of_4(p: Problem, block: int) -> Launch:
    return Launch((max(1, min(ELEMENTWISE_MAX_BLOCKS, ceil_div(ceil_div(p.n, 4), block))),), (block,))


DROPOUT = [
    KernelVersion("philox_uniform", 1, "dropout.cu", ("philox_uniform_v1",),
                  "Philox 4x32-10 uniforms, thread per 4 elements", 256, _per_group_of_4, (block_multiple_of_32,)),
    KernelVersion("dropout", 1, "dropout.cu", ("dropout_v1",), "thread per element, one Philox call each", 256,
                  one_thread_per_element, (block_multiple_of_32, elements_fit_one_thread_each)),
    KernelVersion("dropout", 2, "dropout.cu", ("dropout_v2",), "thread per 4 elements, all 4 Philox words used",
                  256, _per_group_of_4, (block_multiple_of_32,)),
]

# ---- im2col / col2im (im2col.cu) and pooling (pool.cu) ----
# Problem.n is the number of elements the grid-stride loop covers; Problem.m the largest
# single size (an image or column dimension) that must fit a 32-bit int.

def sizes_fit_int(p: Problem, block: int):
    if p.m > INT32_MAX:
        return f"every size must fit a 32-bit int, got one of {p.m}"


IMAGE = [
    KernelVersion("im2col", 1, "im2col.cu", ("im2col_v1",), "thread per column element, coalesced writes", 256,
                  grid_stride, (block_multiple_of_32, sizes_fit_int)),
    KernelVersion("col2im", 1, "im2col.cu", ("col2im_atomic_v1",), "thread per column element, atomicAdd", 256,
                  grid_stride, (block_multiple_of_32, sizes_fit_int)),
    KernelVersion("col2im", 2, "im2col.cu", ("col2im_gather_v2",), "thread per pixel gathers its entries", 256,
                  grid_stride, (block_multiple_of_32, sizes_fit_int)),
    KernelVersion("max_pool2d_forward", 1, "pool.cu", ("maxpool_fwd_v1",), "thread per output", 256,
                  grid_stride, (block_multiple_of_32, sizes_fit_int)),
    KernelVersion("max_pool2d_backward", 1, "pool.cu", ("maxpool_bwd_v1",), "thread per dy element, atomicAdd",
                  256, grid_stride, (block_multiple_of_32, sizes_fit_int)),
    KernelVersion("avg_pool2d_forward", 1, "pool.cu", ("avgpool_fwd_v1",), "thread per output", 256,
                  grid_stride, (block_multiple_of_32, sizes_fit_int)),
    KernelVersion("avg_pool2d_backward", 1, "pool.cu", ("avgpool_bwd_v1",), "thread per input pixel gathers", 256,
                  grid_stride, (block_multiple_of_32, sizes_fit_int)),
]

TRAINING_ENTRIES = CROSS_ENTROPY + ACTIVATION + OPTIM + ATTENTION + EMBEDDING + DROPOUT + IMAGE
