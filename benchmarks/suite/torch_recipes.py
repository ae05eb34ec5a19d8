"""PyTorch trained with the examples' recipe, for the accuracy section's same-recipe reference.

It mirrors `train` in examples/mnist_mlp.py and examples/mnist_cnn.py line for line: the
example's own `build_model(torch.nn)`, its BATCH_SIZE and LR, Adam, CosineAnnealingLR stepped
per batch down to 0 over the run, shuffled batches, pixels in [0, 1] -- standardised with the
training set's mean and std when the example has a `normalize` step (the CNN) -- and
evaluation under no_grad after each epoch. The data comes from minidl.data as NumPy arrays (no torchvision
needed); the shuffle order is PyTorch's own, so the two runs see different (equally random)
batch orders -- the comparison is of recipes, not of identical runs (that is train_parity).
"""
from __future__ import annotations

import time


def train_classifier(torch, example, dataset: str, epochs: int, seed: int = 0, log=print) -> dict:
    from minidl.data import FashionMNIST, MNIST
    Dataset = {"mnist": MNIST, "fashion-mnist": FashionMNIST}[dataset]
    standardize = hasattr(example, "normalize")
    x_train, y_train = (torch.from_numpy(a) for a in Dataset(train=True).arrays(
        standardize=standardize))
    x_test, y_test = (torch.from_numpy(a) for a in Dataset(train=False).arrays(
        standardize=standardize))

    torch.manual_seed(seed)
    model = example.build_model(torch.nn)
    loss_fn = torch.nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=example.LR)
    steps_per_epoch = -(-len(y_train) // example.BATCH_SIZE)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer,
                                                           T_max=epochs * steps_per_epoch)
    generator = torch.Generator().manual_seed(seed)
    accuracies = []
    start = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(y_train), generator=generator)
        for i in range(0, len(order), example.BATCH_SIZE):
            batch = order[i:i + example.BATCH_SIZE]
            loss = loss_fn(model(x_train[batch]), y_train[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
        model.eval()
        with torch.no_grad():
            correct = sum(int((model(x_test[i:i + 1000]).argmax(1) == y_test[i:i + 1000]).sum())
                          for i in range(0, len(y_test), 1000))
        accuracies.append(100.0 * correct / len(y_test))
        log(f"epoch {epoch + 1}: test accuracy {accuracies[-1]:.2f} % "
            f"({time.perf_counter() - start:.0f} s)")
    return {"test_accuracy": accuracies, "seconds": time.perf_counter() - start}
