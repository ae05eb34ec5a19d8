"""Adam and AdamW (PyTorch's formulas, including amsgrad and maximize).

Per parameter, with t the step count (1 on the first update) and g the gradient (negated if
maximize; for Adam plus weight_decay * p, the classic L2 penalty):

    m = beta1 * m + (1 - beta1) * g            running mean of gradients
    v = beta2 * v + (1 - beta2) * g^2          running mean of squared gradients
    m and v start at 0, so early on they are too small by the factors 1 - beta^t; the
    update divides that back out:
    p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
    amsgrad: v_max = max(v_max, v) replaces v in the denominator (never-shrinking steps).

AdamW ("decoupled weight decay", Loshchilov & Hutter): instead of adding wd * p to the
gradient, where the adaptive denominator would scale the decay down for parameters with large
gradients, shrink the weights directly before the step: p *= 1 - lr * weight_decay.
Its default weight_decay is 0.01 (Adam's is 0).

Each group is one fused multi-tensor call `be.fused.adam_step(...)`. Parameters whose step
counts differ (one skipped some steps with grad None) have different bias corrections, so
they go into separate calls, one per distinct count.
"""
from __future__ import annotations

from .optimizer import Buckets, Optimizer, check_option, reject_unsupported


class Adam(Optimizer):
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 amsgrad=False, *, foreach=None, maximize=False, capturable=False,
                 differentiable=False, fused=None, decoupled_weight_decay=False):
        reject_unsupported(type(self).__name__, differentiable=differentiable,
                           capturable=capturable)
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                        amsgrad=amsgrad, maximize=maximize, foreach=foreach,
                        capturable=capturable, differentiable=differentiable, fused=fused,
                        decoupled_weight_decay=decoupled_weight_decay)
        super().__init__(params, defaults)

    def _check_group(self, group):
        betas = group["betas"]
        check_option(len(betas) == 2, f"betas must be a pair (beta1, beta2), got {betas!r}")
        check_option(group["lr"] >= 0, f"Invalid learning rate: {group['lr']}")
        check_option(group["eps"] >= 0, f"Invalid epsilon value: {group['eps']}")
        check_option(0.0 <= betas[0] < 1.0, f"Invalid beta parameter at index 0: {betas[0]}")
        check_option(0.0 <= betas[1] < 1.0, f"Invalid beta parameter at index 1: {betas[1]}")
        check_option(group["weight_decay"] >= 0,
                     f"Invalid weight_decay value: {group['weight_decay']}")

    def _step_group(self, group):
        amsgrad = group["amsgrad"]
        buckets = Buckets()
        for p, grad in self._params_with_grads(group):
            state = self.state[p]
            if not state:                        # lazy: state exists once a grad was seen
                state["step"] = 0
                state["exp_avg"] = self._new_buffer(p)
                state["exp_avg_sq"] = self._new_buffer(p)
            if amsgrad and "max_exp_avg_sq" not in state:
                state["max_exp_avg_sq"] = self._new_buffer(p)
            state["step"] += 1
            arrays = dict(params=p._data, grads=grad, exp_avgs=state["exp_avg"]._data,
                          exp_avg_sqs=state["exp_avg_sq"]._data)
            if amsgrad:
                arrays["max_exp_avg_sqs"] = state["max_exp_avg_sq"]._data
            buckets.add(p, state["step"], **arrays)
        beta1, beta2 = group["betas"]
        for b in buckets:
            b.be.fused.adam_step(
                b.arrays["params"], b.arrays["grads"], b.arrays["exp_avgs"],
                b.arrays["exp_avg_sqs"], b.arrays.get("max_exp_avg_sqs"), step=b.key,
                lr=group["lr"], beta1=beta1, beta2=beta2, eps=group["eps"],
                weight_decay=group["weight_decay"],
                decoupled=group["decoupled_weight_decay"], amsgrad=amsgrad,
                maximize=group["maximize"])
        buckets.finish()


class AdamW(Adam):
    """Adam with decoupled weight decay (default 0.01); see the module docstring."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False, *, maximize=False, foreach=None, capturable=False,
                 differentiable=False, fused=None):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad, foreach=foreach, maximize=maximize,
                         capturable=capturable, differentiable=differentiable, fused=fused,
                         decoupled_weight_decay=True)

    def _check_group(self, group):
        super()._check_group(group)
        group["decoupled_weight_decay"] = True   # AdamW is always decoupled (as PyTorch)
