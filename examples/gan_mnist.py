"""A GAN that draws MNIST digits: two MLPs trained against each other.

    MINIDL_DATA=/path/to/data python examples/gan_mnist.py     # ~5-10 min on 2 cores
    python examples/gan_mnist.py --quick                       # < 1 min smoke run

The generator G turns noise z ~ N(0, I) into an image; the discriminator D gives the logit
a of "this image is real", D(x) = sigmoid(a). With the standard losses (Goodfellow et al.):

    J_D = -log D(x) - log(1 - D(G(z)))      D learns to tell real from generated
    J_G = -log D(G(z))                      G learns to make D say "real"

(J_G is the "non-saturating" form: minimising log(1 - D(G(z))) instead gives G almost no
gradient early on, when D rejects every sample with confidence.) On logits these are
softplus terms, which stay finite however confident D gets:
    -log sigmoid(a) = softplus(-a),     -log(1 - sigmoid(a)) = softplus(a).

At the equilibrium G's samples follow the data and D(x) = D(G(z)) = 1/2. The script logs the
mean D(x) and D(G(z)) over training, writes a grid of samples as a PNG (with a minimal PNG
writer: zlib + struct, no imaging library needed), and checks the samples with a
nearest-neighbour test and a small classifier trained on the side: good samples lie about as
close to the training digits as unseen real digits do, and a generator that has not
collapsed onto a few digits produces every class.
"""
from __future__ import annotations

import argparse
import struct
import sys
import time
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

import minidl  # noqa: E402
import minidl.nn as nn  # noqa: E402
import minidl.nn.functional as F  # noqa: E402
from minidl.data import MNIST, DatasetError  # noqa: E402

FULL = dict(z_dim=64, hidden=(256, 512), batch_size=128, steps=12000, lr=2e-4,
            classifier_steps=600, n_samples=1000, distance_target=1.3, classes_target=9)
QUICK = dict(z_dim=32, hidden=(64, 128), batch_size=32, steps=200, lr=5e-4,
             classifier_steps=0, n_samples=64, distance_target=None, classes_target=None)


def generator(z_dim, hidden):
    h1, h2 = hidden
    return nn.Sequential(nn.Linear(z_dim, h1), nn.LeakyReLU(0.2), nn.Linear(h1, h2),
                         nn.LeakyReLU(0.2), nn.Linear(h2, 784), nn.Tanh())


def discriminator(hidden):
    h1, h2 = hidden
    return nn.Sequential(nn.Linear(784, h2), nn.LeakyReLU(0.2), nn.Linear(h2, h1),
                         nn.LeakyReLU(0.2), nn.Linear(h1, 1))


def load_images(data_root):
    """Training images as float32 (N, 784) scaled to [-1, 1] (G ends in tanh), and the test
    set (images in [0, 1], labels) for the side classifier."""
    try:
        train, test = MNIST(root=data_root, train=True), MNIST(root=data_root, train=False)
    except DatasetError as err:
        sys.exit(f"gan_mnist: MNIST is not available.\n{err}\n"
                 f"Set MINIDL_DATA (or pass --data) to the folder holding mnist/.")
    x, y = train.arrays(flatten=True)
    test_x, test_y = test.arrays(flatten=True)
    return x * 2 - 1, y, test_x, test_y


def train_gan(cfg, images, seed=0, log=print):
    minidl.manual_seed(seed)
    rng = np.random.default_rng(seed)
    G, D = generator(cfg["z_dim"], cfg["hidden"]), discriminator(cfg["hidden"])
    opt_g = minidl.optim.Adam(G.parameters(), lr=cfg["lr"], betas=(0.5, 0.999))
    opt_d = minidl.optim.Adam(D.parameters(), lr=cfg["lr"], betas=(0.5, 0.999))
    B, history, window = cfg["batch_size"], [], []
    start = time.perf_counter()
    for step in range(1, cfg["steps"] + 1):
        real = minidl.tensor(images[rng.integers(0, len(images), size=B)])
        z = minidl.randn(B, cfg["z_dim"])

        # discriminator step: J_D = softplus(-D(x)) + softplus(D(G(z))); G is held fixed
        fake = G(z)
        a_real, a_fake = D(real), D(fake.detach())
        loss_d = F.softplus(-a_real).mean() + F.softplus(a_fake).mean()
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()

        # generator step: J_G = softplus(-D(G(z))), through the updated D
        a_gen = D(fake)
        loss_g = F.softplus(-a_gen).mean()
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()

        window.append((loss_d.item(), loss_g.item(), a_real.sigmoid().mean().item(),
                       a_fake.sigmoid().mean().item()))
        if step % max(1, cfg["steps"] // 10) == 0:
            jd, jg, dx, dgz = np.mean(window, axis=0)
            history.append(dict(step=step, loss_d=jd, loss_g=jg, d_real=dx, d_fake=dgz))
            log(f"step {step:5d}  J_D {jd:.3f}  J_G {jg:.3f}  D(x) {dx:.3f}  "
                f"D(G(z)) {dgz:.3f}  {time.perf_counter() - start:6.1f} s")
            window = []
    return G, D, history, time.perf_counter() - start


def sample(G, n, z_dim):
    """n generated images in [0, 1], (n, 784) NumPy."""
    G.eval()
    with minidl.no_grad():
        x = G(minidl.randn(n, z_dim)).numpy()
    G.train()
    return (x + 1) / 2


def train_classifier(x, y, steps, seed=0):
    """A 784-256-10 MLP on real MNIST, to judge the generated digits."""
    minidl.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))
    opt = minidl.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(steps):
        i = rng.integers(0, len(x), size=128)
        loss = F.cross_entropy(model(minidl.tensor(x[i])), minidl.tensor(y[i]))
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    return model


def judge(classifier, images):
    """(mean top-class probability, number of classes holding >= 2% of the samples)."""
    with minidl.no_grad():
        probs = F.softmax(classifier(minidl.tensor(images.astype(np.float32))), -1).numpy()
    shares = np.bincount(probs.argmax(1), minlength=10) / len(images)
    return float(probs.max(1).mean()), int((shares >= 0.02).sum())


def nearest_distance(a, b):
    """Mean over the rows of a of the Euclidean distance to the nearest row of b."""
    d2 = (a * a).sum(1)[:, None] - 2 * a @ b.T + (b * b).sum(1)[None, :]
    return float(np.sqrt(np.maximum(d2.min(1), 0)).mean())


def write_png(path, image):
    """A grayscale PNG from a uint8 (H, W) array: signature, IHDR, IDAT (zlib-compressed
    rows, each after a 0 'no filter' byte), IEND; each chunk is length, type, data, CRC."""
    h, w = image.shape

    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    raw = b"".join(b"\x00" + image[r].tobytes() for r in range(h))
    png = (b"\x89PNG\r\n\x1a\n"
           + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))   # 8-bit gray
           + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))
    Path(path).write_bytes(png)


def grid(images, rows, cols, pad=2):
    """(rows*cols, 784) in [0, 1] -> one uint8 image with the digits tiled."""
    tile = 28 + pad
    out = np.zeros((rows * tile + pad, cols * tile + pad), dtype=np.uint8)
    for k in range(min(rows * cols, len(images))):
        r, c = divmod(k, cols)
        out[pad + r * tile:pad + r * tile + 28, pad + c * tile:pad + c * tile + 28] = \
            np.clip(images[k].reshape(28, 28) * 255, 0, 255).astype(np.uint8)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="folder holding mnist/ (default: $MINIDL_DATA)")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--steps", type=int)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="gan_mnist_samples.png", help="PNG of samples")
    args = parser.parse_args(argv)
    cfg = dict(QUICK if args.quick else FULL)
    if args.steps:
        cfg["steps"] = args.steps
    images, labels, test_x, test_y = load_images(args.data)
    G, D, history, seconds = train_gan(cfg, images, args.seed)
    samples = sample(G, cfg["n_samples"], cfg["z_dim"])
    write_png(args.out, grid(samples, 8, 8))
    print(f"wrote {args.out}; trained {cfg['steps']} steps in {seconds:.0f} s")
    print("D(x) over training:    " + " ".join(f"{h['d_real']:.2f}" for h in history))
    print("D(G(z)) over training: " + " ".join(f"{h['d_fake']:.2f}" for h in history))

    if args.quick:
        first, last = history[0], history[-1]
        real_mean = (images.mean(0) + 1) / 2
        corr = float(np.corrcoef(samples.mean(0), real_mean)[0, 1])
        print(f"correlation of the mean sample with the mean digit: {corr:.2f}")
        assert corr > 0.5, f"quick run: samples do not look like digits on average ({corr:.2f})"
        assert last["loss_g"] < 10 and 0.0 < last["d_fake"] < 1.0
    else:
        # closeness: distance from each sample to its nearest training digit, relative to
        # the same distance for real digits the GAN never saw (1.0: as close as real ones)
        reference = (images[:10000] + 1) / 2
        real_nn = nearest_distance(test_x[:1000], reference)
        sample_nn = nearest_distance(samples, reference) / real_nn
        noise_nn = nearest_distance(np.random.default_rng(0).random((1000, 784)),
                                    reference) / real_nn
        # variety: a side classifier must find (nearly) every digit among the samples
        classifier = train_classifier(test_x, test_y, cfg["classifier_steps"], args.seed)
        conf, classes = judge(classifier, samples)
        print(f"nearest-training-digit distance, relative to real test digits: samples "
              f"{sample_nn:.2f} (uniform noise: {noise_nn:.2f})")
        print(f"side classifier: {classes} of 10 digits produced (>= 2% of the samples each); "
              f"mean confidence {conf:.3f}")
        assert sample_nn < cfg["distance_target"], \
            f"samples are far from the digits ({sample_nn:.2f} x the real distance)"
        assert classes >= cfg["classes_target"], f"mode collapse: only {classes} classes"
    print("target reached")
    return history


if __name__ == "__main__":
    main()
