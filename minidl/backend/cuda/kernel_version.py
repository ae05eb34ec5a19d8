"""The pieces every ladder entry is made of: the sizes of a call (`Problem`), a launch
configuration (`Launch`), one rung of a ladder (`KernelVersion`) and reusable shape limits.

A launch is computed from a `Problem` (the sizes the host wrapper read off the arrays) and
the block size; `check` raises ShapeLimitError *before* a launch whose shape the version
cannot handle (a GPU would otherwise compute garbage or fault). The ladders themselves are
listed in registry.py.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

INT32_MAX = 2**31 - 1
GRID_YZ_MAX = 65535


class ShapeLimitError(ValueError):
    """A kernel version was asked for a shape or block size outside its stated limits."""


@dataclass(frozen=True)
class Problem:
    """Sizes of one call, read off the arrays by the host wrapper."""
    itemsize: int
    rows: int = 0
    cols: int = 0
    n: int = 0
    m: int = 0
    k: int = 0
    batch: int = 1
    tq: int = 0        # attention: queries, keys, head dim of q/k, head dim of v
    tk: int = 0
    d: int = 0
    dv: int = 0
    aligned16: bool = True   # every pointer of the call is 16-byte aligned (vector loads)


@dataclass(frozen=True)
class Launch:
    grid: tuple
    block: tuple
    shared_mem: int = 0


@dataclass(frozen=True)
class KernelVersion:
    op: str
    version: int
    file: str
    kernels: tuple[str, ...]       # base names; the launcher appends _f32 / _f64
    idea: str
    default_block: int
    launch: Callable[[Problem, int], Launch]
    limits: tuple[Callable[[Problem, int], str | None], ...] = field(default=())

    def check(self, problem: Problem, block: int) -> None:
        for limit in self.limits:
            message = limit(problem, block)
            if message:
                raise ShapeLimitError(f"{self.op} v{self.version} ({self.file}): {message}")


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


# ---- reusable limits: each returns None when fine, else what is wrong ----

def block_multiple_of_32(p: Problem, block: int):
    if block % 32 or not 32 <= block <= 1024:
        return f"blockDim.x must be a multiple of 32 in [32, 1024], got {block}"


def block_power_of_two(p: Problem, block: int):
    if block < 32 or block > 1024 or block & (block - 1):
        return f"blockDim.x must be a power of two in [32, 1024] (tree reduction), got {block}"


def rows_fit_grid_x(p: Problem, block: int):
    if p.rows > INT32_MAX:
        return f"at most {INT32_MAX} rows (one block per row on gridDim.x), got {p.rows}"


def cols_fit_int(p: Problem, block: int):
    if p.cols > INT32_MAX:
        return f"cols must fit a 32-bit int, got {p.cols}"


def grid_x_blocks(p: Problem, block: int):
    if ceil_div(p.n, block) > INT32_MAX:
        return f"n = {p.n} needs more than {INT32_MAX} blocks of {block}"


def matmul_limits(tile: int):
    def limit(p: Problem, block: int):
        if max(p.m, p.n, p.k) > INT32_MAX:
            return f"M, N, K must fit a 32-bit int, got {(p.m, p.n, p.k)}"
        if ceil_div(p.m, tile) > GRID_YZ_MAX or p.batch > GRID_YZ_MAX:
            return f"ceil(M / {tile}) and the batch must be <= {GRID_YZ_MAX}, got M={p.m}, batch={p.batch}"
    return limit
