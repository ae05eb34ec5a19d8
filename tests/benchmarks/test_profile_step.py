"""benchmarks/profile_step.py: where each function's time is counted, and the node count."""
import minidl
from profile_step import group_of, node_count, split_c_time

SITE = "/usr/lib/python3.11/site-packages"


def test_functions_are_grouped_by_the_file_they_live_in():
    root = "/repo/minidl"
    assert group_of(f"{root}/autograd/engine.py", "run_backward") == "autograd engine"
    assert group_of(f"{root}/autograd/function.py", "apply1") == "autograd records"
    assert group_of(f"{root}/tensor.py", "_wrap") == "autograd records"
    # `x + y` computes inside function.py: its NumPy add is op work, not bookkeeping
    assert group_of(f"{root}/autograd/function.py", "operator_fast_path") == "ops and layers"
    assert group_of(f"{root}/ops/elementwise.py", "forward") == "ops and layers"
    assert group_of(f"{root}/nn/functional.py", "forward") == "ops and layers"
    assert group_of(f"{root}/backend/cpu_kernels/norm.py", "rows") == "kernels"
    assert group_of(f"{SITE}/numpy/_core/_methods.py", "_sum") == "kernels"
    assert group_of("~", "<built-in method numpy.ascontiguousarray>") == "kernels"
    assert group_of(f"{SITE}/heapq.py", "heappush") == "other"
    assert group_of("/repo/benchmarks/profile_step.py", "profile") == "other"


def test_c_time_goes_to_autograd_callers_and_otherwise_to_kernels():
    engine = ("/repo/minidl/autograd/engine.py", 53, "run_backward")
    op = ("/repo/minidl/ops/attention.py", 43, "backward")
    kernel = ("/repo/minidl/backend/cpu_kernels/norm.py", 379, "_rows")
    shares = split_c_time({engine: (10, 10, 0.25, 0.25), op: (4, 4, 1.0, 1.0),
                           kernel: (2, 2, 0.5, 0.5)})
    assert shares == {"autograd engine": 0.25, "kernels": 1.5}


def test_node_count_visits_each_op_node_once_and_no_leaf():
    a = minidl.tensor([1.0, 2.0], requires_grad=True)
    b = minidl.tensor([3.0, 4.0], requires_grad=True)
    assert node_count((a * b).sum()) == 2
    shared = a * b                      # reached twice below, counted once
    assert node_count((shared + shared).exp().sum()) == 4
    frozen = minidl.tensor([1.0, 2.0])  # no grad: contributes no node
    assert node_count((a * frozen).sum()) == 2
