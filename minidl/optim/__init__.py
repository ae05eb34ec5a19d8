"""Floor 5: optimizers and learning-rate schedules, with PyTorch's names and semantics.

    opt = minidl.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.1)
    sched = minidl.optim.lr_scheduler.warmup_cosine(opt, warmup_steps=100, total_steps=5000)
    for x, y in loader:
        loss = loss_fn(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()          # one fused multi-tensor update per param group
        sched.step()

Each optimizer's formulas are written out in its file's docstring; the arithmetic itself is
the device's fused op (`minidl/backend/*/optim.py`).
"""
from . import lr_scheduler
from .adagrad import Adagrad
from .adam import Adam, AdamW
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "lr_scheduler"]
