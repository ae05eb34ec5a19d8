"""minidl.set_num_threads / get_num_threads: minidl's own CPU thread count, as torch's pair;
NumPy's BLAS setting outside minidl is left alone."""
import os
import subprocess
import sys

import numpy as np
import pytest
from threadpoolctl import threadpool_info

import minidl
from minidl.backend import cpu_threads

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _numpy_blas_threads_seen_by_threadpoolctl():
    """NumPy's BLAS thread count read afresh, not through minidl's controller."""
    path = os.path.realpath(cpu_threads._numpy_blas().filepath)
    (lib,) = [i for i in threadpool_info() if os.path.realpath(i["filepath"]) == path]
    return lib["num_threads"]


@pytest.fixture
def restore_threads():
    if cpu_threads._numpy_blas() is None:
        pytest.skip("threadpoolctl cannot tell which BLAS NumPy uses in this environment")
    before = minidl.get_num_threads()
    yield
    minidl.set_num_threads(before)


def test_set_then_get_changes_minidls_count_and_leaves_numpys_blas(restore_threads):
    from minidl.backend import cpu_pool
    numpy_blas = _numpy_blas_threads_seen_by_threadpoolctl()
    for n in (1, 2, 3, 1):
        minidl.set_num_threads(n)
        assert minidl.get_num_threads() == n
        if cpu_pool.available():
            assert cpu_pool.num_threads() == n
            assert _numpy_blas_threads_seen_by_threadpoolctl() == numpy_blas
        else:      # no pool of its own here: the BLAS count is minidl's count
            assert _numpy_blas_threads_seen_by_threadpoolctl() == n
    minidl.set_num_threads(np.int64(2))         # NumPy integers are ints too
    assert minidl.get_num_threads() == 2


def test_matmul_is_unchanged_by_the_thread_count(restore_threads):
    rng = np.random.default_rng(0)
    a = minidl.tensor(rng.standard_normal((96, 80)), requires_grad=True)
    b = minidl.tensor(rng.standard_normal((80, 112)))
    want = a.detach().numpy() @ b.numpy()
    for n in (1, 2):
        minidl.set_num_threads(n)
        got = (a @ b).detach().numpy()
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("bad, error, shown", [
    (0, ValueError, "got 0"), (-3, ValueError, "got -3"), (1.5, TypeError, "float 1.5"),
    (True, TypeError, "bool True"), ("2", TypeError, "str '2'"), (None, TypeError, "NoneType"),
])
def test_bad_counts_are_refused_and_change_nothing(restore_threads, bad, error, shown):
    before = minidl.get_num_threads()
    with pytest.raises(error, match="expected a positive int") as info:
        minidl.set_num_threads(bad)
    assert shown in str(info.value)
    assert minidl.get_num_threads() == before


def test_an_unknown_blas_gives_a_clear_error(monkeypatch):
    from minidl.backend import cpu_pool
    monkeypatch.setitem(cpu_threads._found, "looked", True)
    monkeypatch.setitem(cpu_threads._found, "blas", None)
    monkeypatch.setattr(cpu_pool, "available", lambda: False)   # so no pool of minidl's own
    for call in (lambda: minidl.get_num_threads(), lambda: minidl.set_num_threads(1)):
        with pytest.raises(RuntimeError, match="cannot tell which BLAS library NumPy uses") as info:
            call()
        assert "OPENBLAS_NUM_THREADS" in str(info.value)


def test_the_environment_sets_the_starting_count():
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    code = ("import minidl\n"
            "from minidl.backend import cpu_threads\n"
            "print('unknown' if cpu_threads._numpy_blas() is None else minidl.get_num_threads())")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    if out.stdout.strip() == "unknown":
        pytest.skip("threadpoolctl cannot tell which BLAS NumPy uses in this environment")
    assert out.stdout.strip() == "1"


def test_numpys_own_blas_is_chosen_beside_another_librarys(restore_threads):
    torch = pytest.importorskip("torch")   # brings its own threading libraries
    blas = cpu_threads._numpy_blas()
    numpy_dir = os.path.dirname(os.path.realpath(np.__file__))
    if blas is None or not os.path.realpath(blas.filepath).startswith(numpy_dir):
        pytest.skip("NumPy here does not ship its own BLAS inside its install")
    from minidl.backend import cpu_pool
    before = torch.get_num_threads()
    minidl.set_num_threads(1)
    assert torch.get_num_threads() == before      # PyTorch's own pool is left alone
    with cpu_pool.blas_held():                    # what minidl's ops hold NumPy's BLAS at
        assert _numpy_blas_threads_seen_by_threadpoolctl() == 1
