"""nn.Transformer learns to reverse digit strings ("40213" -> "31204").

    python examples/seq2seq_transformer.py            # ~2-4 min on 2 cores; asserts >= 99%
    python examples/seq2seq_transformer.py --quick    # < 1 min smoke run

The classic encoder-decoder set-up of "Attention Is All You Need":

    source  3 1 4 1 5 <pad> <pad>             -> encoder -> memory (one vector per digit)
    decoder input   <bos> 5 1 4 1 3            (the target shifted right: teacher forcing)
    decoder target   5 1 4 1 3 <eos>           (what each decoder position must predict)

The decoder's self-attention is causal (tgt_mask = generate_square_subsequent_mask), so
position i only sees the target tokens before it; its cross-attention sees the whole source
except padding (memory_key_padding_mask). Strings have random lengths, padded to the longest,
and padded target positions are left out of the loss (ignore_index).

Reversal needs attention to do its real job: output position i must fetch source position
L - 1 - i, and L differs from string to string. At test time the model decodes greedily, one
token at a time, on strings it never saw; a string counts only if it is reversed exactly.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

import minidl  # noqa: E402
import minidl.nn as nn  # noqa: E402
import minidl.nn.functional as F  # noqa: E402
from minidl.nn.positional import SinusoidalPositionalEncoding  # noqa: E402
from minidl.nn.transformer import Transformer  # noqa: E402

PAD, BOS, EOS = 10, 11, 12          # tokens 0..9 are the digits
VOCAB = 13

FULL = dict(min_len=3, max_len=10, d_model=64, nhead=4, layers=2, ff=128, batch_size=64,
            steps=1500, lr=1e-3, warmup=100, test_size=1000, target=0.99)
QUICK = dict(min_len=3, max_len=6, d_model=32, nhead=4, layers=1, ff=64, batch_size=32,
             steps=150, lr=2e-3, warmup=10, test_size=100, target=None)


class Reverser(nn.Module):
    """Token embeddings + sinusoidal positions, an nn.Transformer, and a Linear to the
    vocabulary.

    Scale trap: the paper multiplies embeddings by sqrt(d) because its embeddings start with
    std 1/sqrt(d); nn.Embedding starts with std 1, so scaling it would make the tokens 8x
    louder than the positions (amplitude 1) for d = 64, and a task that is all about
    positions would learn slowly. We initialise as the paper does, so both have unit size."""

    def __init__(self, d_model, nhead, layers, ff, max_len):
        super().__init__()
        self.d_model = d_model
        self.embed = nn.Embedding(VOCAB, d_model, padding_idx=PAD)
        nn.init.normal_(self.embed.weight, 0.0, d_model ** -0.5)
        with minidl.no_grad():
            self.embed.weight[PAD].fill_(0.0)            # the padding row stays zero
        self.pos = SinusoidalPositionalEncoding(d_model, max_len=max_len + 2, batch_first=True)
        self.transformer = Transformer(d_model, nhead, num_encoder_layers=layers,
                                       num_decoder_layers=layers, dim_feedforward=ff,
                                       dropout=0.0, batch_first=True)
        self.out = nn.Linear(d_model, VOCAB)

    def embed_tokens(self, ids):
        return self.pos(self.embed(ids) * math.sqrt(self.d_model))

    def encode(self, src):
        return self.transformer.encoder(self.embed_tokens(src),
                                        src_key_padding_mask=src == PAD)

    def decode(self, tgt_in, memory, src):
        T = tgt_in.shape[1]
        causal = Transformer.generate_square_subsequent_mask(T)
        h = self.transformer.decoder(self.embed_tokens(tgt_in), memory, tgt_mask=causal,
                                     tgt_is_causal=True, tgt_key_padding_mask=tgt_in == PAD,
                                     memory_key_padding_mask=src == PAD)
        return self.out(h)                                       # (N, T, VOCAB)

    def forward(self, src, tgt_in):
        return self.decode(tgt_in, self.encode(src), src)

    def greedy(self, src, max_steps):
        """Decode one token at a time, always taking the most likely one."""
        self.eval()
        with minidl.no_grad():
            memory = self.encode(src)
            out = np.full((src.shape[0], 1), BOS, dtype=np.int64)
            for _ in range(max_steps):
                logits = self.decode(minidl.tensor(out), memory, src)
                nxt = logits[:, -1].argmax(-1).numpy().reshape(-1, 1)
                out = np.concatenate([out, nxt], 1)
        self.train()
        return out[:, 1:]


def random_strings(n, min_len, max_len, rng):
    lengths = rng.integers(min_len, max_len + 1, size=n)
    return [rng.integers(0, 10, size=k) for k in lengths]


def make_batch(strings, max_len):
    """src (padded digits), tgt_in (<bos> + reversed), tgt_out (reversed + <eos>), padded."""
    n = len(strings)
    src = np.full((n, max_len), PAD, dtype=np.int64)
    tgt_in = np.full((n, max_len + 1), PAD, dtype=np.int64)
    tgt_out = np.full((n, max_len + 1), PAD, dtype=np.int64)
    for i, s in enumerate(strings):
        k = len(s)
        src[i, :k] = s
        tgt_in[i, 0] = BOS
        tgt_in[i, 1:k + 1] = s[::-1]
        tgt_out[i, :k] = s[::-1]
        tgt_out[i, k] = EOS
    return src, tgt_in, tgt_out


def exact_match(model, strings, max_len):
    src, _, tgt_out = make_batch(strings, max_len)
    pred = model.greedy(minidl.tensor(src), max_len + 1)
    hits = 0
    for p, s in zip(pred, strings):
        k = len(s)
        hits += bool(np.array_equal(p[:k], s[::-1]) and p[k] == EOS)
    return hits / len(strings)


def train(cfg, seed=0, log=print):
    minidl.manual_seed(seed)
    rng = np.random.default_rng(seed)
    test = random_strings(cfg["test_size"], cfg["min_len"], cfg["max_len"],
                          np.random.default_rng(seed + 1))
    held_out = {tuple(s) for s in test}
    model = Reverser(cfg["d_model"], cfg["nhead"], cfg["layers"], cfg["ff"], cfg["max_len"])
    opt = minidl.optim.AdamW(model.parameters(), lr=cfg["lr"], weight_decay=0.01)
    sched = minidl.optim.lr_scheduler.warmup_cosine(opt, cfg["warmup"], cfg["steps"])
    losses = []
    start = time.perf_counter()
    for step in range(1, cfg["steps"] + 1):
        strings = [s for s in random_strings(cfg["batch_size"], cfg["min_len"], cfg["max_len"],
                                             rng) if tuple(s) not in held_out]
        src, tgt_in, tgt_out = (minidl.tensor(a) for a in make_batch(strings, cfg["max_len"]))
        logits = model(src, tgt_in)
        loss = F.cross_entropy(logits.reshape(-1, VOCAB), tgt_out.reshape(-1), ignore_index=PAD)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(loss.item())
        if step % max(1, cfg["steps"] // 10) == 0:
            log(f"step {step:5d}  loss {np.mean(losses[-50:]):.4f}  "
                f"{time.perf_counter() - start:6.1f} s")
    accuracy = exact_match(model, test, cfg["max_len"])
    return dict(model=model, losses=losses, accuracy=accuracy, test=test,
                seconds=time.perf_counter() - start)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--steps", type=int)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    cfg = dict(QUICK if args.quick else FULL)
    if args.steps:
        cfg["steps"] = args.steps
    result = train(cfg, args.seed)
    model, test = result["model"], result["test"]
    for s in test[:5]:
        src = make_batch([s], cfg["max_len"])[0]
        pred = model.greedy(minidl.tensor(src), cfg["max_len"] + 1)[0]
        shown = "".join(str(t) if t < 10 else "." for t in pred[:list(pred).index(EOS)]) \
            if EOS in pred else "".join(map(str, pred))
        print(f"  {''.join(map(str, s)):>10} -> {shown}")
    first, last = np.mean(result["losses"][:10]), np.mean(result["losses"][-10:])
    print(f"loss {first:.3f} -> {last:.3f}; exact match on {len(test)} held-out strings: "
          f"{100 * result['accuracy']:.1f}% ({result['seconds']:.0f} s)")
    if args.quick:
        assert last < 0.7 * first, f"quick run did not learn: loss {first:.3f} -> {last:.3f}"
    else:
        assert result["accuracy"] >= cfg["target"], \
            f"exact match {result['accuracy']:.3f} is below the target {cfg['target']}"
    print("target reached")
    return result


if __name__ == "__main__":
    main()
