"""The small examples run in CI in short modes and must reach their own targets."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))

import backprop_by_hand  # noqa: E402
import logistic  # noqa: E402
import tiny_regression  # noqa: E402


def test_tiny_regression_loss_falls():
    losses = tiny_regression.train(steps=300, log_every=0)
    assert losses[-1] < 0.1 * losses[0]


def test_logistic_regression_separates_the_blobs():
    _, losses, accuracy = logistic.train(steps=200, log_every=0)
    assert accuracy > 0.85 and losses[-1] < 0.6 * losses[0]


def test_backprop_by_hand_agrees_with_autograd_and_learns_xor():
    losses, worst, _ = backprop_by_hand.train(steps=2000, check_every=50)
    assert worst < 1e-12
    assert losses[-1] < 0.1 * losses[0]
