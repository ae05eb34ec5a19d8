"""The smallest complete training loop, with nothing but tensors and autograd.

A two-layer network learns y = sin(3x) on [-1, 1] with plain gradient descent. Every piece
of a real training step is here: forward, loss, backward, update under no_grad, zero the grads.

    python examples/tiny_regression.py [--steps N]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import minidl  # noqa: E402


def train(steps: int = 600, lr: float = 0.1, seed: int = 0, log_every: int = 100):
    minidl.manual_seed(seed)
    x = minidl.linspace(-1, 1, 256).reshape(-1, 1)
    y = (x * 3).sin()
    hidden = 32
    w1 = (minidl.randn(1, hidden) * 1.0).requires_grad_()
    b1 = minidl.zeros(hidden, requires_grad=True)
    w2 = (minidl.randn(hidden, 1) * (1 / hidden ** 0.5)).requires_grad_()
    b2 = minidl.zeros(1, requires_grad=True)
    params = [w1, b1, w2, b2]
    losses = []
    for step in range(steps + 1):
        pred = (x @ w1 + b1).tanh() @ w2 + b2
        loss = ((pred - y) ** 2).mean()
        loss.backward()
        with minidl.no_grad():
            for p in params:
                p -= lr * p.grad
                p.grad = None
        losses.append(loss.item())
        if log_every and step % log_every == 0:
            print(f"step {step:4d}  loss {loss.item():.5f}")
    return losses


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--steps", type=int, default=600)
    args = ap.parse_args()
    losses = train(args.steps)
    assert losses[-1] < 0.2 * losses[0], f"loss did not fall enough: {losses[0]:.4f} -> {losses[-1]:.4f}"
    print(f"loss fell from {losses[0]:.4f} to {losses[-1]:.4f}")


if __name__ == "__main__":
    main()
