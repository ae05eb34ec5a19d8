"""Flatten parameters into one vector and back (for line searches, evolution strategies,
second-order methods). The order is the iteration order of `parameters`."""
from __future__ import annotations

from ...ops.shape import cat
from ...tensor import Tensor


def parameters_to_vector(parameters) -> Tensor:
    """One 1-D tensor: every parameter flattened, concatenated (differentiable)."""
    flat, device = [], None
    for p in parameters:
        if device is None:
            device = p.device
        elif p.device != device:
            raise TypeError(f"Found two parameters on different devices ({device} and "
                            f"{p.device}), this is currently not supported.")
        flat.append(p.reshape(-1))
    return cat(flat)


def vector_to_parameters(vec, parameters) -> None:
    """Make each parameter hold its slice of `vec` (sharing vec's memory, as PyTorch)."""
    if not isinstance(vec, Tensor):
        raise TypeError(f"expected minidl.Tensor, but got: {type(vec).__name__}")
    parameters = list(parameters)
    needed = sum(p.numel() for p in parameters)
    if vec.dim() != 1 or vec.numel() != needed:
        raise ValueError(f"vec must be a 1-D tensor of {needed} elements (the parameters' total), "
                         f"got shape {tuple(vec.shape)}")
    pointer = 0
    for p in parameters:
        n = p.numel()
        p.data = vec[pointer:pointer + n].view_as(p).data
        pointer += n
