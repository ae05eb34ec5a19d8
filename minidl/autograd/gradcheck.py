"""Checking gradients against finite differences (float64).

For a function f of tensors, the Jacobian column for input element j is estimated by the
central difference (f(x + eps e_j) - f(x - eps e_j)) / (2 eps), whose error is O(eps^2).
The analytic Jacobian row for output element i is the backward pass with the one-hot gradient
e_i. Both are only meaningful in float64: in float32 the rounding error of f (~1e-7 relative)
divided by eps swamps the derivative, so we insist on float64 inputs.

`gradgradcheck` checks second derivatives by running `gradcheck` on the function
(inputs, v) -> grad(f(inputs), inputs, v, create_graph=True).
"""
from __future__ import annotations

import numpy as np

from .grad_mode import no_grad, enable_grad


class GradcheckError(RuntimeError):
    pass


def _tensor_inputs(inputs):
    from ..tensor import Tensor
    return [t for t in inputs if isinstance(t, Tensor) and t.requires_grad]


def _flat_outputs(out):
    from ..tensor import Tensor
    outs = out if isinstance(out, (tuple, list)) else (out,)
    return [o for o in outs if isinstance(o, Tensor)]


def _numerical_jacobian(fn, inputs, diff_inputs, outputs, eps):
    jac = []  # jac[k][m]: (numel(out_m), numel(in_k))
    for t in diff_inputs:
        arr = t._data
        flat = arr.reshape(-1)  # a view: the tensor's own storage, restored after each probe
        cols = [np.zeros((o.numel(), flat.size)) for o in outputs]
        for j in range(flat.size):
            orig = flat[j].item()
            flat[j] = orig + eps
            with no_grad():
                plus = [o.numpy().astype(np.float64).ravel() for o in _flat_outputs(fn(*inputs))]
            flat[j] = orig - eps
            with no_grad():
                minus = [o.numpy().astype(np.float64).ravel() for o in _flat_outputs(fn(*inputs))]
            flat[j] = orig
            for m in range(len(outputs)):
                cols[m][:, j] = (plus[m] - minus[m]) / (2 * eps)
        jac.append(cols)
    return jac


def _analytic_jacobian(outputs, diff_inputs):
    from . import grad as autograd_grad
    from ..creation import zeros_like
    jac = [[np.zeros((o.numel(), t.numel())) for o in outputs] for t in diff_inputs]
    for m, o in enumerate(outputs):
        if not o.requires_grad:
            continue
        for i in range(o.numel()):
            v = zeros_like(o)
            v._data.reshape(-1)[i] = 1.0
            grads = autograd_grad([o], diff_inputs, [v], retain_graph=True, allow_unused=True)
            for k, g in enumerate(grads):
                if g is not None:
                    jac[k][m][i, :] = g.numpy().astype(np.float64).ravel()
    return jac


def gradcheck(fn, inputs, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
              raise_exception: bool = True) -> bool:
    """Compare backward's Jacobian of `fn(*inputs)` with central differences."""
    inputs = tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)
    diff_inputs = _tensor_inputs(inputs)
    for t in diff_inputs:
        if t.dtype.name != "float64":
            raise GradcheckError(f"gradcheck needs float64 inputs that require grad; got {t.dtype} "
                                 "(finite differences in float32 are dominated by rounding)")
    outputs = [o for o in _flat_outputs(fn(*inputs)) if o.dtype.is_floating_point]
    analytic = _analytic_jacobian(outputs, diff_inputs)
    numeric = _numerical_jacobian(fn, inputs, diff_inputs, outputs, eps)
    for k in range(len(diff_inputs)):
        for m in range(len(outputs)):
            a, n = analytic[k][m], numeric[k][m]
            if not np.allclose(a, n, atol=atol, rtol=rtol):
                where = np.unravel_index(np.argmax(np.abs(a - n)), a.shape)
                msg = (f"Jacobian mismatch for output {m} with respect to input {k}: max abs "
                       f"difference {np.max(np.abs(a - n)):.3e} at (output element, input "
                       f"element) {tuple(int(w) for w in where)}: analytic {a[where]:.6e}, "
                       f"numerical {n[where]:.6e}")
                if raise_exception:
                    raise GradcheckError(msg)
                return False
    return True


def gradgradcheck(fn, inputs, grad_outputs=None, eps: float = 1e-6, atol: float = 1e-5,
                  rtol: float = 1e-3, raise_exception: bool = True, seed: int = 0) -> bool:
    """Check second derivatives: gradcheck of (inputs, v) -> vector-Jacobian product."""
    from . import grad as autograd_grad
    from ..tensor import Tensor
    inputs = tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)
    outputs = [o for o in _flat_outputs(fn(*inputs)) if o.requires_grad]
    if grad_outputs is None:
        rng = np.random.default_rng(seed)
        grad_outputs = [Tensor(rng.standard_normal(o.shape), dtype="float64", device=o.device,
                               requires_grad=True)
                        for o in outputs]
    n_in = len(inputs)

    def first_derivative(*args):
        ins, vs = args[:n_in], args[n_in:]
        with enable_grad():  # finite differences call this under no_grad; it needs a graph
            outs = [o for o in _flat_outputs(fn(*ins)) if o.requires_grad]
            diff = _tensor_inputs(ins)
            grads = autograd_grad(outs, diff, list(vs), create_graph=True, allow_unused=True)
        return tuple(g for g in grads if g is not None)

    return gradcheck(first_derivative, tuple(inputs) + tuple(grad_outputs), eps=eps, atol=atol,
                     rtol=rtol, raise_exception=raise_exception)
