"""Which random stream shuffles and splits draw from.

`generator=` may be a NumPy Generator, or any object with a `.numpy_rng` attribute holding one
(minidl's own Generator has it). The given stream is used and advanced, so two runs that build
the same generator from the same seed see the same orders, epoch after epoch.

Without one, a fresh stream is seeded from minidl's default generator when minidl.random is
available (so `minidl.manual_seed(...)` makes shuffling reproducible), else from NumPy's global
state (so `np.random.seed(...)` does).
"""
from __future__ import annotations

import numpy as np

_SEED_BOUND = 2**63 - 1


def numpy_generator(generator=None) -> np.random.Generator:
    """The np.random.Generator to draw from for `generator` (see the module docstring)."""
    if generator is None:
        return np.random.default_rng(_fresh_seed())
    if isinstance(generator, np.random.Generator):
        return generator
    rng = getattr(generator, "numpy_rng", None)
    if isinstance(rng, np.random.Generator):
        return rng
    raise TypeError(f"generator must be a numpy.random.Generator or an object with a "
                    f".numpy_rng Generator (such as minidl's Generator), got "
                    f"{type(generator).__name__}")


def _fresh_seed() -> int:
    try:
        from minidl.random import default_generator
    except ImportError:
        return int(np.random.randint(0, _SEED_BOUND, dtype=np.int64))
    return int(default_generator().numpy_rng.integers(0, _SEED_BOUND))
