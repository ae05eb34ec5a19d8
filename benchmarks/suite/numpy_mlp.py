"""The NumPy floor: the MNIST MLP (784-512-256-10, ReLU, mean cross-entropy, Adam) written by
hand in plain NumPy -- no autograd, no Python object per op, buffers reused.

It is what an engine on NumPy could reach if its bookkeeping cost nothing, so minidl's MLP
step over this step is the price of minidl's generality. Weights use nn.Linear's layout
(out_features, in_features) and names ("0.weight", ...), so a state_dict moves in unchanged.

The maths of one step, batch of N rows x, integer labels y:
    z1 = x W1^T + b1,  a1 = relu(z1)
    z2 = a1 W2^T + b2, a2 = relu(z2)
    z3 = a2 W3^T + b3                                  (logits)
    loss = mean_i [ logsumexp(z3_i) - z3_i[y_i] ]
Backward, with p = softmax(z3):
    dz3 = (p - onehot(y)) / N
    dW3 = dz3^T a2, db3 = sum_rows dz3, da2 = dz3 W3
    dz2 = da2 * [z2 > 0]  ... and the same for layer 1 (dx is not needed).
Adam (PyTorch's formula, step t counted from 1):
    m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
    p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
"""
from __future__ import annotations

import math

import numpy as np

NAMES = ["0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"]


class NumpyMLP:
    def __init__(self, state: dict, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 dtype=np.float32):
        self.params = [np.array(state[name], dtype=dtype) for name in NAMES]
        self.grads = [np.zeros_like(p) for p in self.params]
        self.m = [np.zeros_like(p) for p in self.params]
        self.v = [np.zeros_like(p) for p in self.params]
        self.tmp = [np.empty_like(p) for p in self.params]   # Adam's one scratch buffer each
        self.lr, (self.b1, self.b2), self.eps = lr, betas, eps
        self.t = 0

    def forward(self, x):
        """Logits and the activations the backward pass needs."""
        w1, b1, w2, b2, w3, b3 = self.params
        z1 = x @ w1.T
        z1 += b1
        a1 = np.maximum(z1, 0, out=z1)          # relu in place: a1 > 0 exactly where z1 > 0
        z2 = a1 @ w2.T
        z2 += b2
        a2 = np.maximum(z2, 0, out=z2)
        z3 = a2 @ w3.T
        z3 += b3
        return z3, (x, a1, a2)

    def loss_and_grads(self, x, y) -> float:
        """Mean cross-entropy of the batch; fills self.grads."""
        logits, (x, a1, a2) = self.forward(x)
        n = len(y)
        shifted = logits - logits.max(axis=1, keepdims=True)   # logsumexp without overflow
        p = np.exp(shifted)
        total = p.sum(axis=1, keepdims=True)
        rows = np.arange(n)
        loss = float(np.mean(np.log(total[:, 0]) - shifted[rows, y]))
        p /= total
        p[rows, y] -= 1.0
        dz = p
        dz *= 1.0 / n                                          # d(mean)/d(logits)
        gw1, gb1, gw2, gb2, gw3, gb3 = self.grads
        _, _, w2, _, w3, _ = self.params
        np.matmul(dz.T, a2, out=gw3)
        np.sum(dz, axis=0, out=gb3)
        da = dz @ w3
        da *= a2 > 0                                           # relu' (0 where the unit was off)
        np.matmul(da.T, a1, out=gw2)
        np.sum(da, axis=0, out=gb2)
        da = da @ w2
        da *= a1 > 0
        np.matmul(da.T, x, out=gw1)
        np.sum(da, axis=0, out=gb1)
        return loss

    def adam_step(self) -> None:
        self.t += 1
        step_size = self.lr / (1 - self.b1 ** self.t)
        root_bc2 = math.sqrt(1 - self.b2 ** self.t)
        for p, g, m, v, tmp in zip(self.params, self.grads, self.m, self.v, self.tmp):
            m *= self.b1
            np.multiply(g, 1 - self.b1, out=tmp)
            m += tmp
            v *= self.b2
            np.multiply(g, g, out=tmp)
            tmp *= 1 - self.b2
            v += tmp
            np.sqrt(v, out=tmp)
            tmp /= root_bc2
            tmp += self.eps
            np.divide(m, tmp, out=tmp)
            tmp *= step_size
            p -= tmp

    def step(self, x, y) -> float:
        loss = self.loss_and_grads(x, y)
        self.adam_step()
        return loss

    def state_dict(self) -> dict:
        return dict(zip(NAMES, self.params))
