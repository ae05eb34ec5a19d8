"""Kernel signatures read from the CUDA C source, and arguments checked against them.

A CUDA launch passes raw bytes: a float64 array given to a `float*` parameter, or an int64
scalar given to an `int`, is not converted — the kernel silently reads garbage. So before any
launch (on the GPU and in the emulator alike) every argument is checked against the C type
written in the source. The emulator additionally proves at compile time that this parsed
signature is the real one (a static_assert in its generated launchers).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

# C spelling (whitespace-normalised) -> NumPy dtype. Only fundamental types (KERNELS.md §3).
C_TYPES: dict[str, np.dtype] = {
    "float": np.dtype(np.float32),
    "double": np.dtype(np.float64),
    "int": np.dtype(np.int32),
    "unsigned": np.dtype(np.uint32),
    "unsigned int": np.dtype(np.uint32),
    "long long": np.dtype(np.int64),
    "long long int": np.dtype(np.int64),
    "unsigned long long": np.dtype(np.uint64),
    "unsigned long long int": np.dtype(np.uint64),
    "unsigned char": np.dtype(np.uint8),
    "signed char": np.dtype(np.int8),
}

_KERNEL_RE = re.compile(
    r'extern\s+"C"\s+__global__\s+void\s+(?:__launch_bounds__\s*\([^)]*\)\s*)?'
    r"(\w+)\s*\(([^)]*)\)",
)


@dataclass(frozen=True)
class Param:
    name: str
    base: str          # C base type, e.g. "float"
    pointer: bool
    const: bool        # const data behind a pointer (the kernel promises not to write)

    @property
    def dtype(self) -> np.dtype:
        return C_TYPES[self.base]

    @property
    def c_type(self) -> str:
        if not self.pointer:
            return self.base
        return ("const " if self.const else "") + self.base + "*"


@dataclass(frozen=True)
class Signature:
    name: str
    params: tuple[Param, ...]

    def c_function_type(self) -> str:
        return "void(*)(" + ", ".join(p.c_type for p in self.params) + ")"


def strip_comments(source: str) -> str:
    source = re.sub(r"/\*.*?\*/", " ", source, flags=re.S)
    return re.sub(r"//[^\n]*", " ", source)


def _parse_param(kernel: str, text: str) -> Param:
    words = text.replace("*", " * ").replace("__restrict__", " ").split()
    if len(words) < 2:
        raise ValueError(f"kernel {kernel}: cannot read parameter {text.strip()!r} (need a type and a name)")
    name, type_words = words[-1], words[:-1]
    stars = type_words.count("*")
    if stars > 1:
        raise ValueError(f"kernel {kernel}: parameter {name!r} is a pointer to pointer; only T* is allowed")
    if stars == 1 and type_words[-1] != "*":
        raise ValueError(f"kernel {kernel}: parameter {name!r}: qualifiers after '*' are not supported")
    const = "const" in type_words
    base = " ".join(w for w in type_words if w not in ("const", "*"))
    if base not in C_TYPES:
        raise ValueError(
            f"kernel {kernel}: parameter {name!r} has type {base!r}; kernels take only "
            f"{sorted(C_TYPES)} (or pointers to them)"
        )
    return Param(name=name, base=base, pointer=stars == 1, const=const)


def parse_kernels(source: str) -> dict[str, Signature]:
    """Every `extern "C" __global__` function of a source file, by name, in file order."""
    found: dict[str, Signature] = {}
    for match in _KERNEL_RE.finditer(strip_comments(source)):
        name, params_text = match.group(1), match.group(2).strip()
        params = () if params_text in ("", "void") else tuple(
            _parse_param(name, p) for p in params_text.split(",")
        )
        if name in found:
            raise ValueError(f"kernel {name} is defined twice (extern \"C\" forbids overloading)")
        found[name] = Signature(name, params)
    return found


def _describe(value) -> str:
    if hasattr(value, "dtype") and hasattr(value, "shape") and getattr(value, "ndim", 0) > 0:
        return f"{type(value).__module__.split('.')[0]} array of dtype {value.dtype} and shape {tuple(value.shape)}"
    if isinstance(value, np.generic):
        return f"numpy.{type(value).__name__} scalar"
    return f"Python {type(value).__name__} {value!r}"


def check_arguments(signature: Signature, args: tuple) -> None:
    """Raise TypeError unless `args` match the kernel's C parameters exactly."""
    if len(args) != len(signature.params):
        raise TypeError(
            f"kernel {signature.name} takes {len(signature.params)} arguments "
            f"({', '.join(p.c_type + ' ' + p.name for p in signature.params)}), got {len(args)}"
        )
    for position, (param, value) in enumerate(zip(signature.params, args)):
        where = f"kernel {signature.name} argument {position} `{param.c_type} {param.name}`"
        if param.pointer:
            if not (hasattr(value, "dtype") and hasattr(value, "flags") and getattr(value, "ndim", 0) > 0):
                raise TypeError(f"{where}: expected a {param.dtype} array, got {_describe(value)}")
            if value.dtype != param.dtype:
                raise TypeError(
                    f"{where}: expected a {param.dtype} array, got {_describe(value)} "
                    f"(convert with .astype({param.dtype.name}))"
                )
            if not value.flags.c_contiguous:
                raise TypeError(f"{where}: expected a C-contiguous array, got a strided view; use ascontiguousarray")
            if not param.const and not getattr(value.flags, "writeable", True):
                raise TypeError(f"{where}: the kernel writes through this pointer but the array is read-only")
        else:
            if not isinstance(value, np.generic) or value.dtype != param.dtype:
                raise TypeError(
                    f"{where}: expected a numpy.{param.dtype.name} scalar, got {_describe(value)} "
                    f"(pass numpy.{param.dtype.name}(value))"
                )
