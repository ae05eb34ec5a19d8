"""Identical starting weights: the drawing rules, tied parameters, and the digest."""
import numpy as np
import pytest

import minidl.nn as nn
from suite import weights

SHAPES = [("fc.weight", (4, 25)), ("fc.bias", (4,)), ("conv.weight", (8, 2, 3, 3)),
          ("conv.bias", (8,)), ("ln.weight", (16,)), ("ln.bias", (16,)), ("emb.weight", (65, 16))]


@pytest.mark.parametrize("name, check", [
    ("fc.weight", lambda a: np.abs(a).max() <= 1 / 5 and np.abs(a).max() > 0.15),
    ("fc.bias", lambda a: np.abs(a).max() <= 1 / 5),                 # its weight's fan_in (25)
    ("conv.weight", lambda a: np.abs(a).max() <= 1 / np.sqrt(18)),   # fan_in = 2*3*3
    ("conv.bias", lambda a: np.abs(a).max() <= 1 / np.sqrt(18)),
    ("ln.weight", lambda a: (a == 1).all()),                          # a normalisation scale
    ("ln.bias", lambda a: (a == 0).all()),
])
def test_pytorch_scheme(name, check):
    drawn = weights.draw_parameters(SHAPES, "pytorch", seed=0)
    assert drawn[name].dtype == np.float32 and drawn[name].shape == dict(SHAPES)[name]
    assert check(drawn[name])


def test_gpt2_scheme():
    drawn = weights.draw_parameters(SHAPES, "gpt2", seed=0)
    assert abs(drawn["emb.weight"].std() - 0.02) < 0.003
    assert (drawn["fc.bias"] == 0).all() and (drawn["ln.weight"] == 1).all()


def test_same_seed_same_weights_other_seed_other_weights():
    a, b = (weights.draw_parameters(SHAPES, seed=0) for _ in range(2))
    c = weights.draw_parameters(SHAPES, seed=1)
    assert weights.digest(a) == weights.digest(b) != weights.digest(c)


def test_digest_ignores_order_but_sees_names_and_values():
    a = weights.draw_parameters(SHAPES)
    assert weights.digest(dict(reversed(list(a.items())))) == weights.digest(a)
    renamed = {("x" + k): v for k, v in a.items()}
    assert weights.digest(renamed) != weights.digest(a)
    nudged = dict(a, **{"fc.bias": a["fc.bias"] + np.float32(1e-7)})
    assert weights.digest(nudged) != weights.digest(a)


def test_unknown_scheme_is_named():
    with pytest.raises(ValueError, match="scheme must be 'pytorch' or 'gpt2', got 'xavier'"):
        weights.draw_parameters(SHAPES, "xavier")


class Tied(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(10, 4)
        self.head = nn.Linear(4, 10, bias=False)
        self.head.weight = self.emb.weight


def test_tied_parameters_get_one_draw_in_every_key():
    model = Tied()
    shapes = [(n, tuple(p.shape)) for n, p in model.named_parameters()]
    assert len(shapes) == 1                                   # named_parameters dedupes
    state = weights.fill_state_dict(model, weights.draw_parameters(shapes, "gpt2"),
                                    lambda t: t.detach().numpy())
    assert set(state) == {"emb.weight", "head.weight"}
    assert state["emb.weight"] is state["head.weight"]
