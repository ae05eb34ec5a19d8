"""A small GPT (decoder-only Transformer), written once for minidl and for PyTorch.

    from gpt_model import GPT, GPTConfig          # the minidl model
    model = GPT(GPTConfig(vocab_size=65))
    logits, loss = model(idx, targets)            # idx, targets: (B, T) int64

The same lines build the PyTorch twin (`torch_gpt_class()`), so the two models have the
same parameter names and shapes: `gpt.load_state_dict(numpy_state_dict(torch_gpt))` makes
them compute the same function, which is how the benchmarks compare step times and
training curves.

The architecture is GPT-2's, small:

    x = wte[idx] + wpe[0..T-1]                         token + learned position embeddings
    for each block:                                    pre-LayerNorm residual blocks
        x = x + c_proj(attention(c_attn(ln_1(x))))     causal multi-head self-attention
        x = x + mlp.c_proj(gelu(mlp.c_fc(ln_2(x))))    a 4x wide MLP
    logits = ln_f(x) @ wte^T                           weight tying: the output layer reuses
                                                       the token embedding matrix

Why pre-LayerNorm: the residual stream x is never normalised, so gradients reach early
layers through the sum unchanged; post-LN (the 2017 layout) needs a careful warm-up to train.
Why weight tying: the input and output vocabularies are the same, the embedding gets a
gradient from every position's output, and the model has V*d fewer parameters.

Attention for all heads is ONE Linear to (B, T, 3d) and ONE F.scaled_dot_product_attention
call with is_causal=True (the fused kernel never materialises the (T, T) mask or scores).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, asdict


@dataclass
class GPTConfig:
    vocab_size: int = 65
    block_size: int = 128       # the longest context the position table covers
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    bias: bool = True           # biases in Linear and LayerNorm layers (GPT-2 has them)

    def to_dict(self) -> dict:
        return asdict(self)


def make_gpt_class(lib):
    """The GPT Module class built on `lib`, which is `minidl` or `torch` (anything with the
    PyTorch-shaped `nn`, `nn.functional` and `arange`)."""
    nn = lib.nn
    F = lib.nn.functional

    class CausalSelfAttention(nn.Module):
        def __init__(self, cfg: GPTConfig):
            super().__init__()
            if cfg.n_embd % cfg.n_head:
                raise ValueError(f"n_embd ({cfg.n_embd}) must be divisible by n_head "
                                 f"({cfg.n_head})")
            self.n_head = cfg.n_head
            self.dropout = cfg.dropout
            self.c_attn = nn.Linear(cfg.n_embd, 3 * cfg.n_embd, bias=cfg.bias)  # q, k, v
            self.c_proj = nn.Linear(cfg.n_embd, cfg.n_embd, bias=cfg.bias)
            self.resid_dropout = nn.Dropout(cfg.dropout)

        def forward(self, x):
            B, T, C = x.shape
            H = self.n_head
            # (B, T, 3C) -> (B, T, 3, H, hd) -> (3, B, H, T, hd): q, k, v of every head
            qkv = self.c_attn(x).view(B, T, 3, H, C // H).permute(2, 0, 3, 1, 4)
            q, k, v = qkv.unbind(0)
            y = F.scaled_dot_product_attention(
                q, k, v, is_causal=True, dropout_p=self.dropout if self.training else 0.0)
            y = y.transpose(1, 2).reshape(B, T, C)       # heads side by side again
            return self.resid_dropout(self.c_proj(y))

    class MLP(nn.Module):
        def __init__(self, cfg: GPTConfig):
            super().__init__()
            self.c_fc = nn.Linear(cfg.n_embd, 4 * cfg.n_embd, bias=cfg.bias)
            self.gelu = nn.GELU(approximate="tanh")      # GPT-2's GELU
            self.c_proj = nn.Linear(4 * cfg.n_embd, cfg.n_embd, bias=cfg.bias)
            self.dropout = nn.Dropout(cfg.dropout)

        def forward(self, x):
            return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))

    class Block(nn.Module):
        def __init__(self, cfg: GPTConfig):
            super().__init__()
            self.ln_1 = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
            self.attn = CausalSelfAttention(cfg)
            self.ln_2 = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
            self.mlp = MLP(cfg)

        def forward(self, x):
            x = x + self.attn(self.ln_1(x))
            return x + self.mlp(self.ln_2(x))

    class GPT(nn.Module):
        def __init__(self, cfg: GPTConfig):
            super().__init__()
            self.config = cfg
            self.transformer = nn.ModuleDict(dict(
                wte=nn.Embedding(cfg.vocab_size, cfg.n_embd),
                wpe=nn.Embedding(cfg.block_size, cfg.n_embd),
                drop=nn.Dropout(cfg.dropout),
                h=nn.ModuleList([Block(cfg) for _ in range(cfg.n_layer)]),
                ln_f=nn.LayerNorm(cfg.n_embd, bias=cfg.bias),
            ))
            self.lm_head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
            self.transformer.wte.weight = self.lm_head.weight   # weight tying
            self.apply(self._init_weights)
            # GPT-2: scale the projections INTO the residual stream by 1/sqrt(2 n_layer), so
            # the stream's variance does not grow with depth (two residual adds per block)
            for name, p in self.named_parameters():
                if name.endswith("c_proj.weight"):
                    nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * cfg.n_layer))

        @staticmethod
        def _init_weights(module):
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, mean=0.0, std=0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Embedding):
                nn.init.normal_(module.weight, mean=0.0, std=0.02)

        def forward(self, idx, targets=None):
            B, T = idx.shape
            if T > self.config.block_size:
                raise ValueError(f"GPT: sequence of length {T} is longer than the context "
                                 f"block_size={self.config.block_size}")
            pos = lib.arange(T, device=idx.device)
            x = self.transformer.wte(idx) + self.transformer.wpe(pos)   # (B, T, C)
            x = self.transformer.drop(x)
            for block in self.transformer.h:
                x = block(x)
            logits = self.lm_head(self.transformer.ln_f(x))          # (B, T, vocab)
            if targets is None:
                return logits, None
            loss = F.cross_entropy(logits.reshape(B * T, -1), targets.reshape(B * T))
            return logits, loss

        def num_parameters(self) -> int:
            """Distinct parameters (the tied matrix counts once)."""
            return sum(p.numel() for p in self.parameters())

        def generate(self, idx, max_new_tokens: int, temperature: float = 1.0, top_k=None,
                     generator=None, rng=None):
            """Extend idx (B, T) by sampling one token at a time.

            temperature divides the logits (below 1: sharper, above 1: flatter); top_k keeps
            only the k most likely tokens (the rest get probability 0) before sampling. The
            sampling is lib.topk + lib.softmax + lib.multinomial (see `sample_next`), so it
            runs on the model's device in either library. generator: a `lib.Generator` for
            reproducible samples (default: the library's global one, seeded by
            lib.manual_seed). rng: a NumPy Generator, accepted for older callers; it seeds a
            fresh lib.Generator."""
            if temperature <= 0:
                raise ValueError(f"generate: temperature must be > 0, got {temperature}")
            if generator is None and rng is not None:
                generator = _generator_from_numpy(lib, rng)
            was_training = self.training
            self.eval()
            with lib.no_grad():
                for _ in range(max_new_tokens):
                    logits, _ = self(idx[:, -self.config.block_size:])
                    nxt = sample_next(logits[:, -1, :], temperature, top_k, generator)
                    idx = lib.cat([idx, nxt], dim=1)
            self.train(was_training)
            return idx

    return GPT


def sample_next(logits, temperature: float, top_k=None, generator=None):
    """One token id per row of logits (B, V), drawn from softmax(logits / temperature)
    restricted to the top_k largest logits when top_k is given.

    A minidl or torch tensor in gives a (B, 1) int64 tensor of the same library out, computed
    with its topk, softmax and multinomial (generator: that library's Generator). A NumPy
    array in gives a (B,) NumPy int64 array out, computed with minidl; a NumPy Generator is
    accepted there and seeds a fresh minidl.Generator."""
    if not hasattr(logits, "detach"):  # a NumPy array
        out = sample_next(minidl.tensor(logits), temperature, top_k, generator)
        return out.numpy().reshape(-1)
    lib = _lib_of(logits)
    if hasattr(generator, "bit_generator"):  # a NumPy Generator
        generator = _generator_from_numpy(lib, generator)
    logits = logits / temperature
    if top_k is not None and top_k < logits.shape[-1]:
        # keep exactly top_k candidates (ties at the cut are broken arbitrarily), sample one
        # of them, and map its position back to a token id
        values, candidates = lib.topk(logits, top_k, dim=-1)
        choice = lib.multinomial(lib.softmax(values, dim=-1), 1, generator=generator)
        return candidates.gather(-1, choice)
    return lib.multinomial(lib.softmax(logits, dim=-1), 1, generator=generator)


def _lib_of(t):
    """minidl or torch: the library a tensor belongs to."""
    if isinstance(t, minidl.Tensor):
        return minidl
    import torch
    return torch


def _generator_from_numpy(lib, rng):
    """A lib.Generator seeded from a NumPy Generator (for callers that pass rng=)."""
    generator = lib.Generator()
    generator.manual_seed(int(rng.integers(2 ** 62)))
    return generator


def torch_gpt_class():
    """The PyTorch twin of GPT (same code, same parameter names)."""
    import torch
    return make_gpt_class(torch)


def numpy_state_dict(model) -> dict:
    """A model's state_dict as NumPy arrays (works for the minidl and the PyTorch model)."""
    return {k: v.detach().cpu().numpy().copy() for k, v in model.state_dict().items()}


import minidl  # noqa: E402  (after the definitions above, which do not need it)

GPT = make_gpt_class(minidl)
