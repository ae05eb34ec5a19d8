"""Fixtures of the optimizer tests (the helpers live in optim_twins.py)."""
import pytest

from minidl.backend import get_backend
from minidl.backend import reference

OPTIM_OPS = ("adam_step", "sgd_step", "rmsprop_step", "adagrad_step")


@pytest.fixture(params=["device", "reference"])
def fused_ops(request):
    """'device': the cpu backend's own (Numba) fused ops; 'reference': the plain formulas."""
    table = get_backend("cpu").fused
    saved = {name: getattr(table, name) for name in OPTIM_OPS}
    if request.param == "reference":
        for name in OPTIM_OPS:
            table.override(name, getattr(reference, name))
    yield request.param
    for name, fn in saved.items():
        table.override(name, fn)
