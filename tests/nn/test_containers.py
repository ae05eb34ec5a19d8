"""Sequential, ModuleList, ModuleDict, Identity: indexing, naming and registration, with the
names checked against PyTorch's where the two can be built alike."""
from collections import OrderedDict

import numpy as np
import pytest

import minidl
import minidl.nn as mnn

torch = pytest.importorskip("torch")
tnn = torch.nn


def layers(nn):
    return [nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 4), nn.Sigmoid()]


# ---- Sequential ----------------------------------------------------------------------------

def test_sequential_runs_members_in_order():
    model = mnn.Sequential(*layers(mnn))
    x = minidl.randn(5, 2)
    expected = x
    for m in layers_of(model):
        expected = m(expected)
    np.testing.assert_array_equal(model(x).detach().numpy(), expected.detach().numpy())


def layers_of(model):
    return [model[i] for i in range(len(model))]


@pytest.mark.parametrize("index", [0, 2, -1, -4, slice(1, 3), slice(None, None, 2),
                                   slice(-2, None)])
def test_sequential_indexing_matches_pytorch(index):
    ours, theirs = mnn.Sequential(*layers(mnn)), tnn.Sequential(*layers(tnn))
    a, b = ours[index], theirs[index]
    assert repr(a) == repr(b)
    if isinstance(index, slice):  # a slice is a Sequential keeping the original names
        assert isinstance(a, mnn.Sequential)
        assert list(a.state_dict()) == list(b.state_dict())


def test_sequential_index_out_of_range():
    with pytest.raises(IndexError, match="index 4 is out of range for a Sequential of length 4"):
        mnn.Sequential(*layers(mnn))[4]


def test_sequential_from_ordered_dict_keeps_names():
    def build(nn):
        return nn.Sequential(OrderedDict([("fc", nn.Linear(2, 2)), ("act", nn.ReLU()),
                                          ("out", nn.Linear(2, 1))]))
    ours, theirs = build(mnn), build(tnn)
    assert list(ours.state_dict()) == list(theirs.state_dict()) == \
        ["fc.weight", "fc.bias", "out.weight", "out.bias"]
    assert ours.fc is ours[0]
    assert repr(ours[1:]) == repr(theirs[1:])


def test_sequential_append_setitem_delitem_renumber_like_pytorch():
    ours, theirs = mnn.Sequential(*layers(mnn)), tnn.Sequential(*layers(tnn))
    for s, nn in ((ours, mnn), (theirs, tnn)):
        s.append(nn.Linear(4, 1))
        s[1] = nn.ReLU()
        del s[0]
        s.insert(1, nn.Identity())
        s.pop(-2)
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert len(ours) == len(theirs) == 4
    assert [type(m).__name__ for m in ours] == [type(m).__name__ for m in theirs]


def test_sequential_extend_and_iteration():
    s = mnn.Sequential(mnn.Tanh())
    s.extend([mnn.ReLU(), mnn.Sigmoid()])
    assert [type(m).__name__ for m in s] == ["Tanh", "ReLU", "Sigmoid"]


# ---- ModuleList ----------------------------------------------------------------------------

def test_module_list_registers_members():
    class Stack(mnn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = mnn.ModuleList([mnn.Linear(2, 2) for _ in range(3)])

        def forward(self, x):
            for b in self.blocks:
                x = b(x)
            return x

    s = Stack()
    assert [n for n, _ in s.named_parameters()][:3] == ["blocks.0.weight", "blocks.0.bias",
                                                        "blocks.1.weight"]
    assert len(list(s.parameters())) == 6
    s(minidl.randn(1, 2)).sum().backward()
    assert all(p.grad is not None for p in s.parameters())


def test_module_list_operations_match_pytorch():
    ours, theirs = mnn.ModuleList(layers(mnn)), tnn.ModuleList(layers(tnn))
    for ml, nn in ((ours, mnn), (theirs, tnn)):
        ml.append(nn.ReLU())
        ml += [nn.Linear(4, 4)]
        ml.insert(0, nn.Identity())
        del ml[2]
        ml.extend([nn.Tanh()])
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert isinstance(ours[1:3], mnn.ModuleList) and len(ours[1:3]) == 2
    assert repr(ours[::2]) == repr(theirs[::2])
    assert repr(ours + ours) == repr(theirs + theirs)
    assert ours.pop(0).__class__ is mnn.Identity and len(ours) == len(theirs) - 1


def test_module_list_setitem_and_negative_index():
    ml = mnn.ModuleList([mnn.Tanh(), mnn.ReLU()])
    ml[-1] = mnn.Sigmoid()
    assert isinstance(ml[1], mnn.Sigmoid) and ml[-2] is ml[0]
    with pytest.raises(IndexError, match="index -3 is out of range for a ModuleList of length 2"):
        ml[-3]


# ---- ModuleDict ----------------------------------------------------------------------------

def test_module_dict_behaves_like_an_ordered_dict():
    def build(nn):
        return nn.ModuleDict({"enc": nn.Linear(2, 3), "act": nn.ReLU(), "dec": nn.Linear(3, 2)})
    ours, theirs = build(mnn), build(tnn)
    assert list(ours.keys()) == list(theirs.keys()) == ["enc", "act", "dec"]
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert repr(ours) == repr(theirs)
    assert "act" in ours and "nope" not in ours and len(ours) == 3
    assert list(ours) == ["enc", "act", "dec"]
    assert [type(v).__name__ for v in ours.values()] == ["Linear", "ReLU", "Linear"]
    ours.update([("extra", mnn.Tanh())])
    ours["act"] = mnn.Sigmoid()
    assert isinstance(ours.pop("act"), mnn.Sigmoid) and list(ours) == ["enc", "dec", "extra"]
    ours.clear()
    assert len(ours) == 0 and list(ours.parameters()) == []


def test_module_dict_errors():
    md = mnn.ModuleDict({"a": mnn.ReLU()})
    with pytest.raises(KeyError, match="ModuleDict has no key 'b'"):
        md["b"]
    with pytest.raises(ValueError, match="element #0 should be a \\(key, module\\) pair"):
        md.update([mnn.ReLU()])


# ---- Identity ------------------------------------------------------------------------------

def test_identity_ignores_arguments_and_returns_input():
    x = minidl.randn(3)
    assert mnn.Identity(54, unused="x")(x) is x
