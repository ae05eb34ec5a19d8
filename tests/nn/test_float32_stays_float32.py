"""float32 training steps must not compute in float64 anywhere inside minidl.

A float64 temporary (from a NumPy float64 scalar, an np.sum without dtype on an int count, a
stray `np.float64(...)` constant) doubles the memory traffic of that op and silently changes
its rounding. The check: run whole float32 training steps while a profile hook looks at every
minidl Python frame as it returns, at its local variables and its return value, and record any
float64 array or Tensor. (Arrays that never get a name inside minidl are not seen, but any
float64 operand upstream would make the named result float64 too.)
"""
from __future__ import annotations

import sys

import numpy as np
import pytest

import minidl
import minidl.nn as nn
import minidl.nn.functional as F


def _float64_values(values):
    for v in values:
        if isinstance(v, (tuple, list)):
            yield from _float64_values(v)
        data = getattr(v, "_data", v)
        if isinstance(data, np.ndarray) and data.dtype == np.float64:
            yield data.shape


def float64_sightings(fn):
    """Run fn(); return {'file:function': shape} for minidl frames that held float64 arrays."""
    seen = {}

    def hook(frame, event, arg):
        if event != "return" or "/minidl/" not in frame.f_code.co_filename:
            return
        for shape in _float64_values(list(frame.f_locals.values()) + [arg]):
            where = f"{frame.f_code.co_filename.split('/minidl/')[-1]}:{frame.f_code.co_name}"
            seen.setdefault(where, shape)

    sys.setprofile(hook)
    try:
        fn()
    finally:
        sys.setprofile(None)
    return seen


def mlp():
    return nn.Sequential(nn.Linear(20, 16), nn.ReLU(), nn.Dropout(0.1), nn.Linear(16, 16),
                         nn.GELU(approximate="tanh"), nn.LayerNorm(16), nn.Linear(16, 5))


def cnn():
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Conv2d(4, 6, 3), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 5))


STEPS = [
    ("mlp_adam", mlp, (8, 20), lambda p: minidl.optim.Adam(p, lr=1e-3)),
    ("mlp_adamw", mlp, (8, 20), lambda p: minidl.optim.AdamW(p, lr=1e-3)),
    ("cnn_sgd", cnn, (4, 3, 8, 8), lambda p: minidl.optim.SGD(p, lr=0.1, momentum=0.9)),
    ("cnn_adam", cnn, (4, 3, 8, 8), lambda p: minidl.optim.Adam(p, lr=1e-3)),
]


@pytest.mark.parametrize("name, build, shape, make_opt", STEPS, ids=[s[0] for s in STEPS])
def test_float32_training_step_has_no_float64(name, build, shape, make_opt):
    minidl.manual_seed(0)
    model = build()
    opt = make_opt(model.parameters())
    x = minidl.randn(*shape)
    y = minidl.tensor(np.arange(shape[0]) % 5)

    def step():
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y, label_smoothing=0.1)
        loss.backward()
        opt.step()

    step()  # first step: lazy optimizer state, kernel compilation
    assert float64_sightings(step) == {}


def test_the_check_sees_a_float64_temporary():
    """The hook must catch a float64 value inside minidl (here: an explicit upcast)."""
    x = minidl.randn(3, 4, requires_grad=True)
    seen = float64_sightings(lambda: x.double().sum().backward())
    assert seen
