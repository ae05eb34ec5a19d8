"""Every optimizer, side by side with torch.optim: identical parameters, identical gradient
sequences, N steps; parameters, gradients and state must agree after every step.

One row per option combination: (optimizer, defaults, per-group overrides or None).
"""
import numpy as np
import pytest

import minidl
import minidl.optim as optim
from minidl.io import load, save
from optim_twins import (SHAPES, gradients, group_spec, set_grads, tolerance, torch,
                         twin_params)

N_STEPS = 20

CASES = [
    ("SGD", dict(lr=0.1), None),
    ("SGD", dict(lr=0.1, momentum=0.9), None),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=0.01), None),
    ("SGD", dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=1e-3), None),
    ("SGD", dict(lr=0.05, momentum=0.5, maximize=True), None),
    ("SGD", dict(lr=0.1, momentum=0.9),
     [dict(), dict(lr=0.01, nesterov=True), dict(momentum=0.0, weight_decay=0.1)]),
    ("Adam", dict(), None),
    ("Adam", dict(lr=1e-2, weight_decay=0.1), None),
    ("Adam", dict(lr=1e-2, amsgrad=True), None),
    ("Adam", dict(lr=3e-3, betas=(0.8, 0.99), eps=1e-6, maximize=True), None),
    ("Adam", dict(lr=1e-2, weight_decay=0.05, amsgrad=True, maximize=True), None),
    ("Adam", dict(lr=1e-2), [dict(weight_decay=0.1), dict(amsgrad=True, betas=(0.5, 0.9))]),
    ("AdamW", dict(), None),
    ("AdamW", dict(lr=1e-2, weight_decay=0.3), None),
    ("AdamW", dict(lr=1e-2, weight_decay=0.3, amsgrad=True, maximize=True), None),
    ("AdamW", dict(lr=1e-2), [dict(weight_decay=0.0), dict(lr=1e-3, eps=1e-4)]),
    ("RMSprop", dict(), None),
    ("RMSprop", dict(lr=1e-3, alpha=0.9, weight_decay=0.01), None),
    ("RMSprop", dict(lr=1e-3, momentum=0.9), None),
    ("RMSprop", dict(lr=1e-3, centered=True), None),
    ("RMSprop", dict(lr=1e-3, momentum=0.5, centered=True, maximize=True, eps=1e-4), None),
    ("RMSprop", dict(lr=1e-2), [dict(centered=True), dict(momentum=0.9, alpha=0.5)]),
    ("Adagrad", dict(), None),
    ("Adagrad", dict(lr=0.1, lr_decay=0.01, weight_decay=0.1), None),
    ("Adagrad", dict(lr=0.1, initial_accumulator_value=0.5, eps=1e-6, maximize=True), None),
    ("Adagrad", dict(lr=0.1, initial_accumulator_value=0.2),
     [dict(lr_decay=0.1), dict(weight_decay=0.1, eps=1e-3)]),
]


def case_id(case):
    name, defaults, groups = case
    opts = ",".join(f"{k}={v}" for k, v in defaults.items()) or "defaults"
    return f"{name}[{opts}]" + (f"+{len(groups)}groups" if groups else "")


def build_ours(case, params):
    name, defaults, groups = case
    return getattr(optim, name)(group_spec(params, groups), **defaults)


def build(case, ours, theirs):
    name, defaults, groups = case
    return (build_ours(case, ours),
            getattr(torch.optim, name)(group_spec(theirs, groups), **defaults))


def assert_params_equal(ours, theirs, dtype, when):
    for i, (p, q) in enumerate(zip(ours, theirs)):
        np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), **tolerance(dtype),
                                   err_msg=f"param {i} {when}")


def assert_state_equal(opt, topt, ours, theirs, dtype):
    for i, (p, q) in enumerate(zip(ours, theirs)):
        mine, ref = opt.state.get(p, {}), topt.state.get(q, {})
        assert set(mine) == set(ref), f"param {i}: state keys {set(mine)} vs torch {set(ref)}"
        for key, value in ref.items():
            if key == "step":
                assert mine[key] == int(value.item()), f"param {i} step"
            else:
                np.testing.assert_allclose(mine[key].numpy(), value.numpy(), **tolerance(dtype),
                                           err_msg=f"param {i} state {key}")


@pytest.mark.parametrize("missing", [False, True], ids=["all_grads", "some_grads_none"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", CASES, ids=[case_id(c) for c in CASES])
def test_steps_match_torch(case, dtype, missing, fused_ops):
    ours, theirs = twin_params(0, dtype)
    opt, topt = build(case, ours, theirs)
    for step in range(N_STEPS):
        grads = gradients(step, SHAPES, dtype, missing=missing)
        set_grads(ours, theirs, grads)
        opt.step()
        topt.step()
        assert_params_equal(ours, theirs, dtype, f"after step {step + 1}")
        for p, g in zip(ours, grads):           # the step must not touch the gradients
            if g is not None:
                np.testing.assert_array_equal(p.grad.numpy(), g)
    assert_state_equal(opt, topt, ours, theirs, dtype)


@pytest.mark.parametrize("case", CASES, ids=[case_id(c) for c in CASES])
def test_state_dict_layout_matches_torch(case):
    """Same option names per group, same parameter indices, same state entries."""
    ours, theirs = twin_params(1, np.float32)
    opt, topt = build(case, ours, theirs)
    for step in range(3):
        set_grads(ours, theirs, gradients(step, SHAPES, np.float32, missing=True))
        opt.step()
        topt.step()
    mine, ref = opt.state_dict(), topt.state_dict()
    assert len(mine["param_groups"]) == len(ref["param_groups"])
    for g, h in zip(mine["param_groups"], ref["param_groups"]):
        assert set(g) == set(h)
        assert {k: v for k, v in g.items()} == {k: v for k, v in h.items()}
    assert sorted(mine["state"]) == sorted(ref["state"])
    for index, state in ref["state"].items():
        assert set(mine["state"][index]) == set(state)


@pytest.mark.parametrize("case", CASES, ids=[case_id(c) for c in CASES])
def test_torch_state_dict_loads_and_continues(case):
    """A torch optimizer's state_dict (tensors converted) resumes in minidl as in torch."""
    ours, theirs = twin_params(2, np.float64)
    opt, topt = build(case, ours, theirs)
    for step in range(5):
        set_grads(ours, theirs, gradients(step, SHAPES, np.float64))
        topt.step()
    for p, q in zip(ours, theirs):
        with minidl.no_grad():
            p.copy_(minidl.tensor(q.detach().numpy().copy()))
    opt.load_state_dict(_to_minidl(topt.state_dict()))
    for step in range(5, 12):
        set_grads(ours, theirs, gradients(step, SHAPES, np.float64))
        opt.step()
        topt.step()
    assert_params_equal(ours, theirs, np.float64, "after resuming torch's state")


def _to_minidl(obj):
    if isinstance(obj, torch.Tensor):
        return minidl.tensor(obj.detach().numpy().copy())
    if isinstance(obj, dict):
        return {k: _to_minidl(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_minidl(v) for v in obj)
    return obj


@pytest.mark.parametrize("via_file", [False, True], ids=["in_memory", "minidl.save"])
@pytest.mark.parametrize("case", CASES, ids=[case_id(c) for c in CASES])
def test_state_dict_round_trip_resumes_identically(case, via_file, tmp_path):
    """Stop after 8 steps, rebuild from the state_dict, continue: bit-for-bit the same
    parameters as the run that never stopped (and no buffer shared between the two)."""
    dtype = np.float32
    ours, theirs = twin_params(3, dtype)
    opt = build_ours(case, ours)
    for step in range(8):
        set_grads(ours, theirs, gradients(step, SHAPES, dtype, missing=True))
        opt.step()
    saved = opt.state_dict()
    if via_file:
        save({"optim": saved}, tmp_path / "opt.safetensors")
        saved = load(tmp_path / "opt.safetensors")["optim"]
    resumed = [minidl.tensor(p.detach().numpy().copy(), requires_grad=True) for p in ours]
    opt2 = build_ours(case, resumed)
    opt2.load_state_dict(saved)
    for step in range(8, 20):
        grads = gradients(step, SHAPES, dtype, missing=True)
        set_grads(ours, theirs, grads)
        set_grads(resumed, theirs, grads)
        opt.step()
        opt2.step()
    for i, (p, q) in enumerate(zip(ours, resumed)):
        np.testing.assert_array_equal(p.detach().numpy(), q.detach().numpy(),
                                      err_msg=f"param {i} differs after resuming")
