"""Identical starting weights for minidl and PyTorch, reproducible without PyTorch.

The parity runs build the PyTorch model, overwrite its parameters with draws from a seeded
NumPy generator, and copy its state_dict into minidl. Drawing with NumPy (not torch's own
generator) means a run without PyTorch can rebuild exactly the same weights and compare with
the stored PyTorch loss curves; the weights' SHA-256 is stored beside each curve to prove it.

Schemes (by parameter name and shape, so both libraries get the same rule):
  "pytorch"  PyTorch's default for Linear and Conv: U(-1/sqrt(fan_in), +1/sqrt(fan_in)) for
             weights and biases (kaiming_uniform with a=sqrt(5) reduces to that bound);
             fan_in = prod(weight.shape[1:]); a bias takes its sibling weight's fan_in.
  "gpt2"     N(0, 0.02) for every matrix (embeddings and projections), zeros for biases, ones
             for the 1-D weights of normalisation layers.
A 1-D "weight" is a normalisation scale under both schemes (ones), its bias zeros.
Shared (tied) parameters get one draw: callers pass each distinct parameter once.
"""
from __future__ import annotations

import hashlib

import numpy as np


def _fan_in(shape) -> int:
    return int(np.prod(shape[1:])) if len(shape) > 1 else int(shape[0])


def draw_parameters(named_shapes, scheme: str = "pytorch", seed: int = 0) -> dict:
    """{name: float32 array} for [(name, shape), ...] in the given order."""
    if scheme not in ("pytorch", "gpt2"):
        raise ValueError(f"scheme must be 'pytorch' or 'gpt2', got {scheme!r}")
    rng = np.random.default_rng(seed)
    shapes = dict(named_shapes)
    out = {}
    for name, shape in named_shapes:
        shape = tuple(shape)
        prefix, _, leaf = name.rpartition(".")
        sibling = shapes.get(f"{prefix}.weight" if prefix else "weight")
        norm_layer = sibling is not None and len(sibling) == 1
        if leaf == "weight" and len(shape) == 1:
            a = np.ones(shape)
        elif leaf == "bias" and norm_layer:
            a = np.zeros(shape)
        elif scheme == "gpt2":
            a = rng.normal(0.0, 0.02, shape) if len(shape) > 1 else np.zeros(shape)
        else:
            bound = 1.0 / np.sqrt(_fan_in(sibling if leaf == "bias" and sibling else shape))
            a = rng.uniform(-bound, bound, shape)
        out[name] = a.astype(np.float32)
    return out


def fill_state_dict(model, arrays: dict, to_numpy) -> dict:
    """The model's full state_dict as NumPy arrays, parameters replaced by `arrays`.

    `arrays` is keyed by the names of `model.named_parameters()` (distinct parameters); a
    state_dict key that aliases one of them (tied weights) gets the same array; buffers keep
    the model's own values. `to_numpy(tensor)` converts the library's tensor."""
    by_identity = {id(p): arrays[name] for name, p in model.named_parameters()}
    state = {}
    for key, value in model.state_dict(keep_vars=True).items():
        if id(value) in by_identity:
            state[key] = by_identity[id(value)]
        else:
            state[key] = to_numpy(value)
    return state


def digest(state: dict) -> str:
    """SHA-256 over the names, shapes and float32 bytes of a state dict (order-independent)."""
    h = hashlib.sha256()
    for key in sorted(state):
        a = np.ascontiguousarray(np.asarray(state[key], dtype=np.float32))
        h.update(key.encode())
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()
