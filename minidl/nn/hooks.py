"""`RemovableHandle`: what `register_forward_hook` and friends return.

Hooks live in a dict keyed by a running id, so they run in registration order and a handle can
remove exactly its own hook later, even if the same function was registered twice.
"""
from __future__ import annotations

import itertools

_next_id = itertools.count().__next__


class RemovableHandle:
    def __init__(self, hooks_dict: dict, *extra_dicts):
        self.id = _next_id()
        self._dicts = (hooks_dict,) + extra_dicts

    def remove(self) -> None:
        for d in self._dicts:
            d.pop(self.id, None)

    def __enter__(self) -> "RemovableHandle":
        return self

    def __exit__(self, *exc) -> None:
        self.remove()
