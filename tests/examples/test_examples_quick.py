"""The MNIST examples in their --quick modes (a few hundred steps: the loss must fall well
below its start), and the target logic they assert in their full runs."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))

import mnist_cnn  # noqa: E402
import mnist_mlp  # noqa: E402
from minidl.data import MNIST, DatasetError  # noqa: E402


def mnist_or_skip():
    try:
        MNIST(train=False)
    except DatasetError as err:
        pytest.skip(f"MNIST data is absent ({err})")


@pytest.mark.parametrize("example", [mnist_mlp, mnist_cnn], ids=["mlp", "cnn"])
def test_quick_mode_loss_falls(example, capsys):
    mnist_or_skip()
    assert example.main(["--quick"]) == 0
    out = capsys.readouterr().out
    assert "OK: loss" in out


@pytest.mark.parametrize("example", [mnist_mlp, mnist_cnn], ids=["mlp", "cnn"])
def test_missing_data_is_a_clear_error(example, tmp_path, capsys):
    assert example.main(["--quick", "--data", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "train-images-idx3-ubyte.gz not found" in err and "MINIDL_DATA" in err


@pytest.mark.parametrize("example, epochs, target", [
    (mnist_mlp, 1, None), (mnist_mlp, 2, 97.5), (mnist_mlp, 4, 97.5), (mnist_mlp, 5, 98.0),
    (mnist_cnn, 2, 98.8), (mnist_cnn, 7, 99.0)])
def test_target_for_epochs(example, epochs, target):
    assert example.target_for(epochs) == target


def test_fashion_target():
    assert mnist_cnn.target_for(5, "fashion-mnist") == 90.0
    assert mnist_cnn.target_for(2, "fashion-mnist") is None


@pytest.mark.parametrize("example", [mnist_mlp, mnist_cnn], ids=["mlp", "cnn"])
def test_check_fails_below_target_and_when_the_loss_stalls(example):
    with pytest.raises(AssertionError, match="below the target"):
        example.check({"test_accuracy": [90.0, 95.0], "losses": [2.3]}, 2, quick=False)
    assert "99.50 % >=" in example.check({"test_accuracy": [99.5, 99.5], "losses": [2.3]}, 2,
                                         quick=False)
    stalled = {"test_accuracy": [], "losses": [2.3] + [1.0] * 60}
    with pytest.raises(AssertionError, match="loss fell only from 2.300 to 1.000"):
        example.check(stalled, 2, quick=True)


def test_models_build_the_same_network_in_torch():
    torch = pytest.importorskip("torch")
    import minidl.nn
    for example in (mnist_mlp, mnist_cnn):
        ours = {k: tuple(v.shape) for k, v in example.build_model(minidl.nn).state_dict().items()}
        theirs = {k: tuple(v.shape) for k, v in example.build_model(torch.nn).state_dict().items()}
        assert ours == theirs


def test_cnn_standardisation_matches_the_datasets_own():
    """The CNN example standardises batches with the dataset's mean and std; the PyTorch
    same-recipe reference (benchmarks/suite/torch_recipes.py) uses arrays(standardize=True):
    both must give the same pixels."""
    import types

    import numpy as np

    import minidl
    rng = np.random.default_rng(0)
    fake = types.SimpleNamespace(data=rng.integers(0, 256, (3, 28, 28)).astype(np.uint8),
                                 targets=np.arange(3), mean=MNIST.mean, std=MNIST.std)
    expected, _ = MNIST.arrays(fake, standardize=True)
    batch = minidl.tensor(fake.data[:, None].astype(np.float32) / np.float32(255))
    got = mnist_cnn.normalize(batch, MNIST).numpy()
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)
