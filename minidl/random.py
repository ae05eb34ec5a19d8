"""Random numbers: `manual_seed`, `Generator`, and the default generator.

A `Generator` wraps NumPy's PCG64 bit generator. Random tensors are drawn on the host in the
requested dtype (NumPy draws float32 directly, with no float64 temporary) and then moved to the
tensor's device, so the same seed gives the same numbers on every device.
"""
from __future__ import annotations

import numpy as np


class Generator:
    def __init__(self, device="cpu"):
        self.device = device
        self._seed = int(np.random.SeedSequence().entropy % (2 ** 63))
        self.numpy_rng = np.random.default_rng(self._seed)

    def manual_seed(self, seed: int) -> "Generator":
        if not isinstance(seed, (int, np.integer)):
            raise TypeError(f"manual_seed expects an int, got {type(seed).__name__}")
        self._seed = int(seed)
        self.numpy_rng = np.random.default_rng(self._seed)
        return self

    def seed(self) -> int:
        """Re-seed from fresh entropy and return the new seed."""
        self._seed = int(np.random.SeedSequence().entropy % (2 ** 63))
        self.numpy_rng = np.random.default_rng(self._seed)
        return self._seed

    def initial_seed(self) -> int:
        return self._seed

    def get_state(self):
        return self.numpy_rng.bit_generator.state

    def set_state(self, state) -> None:
        self.numpy_rng.bit_generator.state = state


_default = Generator()


def default_generator() -> Generator:
    return _default


def manual_seed(seed: int) -> Generator:
    """Seed the default generator (and NumPy's global one, for code that uses it)."""
    _default.manual_seed(seed)
    np.random.seed(int(seed) % (2 ** 32))
    return _default


def seed() -> int:
    return _default.seed()


def initial_seed() -> int:
    return _default.initial_seed()


def get_rng_state():
    return _default.get_state()


def set_rng_state(state) -> None:
    _default.set_state(state)


def rng_of(generator) -> np.random.Generator:
    """The NumPy generator to draw from: the given minidl Generator's, or the default one."""
    if generator is None:
        return _default.numpy_rng
    try:
        return generator.numpy_rng
    except AttributeError:
        raise TypeError(f"generator= expects a minidl.Generator (e.g. minidl.Generator()"
                        f".manual_seed(seed)), got {type(generator).__module__}."
                        f"{type(generator).__qualname__}") from None
