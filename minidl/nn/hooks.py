"""Forward hooks: `RemovableHandle` (what `register_forward_hook` and friends return) and the
slow path of `Module.__call__` that runs the hooks around `forward`.

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


def add_hook(table, hook_id: int, hook, prepend: bool) -> None:
    table[hook_id] = hook
    if prepend:
        table.move_to_end(hook_id, last=False)


def call_with_hooks(module, args: tuple, kwargs: dict):
    """`module(*args, **kwargs)` when hooks are registered: pre-hooks may replace the
    arguments, forward runs, then forward hooks may replace the output."""
    for hook_id, hook in list(module._forward_pre_hooks.items()):
        if hook_id in module._forward_pre_hooks_with_kwargs:
            result = hook(module, args, kwargs)
            if result is not None:
                if not (isinstance(result, tuple) and len(result) == 2):
                    raise RuntimeError("a forward pre-hook registered with with_kwargs=True must "
                                       "return None or a tuple (new_args, new_kwargs), got "
                                       f"{type(result).__name__}")
                args, kwargs = result
        else:
            result = hook(module, args)
            if result is not None:
                args = result if isinstance(result, tuple) else (result,)
    output = module.forward(*args, **kwargs)
    for hook_id, hook in list(module._forward_hooks.items()):
        if hook_id in module._forward_hooks_with_kwargs:
            result = hook(module, args, kwargs, output)
        else:
            result = hook(module, args, output)
        if result is not None:
            output = result
    return output
