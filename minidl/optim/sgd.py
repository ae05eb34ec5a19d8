"""SGD with momentum, dampening, Nesterov momentum, L2 weight decay and maximize (PyTorch's).

With g the gradient (negated if maximize, plus weight_decay * p if weight decay is on):

    b = g                                  on the first step (PyTorch: no dampening here)
    b = momentum * b + (1 - dampening) * g afterwards
    p -= lr * (g + momentum * b)           nesterov: look ahead along the momentum
    p -= lr * b                            otherwise (and p -= lr * g without momentum)

Note PyTorch's momentum form differs from the textbook v = mu*v - lr*g: lr multiplies the
buffer at use, so changing lr mid-training (a scheduler) rescales the whole momentum term.
"""
from __future__ import annotations

from .optimizer import Buckets, Optimizer, check_option, reject_unsupported


class SGD(Optimizer):
    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0,
                 nesterov=False, *, maximize=False, foreach=None, differentiable=False,
                 fused=None):
        reject_unsupported("SGD", differentiable=differentiable)
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening,
                        weight_decay=weight_decay, nesterov=nesterov, maximize=maximize,
                        foreach=foreach, differentiable=differentiable, fused=fused)
        super().__init__(params, defaults)

    def _check_group(self, group):
        check_option(group["lr"] >= 0, f"Invalid learning rate: {group['lr']}")
        check_option(group["momentum"] >= 0, f"Invalid momentum value: {group['momentum']}")
        check_option(group["weight_decay"] >= 0,
                     f"Invalid weight_decay value: {group['weight_decay']}")
        check_option(not group["nesterov"] or (group["momentum"] > 0
                                               and group["dampening"] == 0),
                     "Nesterov momentum requires a momentum and zero dampening "
                     f"(got momentum={group['momentum']}, dampening={group['dampening']})")

    def _step_group(self, group):
        momentum = group["momentum"]
        buckets = Buckets()
        for p, grad in self._params_with_grads(group):
            if momentum == 0:       # no state at all, as in PyTorch
                buckets.add(p, False, params=p._data, grads=grad)
                continue
            state = self.state[p]
            buf = state.get("momentum_buffer")
            first_step = buf is None
            if first_step:
                buf = state["momentum_buffer"] = self._new_buffer(p)
            buckets.add(p, first_step, params=p._data, grads=grad, momentum_buffers=buf._data)
        for b in buckets:
            b.be.fused.sgd_step(
                b.arrays["params"], b.arrays["grads"], b.arrays.get("momentum_buffers"),
                lr=group["lr"], momentum=momentum, dampening=group["dampening"],
                nesterov=group["nesterov"], weight_decay=group["weight_decay"],
                maximize=group["maximize"], first_step=b.key)
        buckets.finish()
