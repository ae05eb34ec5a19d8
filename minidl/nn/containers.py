"""Containers: Sequential, ModuleList, ModuleDict, and Identity.

Containers register their members as child modules named '0', '1', ... (or by key for
ModuleDict), so the members' parameters show up in `parameters()` and in the state_dict as
'0.weight', '1.bias', ... exactly as in PyTorch. A plain Python list of layers would hide them
from the optimizer: that is the reason ModuleList exists.
"""
from __future__ import annotations

import operator
from collections import OrderedDict

from .module import Module, _add_indent


def _index(idx, length: int, who: str) -> int:
    """A Python-style (possibly negative) index checked against the container length."""
    idx = operator.index(idx)
    if not -length <= idx < length:
        raise IndexError(f"index {idx} is out of range for a {who} of length {length}")
    return idx + length if idx < 0 else idx


class Identity(Module):
    """Returns its input unchanged; accepts and ignores any constructor arguments."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, input):
        return input


class _IndexedModules(Module):
    """What Sequential and ModuleList share: members named '0', '1', ... kept in order."""

    def _members(self):
        return list(self._modules.values())

    def _renumber(self, modules) -> None:
        self._modules.clear()
        for i, m in enumerate(modules):
            self._modules[str(i)] = m

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return type(self)(self._members()[idx])
        return self._members()[_index(idx, len(self), type(self).__name__)]

    def __setitem__(self, idx, module) -> None:
        key = str(_index(idx, len(self), type(self).__name__))
        self.add_module(key, module)

    def __delitem__(self, idx) -> None:
        members = self._members()
        if isinstance(idx, slice):
            del members[idx]
        else:
            del members[_index(idx, len(self), type(self).__name__)]
        self._renumber(members)  # keep names 0..n-1, as PyTorch does

    def append(self, module):
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules):
        for m in modules:
            self.append(m)
        return self

    def insert(self, index: int, module) -> None:
        members = self._members()
        members.insert(index, module)
        for m in members:
            if not isinstance(m, Module):
                raise TypeError(f"{type(m).__name__} is not a Module subclass")
        self._renumber(members)

    def pop(self, index: int = -1):
        module = self[index]
        del self[index]
        return module

    def __dir__(self):
        return [k for k in super().__dir__() if not k.isdigit()]


class Sequential(_IndexedModules):
    """Chain modules: `forward(x)` feeds x through each member in order.

    `Sequential(a, b, c)` names the members '0', '1', '2'; `Sequential(OrderedDict(...))` keeps
    the given names."""

    def __init__(self, *args):
        super().__init__()
        if len(args) == 1 and isinstance(args[0], OrderedDict):
            for name, module in args[0].items():
                self.add_module(name, module)
        else:
            for i, module in enumerate(args):
                self.add_module(str(i), module)

    def __getitem__(self, idx):
        if isinstance(idx, slice):  # keep the members' names, as PyTorch does
            return Sequential(OrderedDict(list(self._modules.items())[idx]))
        return super().__getitem__(idx)

    def __setitem__(self, idx, module) -> None:
        key = list(self._modules)[_index(idx, len(self), "Sequential")]
        self.add_module(key, module)

    def forward(self, input):
        for module in self._modules.values():
            input = module(input)
        return input


class ModuleList(_IndexedModules):
    """A list of modules that registers them (so their parameters are found)."""

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def __iadd__(self, modules):
        return self.extend(modules)

    def __add__(self, other) -> "ModuleList":
        return ModuleList(list(self) + list(other))

    def __repr__(self) -> str:
        # runs of identical members print once: "(0-3): 4 x Linear(...)", as in PyTorch
        reprs = [repr(m) for m in self]
        if not reprs:
            return self._get_name() + "()"
        lines, start = [], 0
        for i in range(1, len(reprs) + 1):
            if i == len(reprs) or reprs[i] != reprs[start]:
                label = f"({start}): " if i - 1 == start else \
                    f"({start}-{i - 1}): {i - start} x "
                lines.append(_add_indent(label + reprs[start], 2))
                start = i
        return self._get_name() + "(\n  " + "\n  ".join(lines) + "\n)"


class ModuleDict(Module):
    """A dict of modules (ordered by insertion) that registers them under their keys."""

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __getitem__(self, key: str) -> Module:
        if key not in self._modules:
            raise KeyError(f"ModuleDict has no key '{key}'; keys are {list(self._modules)}")
        return self._modules[key]

    def __setitem__(self, key: str, module) -> None:
        self.add_module(key, module)

    def __delitem__(self, key: str) -> None:
        del self._modules[key]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules)

    def __contains__(self, key) -> bool:
        return key in self._modules

    def clear(self) -> None:
        self._modules.clear()

    def pop(self, key: str) -> Module:
        module = self[key]
        del self[key]
        return module

    def keys(self):
        return self._modules.keys()

    def items(self):
        return self._modules.items()

    def values(self):
        return self._modules.values()

    def update(self, modules) -> None:
        items = modules.items() if hasattr(modules, "items") else modules
        for j, entry in enumerate(items):
            if not isinstance(entry, (tuple, list)) or len(entry) != 2:
                raise ValueError(f"ModuleDict update sequence element #{j} should be a "
                                 f"(key, module) pair, got {entry!r}")
            self[entry[0]] = entry[1]
