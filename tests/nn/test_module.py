"""Module system semantics: registration, naming, deduplication, modes, hooks, conversion.

The layers used here are built from core ops only (no nn.functional), so these tests check the
Module machinery itself."""
import copy
import pickle

import numpy as np
import pytest

import minidl
import minidl.nn as nn
from minidl.nn import Parameter


class Affine(nn.Module):
    """y = x @ weight.T + bias, written with core ops."""

    def __init__(self, n_in, n_out, bias=True):
        super().__init__()
        self.weight = Parameter(minidl.randn(n_out, n_in))
        if bias:
            self.bias = Parameter(minidl.zeros(n_out))
        else:
            self.register_parameter("bias", None)

    def forward(self, x):
        y = x @ self.weight.t()
        return y if self.bias is None else y + self.bias


class WithBuffers(nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = Parameter(minidl.ones(3))
        self.register_buffer("stat", minidl.zeros(3))
        self.register_buffer("cache", minidl.ones(2), persistent=False)
        self.register_buffer("count", minidl.tensor(0))

    def forward(self, x):
        return x * self.scale + self.stat


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = Affine(4, 3)
        self.block = WithBuffers()
        self.head = Affine(3, 2, bias=False)

    def forward(self, x):
        return self.head(self.block(self.encoder(x)))


# ---- registration and naming ---------------------------------------------------------------

def test_named_parameters_follow_registration_order_with_dotted_names():
    names = [n for n, _ in Net().named_parameters()]
    assert names == ["encoder.weight", "encoder.bias", "block.scale", "head.weight"]


def test_named_parameters_prefix_and_recurse():
    net = Net()
    assert [n for n, _ in net.named_parameters(prefix="model")][0] == "model.encoder.weight"
    assert list(net.named_parameters(recurse=False)) == []
    assert [n for n, _ in net.encoder.named_parameters(recurse=False)] == ["weight", "bias"]


def test_buffers_and_persistence():
    m = WithBuffers()
    assert [n for n, _ in m.named_buffers()] == ["stat", "cache", "count"]
    assert list(m.state_dict()) == ["scale", "stat", "count"]  # 'cache' is not persistent


def test_assigning_none_bias_registers_an_absent_parameter():
    head = Affine(3, 2, bias=False)
    assert "bias" in head._parameters and head.bias is None
    assert [n for n, _ in head.named_parameters()] == ["weight"]
    assert list(head.state_dict()) == ["weight"]


def test_reassigning_a_name_moves_it_between_tables():
    m = nn.Module()
    m.x = Affine(2, 2)
    m.x = Parameter(minidl.zeros(2))  # a Parameter replaces the child of the same name
    assert "x" in m._parameters and "x" not in m._modules
    with pytest.raises(TypeError, match="Affine' as parameter 'x'"):
        m.x = Affine(2, 2)  # the reverse is refused, as in PyTorch: delete the parameter first
    del m.x
    m.x = Affine(2, 2)
    m.x = None  # a registered child may be set to None
    assert m._modules["x"] is None and list(m.children()) == []
    del m.x
    assert "x" not in m._modules
    with pytest.raises(AttributeError, match="'Module' object has no attribute 'x'"):
        m.x


def test_plain_attributes_are_not_registered():
    m = nn.Module()
    m.hidden = [Affine(2, 2)]  # a Python list hides its modules: that is what ModuleList is for
    m.factor = 3.0
    m.t = minidl.zeros(2)  # a plain tensor is neither a parameter nor a buffer
    assert list(m.parameters()) == [] and list(m.buffers()) == []


@pytest.mark.parametrize("action, error, message", [
    (lambda m: setattr(m, "weight", minidl.zeros(2)), TypeError,
     r"cannot assign 'minidl.tensor.Tensor' as parameter 'weight' \(minidl.nn.Parameter or None"),
    (lambda m: setattr(m, "child", 3), TypeError,
     r"cannot assign 'builtins.int' as child module 'child'"),
    (lambda m: setattr(m, "buf", [1]), TypeError, r"cannot assign 'builtins.list' as buffer 'buf'"),
    (lambda m: m.register_parameter("a.b", Parameter(minidl.zeros(1))), KeyError,
     r'contain "\.", got "a.b"'),
    (lambda m: m.register_parameter("", Parameter(minidl.zeros(1))), KeyError,
     "be empty string"),
    (lambda m: m.register_parameter("p", minidl.zeros(1)), TypeError,
     r"cannot assign 'minidl.tensor.Tensor' object to parameter 'p'"),
    (lambda m: m.register_buffer("training", minidl.zeros(1)), KeyError,
     "attribute 'training' already exists"),
    (lambda m: m.register_buffer("b", 3.0), TypeError, "cannot assign 'builtins.float' object"),
    (lambda m: m.add_module("c", 3), TypeError, "builtins.int is not a Module subclass"),
    (lambda m: m.register_parameter(1, None), TypeError, "should be a string, got int"),
])
def test_registration_errors(action, error, message):
    m = nn.Module()
    m.weight = Parameter(minidl.zeros(2))
    m.child = Affine(1, 1)
    m.register_buffer("buf", minidl.zeros(1))
    with pytest.raises(error, match=message):
        action(m)


def test_assigning_before_super_init_is_explained():
    class Forgetful(nn.Module):
        def __init__(self):
            self.w = Parameter(minidl.zeros(1))

    with pytest.raises(AttributeError, match=r"before Module.__init__\(\) call"):
        Forgetful()


def test_missing_forward_is_explained():
    with pytest.raises(NotImplementedError, match=r'Module \[Module\] is missing the required '
                                                  '"forward" function'):
        nn.Module()(1)


# ---- sharing -------------------------------------------------------------------------------

def test_shared_parameter_is_listed_once_but_saved_under_each_name():
    a, b = Affine(3, 3), Affine(3, 3)
    b.weight = a.weight  # weight tying
    model = nn.Sequential(a, b)
    assert [n for n, _ in model.named_parameters()] == ["0.weight", "0.bias", "1.bias"]
    all_names = [n for n, _ in model.named_parameters(remove_duplicate=False)]
    assert all_names == ["0.weight", "0.bias", "1.weight", "1.bias"]
    assert list(model.state_dict()) == all_names


def test_shared_module_is_walked_once():
    shared = Affine(2, 2)
    model = nn.Sequential(shared, nn.Tanh(), shared)
    assert [n for n, _ in model.named_modules()] == ["", "0", "1"]
    assert len(list(model.parameters())) == 2
    assert len(list(model.named_modules(remove_duplicate=False))) == 4
    assert len(list(model.children())) == 2


def test_modules_children_and_get_submodule():
    net = Net()
    assert [n for n, _ in net.named_modules()] == ["", "encoder", "block", "head"]
    assert [n for n, _ in net.named_children()] == ["encoder", "block", "head"]
    assert net.get_submodule("block") is net.block
    assert net.get_parameter("encoder.bias") is net.encoder.bias
    with pytest.raises(AttributeError, match="has no submodule 'nope'"):
        net.get_submodule("block.nope")


def test_apply_visits_children_before_parent():
    seen = []
    Net().apply(lambda m: seen.append(type(m).__name__))
    assert seen == ["Affine", "WithBuffers", "Affine", "Net"]


# ---- modes and gradients -------------------------------------------------------------------

def test_train_and_eval_propagate_and_return_self():
    net = Net()
    assert net.eval() is net
    assert [m.training for m in net.modules()] == [False] * 4
    net.block.train()
    assert net.block.training and not net.training and not net.head.training
    assert net.train() is net and all(m.training for m in net.modules())
    with pytest.raises(ValueError, match="training mode is expected to be boolean"):
        net.train("yes")


@pytest.mark.parametrize("set_to_none", [True, False])
def test_zero_grad(set_to_none):
    net = Net()
    net(minidl.randn(5, 4)).sum().backward()
    grads = [p.grad for p in net.parameters()]
    assert all(g is not None for g in grads)
    net.zero_grad(set_to_none=set_to_none)
    for p, old in zip(net.parameters(), grads):
        if set_to_none:
            assert p.grad is None
        else:
            assert p.grad is old and not p.grad.numpy().any()


def test_zero_grad_without_none_cuts_a_differentiable_grad_from_its_graph():
    m = Affine(2, 1)
    (m(minidl.randn(3, 2)) ** 2).sum().backward(create_graph=True)
    grad = m.weight.grad
    assert grad.grad_fn is not None
    m.zero_grad(set_to_none=False)
    assert m.weight.grad is grad and grad.grad_fn is None and not grad.requires_grad
    assert not grad.numpy().any()


def test_gradients_reach_every_parameter_and_accumulate():
    net = Net()
    x = minidl.randn(5, 4)
    net(x).sum().backward()
    first = {n: p.grad.numpy().copy() for n, p in net.named_parameters()}
    net(x).sum().backward()
    for n, p in net.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), 2 * first[n], rtol=1e-6, err_msg=n)


def test_requires_grad_switches_every_parameter():
    net = Net().requires_grad_(False)
    assert not any(p.requires_grad for p in net.parameters())
    assert not net(minidl.randn(2, 4)).requires_grad
    net.requires_grad_()
    assert all(p.requires_grad for p in net.parameters())


# ---- conversion ----------------------------------------------------------------------------

@pytest.mark.parametrize("convert, dtype", [
    (lambda m: m.to(minidl.float64), minidl.float64),
    (lambda m: m.to(dtype="float64"), minidl.float64),
    (lambda m: m.double(), minidl.float64),
    (lambda m: m.double().float(), minidl.float32),
    (lambda m: m.half(), minidl.float16),
    (lambda m: m.to(minidl.zeros(1, dtype=minidl.float64)), minidl.float64),
])
def test_dtype_conversion_keeps_parameter_identity(convert, dtype):
    net = Net()
    net(minidl.randn(2, 4)).sum().backward()
    params = list(net.parameters())
    before = [p.detach().numpy().astype(np.float64) for p in params]
    assert convert(net) is net
    assert all(a is b for a, b in zip(net.parameters(), params))
    for p, old in zip(params, before):
        assert isinstance(p, Parameter) and p.requires_grad and p.is_leaf
        assert p.dtype == dtype and p.grad.dtype == dtype
        np.testing.assert_allclose(p.detach().numpy().astype(np.float64), old, rtol=1e-3)
    assert net.block.stat.dtype == dtype
    assert net.block.count.dtype == minidl.int64  # integer buffers keep their dtype


def test_converted_model_still_trains():
    net = Net().double()
    out = net(minidl.randn(2, 4, dtype=minidl.float64))
    assert out.dtype == minidl.float64
    out.sum().backward()
    assert net.encoder.weight.grad.dtype == minidl.float64


def test_to_device_keeps_identity(device):
    net = Net()
    w = net.encoder.weight
    net.to(device)
    assert net.encoder.weight is w and str(w.device).startswith(device)
    assert str(net.block.stat.device).startswith(device)


def test_to_integer_dtype_is_refused():
    with pytest.raises(TypeError, match="only accepts floating point dtypes, but got desired "
                                        "dtype=minidl.int64"):
        Net().to(minidl.int64)


def test_deepcopy_is_independent_and_usable():
    net = Net()
    clone = copy.deepcopy(net)
    x = minidl.randn(3, 4)
    np.testing.assert_array_equal(clone(x).detach().numpy(), net(x).detach().numpy())
    with minidl.no_grad():
        clone.encoder.weight.add_(1.0)
    assert not np.array_equal(clone(x).detach().numpy(), net(x).detach().numpy())
    assert clone.encoder.weight is not net.encoder.weight


def test_checkpoint_round_trip_through_minidl_io(tmp_path):
    from minidl.io import load, save
    net = Net()
    with minidl.no_grad():
        net.block.stat.fill_(0.5)
        net.block.count.fill_(4)
    save({"model": net.state_dict()}, tmp_path / "net.safetensors")
    restored = Net()
    assert restored.load_state_dict(load(tmp_path / "net.safetensors")["model"]) == ([], [])
    x = minidl.randn(3, 4)
    np.testing.assert_array_equal(restored(x).detach().numpy(), net(x).detach().numpy())
    assert restored.block.count.item() == 4 and restored.block.count.dtype == minidl.int64


def test_parameter_pickles_as_a_parameter():
    p = Parameter(minidl.randn(2, 3), requires_grad=False)
    back = pickle.loads(pickle.dumps(p))
    assert isinstance(back, Parameter) and not back.requires_grad
    np.testing.assert_array_equal(back.numpy(), p.numpy())


# ---- hooks ---------------------------------------------------------------------------------

def test_forward_pre_hook_and_forward_hook_can_replace_values():
    m = Affine(2, 2)
    x = minidl.randn(3, 2)
    expected = m(x).detach().numpy()
    calls = []
    h1 = m.register_forward_pre_hook(lambda mod, args: (args[0] * 2,))
    h2 = m.register_forward_hook(lambda mod, args, out: calls.append(out.shape) or out + 1)
    np.testing.assert_allclose(m(x).detach().numpy(), m.forward(x * 2).detach().numpy() + 1,
                               rtol=1e-6)
    assert calls == [(3, 2)]
    h1.remove()
    h2.remove()
    np.testing.assert_allclose(m(x).detach().numpy(), expected, rtol=1e-6)


def test_hook_order_prepend_and_kwargs():
    m = nn.Identity()
    order = []
    m.register_forward_hook(lambda mod, a, o: order.append("second"))
    m.register_forward_hook(lambda mod, a, o: order.append("first"), prepend=True)
    m.register_forward_pre_hook(lambda mod, a, kw: ((a[0] + 1,), kw), with_kwargs=True)
    m.register_forward_hook(lambda mod, a, kw, o: o * 10, with_kwargs=True)
    assert m(1) == 20 and order == ["first", "second"]


def test_pre_hook_with_kwargs_must_return_a_pair():
    m = nn.Identity()
    m.register_forward_pre_hook(lambda mod, a, kw: 5, with_kwargs=True)
    with pytest.raises(RuntimeError, match=r"must return None or a tuple \(new_args, new_kwargs\)"):
        m(1)


def test_handle_as_context_manager():
    m = nn.Identity()
    with m.register_forward_hook(lambda mod, a, o: o + 1):
        assert m(1) == 2
    assert m(1) == 1


# ---- Parameter -----------------------------------------------------------------------------

def test_parameter_is_a_leaf_sharing_memory():
    t = minidl.zeros(3)
    p = Parameter(t)
    assert p.requires_grad and p.is_leaf and isinstance(p, minidl.Tensor)
    t.add_(1.0)
    np.testing.assert_array_equal(p.detach().numpy(), [1.0, 1.0, 1.0])
    assert not Parameter(minidl.zeros(2), requires_grad=False).requires_grad
    assert tuple(Parameter().shape) == (0,)


def test_parameter_results_are_plain_tensors():
    p = Parameter(minidl.ones(2))
    assert type(p * 2) is minidl.Tensor and type(p.detach()) is minidl.Tensor


def test_parameter_repr_and_integer_refusal():
    assert repr(Parameter(minidl.zeros(2))) == \
        "Parameter containing:\ntensor([0., 0.], requires_grad=True)"
    with pytest.raises(RuntimeError, match="only tensors of floating point dtype can require"):
        Parameter(minidl.tensor([1, 2]))
