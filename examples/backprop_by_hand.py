"""Backpropagation written out by hand, then checked against autograd.

The classic two-layer sigmoid network with a squared-error loss, trained by plain gradient
descent on XOR. For a batch X (N, 2), targets T (N, 1):

    H = sigmoid(X W1 + b1)          hidden layer, (N, 4)
    Y = sigmoid(H W2 + b2)          output, (N, 1)
    L = mean((Y - T)^2)

The chain rule, one layer at a time (sigmoid'(z) = s (1 - s)):

    dL/dY  = 2 (Y - T) / N
    dL/dZ2 = dL/dY * Y (1 - Y)               dL/dW2 = H^T dL/dZ2     dL/db2 = sum_rows dL/dZ2
    dL/dH  = dL/dZ2 W2^T
    dL/dZ1 = dL/dH * H (1 - H)               dL/dW1 = X^T dL/dZ1     dL/db1 = sum_rows dL/dZ1

Every step the hand-written gradients are compared with minidl's autograd.

    python examples/backprop_by_hand.py [--steps N]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

import minidl  # noqa: E402


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def hand_gradients(X, T, W1, b1, W2, b2):
    n = X.shape[0]
    H = sigmoid(X @ W1 + b1)
    Y = sigmoid(H @ W2 + b2)
    loss = np.mean((Y - T) ** 2)
    dY = 2 * (Y - T) / n
    dZ2 = dY * Y * (1 - Y)
    dW2, db2 = H.T @ dZ2, dZ2.sum(0)
    dH = dZ2 @ W2.T
    dZ1 = dH * H * (1 - H)
    dW1, db1 = X.T @ dZ1, dZ1.sum(0)
    return loss, (dW1, db1, dW2, db2)


def autograd_gradients(X, T, params):
    tensors = [minidl.tensor(p, dtype=minidl.float64, requires_grad=True) for p in params]
    W1, b1, W2, b2 = tensors
    x, t = minidl.tensor(X, dtype=minidl.float64), minidl.tensor(T, dtype=minidl.float64)
    y = ((x @ W1 + b1).sigmoid() @ W2 + b2).sigmoid()
    loss = ((y - t) ** 2).mean()
    loss.backward()
    return loss.item(), [p.grad.numpy() for p in tensors]


def train(steps: int = 3000, lr: float = 2.0, seed: int = 0, check_every: int = 1):
    rng = np.random.default_rng(seed)
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
    T = np.array([[0], [1], [1], [0]], dtype=np.float64)
    params = [rng.standard_normal((2, 4)), np.zeros(4), rng.standard_normal((4, 1)), np.zeros(1)]
    worst = 0.0
    losses = []
    for step in range(steps):
        loss, grads = hand_gradients(X, T, *params)
        if check_every and step % check_every == 0:
            auto_loss, auto_grads = autograd_gradients(X, T, params)
            assert abs(auto_loss - loss) < 1e-12
            for g, a in zip(grads, auto_grads):
                worst = max(worst, float(np.max(np.abs(g - a))))
        params = [p - lr * g for p, g in zip(params, grads)]
        losses.append(loss)
    return losses, worst, params


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--steps", type=int, default=3000)
    args = ap.parse_args()
    losses, worst, params = train(args.steps, check_every=10)
    print(f"loss {losses[0]:.4f} -> {losses[-1]:.4f}; largest hand-vs-autograd gradient "
          f"difference {worst:.2e}")
    assert worst < 1e-12, "hand-written and automatic gradients disagree"
    assert losses[-1] < 0.05, "XOR was not learned"


if __name__ == "__main__":
    main()
