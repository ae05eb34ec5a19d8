"""Classify MNIST digits with a multilayer perceptron -- PyTorch's recipe, minidl's import.

    python examples/mnist_mlp.py                # 2 epochs; asserts >= 97.5 % test accuracy
    python examples/mnist_mlp.py --epochs 5     # the benchmark's run; asserts >= 98.0 %
    python examples/mnist_mlp.py --quick        # 300 steps; asserts the loss falls well below its start
    python examples/mnist_mlp.py --data DIR     # DIR holds mnist/ (default: $MINIDL_DATA, then ~/.cache)

The model is 784-512-256-10 with ReLU. Training is the textbook loop: shuffled batches of 64,
cross-entropy on the raw scores (logits), Adam at lr 1e-3 annealed to 0 along a cosine over
the run, and for every batch zero_grad -> backward -> step. Pixels are scaled to [0, 1] (what
torchvision's ToTensor gives). Evaluation runs under no_grad (no graph is recorded, so it is
faster and uses less memory) with the model in eval mode.

Porting to PyTorch: replace `minidl` by `torch` and `minidl.data` by `torch.utils.data` plus
torchvision's MNIST; `build_model(torch.nn)` already builds the same network.
"""
from __future__ import annotations

import argparse
import sys
import time

import minidl
import minidl.nn as nn
from minidl.data import DataLoader, DatasetError, MNIST

BATCH_SIZE, LR = 64, 1e-3       # the recipe: Adam at LR, cosine-annealed to 0 per batch
TARGETS = {2: 97.5, 5: 98.0}   # epochs -> test accuracy (%) the run must reach
QUICK_STEPS = 300
QUICK_DROP = 0.25              # --quick: mean of the last 50 losses must fall below 1/4 of the first


def build_model(nn=nn):
    """784-512-256-10 MLP. Pass `torch.nn` to build the identical PyTorch model."""
    return nn.Sequential(
        nn.Flatten(),                        # (B, 1, 28, 28) -> (B, 784)
        nn.Linear(784, 512), nn.ReLU(),
        nn.Linear(512, 256), nn.ReLU(),
        nn.Linear(256, 10),                  # logits: CrossEntropyLoss applies log-softmax itself
    )


def evaluate(model, loader) -> float:
    """Test accuracy in percent."""
    model.eval()
    correct = total = 0
    with minidl.no_grad():
        for images, labels in loader:
            predictions = model(images).argmax(dim=1)
            correct += int((predictions == labels).sum().item())
            total += len(labels)
    model.train()
    return 100.0 * correct / total


def train(epochs: int = 2, data=None, quick: bool = False, seed: int = 0, log=print) -> dict:
    """Train and evaluate; returns test accuracies per epoch, every step's loss and the time."""
    minidl.manual_seed(seed)                  # same initial weights and batch order every run
    train_set, test_set = MNIST(root=data, train=True), MNIST(root=data, train=False)
    train_loader = DataLoader(train_set, batch_size=BATCH_SIZE, shuffle=True)
    test_loader = DataLoader(test_set, batch_size=1000)

    model = build_model()
    loss_fn = nn.CrossEntropyLoss()
    optimizer = minidl.optim.Adam(model.parameters(), lr=LR)
    # cosine annealing from LR down to 0 over the whole run, one scheduler step per batch:
    # big steps while far from a minimum, small ones to settle into it at the end
    total_steps = (1 if quick else epochs) * len(train_loader)
    scheduler = minidl.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)

    losses, accuracies = [], []
    start = time.perf_counter()
    for epoch in range(1 if quick else epochs):
        for images, labels in train_loader:
            loss = loss_fn(model(images), labels)
            optimizer.zero_grad()             # gradients accumulate until cleared
            loss.backward()
            optimizer.step()
            scheduler.step()
            losses.append(loss.item())
            if len(losses) % 200 == 0:
                log(f"step {len(losses):5d}  loss {sum(losses[-200:]) / 200:.4f}")
            if quick and len(losses) == QUICK_STEPS:
                break
        if not quick:
            accuracies.append(evaluate(model, test_loader))
            log(f"epoch {epoch + 1}: test accuracy {accuracies[-1]:.2f} % "
                f"({time.perf_counter() - start:.0f} s)")
    return {"test_accuracy": accuracies, "losses": losses,
            "seconds": time.perf_counter() - start}


def target_for(epochs: int):
    """The accuracy target that applies after `epochs` epochs (None below 2 epochs)."""
    reached = [e for e in TARGETS if e <= epochs]
    return TARGETS[max(reached)] if reached else None


def check(result: dict, epochs: int, quick: bool) -> str:
    """Raise AssertionError unless the run met its target; return what was checked."""
    losses = result["losses"]
    if quick:
        first, last = losses[0], sum(losses[-50:]) / 50
        assert last < QUICK_DROP * first, \
            f"loss fell only from {first:.3f} to {last:.3f} in {len(losses)} steps"
        return f"loss {first:.3f} -> {last:.3f} in {len(losses)} steps"
    accuracy, target = result["test_accuracy"][-1], target_for(epochs)
    if target is None:
        return f"test accuracy {accuracy:.2f} % (targets apply from 2 epochs)"
    assert accuracy >= target, f"test accuracy {accuracy:.2f} % is below the target {target} %"
    return f"test accuracy {accuracy:.2f} % >= {target} %"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--data", default=None, help="folder holding mnist/ (default $MINIDL_DATA)")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_STEPS} steps, for CI")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        result = train(args.epochs, args.data, args.quick, args.seed)
    except DatasetError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print("OK:", check(result, args.epochs, args.quick))
    return 0


if __name__ == "__main__":
    sys.exit(main())
