"""Running one module in minidl and in PyTorch from the same weights and inputs, and comparing
outputs and every gradient (inputs and parameters)."""
import numpy as np

import minidl

TOLERANCES = {"float32": dict(rtol=2e-4, atol=2e-5), "float64": dict(rtol=1e-9, atol=1e-10)}


def to_numpy(t):
    if t is None:
        return None
    if isinstance(t, minidl.Tensor):
        return t.detach().numpy()
    return t.detach().cpu().numpy()


def copy_weights(torch_module, minidl_module):
    """PyTorch's state_dict into the minidl module; every key must match (strict)."""
    state = {k: v.detach().numpy() for k, v in torch_module.state_dict().items()}
    result = minidl_module.load_state_dict(state)
    assert not result.missing_keys and not result.unexpected_keys, result


def perturb_(torch_module, seed=0):
    """Give every parameter (norm scales and zero biases included) distinct random values, so
    a mixed-up parameter cannot go unnoticed."""
    import torch
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in torch_module.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=gen, dtype=p.dtype))


def pair_inputs(torch, arrays, requires_grad):
    """The same arrays as torch tensors and minidl tensors (float ones may require grad)."""
    t_in, m_in = [], []
    for a, rg in zip(arrays, requires_grad):
        if a is None:
            t_in.append(None)
            m_in.append(None)
            continue
        t = torch.from_numpy(np.ascontiguousarray(a))
        m = minidl.tensor(a)
        if rg:
            t.requires_grad_(True)
            m.requires_grad = True
        t_in.append(t)
        m_in.append(m)
    return t_in, m_in


def weighted_sum(lib_tensor, outputs, seed=1):
    """sum_i <out_i, R_i> with fixed random R_i: a scalar whose gradient is R_i for out_i, so
    every output element contributes to every gradient with its own weight."""
    rng = np.random.default_rng(seed)
    total = None
    for out in outputs:
        if out is None:
            continue
        r = rng.standard_normal(tuple(out.shape)).astype(to_numpy(out).dtype)
        term = (out * lib_tensor(r)).sum()
        total = term if total is None else total + term
    return total


def compare(name, actual, expected, dtype):
    a, e = to_numpy(actual), to_numpy(expected)
    if e is None:
        assert a is None, f"{name}: minidl gives a value where PyTorch gives None"
        return
    assert a is not None, f"{name}: minidl gives None where PyTorch gives a value"
    assert a.shape == e.shape, f"{name}: shape {a.shape} != PyTorch's {e.shape}"
    np.testing.assert_allclose(a, e, err_msg=name, **TOLERANCES[dtype])


def compare_grads(torch_module, minidl_module, t_inputs, m_inputs, dtype):
    """Every parameter gradient (by name) and every input gradient."""
    m_params = dict(minidl_module.named_parameters())
    t_params = dict(torch_module.named_parameters())
    assert sorted(m_params) == sorted(t_params)
    for name, tp in t_params.items():
        compare(f"grad of {name}", m_params[name].grad, tp.grad, dtype)
    for i, (t, m) in enumerate(zip(t_inputs, m_inputs)):
        if t is not None and t.requires_grad:
            compare(f"grad of input {i}", m.grad, t.grad, dtype)
