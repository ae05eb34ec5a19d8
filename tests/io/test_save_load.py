"""minidl.io.save / load: round trips of every kind of object, dtypes, names other tools see,
file objects, and the errors for objects that cannot be saved."""
import io
import math

import numpy as np
import pytest
import safetensors.numpy

import minidl
from minidl.backend import available_devices
from minidl.io import CheckpointError, load, save

DTYPES = [np.float16, np.float32, np.float64, np.int64, np.int32, np.int16, np.int8, np.uint8,
          np.bool_]
SHAPES = [(), (0, 3), (7,), (2, 3, 4)]


def sample(dtype, shape, seed=0):
    rng = np.random.default_rng(seed)
    values = rng.standard_normal(shape) * 50
    return (values > 0 if dtype == np.bool_ else values).astype(dtype)


def assert_same_tensor(got, expected: np.ndarray):
    assert isinstance(got, minidl.Tensor)
    assert got.numpy().dtype == expected.dtype
    assert got.shape == expected.shape
    np.testing.assert_array_equal(got.numpy(), expected)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_tensor_round_trip_keeps_dtype_shape_values(dtype, shape, tmp_path):
    arr = sample(dtype, shape)
    save(minidl.tensor(arr), tmp_path / "t.safetensors")
    assert_same_tensor(load(tmp_path / "t.safetensors"), arr)


def test_state_dict_round_trip_and_names_seen_by_safetensors(tmp_path):
    sd = {"fc1.weight": sample(np.float32, (4, 3)), "fc1.bias": sample(np.float32, (4,), 1),
          "bn.num_batches_tracked": np.array(7, dtype=np.int64)}
    path = tmp_path / "model.safetensors"
    save({k: minidl.tensor(v) for k, v in sd.items()}, path)
    loaded = load(path)
    assert list(loaded) == list(sd)                   # order kept
    for k, v in sd.items():
        assert_same_tensor(loaded[k], v)
    plain = safetensors.numpy.load_file(str(path))    # no minidl involved
    assert sorted(plain) == sorted(sd)
    for k, v in sd.items():
        np.testing.assert_array_equal(plain[k], v)


def test_torch_reads_the_tensors(tmp_path):
    torch = pytest.importorskip("torch")
    safetensors_torch = pytest.importorskip("safetensors.torch")
    w = sample(np.float32, (3, 5))
    save({"model": {"w": minidl.tensor(w)}, "epoch": 2}, tmp_path / "ck.safetensors")
    got = safetensors_torch.load_file(str(tmp_path / "ck.safetensors"))
    assert set(got) == {"model.w"}
    assert torch.equal(got["model.w"], torch.from_numpy(w))


def test_nested_checkpoint_round_trip(tmp_path):
    w = sample(np.float32, (3, 2))
    obj = {
        "model": {"w": minidl.tensor(w)},
        "optim": {"state": {0: {"step": 12, "exp_avg": minidl.tensor(w * 2)}},
                  "param_groups": [{"lr": 1e-3, "betas": (0.9, 0.999), "amsgrad": False,
                                    "foreach": None, "params": [0]}]},
        "epoch": 3,
        "history": [1.5, float("inf"), -0.0, "text", True, None],
        "array": np.arange(4, dtype=np.int16),
        "numpy_scalar": np.float64(2.5),
        "empty": {},
    }
    save(obj, tmp_path / "ck.safetensors")
    got = load(tmp_path / "ck.safetensors")
    assert set(got) == set(obj)
    assert_same_tensor(got["model"]["w"], w)
    state = got["optim"]["state"]
    assert list(state) == [0] and state[0]["step"] == 12 and type(state[0]["step"]) is int
    assert_same_tensor(state[0]["exp_avg"], w * 2)
    assert got["optim"]["param_groups"] == obj["optim"]["param_groups"]
    assert isinstance(got["optim"]["param_groups"][0]["betas"], tuple)
    assert got["epoch"] == 3
    assert got["history"][0] == 1.5 and math.isinf(got["history"][1])
    assert math.copysign(1, got["history"][2]) == -1 and got["history"][3:] == ["text", True, None]
    assert isinstance(got["array"], np.ndarray) and got["array"].dtype == np.int16
    np.testing.assert_array_equal(got["array"], np.arange(4))
    assert got["numpy_scalar"] == 2.5 and got["empty"] == {}


def test_colliding_names_stay_apart(tmp_path):
    a, b = sample(np.float32, (2,)), sample(np.float32, (3,), 1)
    save({"a.b": minidl.tensor(a), "a": {"b": minidl.tensor(b)}}, tmp_path / "c")
    got = load(tmp_path / "c")
    assert_same_tensor(got["a.b"], a)
    assert_same_tensor(got["a"]["b"], b)


def test_requires_grad_non_contiguous_and_writable(tmp_path):
    base = sample(np.float64, (4, 3))
    t = minidl.tensor(base).t()                       # a non-contiguous view
    p = minidl.tensor(base, requires_grad=True)
    save([t, p], tmp_path / "x")
    t2, p2 = load(tmp_path / "x")
    assert_same_tensor(t2, base.T)
    assert p2.requires_grad and not t2.requires_grad
    t2.add_(1.0)                                      # loaded memory must be writable
    np.testing.assert_array_equal(t2.numpy(), base.T + 1)


def test_foreign_safetensors_file_loads_as_a_dict_of_tensors(tmp_path):
    arrays = {"embed": sample(np.float32, (5, 2)), "scale": np.ones(2, np.float16)}
    safetensors.numpy.save_file(arrays, str(tmp_path / "foreign.safetensors"))
    got = load(tmp_path / "foreign.safetensors")
    assert sorted(got) == ["embed", "scale"]
    for k, v in arrays.items():
        assert_same_tensor(got[k], v)


def test_file_objects(tmp_path):
    buf = io.BytesIO()
    w = sample(np.float32, (2, 2))
    save({"w": minidl.tensor(w), "n": 1}, buf)
    buf.seek(0)
    got = load(buf)
    assert_same_tensor(got["w"], w)
    assert got["n"] == 1


def test_map_location(tmp_path):
    save({"w": minidl.ones(2)}, tmp_path / "m")
    assert load(tmp_path / "m", map_location="cpu")["w"].device == minidl.device("cpu")
    assert load(tmp_path / "m", map_location={"cpu": "cpu"})["w"].device == minidl.device("cpu")
    with pytest.raises(TypeError, match="map_location must be None, a device"):
        load(tmp_path / "m", map_location=3)


@pytest.mark.skipif("cuda" in available_devices(), reason="needs a machine without CUDA")
def test_unavailable_device_suggests_map_location(tmp_path):
    save({"w": minidl.ones(2)}, tmp_path / "m")
    with pytest.raises(CheckpointError, match=r"would go to 'cuda'.*map_location='cpu'"):
        load(tmp_path / "m", map_location={"cpu": "cuda"})


UNSAVABLE = [
    ({"model": {"fn": lambda x: x}}, "cannot store a value of type function \\(at 'model.fn'\\)"),
    ({"s": {1, 2}}, "cannot store a value of type set \\(at 's'\\)"),
    ([object()], "cannot store a value of type object \\(at '0'\\)"),
    ({("a", 1): minidl.ones(1)}, "dict keys must be str or int, got tuple"),
    ({1.5: 2}, "dict keys must be str or int, got float"),
]


@pytest.mark.parametrize("obj,message", UNSAVABLE)
def test_unsavable_objects_are_refused_with_their_path(obj, message, tmp_path):
    with pytest.raises(TypeError, match=message):
        save(obj, tmp_path / "never")
    assert list(tmp_path.iterdir()) == []             # nothing half-written either
