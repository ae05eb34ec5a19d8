"""The benchmark models, written once for both libraries.

`mlp(nn)` and `cnn(nn)` take the library's `nn` namespace (minidl.nn or torch.nn): the same
lines build both models, with the same parameter names, so a state_dict moves between them
unchanged. They are the models of examples/mnist_mlp.py and examples/mnist_cnn.py.

The GPT comes from examples/gpt_model.py (the attention example's model); `gpt_pair` adapts
it to what the parity and speed sections need, and raises GPTUnavailable with the reason
when that file or what it must offer is missing.
"""
from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass

from .context import ROOT


def mlp(nn):
    """784-512-256-10 with ReLU: the MNIST MLP."""
    return nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(),
                         nn.Linear(256, 10))


def cnn(nn):
    """Conv32-Pool-Conv64-Pool-128-10: the MNIST CNN (28 -> 26 -> 13 -> 11 -> 5; 64*5*5 = 1600)."""
    return nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(1600, 128), nn.ReLU(), nn.Linear(128, 10))


class GPTUnavailable(RuntimeError):
    """examples/gpt_model.py is missing or does not offer what the benchmarks need."""


def gpt_module():
    """examples/gpt_model.py as a module (examples/ is not a package)."""
    folder = str(ROOT / "examples")
    if folder not in sys.path:
        sys.path.insert(0, folder)
    try:
        return importlib.import_module("gpt_model")
    except ImportError as err:
        raise GPTUnavailable(f"examples/gpt_model.py could not be imported: {err}") from err


# Presets: "benchmark" is PERFORMANCE.md's GPT step (4 layers, d 128, 4 heads, T 128, batch
# 32); "parity" the same model on smaller batches (8 x 64), since 100 steps in float64 on both
# libraries must fit in the default run. AdamW at lr 3e-4: at 1e-3 this model's loss spikes
# near step 15 and PyTorch float32 itself departs from PyTorch float64 by ~1e-2 there -- a
# chaotic recipe, useless for telling rounding from bugs; at 3e-4 the two stay within 1e-6.
GPT_PRESETS = {"benchmark": {"batch_size": 32, "block_size": 128},
               "parity": {"batch_size": 8, "block_size": 64}}
GPT_OPTIM = {"lr": 3e-4, "betas": (0.9, 0.99), "weight_decay": 0.1}


@dataclass
class GPTSpec:
    module: object                    # examples/gpt_model.py
    config: dict                      # GPTConfig fields
    batch_size: int
    block_size: int

    def build(self, lib):
        cls = self.module.make_gpt_class(lib.module)
        return cls(self.module.GPTConfig(**self.config))

    def loss(self, lib, model, x, y):
        _, loss = model(lib.tensor(x), lib.tensor(y))
        return loss

    def optimizer(self, lib, params):
        return lib.optim.AdamW(params, **GPT_OPTIM)

    def info(self) -> dict:
        return {"batch_size": self.batch_size, "block_size": self.block_size,
                "config": self.config,
                "optimizer": "AdamW(lr=3e-4, betas=(0.9, 0.99), weight_decay=0.1)"}


def gpt_spec(preset: str = "benchmark", batch_size=None, block_size=None) -> GPTSpec:
    """How to build, feed and train the GPT of examples/gpt_model.py."""
    module = gpt_module()
    for needed in ("make_gpt_class", "GPTConfig"):
        if not hasattr(module, needed):
            raise GPTUnavailable(f"{module.__file__} has no {needed}")
    sizes = dict(GPT_PRESETS[preset])
    sizes["batch_size"] = batch_size or sizes["batch_size"]
    sizes["block_size"] = block_size or sizes["block_size"]
    config = dict(module.GPTConfig().to_dict()) if hasattr(module.GPTConfig, "to_dict") else {}
    config["block_size"] = max(config.get("block_size", 0), sizes["block_size"])
    config["dropout"] = 0.0          # identical steps on both sides need no randomness
    return GPTSpec(module, config, sizes["batch_size"], sizes["block_size"])
