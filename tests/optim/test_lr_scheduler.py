"""Learning-rate schedulers against torch.optim.lr_scheduler: the same lr (and momentum)
sequence for many steps, with two param groups of different base lrs; checkpoint round trips;
argument errors. warmup_cosine against a float64 reference written here from its docstring."""
import math

import pytest

import minidl
import minidl.optim as optim
from minidl.io import load, save
from minidl.optim import lr_scheduler as sched
from optim_twins import torch

N_STEPS = 120

# (scheduler, kwargs, optimizer, steps); kwargs may hold callables of the optimizer count
CASES = [
    ("StepLR", dict(step_size=7), "SGD", N_STEPS),
    ("StepLR", dict(step_size=3, gamma=0.5), "Adam", N_STEPS),
    ("MultiStepLR", dict(milestones=[5, 20, 20, 60], gamma=0.3), "SGD", N_STEPS),
    ("ExponentialLR", dict(gamma=0.97), "SGD", N_STEPS),
    ("CosineAnnealingLR", dict(T_max=30), "SGD", N_STEPS),          # runs past T_max
    ("CosineAnnealingLR", dict(T_max=50, eta_min=1e-4), "Adam", N_STEPS),
    ("LinearLR", dict(), "SGD", N_STEPS),
    ("LinearLR", dict(start_factor=0.01, end_factor=0.5, total_iters=40), "Adam", N_STEPS),
    ("OneCycleLR", dict(max_lr=0.5, total_steps=N_STEPS), "SGD", N_STEPS),
    ("OneCycleLR", dict(max_lr=[0.1, 0.01], epochs=8, steps_per_epoch=15, pct_start=0.25,
                        anneal_strategy="linear", div_factor=10.0, final_div_factor=100.0),
     "SGD", N_STEPS),
    ("OneCycleLR", dict(max_lr=3e-3, total_steps=N_STEPS, three_phase=True), "Adam", N_STEPS),
    ("OneCycleLR", dict(max_lr=1e-2, total_steps=N_STEPS, cycle_momentum=False,
                        base_momentum=[0.8, 0.7]), "Adam", N_STEPS),
    ("LambdaLR", dict(lr_lambda=lambda e: 0.95 ** e + 0.01 * (e % 4)), "SGD", N_STEPS),
    ("LambdaLR", dict(lr_lambda=[lambda e: 1 / (1 + e), lambda e: min(1.0, (e + 1) / 10)]),
     "Adam", N_STEPS),
]


def make_optimizers(kind):
    """A minidl and a torch optimizer over two groups with different base lrs."""
    ours = [minidl.zeros(3, requires_grad=True), minidl.zeros(2, requires_grad=True)]
    theirs = [torch.zeros(3, requires_grad=True), torch.zeros(2, requires_grad=True)]
    extra = dict(momentum=0.9) if kind == "SGD" else {}
    groups = lambda ps: [{"params": [ps[0]]}, {"params": [ps[1]], "lr": 0.03}]  # noqa: E731
    return (getattr(optim, kind)(groups(ours), lr=0.1, **extra),
            getattr(torch.optim, kind)(groups(theirs), lr=0.1, **extra))


def momenta(opt):
    return [g["betas"][0] if "betas" in g else g.get("momentum") for g in opt.param_groups]


def case_id(case):
    name, kwargs, kind, _ = case
    return f"{name}-{kind}-" + ",".join(f"{k}" for k in kwargs)


@pytest.mark.parametrize("case", CASES, ids=[case_id(c) for c in CASES])
def test_lr_sequence_matches_torch(case):
    name, kwargs, kind, steps = case
    opt, topt = make_optimizers(kind)
    ours, theirs = getattr(sched, name)(opt, **kwargs), \
        getattr(torch.optim.lr_scheduler, name)(topt, **kwargs)
    for step in range(steps + 1):
        assert ours.get_last_lr() == pytest.approx(theirs.get_last_lr(), rel=1e-13, abs=0), \
            f"lr after {step} steps"
        assert [g["lr"] for g in opt.param_groups] == ours.get_last_lr()
        assert momenta(opt) == pytest.approx(momenta(topt), rel=1e-13), f"momentum, step {step}"
        if step < steps:
            opt.step()
            topt.step()
            ours.step()
            theirs.step()


@pytest.mark.parametrize("case", CASES, ids=[case_id(c) for c in CASES])
def test_checkpoint_round_trip_continues_the_sequence(case, tmp_path):
    """Save optimizer + scheduler halfway (minidl.save), rebuild both, load, continue: the
    same lrs as the uninterrupted run."""
    name, kwargs, kind, steps = case
    opt, _ = make_optimizers(kind)
    s = getattr(sched, name)(opt, **kwargs)
    expected = []
    for step in range(steps):
        if step == steps // 2:
            save({"optim": opt.state_dict(), "sched": s.state_dict()}, tmp_path / "ck")
        opt.step()
        s.step()
        expected.append(s.get_last_lr())
    checkpoint = load(tmp_path / "ck")
    opt2, _ = make_optimizers(kind)
    s2 = getattr(sched, name)(opt2, **kwargs)
    opt2.load_state_dict(checkpoint["optim"])
    s2.load_state_dict(checkpoint["sched"])
    for step in range(steps // 2, steps):
        opt2.step()
        s2.step()
        assert s2.get_last_lr() == pytest.approx(expected[step], rel=1e-13), f"step {step}"


def test_resuming_with_last_epoch_matches_torch():
    opt, topt = make_optimizers("SGD")
    for g, h in zip(opt.param_groups, topt.param_groups):
        g["initial_lr"] = h["initial_lr"] = g["lr"]
    ours = sched.CosineAnnealingLR(opt, T_max=40, eta_min=0.001, last_epoch=9)
    theirs = torch.optim.lr_scheduler.CosineAnnealingLR(topt, T_max=40, eta_min=0.001,
                                                        last_epoch=9)
    for _ in range(30):
        assert ours.get_last_lr() == pytest.approx(theirs.get_last_lr(), rel=1e-13)
        opt.step()
        topt.step()
        ours.step()
        theirs.step()


class Halving:
    """A callable object: LambdaLR saves its attributes (a plain lambda cannot be saved)."""

    def __init__(self, every):
        self.every = every

    def __call__(self, epoch):
        return 0.5 ** (epoch // self.every)


def test_lambda_lr_state_dict_keeps_callable_objects_drops_functions():
    opt, _ = make_optimizers("SGD")
    s = sched.LambdaLR(opt, [Halving(3), lambda e: 1.0])
    state = s.state_dict()
    assert state["lr_lambdas"] == [{"every": 3}, None]
    opt2, _ = make_optimizers("SGD")
    s2 = sched.LambdaLR(opt2, [Halving(100), lambda e: 1.0])
    s2.load_state_dict(state)
    assert s2.lr_lambdas[0].every == 3


# ---- warmup_cosine --------------------------------------------------------------------------
def warmup_cosine_reference(t, warmup, total, ratio):
    """From the docstring's formula, in float64."""
    if t < warmup:
        return t / warmup
    progress = min(1.0, (t - warmup) / max(1, total - warmup))
    return ratio + (1 - ratio) * 0.5 * (1 + math.cos(math.pi * progress))


@pytest.mark.parametrize("warmup,total,ratio", [(10, 100, 0.0), (0, 50, 0.1), (25, 25, 0.0),
                                                (7, 60, 0.5)])
def test_warmup_cosine_follows_its_formula(warmup, total, ratio):
    opt, _ = make_optimizers("Adam")
    s = sched.warmup_cosine(opt, warmup, total, min_lr_ratio=ratio)
    base = [0.1, 0.03]
    for t in range(total + 20):                    # and past the end: it stays at the floor
        factor = warmup_cosine_reference(t, warmup, total, ratio)
        assert s.get_last_lr() == pytest.approx([b * factor for b in base], rel=1e-12, abs=1e-15)
        opt.step()
        s.step()


def test_warmup_cosine_landmarks():
    opt, _ = make_optimizers("Adam")
    s = sched.warmup_cosine(opt, warmup_steps=10, total_steps=110, min_lr_ratio=0.1)
    lrs = []
    for _ in range(111):
        lrs.append(s.get_last_lr()[0])
        opt.step()
        s.step()
    assert lrs[0] == 0.0                                   # starts from zero
    assert lrs[5] == pytest.approx(0.05)                   # halfway up
    assert lrs[10] == pytest.approx(0.1)                   # the peak is the base lr
    assert lrs[60] == pytest.approx(0.1 * (0.1 + 0.9 * 0.5))   # halfway down the cosine
    assert lrs[110] == pytest.approx(0.01)                 # the floor: min_lr_ratio * base
    assert all(a <= b for a, b in zip(lrs[:10], lrs[1:11]))
    assert all(a >= b for a, b in zip(lrs[10:110], lrs[11:111]))


# ---- errors -------------------------------------------------------------------------------
ERRORS = [
    (lambda o: sched.LinearLR(o, start_factor=0), ValueError,
     "Starting multiplicative factor expected to be greater than 0"),
    (lambda o: sched.LinearLR(o, end_factor=1.5), ValueError,
     "Ending multiplicative factor expected to be between 0 and 1"),
    (lambda o: sched.OneCycleLR(o, max_lr=0.1), ValueError,
     r"You must define either total_steps OR \(epochs AND steps_per_epoch\)"),
    (lambda o: sched.OneCycleLR(o, max_lr=0.1, total_steps=0), ValueError,
     "Expected positive integer total_steps, but got 0"),
    (lambda o: sched.OneCycleLR(o, max_lr=[0.1], total_steps=10), ValueError,
     "max_lr must have the same length as optimizer.param_groups. max_lr has 1 values, "
     "param_groups has 2"),
    (lambda o: sched.OneCycleLR(o, max_lr=0.1, total_steps=10, pct_start=1.5), ValueError,
     "Expected float between 0 and 1 pct_start"),
    (lambda o: sched.OneCycleLR(o, max_lr=0.1, total_steps=10, anneal_strategy="exp"),
     ValueError, "anneal_strategy must be one of 'cos' or 'linear', instead got exp"),
    (lambda o: sched.LambdaLR(o, [lambda e: 1.0]), ValueError, "Expected 2 lr_lambdas, but got 1"),
    (lambda o: sched.StepLR(o, step_size=2, last_epoch=5), KeyError,
     r"'initial_lr' is not specified in param_groups\[0\]"),
    (lambda o: sched.warmup_cosine(o, 20, 10), ValueError, "0 <= warmup_steps <= total_steps"),
    (lambda o: sched.warmup_cosine(o, 2, 10, min_lr_ratio=2.0), ValueError,
     "0 <= min_lr_ratio <= 1"),
    (lambda o: sched.StepLR(object(), step_size=2), TypeError, "object is not an Optimizer"),
]


@pytest.mark.parametrize("make,error,message", ERRORS)
def test_scheduler_argument_errors(make, error, message):
    opt, _ = make_optimizers("SGD")
    with pytest.raises(error, match=message):
        make(opt)


def test_one_cycle_needs_momentum_to_cycle_it_and_stops_at_total_steps():
    p = minidl.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match="optimizer must support momentum or beta1"):
        sched.OneCycleLR(optim.Adagrad([p]), max_lr=0.1, total_steps=10)
    s = sched.OneCycleLR(optim.SGD([p], momentum=0.9), max_lr=0.1, total_steps=3)
    for _ in range(3):
        s.step()
    with pytest.raises(ValueError, match="Tried to step 4 times. The specified number of total "
                                         "steps is 3"):
        s.step()
