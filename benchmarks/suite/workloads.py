"""The three training workloads (MLP, CNN, GPT), described once and run by either library.

A `Lib` is what a training loop needs from a library: its `nn`, `optim`, how to make a
tensor from a NumPy array, and how to cast a model. A `Workload` is a model builder, a
weight-init scheme, a batch source and a loss; `train_curve` runs one on one library. The
parity, speed and accuracy sections all build on these two, so "the same recipe" means the
same code.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from . import models, weights
from .batches import ImageBatches, TextBatches


@dataclass
class Lib:
    name: str                  # "minidl" or "torch"
    module: object

    @property
    def nn(self):
        return self.module.nn

    @property
    def optim(self):
        return self.module.optim

    @property
    def F(self):
        return self.module.nn.functional

    def tensor(self, array):
        if self.name == "torch":
            return self.module.from_numpy(np.ascontiguousarray(array))
        return self.module.tensor(array)

    def cast(self, model, dtype: str):
        return model.double() if dtype == "float64" else model.float()

    def state_to_numpy(self, model) -> dict:
        return {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}

    def load_numpy_state(self, model, state: dict, dtype: str) -> None:
        model.load_state_dict({k: self.tensor(np.asarray(v, dtype=dtype)
                                              if np.asarray(v).dtype.kind == "f" else v)
                               for k, v in state.items()})


def minidl_lib() -> Lib:
    import minidl
    import minidl.nn  # noqa: F401
    import minidl.optim  # noqa: F401
    return Lib("minidl", minidl)


def torch_lib(torch) -> Lib:
    return Lib("torch", torch)


@dataclass
class Workload:
    name: str
    build: Callable                    # lib -> model
    scheme: str                        # weights.draw_parameters scheme
    batch: Callable                    # (i, dtype) -> (x, y) NumPy arrays
    loss: Callable                     # (lib, model, x, y) -> scalar loss tensor
    optimizer: Callable                # (lib, params) -> optimizer
    data_source: str = ""
    data_missing: str = ""
    info: dict = field(default_factory=dict)


def classification_loss(lib, model, x, y):
    return lib.F.cross_entropy(model(lib.tensor(x)), lib.tensor(y))


def adam(lr=1e-3):
    return lambda lib, params: lib.optim.Adam(params, lr=lr)


def mlp_workload(batch_size: int = 64, data: ImageBatches | None = None) -> Workload:
    data = data or ImageBatches("mnist")

    def batch(i, dtype):
        x, y = data.batch(i, batch_size, flatten=True)
        return x.astype(dtype), y
    return Workload("MLP", lambda lib: models.mlp(lib.nn), "pytorch", batch,
                    classification_loss, adam(), data.source, data.missing,
                    {"batch_size": batch_size, "optimizer": "Adam(lr=1e-3)"})


def cnn_workload(batch_size: int = 64, data: ImageBatches | None = None) -> Workload:
    data = data or ImageBatches("mnist")

    def batch(i, dtype):
        x, y = data.batch(i, batch_size)
        return x.astype(dtype), y
    return Workload("CNN", lambda lib: models.cnn(lib.nn), "pytorch", batch,
                    classification_loss, adam(), data.source, data.missing,
                    {"batch_size": batch_size, "optimizer": "Adam(lr=1e-3)"})


def gpt_workload(batch_size: int | None = None, block_size: int | None = None,
                 preset: str = "benchmark") -> Workload:
    """The GPT of examples/gpt_model.py (raises models.GPTUnavailable when it is missing)."""
    spec = models.gpt_spec(preset, batch_size=batch_size, block_size=block_size)
    data = TextBatches(spec.block_size)

    def batch(i, dtype):
        return data.batch(i, spec.batch_size)

    return Workload("GPT", spec.build, "gpt2", batch, spec.loss, spec.optimizer,
                    data.source, data.missing, spec.info())


def initial_state(workload: Workload, lib: Lib, seed: int = 0) -> dict:
    """Identical starting weights (see weights.py), as NumPy float32, from `lib`'s model."""
    model = workload.build(lib)
    shapes = [(n, tuple(p.shape)) for n, p in model.named_parameters()]
    drawn = weights.draw_parameters(shapes, workload.scheme, seed)
    return weights.fill_state_dict(model, drawn, lambda t: t.detach().numpy().copy())


def make_model(workload: Workload, lib: Lib, state: dict, dtype: str):
    model = lib.cast(workload.build(lib), dtype)
    lib.load_numpy_state(model, state, dtype)
    return model


def train_curve(workload: Workload, lib: Lib, state: dict, dtype: str, steps: int,
                progress=None) -> list:
    """Loss at each of `steps` optimizer steps, from `state`, on batches 0..steps-1."""
    model = make_model(workload, lib, state, dtype)
    model.train()
    opt = workload.optimizer(lib, model.parameters())
    losses = []
    it = range(steps)
    if progress is not None:
        it = progress.bar(it, desc=f"{workload.name} {dtype} {lib.name}")
    for i in it:
        x, y = workload.batch(i, dtype)
        loss = workload.loss(lib, model, x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.item()))
    return losses
