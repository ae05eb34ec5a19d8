"""RMSprop (PyTorch's formulas: alpha, eps, weight_decay, momentum, centered, maximize).

With g the gradient (negated if maximize, plus weight_decay * p if weight decay is on):

    s = alpha * s + (1 - alpha) * g^2           running mean of squared gradients
    centered:  a = alpha * a + (1 - alpha) * g  running mean of gradients, and the
               denominator uses the variance s - a^2 instead of the raw second moment
    denom = sqrt(s or s - a^2) + eps            (eps OUTSIDE the sqrt, as PyTorch; TensorFlow
                                                 puts it inside, which changes early steps)
    momentum > 0:  b = momentum * b + g / denom;  p -= lr * b
    otherwise:     p -= lr * g / denom
"""
from __future__ import annotations

from .optimizer import Buckets, Optimizer, check_option, reject_unsupported


class RMSprop(Optimizer):
    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0,
                 centered=False, capturable=False, foreach=None, maximize=False,
                 differentiable=False):
        reject_unsupported("RMSprop", differentiable=differentiable, capturable=capturable)
        defaults = dict(lr=lr, momentum=momentum, alpha=alpha, eps=eps, centered=centered,
                        weight_decay=weight_decay, capturable=capturable, foreach=foreach,
                        maximize=maximize, differentiable=differentiable)
        super().__init__(params, defaults)

    def _check_group(self, group):
        check_option(group["lr"] >= 0, f"Invalid learning rate: {group['lr']}")
        check_option(group["eps"] >= 0, f"Invalid epsilon value: {group['eps']}")
        check_option(group["momentum"] >= 0, f"Invalid momentum value: {group['momentum']}")
        check_option(group["weight_decay"] >= 0,
                     f"Invalid weight_decay value: {group['weight_decay']}")
        check_option(group["alpha"] >= 0, f"Invalid alpha value: {group['alpha']}")

    def _step_group(self, group):
        momentum, centered = group["momentum"], group["centered"]
        buckets = Buckets()
        for p, grad in self._params_with_grads(group):
            state = self.state[p]
            if not state:
                state["step"] = 0
                state["square_avg"] = self._new_buffer(p)
            if momentum > 0 and "momentum_buffer" not in state:
                state["momentum_buffer"] = self._new_buffer(p)
            if centered and "grad_avg" not in state:
                state["grad_avg"] = self._new_buffer(p)
            state["step"] += 1   # kept for PyTorch's state layout; the formula does not use it
            arrays = dict(params=p._data, grads=grad, square_avgs=state["square_avg"]._data)
            if centered:
                arrays["grad_avgs"] = state["grad_avg"]._data
            if momentum > 0:
                arrays["momentum_bufs"] = state["momentum_buffer"]._data
            buckets.add(p, None, **arrays)
        for b in buckets:
            b.be.fused.rmsprop_step(
                b.arrays["params"], b.arrays["grads"], b.arrays["square_avgs"],
                b.arrays.get("grad_avgs"), b.arrays.get("momentum_bufs"), lr=group["lr"],
                alpha=group["alpha"], eps=group["eps"], weight_decay=group["weight_decay"],
                momentum=momentum, centered=centered, maximize=group["maximize"])
        buckets.finish()
