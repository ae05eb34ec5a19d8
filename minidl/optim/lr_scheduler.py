"""Learning-rate schedulers: the same classes, arguments and lr sequences as PyTorch's.

A scheduler rewrites `group['lr']` of its optimizer's param groups each time `step()` is
called — once per epoch or once per batch, AFTER `optimizer.step()`:

    opt = minidl.optim.SGD(model.parameters(), lr=0.1)
    sched = minidl.optim.lr_scheduler.StepLR(opt, step_size=30, gamma=0.1)
    for epoch in range(100):
        train(...)            # calls opt.step()
        sched.step()

Creating a scheduler already takes its first step: `last_epoch` goes from -1 to 0 and the
groups get the schedule's value at 0 (e.g. LinearLR multiplies by start_factor at once). Each
group remembers its starting value in `group['initial_lr']`; `scheduler.base_lrs` lists them.

Resuming from a checkpoint: build the optimizer and the scheduler first, THEN load their
state_dicts. Building a scheduler rewrites the groups' lr (its first step), so a scheduler
built after `optimizer.load_state_dict` leaves the wrong lr in place until its next step.

Most schedules are written as PyTorch writes them, *recursively* (the new lr is computed from
the group's current lr, e.g. lr * gamma), which is why they compose with other changes to the
lr made between steps — and why their floating-point results match PyTorch's exactly.
"""
from __future__ import annotations

import math
import types
import warnings
from collections import Counter

from .optimizer import Optimizer


class LRScheduler:
    """Base class: keeps `last_epoch` (how many times step() ran since epoch 0) and
    `base_lrs`; subclasses implement `get_lr()` (the lrs for the new `last_epoch`)."""

    def __init__(self, optimizer, last_epoch: int = -1):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(optimizer).__name__} is not an Optimizer")
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            for i, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise KeyError(
                        f"param 'initial_lr' is not specified in param_groups[{i}] when "
                        f"resuming a scheduler with last_epoch={last_epoch}: load the "
                        "optimizer's state_dict first, or start with last_epoch=-1")
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._initial_step()

    def _initial_step(self) -> None:
        """The step taken by the constructor (some schedules treat it specially)."""
        self._step_count = 0
        self._is_initial = True
        try:
            self.step()
        finally:
            self._is_initial = False

    def get_lr(self) -> list:
        raise NotImplementedError

    def get_last_lr(self) -> list:
        """The learning rates the last step() set, one per param group."""
        return self._last_lr

    def step(self, epoch=None) -> None:
        self._step_count += 1
        if epoch is None:
            self.last_epoch += 1
            values = self.get_lr()
        else:
            warnings.warn("passing an epoch to scheduler.step() is deprecated (as in PyTorch); "
                          "call step() without arguments", UserWarning, stacklevel=2)
            self.last_epoch = epoch
            closed_form = getattr(self, "_get_closed_form_lr", None)
            values = closed_form() if closed_form is not None else self.get_lr()
        for group, lr in zip(self.optimizer.param_groups, values):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self) -> dict:
        """Every attribute except the optimizer (save the optimizer's state_dict too)."""
        return {k: v for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, state_dict: dict) -> None:
        self.__dict__.update(state_dict)

    def _group_lrs(self) -> list:
        return [group["lr"] for group in self.optimizer.param_groups]


class LambdaLR(LRScheduler):
    """lr = base_lr * lr_lambda(last_epoch); one function, or one per param group."""

    def __init__(self, optimizer, lr_lambda, last_epoch: int = -1):
        self.optimizer = optimizer
        n = len(optimizer.param_groups)
        if not isinstance(lr_lambda, (list, tuple)):
            self.lr_lambdas = [lr_lambda] * n
        else:
            if len(lr_lambda) != n:
                raise ValueError(f"Expected {n} lr_lambdas, but got {len(lr_lambda)}")
            self.lr_lambdas = list(lr_lambda)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        return [base_lr * lmbda(self.last_epoch)
                for lmbda, base_lr in zip(self.lr_lambdas, self.base_lrs)]

    def state_dict(self):
        """Plain functions and lambdas cannot be saved (they are code); callable objects
        save their attributes, so a schedule object survives a checkpoint."""
        state = {k: v for k, v in self.__dict__.items() if k not in ("optimizer", "lr_lambdas")}
        state["lr_lambdas"] = [None if isinstance(fn, types.FunctionType) else dict(fn.__dict__)
                               for fn in self.lr_lambdas]
        return state

    def load_state_dict(self, state_dict):
        state = dict(state_dict)
        lr_lambdas = state.pop("lr_lambdas")
        self.__dict__.update(state)
        for fn, saved in zip(self.lr_lambdas, lr_lambdas):
            if saved is not None:
                fn.__dict__.update(saved)


class StepLR(LRScheduler):
    """Multiply the lr by gamma every step_size epochs."""

    def __init__(self, optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1):
        self.step_size = step_size
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return self._group_lrs()
        return [lr * self.gamma for lr in self._group_lrs()]

    def _get_closed_form_lr(self):
        return [base_lr * self.gamma ** (self.last_epoch // self.step_size)
                for base_lr in self.base_lrs]


class MultiStepLR(LRScheduler):
    """Multiply the lr by gamma at each milestone epoch (twice if listed twice)."""

    def __init__(self, optimizer, milestones, gamma: float = 0.1, last_epoch: int = -1):
        self.milestones = Counter(milestones)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        if self.last_epoch not in self.milestones:
            return self._group_lrs()
        factor = self.gamma ** self.milestones[self.last_epoch]
        return [lr * factor for lr in self._group_lrs()]

    def _get_closed_form_lr(self):
        passed = sum(n for m, n in self.milestones.items() if m <= self.last_epoch)
        return [base_lr * self.gamma ** passed for base_lr in self.base_lrs]


class ExponentialLR(LRScheduler):
    """Multiply the lr by gamma every epoch."""

    def __init__(self, optimizer, gamma: float, last_epoch: int = -1):
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        if self._is_initial:
            return self._group_lrs()
        return [lr * self.gamma for lr in self._group_lrs()]

    def _get_closed_form_lr(self):
        return [base_lr * self.gamma ** self.last_epoch for base_lr in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    """lr_t = eta_min + (base_lr - eta_min) * (1 + cos(pi * t / T_max)) / 2.

    Computed recursively, as PyTorch does: lr_t = eta_min + (lr_{t-1} - eta_min) *
    (1 + cos(pi t/T)) / (1 + cos(pi (t-1)/T)), so changes made to the lr between steps are
    carried along. Past T_max the curve keeps going (back up towards base_lr, period 2*T_max).
    """

    def __init__(self, optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1):
        self.T_max = T_max
        self.eta_min = eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        t, T, eta_min = self.last_epoch, self.T_max, self.eta_min
        if self._is_initial:
            return self._group_lrs()
        if self._step_count == 1 and t > 0:      # resumed with last_epoch: closed form
            return [eta_min + (base_lr - eta_min) * (1 + math.cos(t * math.pi / T)) / 2
                    for base_lr in self.base_lrs]
        if (t - 1 - T) % (2 * T) == 0:           # at the trough the ratio below is 0/0
            return [lr + (base_lr - eta_min) * (1 - math.cos(math.pi / T)) / 2
                    for base_lr, lr in zip(self.base_lrs, self._group_lrs())]
        return [(1 + math.cos(math.pi * t / T)) / (1 + math.cos(math.pi * (t - 1) / T))
                * (lr - eta_min) + eta_min for lr in self._group_lrs()]

    def _get_closed_form_lr(self):
        return [self.eta_min + (base_lr - self.eta_min)
                * (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2
                for base_lr in self.base_lrs]


class LinearLR(LRScheduler):
    """Multiply base_lr by a factor going linearly from start_factor to end_factor over
    total_iters steps, then keep it (the classic linear warm-up when end_factor=1)."""

    def __init__(self, optimizer, start_factor: float = 1.0 / 3, end_factor: float = 1.0,
                 total_iters: int = 5, last_epoch: int = -1):
        if start_factor > 1.0 or start_factor <= 0:
            raise ValueError("Starting multiplicative factor expected to be greater than 0 and "
                             f"less or equal to 1, got start_factor={start_factor}")
        if end_factor > 1.0 or end_factor < 0:
            raise ValueError("Ending multiplicative factor expected to be between 0 and 1, "
                             f"got end_factor={end_factor}")
        self.start_factor = start_factor
        self.end_factor = end_factor
        self.total_iters = total_iters
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        if self.last_epoch == 0:
            return [lr * self.start_factor for lr in self._group_lrs()]
        if self._is_initial or self.last_epoch > self.total_iters:
            return self._group_lrs()
        # ratio of consecutive factors: f_t / f_{t-1}, with f_t = start + (end-start) t / T
        delta = self.end_factor - self.start_factor
        ratio = 1.0 + delta / (self.total_iters * self.start_factor
                               + (self.last_epoch - 1) * delta)
        return [lr * ratio for lr in self._group_lrs()]

    def _get_closed_form_lr(self):
        return [base_lr * (self.start_factor + (self.end_factor - self.start_factor)
                           * min(self.total_iters, self.last_epoch) / self.total_iters)
                for base_lr in self.base_lrs]


class _WarmupCosineFactor:
    """The factor of `warmup_cosine` as a callable object, so LambdaLR's state_dict keeps its
    settings (plain lambdas cannot be saved)."""

    def __init__(self, warmup_steps: int, total_steps: int, min_lr_ratio: float):
        self.warmup_steps = warmup_steps
        self.total_steps = total_steps
        self.min_lr_ratio = min_lr_ratio

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return step / self.warmup_steps
        decay_steps = max(1, self.total_steps - self.warmup_steps)
        progress = min(1.0, (step - self.warmup_steps) / decay_steps)
        cosine = 0.5 * (1.0 + math.cos(math.pi * progress))
        return self.min_lr_ratio + (1.0 - self.min_lr_ratio) * cosine


def warmup_cosine(optimizer, warmup_steps: int, total_steps: int,
                  min_lr_ratio: float = 0.0, last_epoch: int = -1) -> LambdaLR:
    """Linear warm-up, then cosine decay: the usual schedule for transformers. Step it once
    per batch. For step t (the scheduler's last_epoch) the lr is base_lr times

        t / warmup_steps                                   for t < warmup_steps
        r + (1 - r) * (1 + cos(pi * p)) / 2,  p = (t - warmup_steps) / (total_steps -
                                              warmup_steps), clipped to [0, 1]   afterwards

    with r = min_lr_ratio: the lr rises from 0 to base_lr over warmup_steps, falls along a
    half cosine to min_lr_ratio * base_lr at total_steps, and stays there. (This is the
    formula of Hugging Face's `get_cosine_schedule_with_warmup`, with a floor.) Why warm up:
    Adam's second-moment estimates are noisy for the first steps, and large early updates can
    push a transformer into a bad region it does not recover from.

    Returns a LambdaLR, so it saves and loads like any scheduler.
    """
    if not isinstance(warmup_steps, int) or not isinstance(total_steps, int) \
            or not 0 <= warmup_steps <= total_steps or total_steps < 1:
        raise ValueError("warmup_cosine expects integers 0 <= warmup_steps <= total_steps and "
                         f"total_steps >= 1, got warmup_steps={warmup_steps!r}, "
                         f"total_steps={total_steps!r}")
    if not 0.0 <= min_lr_ratio <= 1.0:
        raise ValueError(f"warmup_cosine expects 0 <= min_lr_ratio <= 1, got {min_lr_ratio!r}")
    factor = _WarmupCosineFactor(warmup_steps, total_steps, float(min_lr_ratio))
    return LambdaLR(optimizer, factor, last_epoch=last_epoch)


from .one_cycle import OneCycleLR  # noqa: E402  (it builds on LRScheduler above)

__all__ = ["LRScheduler", "LambdaLR", "StepLR", "MultiStepLR", "ExponentialLR",
           "CosineAnnealingLR", "LinearLR", "OneCycleLR", "warmup_cosine"]
