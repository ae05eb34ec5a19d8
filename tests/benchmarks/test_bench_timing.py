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
