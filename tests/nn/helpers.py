"""Helpers shared by the minidl.nn tests: moving values between minidl and PyTorch, and
comparing them with dtype-aware tolerances."""
import numpy as np

import minidl

# float32 layers sum many products (convolutions, norms): compare with a relative tolerance
TOLERANCES = {"float32": dict(rtol=2e-4, atol=2e-5), "float64": dict(rtol=1e-9, atol=1e-11)}


def to_numpy(t):
    """A minidl or torch tensor (or array) as a NumPy array."""
    if isinstance(t, minidl.Tensor):
        return t.detach().numpy()
    if hasattr(t, "detach"):
        return t.detach().cpu().numpy()
    return np.asarray(t)


def torch_state_to_minidl(torch_module, minidl_module, strict=True):
    """Copy a torch module's parameters and buffers into the minidl one (through NumPy)."""
    state = {k: v.detach().numpy() for k, v in torch_module.state_dict().items()}
    return minidl_module.load_state_dict(state, strict=strict)


def assert_close(actual, expected, dtype="float32", what=""):
    a, e = to_numpy(actual), to_numpy(expected)
    assert a.shape == e.shape, f"{what}: shape {a.shape} != expected {e.shape}"
    np.testing.assert_allclose(a, e, err_msg=what, **TOLERANCES[dtype])
