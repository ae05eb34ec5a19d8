"""Adagrad (PyTorch's formulas: lr_decay, weight_decay, initial_accumulator_value, eps).

With t the step count (1 on the first update) and g the gradient (negated if maximize, plus
weight_decay * p if weight decay is on):

    clr = lr / (1 + (t - 1) * lr_decay)      learning-rate decay by step count
    s += g^2                                 the sum of every squared gradient so far
    p -= clr * g / (sqrt(s) + eps)

Each coordinate's step shrinks as its gradients accumulate: rarely-updated coordinates keep
large steps (why Adagrad suits sparse features), but on long runs every step goes to zero.
As in PyTorch, the state (step 0, sum = initial_accumulator_value) exists from construction.
One deliberate difference: a param group's own 'initial_accumulator_value' is honoured
(PyTorch fills every group's sums with the constructor's value and ignores the group's).
"""
from __future__ import annotations

from .optimizer import Buckets, Optimizer, check_option, reject_unsupported


class Adagrad(Optimizer):
    def __init__(self, params, lr=1e-2, lr_decay=0, weight_decay=0,
                 initial_accumulator_value=0, eps=1e-10, foreach=None, *, maximize=False,
                 differentiable=False, fused=None):
        reject_unsupported("Adagrad", differentiable=differentiable)
        defaults = dict(lr=lr, lr_decay=lr_decay, eps=eps, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value, foreach=foreach,
                        maximize=maximize, differentiable=differentiable, fused=fused)
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                self._init_state(p, group)

    def _init_state(self, p, group):
        state = self.state[p]
        state["step"] = 0
        state["sum"] = self._new_buffer(p, group["initial_accumulator_value"])
        return state

    def _check_group(self, group):
        check_option(group["lr"] >= 0, f"Invalid learning rate: {group['lr']}")
        check_option(group["lr_decay"] >= 0, f"Invalid lr_decay value: {group['lr_decay']}")
        check_option(group["weight_decay"] >= 0,
                     f"Invalid weight_decay value: {group['weight_decay']}")
        check_option(group["initial_accumulator_value"] >= 0,
                     "Invalid initial_accumulator_value value: "
                     f"{group['initial_accumulator_value']}")
        check_option(group["eps"] >= 0, f"Invalid epsilon value: {group['eps']}")

    def _step_group(self, group):
        buckets = Buckets()
        for p, grad in self._params_with_grads(group):
            state = self.state[p]
            if not state:                # a group added after construction
                state = self._init_state(p, group)
            state["step"] += 1
            buckets.add(p, state["step"], params=p._data, grads=grad,
                        state_sums=state["sum"]._data)
        for b in buckets:
            b.be.fused.adagrad_step(
                b.arrays["params"], b.arrays["grads"], b.arrays["state_sums"], step=b.key,
                lr=group["lr"], lr_decay=group["lr_decay"], weight_decay=group["weight_decay"],
                eps=group["eps"], maximize=group["maximize"])
        buckets.finish()
