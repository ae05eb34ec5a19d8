"""Progress: a tqdm bar on a terminal when tqdm is installed, plain lines otherwise (CI logs,
pipes), so a long run always shows it is alive without flooding a log with carriage returns."""
from __future__ import annotations

import sys
import time


def _tqdm():
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm


class Progress:
    def __init__(self, stream=None, plain_every: float = 0.1):
        self.stream = stream or sys.stderr
        self.plain_every = plain_every          # plain mode: one line per this share of work
        interactive = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.tqdm = _tqdm() if interactive else None

    def log(self, message: str) -> None:
        if self.tqdm is not None:
            self.tqdm.write(message, file=self.stream)
        else:
            print(message, file=self.stream, flush=True)

    def bar(self, iterable, total: int | None = None, desc: str = ""):
        """Yield from iterable while showing progress."""
        if total is None and hasattr(iterable, "__len__"):
            total = len(iterable)
        if self.tqdm is not None:
            yield from self.tqdm(iterable, total=total, desc=desc, file=self.stream,
                                 leave=False, dynamic_ncols=True)
            return
        start = time.perf_counter()
        step = max(1, int((total or 0) * self.plain_every)) if total else 0
        n = 0
        for item in iterable:
            yield item
            n += 1
            if step and (n % step == 0 or n == total):
                self.log(f"  {desc}: {n}/{total} ({time.perf_counter() - start:.1f} s)")
