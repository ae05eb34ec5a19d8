"""Loading a state_dict into a Module tree (PyTorch's algorithm and error messages).

Each module loads its own entries (`prefix + name` for its parameters and persistent buffers);
then each child gets the entries under `prefix + child_name + '.'`. Every problem is collected
first and reported together, so one error message lists all of them:

    Error(s) in loading state_dict for Net:
        Missing key(s) in state_dict: "fc.bias".
        size mismatch for fc.weight: copying a param with shape minidl.Size([3, 4]) from
        checkpoint, the shape in current model is minidl.Size([4, 3]).
"""
from __future__ import annotations

from collections import namedtuple

import numpy as np

from ..autograd.grad_mode import no_grad
from ..creation import from_numpy
from ..tensor import Tensor


class IncompatibleKeys(namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])):
    """What `load_state_dict` returns: keys the model wanted but did not get, and the reverse."""

    def __repr__(self) -> str:
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return super().__repr__()

    __str__ = __repr__


def load_into(module, state_dict, strict: bool, assign: bool):
    """Load `state_dict` into `module` and its descendants; return (missing, unexpected)."""
    if not hasattr(state_dict, "keys") or not hasattr(state_dict, "items"):
        raise TypeError(f"Expected state_dict to be dict-like, got {type(state_dict).__name__}.")
    missing, unexpected, errors = [], [], []
    state_dict = dict(state_dict)

    def load(mod, local, prefix):
        mod._load_from_state_dict(local, prefix, True, missing, unexpected, errors, assign)
        for name, child in mod._modules.items():
            if child is not None:
                child_prefix = prefix + name + "."
                load(child, {k: v for k, v in local.items() if k.startswith(child_prefix)},
                     child_prefix)

    load(module, state_dict, "")
    if strict:
        if unexpected:
            errors.insert(0, "Unexpected key(s) in state_dict: "
                          + ", ".join(f'"{k}"' for k in unexpected) + ". ")
        if missing:
            errors.insert(0, "Missing key(s) in state_dict: "
                          + ", ".join(f'"{k}"' for k in missing) + ". ")
    if errors:
        raise RuntimeError(f"Error(s) in loading state_dict for {type(module).__name__}:\n\t"
                           + "\n\t".join(errors))
    return missing, unexpected


def load_own_entries(module, state_dict, prefix, missing, unexpected, errors, assign) -> None:
    """The default `Module._load_from_state_dict`: this module's parameters and buffers only."""
    own = [(n, p, True) for n, p in module._parameters.items() if p is not None]
    own += [(n, b, False) for n, b in module._buffers.items()
            if b is not None and n not in module._non_persistent_buffers_set]
    for name, current, is_param in own:
        key = prefix + name
        if key not in state_dict:
            missing.append(key)
            continue
        value = _as_tensor(state_dict[key])
        if value is None:
            errors.append(f'While copying the parameter named "{key}", expected a Tensor or an '
                          f'array from the checkpoint but received {type(state_dict[key])}')
            continue
        if tuple(value.shape) != tuple(current.shape):
            errors.append(f"size mismatch for {key}: copying a param with shape {value.shape} "
                          f"from checkpoint, the shape in current model is {current.shape}.")
            continue
        if assign:
            _assign(module, name, current, value, is_param)
        else:
            with no_grad():
                current.copy_(value)  # casts to the model's dtype, moves to its device

    local_names = set(module._parameters) | (set(module._buffers)
                                             - module._non_persistent_buffers_set)
    for key in state_dict:
        if key.startswith(prefix):
            first = key[len(prefix):].split(".", 1)[0]
            if first not in module._modules and first not in local_names:
                unexpected.append(key)


def _as_tensor(value):
    """A checkpoint value as a Tensor: minidl Tensors as they are; NumPy arrays, numbers and
    array-likes (e.g. a detached torch tensor) through `numpy.asarray`, keeping their dtype."""
    if isinstance(value, Tensor):
        return value
    try:
        arr = np.asarray(value)
    except Exception:
        return None
    if arr.dtype == object:
        return None
    # (not np.ascontiguousarray: it turns a 0-d array such as num_batches_tracked into 1-d)
    return from_numpy(arr if arr.flags.c_contiguous else arr.copy(order="C"))


def _assign(module, name, current, value, is_param) -> None:
    """assign=True: keep the checkpoint's tensor itself (its dtype too), as PyTorch does."""
    from .parameter import Parameter
    if value.device != current.device:
        value = value.to(current.device)
    if is_param:
        module._parameters[name] = Parameter(value.detach(), current.requires_grad)
    else:
        module._buffers[name] = value.detach()

