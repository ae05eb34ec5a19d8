"""examples/gpt_model.py: the minidl GPT and its PyTorch twin (built from the same source
lines) compute the same loss and the same gradient for every parameter; weight tying holds;
sampling respects top-k."""
import sys
from pathlib import Path

import numpy as np
import pytest

import minidl

from .parity import compare, to_numpy

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))
import gpt_model  # noqa: E402

torch = pytest.importorskip("torch")

CONFIGS = [
    dict(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=8),
    dict(vocab_size=7, block_size=6, n_layer=1, n_head=4, n_embd=16, bias=False),
]


@pytest.mark.parametrize("cfg", CONFIGS, ids=["small", "no_bias"])
@pytest.mark.parametrize("T", [8, 5], ids=["full_context", "shorter"])
def test_gpt_matches_its_torch_twin(cfg, T):
    T = min(T, cfg["block_size"])
    torch.manual_seed(0)
    t_model = gpt_model.torch_gpt_class()(gpt_model.GPTConfig(**cfg)).double()
    m_model = gpt_model.GPT(gpt_model.GPTConfig(**cfg)).double()
    state = gpt_model.numpy_state_dict(t_model)
    m_model.load_state_dict(state)
    rng = np.random.default_rng(0)
    x = rng.integers(0, cfg["vocab_size"], (3, T))
    y = rng.integers(0, cfg["vocab_size"], (3, T))
    t_logits, t_loss = t_model(torch.from_numpy(x), torch.from_numpy(y))
    m_logits, m_loss = m_model(minidl.tensor(x), minidl.tensor(y))
    compare("logits", m_logits, t_logits, "float64")
    compare("loss", m_loss, t_loss, "float64")
    t_loss.backward()
    m_loss.backward()
    t_params = dict(t_model.named_parameters())
    m_params = dict(m_model.named_parameters())
    assert sorted(t_params) == sorted(m_params)
    for name, p in t_params.items():
        compare(f"grad of {name}", m_params[name].grad, p.grad, "float64")


def test_weights_are_tied_and_counted_once():
    model = gpt_model.GPT(gpt_model.GPTConfig(vocab_size=11, block_size=8, n_layer=1,
                                              n_head=2, n_embd=8))
    assert model.lm_head.weight is model.transformer.wte.weight
    state = model.state_dict()
    assert "lm_head.weight" in state and "transformer.wte.weight" in state
    expected = sum(int(np.prod(p.shape)) for p in model.parameters())
    assert model.num_parameters() == expected
    t_model = gpt_model.torch_gpt_class()(model.config)
    assert model.num_parameters() == sum(p.numel() for p in t_model.parameters())


def test_generate_with_top_k_1_is_greedy():
    model = gpt_model.GPT(gpt_model.GPTConfig(vocab_size=11, block_size=4, n_layer=1,
                                              n_head=2, n_embd=8))
    out = model.generate(minidl.tensor(np.array([[1, 2]])), 6, top_k=1,
                         rng=np.random.default_rng(0))
    ids = list(to_numpy(out)[0])
    assert ids[:2] == [1, 2] and len(ids) == 8
    for t in range(2, 8):                       # each new token is the argmax given the past
        context = minidl.tensor(np.array([ids[max(0, t - 4):t]]))
        with minidl.no_grad():
            logits, _ = model(context)
        assert ids[t] == int(to_numpy(logits)[0, -1].argmax())


@pytest.mark.parametrize("top_k", [1, 3])
@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.0])
def test_sample_next_stays_in_top_k(top_k, temperature):
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((4, 9))
    allowed = np.argsort(-logits, axis=1)[:, :top_k]
    for _ in range(50):
        picks = gpt_model.sample_next(logits, temperature, top_k, rng)
        assert all(p in row for p, row in zip(picks, allowed))


def test_generate_rejects_bad_temperature():
    model = gpt_model.GPT(gpt_model.GPTConfig(vocab_size=5, block_size=4, n_layer=1,
                                              n_head=1, n_embd=4))
    with pytest.raises(ValueError, match="temperature must be > 0"):
        model.generate(minidl.tensor(np.array([[1]])), 2, temperature=0.0)
