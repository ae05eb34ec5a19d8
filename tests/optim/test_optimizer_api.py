"""The Optimizer base: construction errors, param groups, zero_grad, closures, versions,
one fused call per group, odd memory layouts, and load_state_dict's checks."""
import re

import numpy as np
import pytest

import minidl
import minidl.optim as optim
from minidl.backend import get_backend
from optim_twins import SHAPES, gradients, set_grads, torch, twin_params

ALL = ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad"]


def leaf(*shape, seed=0):
    return minidl.tensor(np.random.default_rng(seed).standard_normal(shape).astype(np.float32),
                         requires_grad=True)


# ---- bad hyper-parameters: (optimizer, kwargs, message) ---------------------------------
BAD_OPTIONS = [
    ("SGD", dict(lr=-0.1), "Invalid learning rate: -0.1"),
    ("SGD", dict(momentum=-1), "Invalid momentum value: -1"),
    ("SGD", dict(weight_decay=-1e-3), "Invalid weight_decay value: -0.001"),
    ("SGD", dict(nesterov=True), "Nesterov momentum requires a momentum and zero dampening"),
    ("SGD", dict(nesterov=True, momentum=0.9, dampening=0.1),
     "Nesterov momentum requires a momentum and zero dampening"),
    ("Adam", dict(lr=-1), "Invalid learning rate: -1"),
    ("Adam", dict(eps=-1e-8), "Invalid epsilon value: -1e-08"),
    ("Adam", dict(betas=(1.0, 0.999)), "Invalid beta parameter at index 0: 1.0"),
    ("Adam", dict(betas=(0.9, -0.1)), "Invalid beta parameter at index 1: -0.1"),
    ("Adam", dict(weight_decay=-1), "Invalid weight_decay value: -1"),
    ("AdamW", dict(betas=(0.9, 1.5)), "Invalid beta parameter at index 1: 1.5"),
    ("RMSprop", dict(alpha=-0.5), "Invalid alpha value: -0.5"),
    ("RMSprop", dict(momentum=-0.5), "Invalid momentum value: -0.5"),
    ("RMSprop", dict(eps=-1), "Invalid epsilon value: -1"),
    ("Adagrad", dict(lr_decay=-1), "Invalid lr_decay value: -1"),
    ("Adagrad", dict(initial_accumulator_value=-1),
     "Invalid initial_accumulator_value value: -1"),
    ("Adagrad", dict(eps=-1), "Invalid epsilon value: -1"),
]


@pytest.mark.parametrize("name,kwargs,message", BAD_OPTIONS)
def test_bad_options_raise_pytorch_messages(name, kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        getattr(optim, name)([leaf(2)], **kwargs)


@pytest.mark.parametrize("name,kwargs,message", BAD_OPTIONS)
def test_bad_options_in_a_param_group_raise_too(name, kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        getattr(optim, name)([{"params": [leaf(2)]}, dict(kwargs, params=[leaf(3)])])


@pytest.mark.parametrize("name,flag", [("Adam", "differentiable"), ("AdamW", "capturable"),
                                       ("SGD", "differentiable"), ("RMSprop", "capturable")])
def test_unsupported_flags_say_so(name, flag):
    with pytest.raises(NotImplementedError, match=f"{flag}=True"):
        getattr(optim, name)([leaf(2)], **{flag: True})


# ---- what may be optimized --------------------------------------------------------------
def test_bad_params_arguments():
    p = leaf(2)
    with pytest.raises(TypeError, match="iterable of Tensors or dicts, but got a single Tensor"):
        optim.SGD(p, lr=0.1)
    with pytest.raises(ValueError, match="optimizer got an empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(TypeError, match="ordered collections"):
        optim.SGD({p}, lr=0.1)
    with pytest.raises(TypeError, match="can only optimize Tensors, but param 1 of the group "
                                        "is a ndarray"):
        optim.SGD([p, np.zeros(2)], lr=0.1)
    with pytest.raises(ValueError, match=r"can't optimize a non-leaf Tensor \(param 0"):
        optim.SGD([p * 2], lr=0.1)
    with pytest.raises(ValueError, match="more than one parameter group"):
        optim.SGD([{"params": [p]}, {"params": [p]}], lr=0.1)
    with pytest.raises(ValueError, match="duplicate parameters"):
        optim.SGD([p, p], lr=0.1)
    with pytest.raises(ValueError, match="'params' entry"):
        optim.SGD([{"lr": 0.1}])


def test_grad_that_does_not_fit_the_param():
    p = leaf(3)
    opt = optim.Adam([p])
    p.grad = minidl.zeros(4)
    with pytest.raises(RuntimeError, match=r"shape \(3,\).*\.grad of shape \(4,\)"):
        opt.step()


# ---- param groups -----------------------------------------------------------------------
def test_group_options_fall_back_to_defaults():
    a, b = leaf(2), leaf(3)
    opt = optim.SGD([{"params": [a], "lr": 0.5}, {"params": b}], lr=0.1, momentum=0.9)
    assert opt.param_groups[0]["lr"] == 0.5 and opt.param_groups[1]["lr"] == 0.1
    assert opt.param_groups[1]["momentum"] == 0.9
    assert opt.param_groups[1]["params"] == [b]


@pytest.mark.parametrize("name", ALL)
def test_add_param_group_matches_torch(name):
    """A group added after some steps (unfreezing) trains with its own options, as in torch."""
    ours, theirs = twin_params(5, np.float64)
    opt = getattr(optim, name)(ours[:2], lr=0.01)
    topt = getattr(torch.optim, name)(theirs[:2], lr=0.01)
    for step in range(6):
        if step == 3:
            opt.add_param_group({"params": ours[2:], "lr": 0.05})
            topt.add_param_group({"params": theirs[2:], "lr": 0.05})
        set_grads(ours, theirs, gradients(step, SHAPES, np.float64))
        opt.step()
        topt.step()
    for p, q in zip(ours, theirs):
        np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=1e-12)


def test_named_parameters_keep_their_names_like_torch():
    ours, theirs = twin_params(6, np.float32)
    names = [f"layer{i}.weight" for i in range(len(ours))]
    opt = optim.Adam(list(zip(names, ours)))
    topt = torch.optim.Adam(list(zip(names, theirs)))
    assert opt.state_dict()["param_groups"][0]["param_names"] == \
        topt.state_dict()["param_groups"][0]["param_names"] == names
    with pytest.raises(ValueError, match="with/without names"):
        opt.add_param_group({"params": [leaf(2)]})


def test_adagrad_honours_a_groups_initial_accumulator_value():
    a, b = leaf(2), leaf(3)
    opt = optim.Adagrad([{"params": [a]}, {"params": [b], "initial_accumulator_value": 0.7}],
                        initial_accumulator_value=0.1)
    np.testing.assert_array_equal(opt.state[a]["sum"].numpy(), np.full(2, 0.1, np.float32))
    np.testing.assert_array_equal(opt.state[b]["sum"].numpy(), np.full(3, 0.7, np.float32))


# ---- zero_grad, closure, versions -------------------------------------------------------
def test_zero_grad_to_none_and_to_zeros():
    p, q = leaf(3), leaf(2)
    opt = optim.SGD([p, q], lr=0.1)
    (p.sum() * 2).backward()
    opt.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(p.grad.numpy(), np.zeros(3, np.float32))
    assert q.grad is None
    (p.sum() * 2).backward()
    np.testing.assert_array_equal(p.grad.numpy(), np.full(3, 2, np.float32))
    opt.zero_grad()
    assert p.grad is None


def test_closure_runs_with_grad_enabled_and_its_loss_is_returned():
    p = leaf(3)
    opt = optim.SGD([p], lr=0.5)
    start = p.detach().numpy().copy()

    def closure():
        opt.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        return loss

    with minidl.no_grad():
        loss = opt.step(closure)
    assert loss.item() == pytest.approx(float((start ** 2).sum()), rel=1e-6)
    np.testing.assert_allclose(p.detach().numpy(), start - 0.5 * 2 * start, rtol=1e-6)


def test_params_without_grad_are_skipped_and_keep_no_state():
    p, q = leaf(3), leaf(2)
    before = q.detach().numpy().copy()
    opt = optim.Adam([p, q])
    p.grad = minidl.ones(3)
    opt.step()
    np.testing.assert_array_equal(q.detach().numpy(), before)
    assert q not in opt.state and opt.state[p]["step"] == 1


def test_step_bumps_the_version_so_a_stale_graph_refuses_backward():
    p = leaf(3)
    opt = optim.SGD([p], lr=0.1)
    y = (p * p).sum()          # saves p for its backward
    p.grad = minidl.ones(3)
    opt.step()
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        y.backward()


@pytest.mark.parametrize("name,op", [("SGD", "sgd_step"), ("Adam", "adam_step"),
                                     ("AdamW", "adam_step"), ("RMSprop", "rmsprop_step"),
                                     ("Adagrad", "adagrad_step")])
def test_one_fused_call_per_param_group(name, op):
    table = get_backend("cpu").fused
    real = getattr(table, op)
    calls = []

    def spy(params, *args, **kwargs):
        calls.append(len(params))
        return real(params, *args, **kwargs)

    table.override(op, spy)
    try:
        ps = [leaf(4, 3, seed=i) for i in range(5)]
        opt = getattr(optim, name)([{"params": ps[:3]}, {"params": ps[3:], "lr": 0.5}], lr=0.1)
        for p in ps:
            p.grad = minidl.ones(4, 3)
        opt.step()
    finally:
        table.override(op, real)
    assert calls == [3, 2]


@pytest.mark.parametrize("name", ALL)
def test_non_contiguous_params_and_grads_match_torch(name):
    base = np.random.default_rng(7).standard_normal((4, 6)).astype(np.float64)
    p = minidl.tensor(base.copy()).t().detach().requires_grad_()   # a transposed view
    q = torch.tensor(base.copy()).t().detach().requires_grad_()
    assert not p._data.flags.c_contiguous
    opt, topt = getattr(optim, name)([p], lr=0.05), getattr(torch.optim, name)([q], lr=0.05)
    for step in range(4):
        g = np.random.default_rng(step).standard_normal((4, 6))
        p.grad = minidl.tensor(g.copy()).t()                          # non-contiguous too
        q.grad = torch.tensor(g.copy()).t()
        opt.step()
        topt.step()
    np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=1e-12)


# ---- load_state_dict checks ---------------------------------------------------------------
def trained_adam(groups):
    opt = optim.Adam(groups)
    for group in opt.param_groups:
        for p in group["params"]:
            p.grad = minidl.ones(*p.shape)
    opt.step()
    return opt


def test_load_state_dict_rejects_other_group_counts():
    sd = trained_adam([{"params": [leaf(2)]}, {"params": [leaf(3)]}]).state_dict()
    with pytest.raises(ValueError, match="different number of parameter groups: 2 saved, 1"):
        optim.Adam([leaf(2), leaf(3)]).load_state_dict(sd)


def test_load_state_dict_rejects_other_group_sizes():
    sd = trained_adam([leaf(2), leaf(3)]).state_dict()
    with pytest.raises(ValueError, match="group 0 has 2 params saved but 3 here"):
        optim.Adam([leaf(2), leaf(3), leaf(4)]).load_state_dict(sd)


def test_load_state_dict_rejects_state_of_another_shape():
    sd = trained_adam([leaf(2), leaf(3)]).state_dict()
    with pytest.raises(ValueError, match=r"state 'exp_avg' of parameter 1 has shape \(3,\) but "
                                         r"the parameter has shape \(5,\)"):
        optim.Adam([leaf(2), leaf(5)]).load_state_dict(sd)


def test_load_state_dict_rejects_something_else():
    with pytest.raises(ValueError, match="'state' and 'param_groups'"):
        optim.Adam([leaf(2)]).load_state_dict({"model": {}})


def test_load_state_dict_restores_group_options():
    sd = trained_adam([leaf(2)]).state_dict()
    sd["param_groups"][0]["lr"] = 0.123
    opt = optim.Adam([leaf(2)], lr=1.0)
    opt.load_state_dict(sd)
    assert opt.param_groups[0]["lr"] == 0.123
