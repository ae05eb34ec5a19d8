"""`Parameter`: a Tensor that a Module registers as one of its learnable weights.

A Parameter is an ordinary leaf Tensor with `requires_grad=True` by default; being a
Parameter is only a marker. Assigning one to a Module attribute (`self.weight = Parameter(...)`)
registers it, so `module.parameters()` finds it and an optimizer can update it.

`Parameter(t)` shares `t`'s memory (no copy), as in PyTorch, but is a new leaf: it has no
history even if `t` had one.
"""
from __future__ import annotations

from ..autograd.function import shared_version
from ..tensor import Tensor


class Parameter(Tensor):
    __slots__ = ()

    def _init(self, data=None, requires_grad: bool = True):  # the constructor (see Tensor)
        if data is None:
            from ..creation import empty
            data = empty(0)
        elif not isinstance(data, Tensor):
            data = Tensor(data)
        self._data = data._data
        self._be = data._be
        self.grad_fn = None
        self._out_nr = 0
        self._requires_grad = False
        self.grad = None
        self._version = shared_version(data)  # same memory, so the same in-place version counter
        self._base = None
        self._hooks = None
        self._accum = None
        self._retains_grad = False
        if requires_grad:
            self.requires_grad = True  # the setter rejects integer dtypes with a clear message

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()

    def __deepcopy__(self, memo):
        if id(self) in memo:
            return memo[id(self)]
        copied = Parameter(Tensor._wrap(self._data.copy(), self._be, None, 0), self._requires_grad)
        if self.grad is not None:
            copied.grad = Tensor._wrap(self.grad._data.copy(), self.grad._be, None, 0)
        memo[id(self)] = copied
        return copied

    def __reduce_ex__(self, protocol):
        # pickled as host values + flags, so loading rebuilds a Parameter on the same device
        return (_rebuild_parameter,
                (self._be.to_numpy(self._data), self._requires_grad, str(self.device)))


def _rebuild_parameter(array, requires_grad, device):
    from ..creation import from_numpy
    data = from_numpy(array)
    if device != "cpu":
        data = data.to(device)
    return Parameter(data, requires_grad)
