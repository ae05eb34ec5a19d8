"""Switching graph recording on and off: `no_grad`, `enable_grad`, `set_grad_enabled`.

The flag lives in a one-element list so the hot path (`Function.apply`) reads it with a
single index, and the context managers restore the previous value even on exceptions.
Each is usable as a `with` block and as a decorator, as in PyTorch.
"""
from __future__ import annotations

import functools

_state = [True]  # _state[0]: is graph recording on?


def is_grad_enabled() -> bool:
    return _state[0]


class _GradModeContext:
    _target = True

    def __enter__(self):
        self._prev = _state[0]
        _state[0] = self._target
        return self

    def __exit__(self, *exc):
        _state[0] = self._prev
        return False

    def __call__(self, fn):
        if isinstance(self, set_grad_enabled):
            _state[0] = self._prev  # as a decorator it must not switch anything yet
        target = self._target

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            prev = _state[0]
            _state[0] = target
            try:
                return fn(*args, **kwargs)
            finally:
                _state[0] = prev
        return wrapper


class no_grad(_GradModeContext):
    """Ops inside record no graph: for evaluation and in-place parameter updates."""
    _target = False


class enable_grad(_GradModeContext):
    """Turn recording back on inside a `no_grad` block."""
    _target = True


class set_grad_enabled(_GradModeContext):
    """`set_grad_enabled(False)` is `no_grad()`; it also takes effect when called bare."""

    def __init__(self, mode: bool):
        self._target = bool(mode)
        self._prev = _state[0]
        _state[0] = self._target  # like PyTorch, calling it as a function switches immediately

    def __enter__(self):
        return self
