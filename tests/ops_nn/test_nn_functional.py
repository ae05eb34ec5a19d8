"""linear, the activations and the utilities of minidl.nn.functional against PyTorch."""
import numpy as np
import pytest

import minidl
from nn_harness import (DTYPES, Case, check_against_torch, check_gradcheck,
                        check_gradgradcheck, const, ids, ints, randn, torch)

X = randn(3, 4, scale=2.0)   # activations: values on both sides of every kink, none at 0

CASES = [
    Case("linear_2d", lambda F, x, w, b: F.linear(x, w, b), [randn(5, 4), randn(3, 4), randn(3)],
         gradgrad=True),
    Case("linear_leading_dims", lambda F, x, w, b: F.linear(x, w, b),
         [randn(2, 3, 4), randn(5, 4), randn(5)], gradgrad=True),
    Case("linear_no_bias_1d", lambda F, x, w: F.linear(x, w), [randn(4), randn(2, 4)]),
    Case("relu", lambda F, x: F.relu(x), [X]),
    Case("leaky_relu", lambda F, x: F.leaky_relu(x, 0.2), [X]),
    Case("elu", lambda F, x: F.elu(x, 0.7), [X], gradgrad=True),
    Case("selu", lambda F, x: F.selu(x), [X]),
    Case("celu", lambda F, x: F.celu(x, 1.5), [X]),
    Case("gelu", lambda F, x: F.gelu(x), [X], gradgrad=True),
    Case("gelu_tanh", lambda F, x: F.gelu(x, approximate="tanh"), [X], gradgrad=True),
    Case("silu", lambda F, x: F.silu(x), [X], gradgrad=True),
    Case("mish", lambda F, x: F.mish(x), [X], gradgrad=True),
    Case("sigmoid", lambda F, x: F.sigmoid(x), [X], gradgrad=True),
    Case("tanh", lambda F, x: F.tanh(x), [X], gradgrad=True),
    Case("softplus", lambda F, x: F.softplus(x, beta=2.0, threshold=5.0), [X]),
    Case("logsigmoid", lambda F, x: F.logsigmoid(x), [X]),
    Case("hardtanh", lambda F, x: F.hardtanh(x, -0.5, 1.5), [X]),
    Case("relu6", lambda F, x: F.relu6(x * 4), [X]),
    # PyTorch's hardsigmoid backward multiplies by a float32 1/6, even in float64
    Case("hardsigmoid", lambda F, x: F.hardsigmoid(x * 2), [X], tol64=dict(rtol=1e-7)),
    Case("hardswish", lambda F, x: F.hardswish(x * 2), [X]),
    Case("softsign", lambda F, x: F.softsign(x), [X]),
    Case("glu", lambda F, x: F.glu(x, 1), [X], gradgrad=True),
    Case("threshold", lambda F, x: F.threshold(x, 0.3, -2.0), [X]),
    Case("pad_constant", lambda F, x: F.pad(x, (1, 2, 0, 1), value=3.0), [randn(2, 3, 4)]),
    Case("pad_reflect", lambda F, x: F.pad(x, (2, 1), mode="reflect"), [randn(2, 3, 4)]),
    Case("pad_replicate", lambda F, x: F.pad(x, (1, 2, 2, 0), mode="replicate"),
         [randn(1, 2, 3, 4)]),
    Case("pad_circular", lambda F, x: F.pad(x, (1, 2), mode="circular"), [randn(2, 3, 4)]),
    Case("normalize", lambda F, x: F.normalize(x, dim=1), [randn(3, 4, 2)], gradgrad=True),
    Case("normalize_p1", lambda F, x: F.normalize(x, p=1.0, dim=-1), [randn(3, 4)]),
    Case("cosine_similarity", lambda F, a, b: F.cosine_similarity(a, b, dim=-1),
         [randn(3, 5), randn(3, 5)]),
    Case("cosine_similarity_broadcast", lambda F, a, b: F.cosine_similarity(a, b),
         [randn(2, 4, 3), randn(1, 4, 3)]),
    Case("pairwise_distance", lambda F, a, b: F.pairwise_distance(a, b), [randn(4, 3),
                                                                          randn(4, 3)]),
    Case("one_hot", lambda F, i: F.one_hot(i, 5), [ints(5, 2, 3)], grad=(), gradcheck=False),
    Case("one_hot_inferred", lambda F, i: F.one_hot(i), [const(np.array([0, 3, 1]))], grad=(),
         gradcheck=False),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_matches_torch(case, dtype, device):
    check_against_torch(case, dtype, device)


GRADCHECK = [c for c in CASES if c.gradcheck]
GRADGRAD = [c for c in CASES if c.gradgrad]


@pytest.mark.parametrize("case", GRADCHECK, ids=ids(GRADCHECK))
def test_gradcheck(case):
    check_gradcheck(case)


@pytest.mark.parametrize("case", GRADGRAD, ids=ids(GRADGRAD))
def test_gradgradcheck(case):
    check_gradgradcheck(case)


def test_functional_exports_what_it_lists():
    F = minidl.nn.functional
    missing = [name for name in F.__all__ if not callable(getattr(F, name, None))]
    assert missing == []
    in_torch = [name for name in F.__all__ if not hasattr(torch.nn.functional, name)]
    assert in_torch == []


def test_linear_folds_leading_dims_into_one_matrix_product():
    """A (2, 3, 4) input gives the same numbers as the flattened (6, 4) one, row by row."""
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((2, 3, 4)), rng.standard_normal((5, 4))
    F = minidl.nn.functional
    y3 = F.linear(minidl.tensor(x), minidl.tensor(w)).numpy()
    np.testing.assert_allclose(y3.reshape(6, 5), x.reshape(6, 4) @ w.T, rtol=1e-12)
