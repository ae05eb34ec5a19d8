"""The attention examples in their --quick modes (what CI runs): each must clearly learn.
The full runs (and their targets) are run by hand; see each example's docstring."""
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from minidl.data import resolve_root

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))


def _needs(relative_path):
    """Skip (with the reason) when the dataset file is not under the data root."""
    root, source = resolve_root()
    if not (root / relative_path).exists():
        pytest.skip(f"{relative_path} not found under {root} (from {source}); set MINIDL_DATA")


def test_gpt_shakespeare_quick():
    _needs("tinyshakespeare/input.txt")
    import gpt_shakespeare
    result = gpt_shakespeare.main(["--quick", "--sample-chars", "20"])
    assert result["val_loss"] < 0.8 * result["first_loss"]
    assert [c[0] for c in result["curve"]] == sorted(c[0] for c in result["curve"])


def test_bert_mlm_quick():
    _needs("tinyshakespeare/input.txt")
    import bert_mlm
    r = bert_mlm.main(["--quick"])
    assert r["val_mlm"] < 0.85 * np.mean(r["mlm_curve"][:10])
    assert 0.0 <= r["accuracy"] <= 1.0


def test_seq2seq_quick():
    import seq2seq_transformer
    r = seq2seq_transformer.main(["--quick"])
    assert np.mean(r["losses"][-10:]) < 0.7 * np.mean(r["losses"][:10])


def test_gan_quick(tmp_path):
    _needs("mnist/train-images-idx3-ubyte.gz")
    import gan_mnist
    out = tmp_path / "samples.png"
    history = gan_mnist.main(["--quick", "--out", str(out)])
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert all(0.0 < h["d_real"] < 1.0 and 0.0 < h["d_fake"] < 1.0 for h in history)


def test_png_writer_round_trips():
    """The minimal PNG writer against an independent decoder (zlib + the PNG layout)."""
    import struct
    import zlib
    import gan_mnist
    image = (np.arange(6 * 9) * 4 % 256).astype(np.uint8).reshape(6, 9)
    path = Path(os.environ.get("TMPDIR", "/tmp")) / f"minidl_png_test_{os.getpid()}.png"
    gan_mnist.write_png(path, image)
    data = path.read_bytes()
    path.unlink()
    chunks, pos = {}, 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        assert crc == zlib.crc32(kind + body) & 0xFFFFFFFF
        chunks[kind] = body
        pos += 12 + length
    w, h, depth, color = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert (w, h, depth, color) == (9, 6, 8, 0)
    rows = np.frombuffer(zlib.decompress(chunks[b"IDAT"]), np.uint8).reshape(6, 10)
    assert (rows[:, 0] == 0).all()
    np.testing.assert_array_equal(rows[:, 1:], image)
