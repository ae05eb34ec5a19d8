"""The Tensor API: creation, dtypes and promotion, devices, conversions, errors."""
from __future__ import annotations

import inspect

import numpy as np
import pytest

import minidl

try:
    import torch
except ImportError:
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch not installed: no reference")


# ---- creation ----------------------------------------------------------------------------
CREATION = [
    ("zeros", lambda L: L.zeros(2, 3)),
    ("ones", lambda L: L.ones((2, 3), dtype=L.float64)),
    ("full", lambda L: L.full((2, 2), 1.5)),
    ("full_int", lambda L: L.full((2,), 7)),
    ("arange", lambda L: L.arange(5)),
    ("arange_float", lambda L: L.arange(0, 1, 0.25)),
    ("linspace", lambda L: L.linspace(0, 1, 5)),
    ("eye", lambda L: L.eye(3, 4)),
    ("tensor_floats", lambda L: L.tensor([[1.0, 2.0], [3.0, 4.0]])),
    ("tensor_ints", lambda L: L.tensor([1, 2, 3])),
    ("tensor_bools", lambda L: L.tensor([True, False])),
    ("tensor_scalar", lambda L: L.tensor(3.5)),
    ("zeros_like", lambda L: L.zeros_like(L.ones(2, 3, dtype=L.float64))),
    ("full_like", lambda L: L.full_like(L.ones(2, dtype=L.int32), 4)),
]


@needs_torch
@pytest.mark.parametrize("name,make", CREATION, ids=[c[0] for c in CREATION])
def test_creation_matches_torch(name, make):
    m, t = make(minidl), make(torch)
    assert tuple(m.shape) == tuple(t.shape)
    assert m.dtype.name == str(t.dtype).replace("torch.", "")
    np.testing.assert_allclose(m.numpy(), t.numpy())


def test_random_creation_is_reproducible_and_has_the_right_statistics():
    minidl.manual_seed(42)
    a = minidl.randn(10_000)
    minidl.manual_seed(42)
    b = minidl.randn(10_000)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert a.dtype is minidl.float32
    assert abs(a.numpy().mean()) < 0.05 and abs(a.numpy().std() - 1) < 0.05
    u = minidl.rand(10_000)
    assert 0 <= u.numpy().min() and u.numpy().max() < 1 and abs(u.numpy().mean() - 0.5) < 0.02
    r = minidl.randint(3, 7, (1000,))
    assert r.dtype is minidl.int64 and set(np.unique(r.numpy())) == {3, 4, 5, 6}


def test_generator_objects_are_independent():
    g1 = minidl.Generator().manual_seed(1)
    g2 = minidl.Generator().manual_seed(1)
    minidl.randn(5)  # draws from the default generator only
    np.testing.assert_array_equal(minidl.randn(3, generator=g1).numpy(),
                                  minidl.randn(3, generator=g2).numpy())


def test_from_numpy_shares_memory():
    a = np.zeros(3, dtype=np.float32)
    t = minidl.from_numpy(a)
    a[1] = 5
    assert t[1].item() == 5
    with pytest.raises(TypeError, match="has no minidl equivalent|float32, float64"):
        minidl.from_numpy(np.zeros(2, dtype=np.complex64))


# ---- dtypes and promotion ------------------------------------------------------------------
DTYPES = ["float16", "float32", "float64", "int32", "int64", "bool", "uint8", "int8"]


@needs_torch
@pytest.mark.parametrize("a", DTYPES)
@pytest.mark.parametrize("b", DTYPES)
def test_tensor_tensor_promotion_matches_torch(a, b):
    ma, mb = minidl.ones(2, dtype=a), minidl.ones(2, dtype=b)
    ta, tb = torch.ones(2, dtype=getattr(torch, a)), torch.ones(2, dtype=getattr(torch, b))
    expected = str((ta + tb).dtype).replace("torch.", "")
    assert (ma + mb).dtype.name == expected
    assert minidl.result_type(ma, mb).name == expected


SCALARS = [2, 2.5, True, np.float64(2.5), np.float32(2.5), np.int64(2)]


@needs_torch
@pytest.mark.parametrize("a", DTYPES)
@pytest.mark.parametrize("s", SCALARS, ids=["int", "float", "bool", "np.float64", "np.float32",
                                            "np.int64"])
def test_tensor_scalar_promotion_matches_torch(a, s):
    m = minidl.ones(2, dtype=a) * s
    t = torch.ones(2, dtype=getattr(torch, a)) * s
    assert m.dtype.name == str(t.dtype).replace("torch.", "")
    np.testing.assert_allclose(m.numpy().astype(float), t.numpy().astype(float))


@needs_torch
def test_zero_dim_tensor_promotion_matches_torch():
    cases = [("int64", 1, "float64", 1.5), ("float32", 1, "float64", 1.5),
             ("float16", 1, "float32", 2.0), ("int32", 1, "int64", 3)]
    for da, va, db, vb in cases:
        m = minidl.tensor([va], dtype=da) + minidl.tensor(vb, dtype=db)
        t = torch.tensor([va], dtype=getattr(torch, da)) + torch.tensor(vb, dtype=getattr(torch, db))
        assert m.dtype.name == str(t.dtype).replace("torch.", ""), (da, db)


def test_float32_work_stays_float32():
    x = minidl.randn(4, 4, requires_grad=True)
    y = (x * 2.5 + 1).exp().sum() / 3 + x.mean() ** 2
    assert y.dtype is minidl.float32
    y.backward()
    assert x.grad.dtype is minidl.float32


def test_integer_division_and_float_functions_give_default_float():
    assert (minidl.tensor([1, 2]) / 2).dtype is minidl.float32
    assert minidl.tensor([1, 2]).exp().dtype is minidl.float32
    assert (minidl.tensor([7, -7]) // 2).tolist() == [3, -4]


def test_float16_sum_accumulates_in_float32():
    x = minidl.ones(10_000, dtype=minidl.float16)
    s = x.sum()
    assert s.dtype is minidl.float16 and s.item() == 10_000
    assert x.mean().item() == 1.0


def test_default_dtype_switch():
    try:
        minidl.set_default_dtype(minidl.float64)
        assert minidl.tensor([1.5]).dtype is minidl.float64
        assert minidl.zeros(2).dtype is minidl.float64
    finally:
        minidl.set_default_dtype(minidl.float32)
    assert minidl.tensor([1.5]).dtype is minidl.float32


# ---- the constructor and subclasses (Tensor keeps its constructor in _init: see _TensorType)
def test_tensor_constructor_copies_and_takes_its_keywords():
    src = np.array([1.0, 2.0])
    t = minidl.Tensor(src, dtype=minidl.float32, requires_grad=True)
    src[0] = 9.0
    assert type(t) is minidl.Tensor and t.dtype is minidl.float32 and t.requires_grad
    assert t.tolist() == [1.0, 2.0] and t.is_leaf and t.grad_fn is None
    with pytest.raises(TypeError):
        minidl.Tensor()  # the data argument is required, as in _init's signature
    assert list(inspect.signature(minidl.Tensor).parameters) == \
        ["data", "dtype", "device", "requires_grad"]
    assert list(inspect.signature(minidl.nn.Parameter).parameters) == ["data", "requires_grad"]


def test_op_results_are_plain_tensors_with_every_field_set():
    a = minidl.tensor([1.0, 2.0], requires_grad=True)
    c = a + a
    assert type(c) is minidl.Tensor and c.grad_fn is not None and c.requires_grad
    assert c._version[0] == 0 and c.grad is None and not c.is_leaf


def test_subclass_overriding_init_hook():
    class Doubled(minidl.Tensor):
        __slots__ = ()

        def _init(self, data):
            super()._init(np.asarray(data) * 2)

    d = Doubled([1.0, 2.0])
    assert type(d) is Doubled and d.tolist() == [2.0, 4.0]
    assert type(d + d) is minidl.Tensor  # ops return plain tensors, as before


def test_subclass_with_its_own_dunder_init_is_constructed_the_usual_way():
    class Labelled(minidl.Tensor):
        def __init__(self, data, label):
            self._init(data)
            self.label = label

    assert list(inspect.signature(Labelled).parameters) == ["data", "label"]
    t = Labelled([3.0], label="x")
    assert type(t) is Labelled and t.label == "x" and t.tolist() == [3.0]
    with pytest.raises(TypeError):
        Labelled([3.0])  # its own signature is the one checked


def test_parameter_constructor_still_shares_memory():
    base = minidl.tensor([1.0, 2.0])
    p = minidl.nn.Parameter(base)
    assert type(p) is minidl.nn.Parameter and p.requires_grad and p.is_leaf
    with minidl.no_grad():
        base.mul_(3.0)
    assert p.tolist() == [3.0, 6.0]  # the same memory, as in PyTorch


# ---- attributes and conversions -----------------------------------------------------------
def test_basic_attributes():
    x = minidl.zeros(2, 3, 4)
    assert x.shape == (2, 3, 4) and x.size() == (2, 3, 4) and x.size(-1) == 4
    assert x.ndim == 3 and x.dim() == 3 and x.numel() == 24 and len(x) == 2
    assert str(x.device) == "cpu" and x.device == minidl.device("cpu")
    assert x.T.shape == (4, 3, 2) and x.mT.shape == (2, 4, 3)
    assert repr(x.shape) == "minidl.Size([2, 3, 4])"


def test_item_tolist_numpy():
    x = minidl.tensor([[1.5, 2.0]])
    assert x.tolist() == [[1.5, 2.0]]
    assert x[0, 0].item() == 1.5 and float(x[0, 1]) == 2.0
    with pytest.raises(RuntimeError, match="2 elements cannot be converted"):
        x.item()
    y = minidl.tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="detach"):
        y.numpy()
    assert y.detach().numpy().tolist() == [1.0]


def test_repr_is_readable():
    assert repr(minidl.tensor([1.0, 2.0])) == "tensor([1., 2.])"
    assert "requires_grad=True" in repr(minidl.tensor([1.0], requires_grad=True))
    assert "grad_fn=<MulBackward>" in repr(minidl.tensor([1.0], requires_grad=True) * 2)
    assert "dtype=minidl.float64" in repr(minidl.tensor([1.0], dtype="float64"))


def test_to_and_casts():
    x = minidl.tensor([1.7, -2.2], requires_grad=True)
    y = x.to(minidl.float64)
    assert y.dtype is minidl.float64 and y.requires_grad
    y.sum().backward()
    assert x.grad.dtype is minidl.float32
    assert x.long().tolist() == [1, -2] and x.int().dtype is minidl.int32
    assert x.to("cpu") is x and x.cpu() is x
    assert x.double().dtype is minidl.float64 and x.half().dtype is minidl.float16


def test_clone_and_requires_grad_():
    x = minidl.tensor([1.0, 2.0]).requires_grad_()
    c = x.clone()
    assert c.grad_fn is not None
    (c * 3).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 3.0])


def test_reflected_and_inplace_operators():
    x = minidl.tensor([2.0, 4.0])
    assert (1 - x).tolist() == [-1.0, -3.0]
    assert (8 / x).tolist() == [4.0, 2.0]
    assert (2 ** x).tolist() == [4.0, 16.0]
    assert (-x).tolist() == [-2.0, -4.0]
    y = x.clone()
    y += 1
    y *= 2
    y -= 1
    y /= 5
    np.testing.assert_allclose(y.numpy(), [1.0, 1.8], rtol=1e-6)
    assert ((x > 3) & (x < 5)).tolist() == [False, True]
    assert (~(x > 3)).tolist() == [True, False]


def test_inplace_result_must_fit_dtype():
    x = minidl.tensor([1, 2])
    with pytest.raises(RuntimeError, match="can't be cast"):
        x += 0.5


# ---- errors that name what was expected and what was given --------------------------------
def test_matmul_shape_mismatch_message():
    with pytest.raises(RuntimeError, match=r"\(2, 3\) and \(4, 5\).*3 columns.*4 rows"):
        minidl.zeros(2, 3) @ minidl.zeros(4, 5)


def test_impossible_broadcast_message():
    with pytest.raises(ValueError, match="broadcast"):
        minidl.zeros(2, 3) + minidl.zeros(4)


def test_unknown_device_and_dtype_messages():
    with pytest.raises(RuntimeError, match="unknown device 'tpu'.*cpu, cuda, cuda-emu"):
        minidl.zeros(2, device="tpu")
    with pytest.raises(TypeError, match="unknown dtype 'complex7'"):
        minidl.zeros(2, dtype="complex7")


def test_out_of_range_dim_message():
    with pytest.raises(IndexError, match=r"Dimension out of range \(expected to be in range of \[-2, 1\], but got 2\)"):
        minidl.zeros(2, 3).sum(2)


def test_reshape_and_expand_messages():
    with pytest.raises(RuntimeError, match=r"shape '\[4, 2\]' is invalid for input of size 6"):
        minidl.zeros(2, 3).reshape(4, 2)
    with pytest.raises(RuntimeError, match="expanded size of the tensor \\(5\\) must match the existing size \\(3\\)"):
        minidl.zeros(2, 3).expand(2, 5)


def test_cat_and_stack_messages():
    with pytest.raises(RuntimeError, match=r"tensor 1 has \(2, 5\)"):
        minidl.cat([minidl.zeros(3, 4), minidl.zeros(2, 5)], 0)
    with pytest.raises(RuntimeError, match="equal size"):
        minidl.stack([minidl.zeros(3), minidl.zeros(2)])


def test_unbind_and_iteration_messages_and_views():
    with pytest.raises(IndexError, match="0-d"):
        minidl.unbind(minidl.tensor(1.0))
    with pytest.raises(TypeError, match="iteration over a 0-d tensor"):
        iter(minidl.tensor(1.0))
    with pytest.raises(IndexError, match="Dimension out of range"):
        minidl.zeros(2, 3).unbind(2)
    x = minidl.arange(6.0).reshape(2, 3)
    rows = list(x)
    assert [tuple(r.shape) for r in rows] == [(3,), (3,)]
    assert list(minidl.zeros(0, 3)) == []
    rows[1][0] = 10.0  # views: writing through a row writes the base, as in PyTorch
    assert x.numpy()[1, 0] == 10.0
