"""The 'memory over 1,000 steps' rows: a step that leaks must fail, a clean one must pass."""
import numpy as np

from suite.rows import judge
from suite.speed_train import FLAT_FIRST, FLAT_TARGET_KIB, flat_memory_verdict, memory_marks

STEPS = 300


def test_a_step_that_keeps_a_buffer_per_step_fails():
    kept = []

    def leaky_step():
        kept.append(np.ones(1024, dtype=np.float32))   # 4 KiB a step, never released

    row = flat_memory_verdict("leaky", memory_marks(leaky_step, STEPS), STEPS)
    expected_kib = (STEPS - FLAT_FIRST) * 4
    assert row.minidl > 0.9 * expected_kib
    assert judge(row) == "fail"


def test_a_step_that_frees_its_buffers_passes():
    state = {"w": np.zeros(4096, dtype=np.float32)}

    def clean_step():
        g = np.ones(4096, dtype=np.float32)          # a new buffer each step, the old one freed
        state["w"] = state["w"] - 0.1 * g

    row = flat_memory_verdict("clean", memory_marks(clean_step, STEPS), STEPS)
    assert abs(row.minidl) < FLAT_TARGET_KIB
    assert judge(row) == "pass"
    assert row.extra["flat_memory"]["steps"] == STEPS
