"""The ladder is documented three times: the .cu header, the registry and the code itself.
These tests fail as soon as one of them changes without the others."""
from __future__ import annotations

import re

import pytest

from minidl.backend.cuda.registry import REGISTRY, entries_for_file
from minidl.backend.cuda.signatures import parse_kernels
from minidl.backend.cuda.source import kernel_files
from minidl.backend.kernel_source import kernels_dir

HEADER_ENTRY = re.compile(r"\[(\w+) v(\d+)\]\s+([\w, ]+?):")
DTYPES = ("f32", "f64")


def header_entries(text: str) -> set[tuple[str, int, tuple[str, ...]]]:
    header = text[: text.index("*/")]
    return {(op, int(v), tuple(k.strip() for k in kernels.split(",")))
            for op, v, kernels in HEADER_ENTRY.findall(header)}


FILES = [p.name for p in kernel_files()]


def test_every_registry_file_exists():
    missing = {e.file for e in REGISTRY.values()} - set(FILES)
    assert not missing, f"registry names kernel files that do not exist: {missing}"


@pytest.mark.parametrize("file_name", FILES)
def test_header_registry_and_kernels_agree(file_name):
    text = (kernels_dir() / file_name).read_text()
    in_header = header_entries(text)
    in_registry = {(e.op, e.version, e.kernels) for e in entries_for_file(file_name)}
    assert in_header, f"{file_name}: no '[op vN] kernel:' ladder entries in the header comment"
    assert in_header == in_registry, (
        f"{file_name}: header and registry disagree\n only in header: {in_header - in_registry}\n"
        f" only in registry: {in_registry - in_header}")
    expected_globals = {f"{k}_{d}" for _, _, kernels in in_registry for k in kernels for d in DTYPES}
    actual_globals = set(parse_kernels(text))
    assert actual_globals == expected_globals, (
        f"{file_name}: __global__ functions and ladder disagree\n missing: {expected_globals - actual_globals}\n"
        f" not in the ladder: {actual_globals - expected_globals}")


def test_versions_are_numbered_from_one_without_gaps():
    ops = {op for op, _ in REGISTRY}
    for op in ops:
        numbers = sorted(v for o, v in REGISTRY if o == op)
        assert numbers == list(range(1, len(numbers) + 1)), f"{op}: versions {numbers}"


def test_the_sync_check_catches_a_drifted_header():
    # The check itself must be able to fail: drop one entry from a real header.
    text = (kernels_dir() / "softmax.cu").read_text().replace("[softmax_forward v4]", "[softmax_forward v9]")
    assert header_entries(text) != {(e.op, e.version, e.kernels) for e in entries_for_file("softmax.cu")}
