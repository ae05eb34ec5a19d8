"""The IDX reader against files written by the independent writer in conftest.py."""
import numpy as np
import pytest

from minidl.data import DatasetError, parse_idx, read_idx


def test_header_bytes_are_the_published_magic_numbers(idx_files):
    # The writer must produce what the format description says, or the round trips prove nothing.
    images = idx_files.bytes(np.zeros((3, 28, 28), np.uint8))
    labels = idx_files.bytes(np.zeros(3, np.uint8))
    assert images[:16] == bytes.fromhex("00000803" "00000003" "0000001c" "0000001c")
    assert labels[:8] == bytes.fromhex("00000801" "00000003")


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
def test_round_trip_every_idx_type(tmp_path, idx_files, dtype):
    rng = np.random.default_rng(1)
    array = (rng.standard_normal((4, 3, 5)) * 100).astype(dtype)
    path = idx_files.write_gz(tmp_path / "x.gz", idx_files.bytes(array))
    got = read_idx(path)
    assert got.dtype == np.dtype(dtype) and got.dtype.isnative
    np.testing.assert_array_equal(got, array)
    got[0, 0, 0] = 7  # writable: not a view of a read-only buffer


def test_uncompressed_file_is_read_as_is(tmp_path, idx_files):
    array = np.arange(6, dtype=np.uint8)
    path = tmp_path / "labels-idx1-ubyte"
    path.write_bytes(idx_files.bytes(array))
    np.testing.assert_array_equal(read_idx(path, expected_magic=2049), array)


def test_wrong_magic_names_found_and_expected(tmp_path, idx_files):
    path = idx_files.write_gz(tmp_path / "labels.gz", idx_files.bytes(np.zeros(5, np.uint8)))
    with pytest.raises(DatasetError) as info:
        read_idx(path, expected_magic=2051)
    message = str(info.value)
    assert "magic" in message and "2049" in message and "2051" in message and str(path) in message


def test_garbage_magic_is_rejected():
    raw = bytes.fromhex("1f8b0803") + bytes(16)
    with pytest.raises(DatasetError, match="bad IDX magic number"):
        parse_idx(raw, "garbage")


@pytest.mark.parametrize("cut", [1, 100, 28 * 28 + 5])
def test_truncated_payload_says_how_much_is_missing(cut):
    raw = idx_bytes_of_images(n=2)
    with pytest.raises(DatasetError) as info:
        parse_idx(raw[:-cut], "images.gz", expected_magic=2051)
    message = str(info.value)
    assert "images.gz" in message and "truncated" in message
    assert str(len(raw)) in message and str(len(raw) - cut) in message


def test_trailing_bytes_are_rejected():
    with pytest.raises(DatasetError, match="trailing bytes"):
        parse_idx(idx_bytes_of_images(n=2) + b"\x00", "images", expected_magic=2051)


def test_header_cut_inside_the_sizes():
    raw = idx_bytes_of_images(n=2)[:10]  # magic + 1.5 of the 3 sizes
    with pytest.raises(DatasetError, match="truncated.*3 dims"):
        parse_idx(raw, "images", expected_magic=2051)


def test_truncated_gzip_stream(tmp_path, idx_files):
    path = idx_files.write_gz(tmp_path / "images.gz", idx_bytes_of_images(n=3))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError, match="truncated gzip") as info:
        read_idx(path, expected_magic=2051)
    assert str(path) in str(info.value)


def test_not_gzip_at_all(tmp_path):
    path = tmp_path / "images.gz"
    path.write_bytes(b"<html>404 Not Found</html>")
    with pytest.raises(DatasetError, match="not a valid gzip"):
        read_idx(path)


def idx_bytes_of_images(n):
    header = (2051).to_bytes(4, "big") + b"".join(x.to_bytes(4, "big") for x in (n, 28, 28))
    return header + bytes(range(256)) * (n * 28 * 28 // 256) + bytes(n * 28 * 28 % 256)
