"""Logistic regression: one Linear unit, a sigmoid, binary cross-entropy and Adam.

The data are two Gaussian blobs in the plane; the model learns p(class 1 | x) = sigmoid(w.x + b)
and prints the learned probabilities for a few points across the boundary.

    python examples/logistic.py [--steps N]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

import minidl  # noqa: E402
import minidl.nn as nn  # noqa: E402
import minidl.optim as optim  # noqa: E402


def make_blobs(n: int = 400, seed: int = 0):
    """Class 0 around (-1, -1), class 1 around (1, 1), unit spread."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, size=n)
    centres = np.where(labels[:, None] == 1, 1.0, -1.0)
    points = centres + rng.standard_normal((n, 2))
    return minidl.tensor(points, dtype=minidl.float32), minidl.tensor(labels, dtype=minidl.float32)


def train(steps: int = 300, seed: int = 0, log_every: int = 50):
    minidl.manual_seed(seed)
    x, y = make_blobs(seed=seed)
    model = nn.Linear(2, 1)
    loss_fn = nn.BCELoss()
    opt = optim.Adam(model.parameters(), lr=0.05)
    losses = []
    for step in range(steps + 1):
        prob = model(x).sigmoid().squeeze(1)
        loss = loss_fn(prob, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if log_every and step % log_every == 0:
            print(f"step {step:4d}  loss {loss.item():.4f}")
    with minidl.no_grad():
        accuracy = ((model(x).sigmoid().squeeze(1) > 0.5).float() == y).float().mean().item()
    return model, losses, accuracy


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--steps", type=int, default=300)
    args = ap.parse_args()
    model, losses, accuracy = train(args.steps)
    probe = minidl.tensor([[-2.0, -2.0], [-0.5, -0.5], [0.0, 0.0], [0.5, 0.5], [2.0, 2.0]])
    with minidl.no_grad():
        probs = model(probe).sigmoid().squeeze(1)
    for point, p in zip(probe.tolist(), probs.tolist()):
        print(f"p(class 1 | x={point}) = {p:.3f}")
    print(f"training accuracy {accuracy:.3f}")
    # the Bayes-optimal boundary is x1 + x2 = 0; blobs one unit from it separate ~92% of points
    assert accuracy > 0.85, f"accuracy {accuracy:.3f} is too low"
    assert probs[0].item() < 0.1 and probs[-1].item() > 0.9
    assert losses[-1] < 0.6 * losses[0]


if __name__ == "__main__":
    main()
