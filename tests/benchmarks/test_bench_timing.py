"""benchmarks/timing.py: `settle` waits for this process's busy threads, and only for them."""
import threading
import time

from timing import compare, settle


def _burn_for(seconds: float) -> threading.Thread:
    """A thread that keeps one CPU busy for `seconds` (pure Python: it needs no GIL release)."""
    def burn():
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            pass
    thread = threading.Thread(target=burn, daemon=True)
    thread.start()
    return thread


def test_settle_waits_while_a_thread_of_the_process_is_busy():
    thread = _burn_for(0.25)
    waited = settle(max_s=2.0)
    assert not thread.is_alive(), "settle returned while a thread was still burning CPU"
    assert waited >= 0.15


def test_settle_returns_at_once_when_idle():
    settle(max_s=2.0)            # let anything earlier in the process calm down
    # a single 10 ms step, however long the sleep overshoots on a loaded machine: other
    # processes' CPU use does not count, only this process's
    assert settle(max_s=2.0, step_s=0.01) < 0.1


def test_settle_gives_up_after_max_s():
    thread = _burn_for(1.0)
    waited = settle(max_s=0.1)
    assert 0.1 <= waited < 0.5
    assert thread.is_alive()
    thread.join()


def test_compare_settles_before_each_repeat(monkeypatch):
    """compare() waits for idle threads before every timed repeat of every candidate."""
    import timing
    events = []
    monkeypatch.setattr(timing, "settle", lambda *a, **k: events.append("settle") or 0.0)
    real_time_once = timing.time_once

    def time_once(fn, number):
        events.append("time")
        return real_time_once(fn, number)

    monkeypatch.setattr(timing, "time_once", time_once)
    timing.compare({"a": lambda: None, "b": lambda: None}, repeats=3, target_s=0.001)
    # calibration times the candidates first (no settling needed); then 2 candidates x 3
    # repeats, each right after a settle
    assert events.index("settle") > 0
    assert events[events.index("settle"):] == ["settle", "time"] * 6


def test_statement_runs_its_source_in_the_namespace_once_per_timed_call():
    """A Statement is compiled into the timing loop: `seconds(n)` runs it exactly n times, in
    the namespace it was given, and time_once reports seconds per run."""
    import timing
    box = [0]
    stmt = timing.Statement("box[0] += step", {"box": box, "step": 1})
    assert stmt.seconds(7) >= 0 and box[0] == 7
    per_call, _ = timing.time_once(stmt, 5)
    assert box[0] == 12 and per_call >= 0
    stmt()  # warm-up call: one run
    assert box[0] == 13


def test_statement_leaves_garbage_collection_as_it_was():
    """timeit switches the collector off while timing; a Statement must not, or an engine that
    makes reference cycles would be timed without paying for collecting them."""
    import gc
    import timing
    seen = []
    stmt = timing.Statement("seen.append(isenabled())", {"seen": seen, "isenabled": gc.isenabled})
    was = gc.isenabled()
    gc.enable()
    try:
        stmt.seconds(3)
    finally:
        if not was:
            gc.disable()
    assert seen == [True, True, True]


def test_statement_with_bad_source_fails_when_made():
    import pytest
    import timing
    with pytest.raises(SyntaxError):
        timing.Statement("a +", {})
