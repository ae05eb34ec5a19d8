"""A small BERT on Tiny Shakespeare: masked-language-model pre-training, then fine-tuning to
tell a line of the play from the same line with its words shuffled.

    MINIDL_DATA=/path/to/data python examples/bert_mlm.py       # ~10-15 min on 2 cores
    python examples/bert_mlm.py --quick                         # < 1 min smoke run

Input, character level (the text's 65 characters plus 4 special tokens):

    [CLS] line A [SEP] line B [SEP] [PAD] ...
    embedding = token + position (learned) + segment (0 for [CLS] A [SEP], 1 for B [SEP])

then LayerNorm, a TransformerEncoder (GELU; pre-LN with a final LayerNorm, where BERT is
post-LN: pre-LN trains faster in a short run and needs no careful warm-up), and two heads:

* masked LM: 15% of the characters are chosen; of those 80% become [MASK], 10% a random
  character, 10% stay as they are (so the model cannot tell which visible characters it will
  be asked about, and must keep a good representation of every position). The loss is the
  cross-entropy at the chosen positions only. Its baseline is the unigram entropy of the
  characters (~3.3 nats): what a model that ignores the context can do at best.
* classification: the [CLS] vector through a tanh "pooler" and a Linear to 2 classes.
  Task (a small grammaticality test, like CoLA): [CLS] line [SEP] where the line is either
  as written (label 1) or has its words in a random order (label 0). Knowing which word
  orders are English is what masked-LM pre-training teaches, so the pre-trained encoder
  should beat the same network fine-tuned from scratch; the script trains both and reports
  both accuracies. Lines of the validation split (the last 10% of the text) are held out.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

import minidl  # noqa: E402
import minidl.nn as nn  # noqa: E402
import minidl.nn.functional as F  # noqa: E402
from minidl.data import DatasetError, TinyShakespeare  # noqa: E402
from minidl.nn.positional import LearnedPositionalEmbedding  # noqa: E402
from minidl.nn.transformer import TransformerEncoder, TransformerEncoderLayer  # noqa: E402

IGNORE = -100              # cross_entropy's ignore_index: positions without an MLM target

FULL = dict(line_chars=40, d_model=128, nhead=4, layers=4, ff=512, dropout=0.0,
            batch_size=32, pretrain_steps=1500, finetune_steps=300, lr=1e-3,
            finetune_lr=3e-4, eval_batches=25, compare_scratch=True,
            mlm_target_fraction=0.8, accuracy_target=0.75)
QUICK = dict(line_chars=24, d_model=32, nhead=2, layers=1, ff=64, dropout=0.0,
             batch_size=16, pretrain_steps=120, finetune_steps=20, lr=3e-3,
             finetune_lr=1e-3, eval_batches=4, compare_scratch=False,
             mlm_target_fraction=None, accuracy_target=None)


class Vocab:
    """Characters 0..C-1, then [PAD] [CLS] [SEP] [MASK]."""

    def __init__(self, chars):
        self.stoi = {c: i for i, c in enumerate(chars)}
        self.n_chars = len(chars)
        self.PAD, self.CLS, self.SEP, self.MASK = range(self.n_chars, self.n_chars + 4)
        self.size = self.n_chars + 4

    def encode(self, text):
        return [self.stoi[c] for c in text]


def encode_pairs(vocab, pairs, line_chars):
    """[CLS] A [SEP] B [SEP] (or [CLS] A [SEP] for 1-tuples) as ids and segments (N, T) int64,
    padded with [PAD] to the longest example of the batch."""
    rows = []
    for lines in pairs:
        ids, seg = [vocab.CLS], [0]
        for s, line in enumerate(lines):
            chars = vocab.encode(line[:line_chars])
            ids += chars + [vocab.SEP]
            seg += [s] * (len(chars) + 1)
        rows.append((ids, seg))
    T = max(len(ids) for ids, _ in rows)
    ids = np.full((len(rows), T), vocab.PAD, dtype=np.int64)
    seg = np.zeros((len(rows), T), dtype=np.int64)
    for i, (r, s) in enumerate(rows):
        ids[i, :len(r)], seg[i, :len(s)] = r, s
    return ids, seg


def mask_for_mlm(vocab, ids, rng, p=0.15):
    """BERT's corruption: (corrupted ids, targets with IGNORE where nothing is asked)."""
    is_char = ids < vocab.n_chars
    chosen = is_char & (rng.random(ids.shape) < p)
    targets = np.where(chosen, ids, IGNORE)
    u = rng.random(ids.shape)
    corrupted = ids.copy()
    corrupted[chosen & (u < 0.8)] = vocab.MASK                               # 80%: [MASK]
    swap = chosen & (u >= 0.8) & (u < 0.9)                                   # 10%: random
    corrupted[swap] = rng.integers(0, vocab.n_chars, size=int(swap.sum()))
    return corrupted, targets                                                # 10%: unchanged


class Bert(nn.Module):
    def __init__(self, vocab_size, pad_id, max_len, d_model, nhead, layers, ff, dropout):
        super().__init__()
        self.pad_id = pad_id
        self.tok = nn.Embedding(vocab_size, d_model, padding_idx=pad_id)
        self.pos = LearnedPositionalEmbedding(max_len, d_model, batch_first=True)
        self.seg = nn.Embedding(2, d_model)
        self.norm = nn.LayerNorm(d_model)
        self.drop = nn.Dropout(dropout)
        layer = TransformerEncoderLayer(d_model, nhead, ff, dropout, activation="gelu",
                                        batch_first=True, norm_first=True)
        self.encoder = TransformerEncoder(layer, layers, norm=nn.LayerNorm(d_model))
        # masked-LM head; its output matrix is the token embedding (weight tying)
        self.mlm_dense = nn.Linear(d_model, d_model)
        self.mlm_norm = nn.LayerNorm(d_model)
        self.mlm_bias = nn.Parameter(minidl.zeros(vocab_size))
        # classification head
        self.pooler = nn.Linear(d_model, d_model)
        self.classifier = nn.Linear(d_model, 2)
        for p in self.parameters():             # BERT's init: N(0, 0.02) for matrices
            if p.ndim == 2:
                nn.init.normal_(p, 0.0, 0.02)
        with minidl.no_grad():
            self.tok.weight[pad_id].fill_(0.0)     # the padding row stays zero

    def forward(self, ids, segments):
        """(N, T, d): one contextual vector per position."""
        x = self.pos(self.tok(ids) + self.seg(segments))
        x = self.drop(self.norm(x))
        return self.encoder(x, src_key_padding_mask=ids == self.pad_id)

    def mlm_logits(self, h):
        h = self.mlm_norm(F.gelu(self.mlm_dense(h)))
        return F.linear(h, self.tok.weight, self.mlm_bias)

    def class_logits(self, h):
        return self.classifier(self.pooler(h[:, 0]).tanh())


def load_lines(data_root):
    try:
        train = TinyShakespeare(root=data_root, split="train", block_size=8)
        val = TinyShakespeare(root=data_root, split="val", block_size=8)
    except DatasetError as err:
        sys.exit(f"bert_mlm: Tiny Shakespeare is not available.\n{err}\n"
                 f"Set MINIDL_DATA (or pass --data) to the folder holding tinyshakespeare/input.txt.")
    lines = lambda ds: [l for l in ds.decode(ds.data).split("\n") if l.strip()]  # noqa: E731
    return lines(train), lines(val), train.vocab


def unigram_entropy(lines):
    counts = np.bincount(np.frombuffer("".join(lines).encode("latin-1"), dtype=np.uint8))
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


def true_pairs(lines, n, rng):
    i = rng.integers(0, len(lines) - 1, size=n)
    return [(lines[j], lines[j + 1]) for j in i]


def shuffled_or_not(lines, n, rng, line_chars):
    """n one-line examples: as written (label 1) or with the words shuffled (label 0). Only
    lines of 4+ words whose first line_chars characters hold 4+ words are used, so both
    versions have the same characters and a shuffle always changes the order."""
    examples, labels = [], rng.integers(0, 2, size=n)
    while len(examples) < n:
        words = lines[int(rng.integers(0, len(lines)))][:line_chars].split()
        if len(words) < 4 or len(set(words)) < 2:
            continue
        if not labels[len(examples)]:
            order = rng.permutation(len(words))
            while [words[i] for i in order] == words:
                order = rng.permutation(len(words))
            words = [words[i] for i in order]
        examples.append((" ".join(words),))
    return examples, labels.astype(np.int64)


def mlm_loss(model, vocab, pairs, cfg, rng):
    ids, seg = encode_pairs(vocab, pairs, cfg["line_chars"])
    corrupted, targets = mask_for_mlm(vocab, ids, rng)
    h = model(minidl.tensor(corrupted), minidl.tensor(seg))
    logits = model.mlm_logits(h)
    return F.cross_entropy(logits.reshape(-1, vocab.size), minidl.tensor(targets).reshape(-1),
                           ignore_index=IGNORE)


def run(cfg, data_root=None, seed=0, log=print):
    minidl.manual_seed(seed)
    rng = np.random.default_rng(seed)
    train_lines, val_lines, chars = load_lines(data_root)
    vocab = Vocab(chars)
    baseline = unigram_entropy(train_lines)
    model = Bert(vocab.size, vocab.PAD, 2 * cfg["line_chars"] + 3, cfg["d_model"], cfg["nhead"],
                 cfg["layers"], cfg["ff"], cfg["dropout"])
    start = time.perf_counter()

    # ---- 1. masked-LM pre-training ----
    opt = minidl.optim.AdamW(model.parameters(), lr=cfg["lr"], weight_decay=0.01)
    sched = minidl.optim.lr_scheduler.warmup_cosine(opt, cfg["pretrain_steps"] // 10,
                                                    cfg["pretrain_steps"])
    mlm_curve = []
    for step in range(1, cfg["pretrain_steps"] + 1):
        loss = mlm_loss(model, vocab, true_pairs(train_lines, cfg["batch_size"], rng), cfg, rng)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        mlm_curve.append(loss.item())
        if step % max(1, cfg["pretrain_steps"] // 10) == 0:
            log(f"MLM step {step:5d}  loss {np.mean(mlm_curve[-50:]):.3f}  "
                f"(unigram baseline {baseline:.3f})  {time.perf_counter() - start:6.0f} s")
    model.eval()
    eval_rng = np.random.default_rng(seed + 1)
    with minidl.no_grad():
        val_mlm = float(np.mean([
            mlm_loss(model, vocab, true_pairs(val_lines, cfg["batch_size"], eval_rng), cfg,
                     eval_rng).item() for _ in range(cfg["eval_batches"])]))
    model.train()
    log(f"validation MLM loss {val_mlm:.3f} nats/char (unigram baseline {baseline:.3f})")

    # ---- 2. fine-tuning on word order, from the pre-trained encoder and from scratch ----
    accuracy, cls_curve = fine_tune(model, vocab, train_lines, val_lines, cfg, seed, log)
    scratch_accuracy = None
    if cfg["compare_scratch"]:
        minidl.manual_seed(seed + 7)
        scratch = Bert(vocab.size, vocab.PAD, 2 * cfg["line_chars"] + 3, cfg["d_model"],
                       cfg["nhead"], cfg["layers"], cfg["ff"], cfg["dropout"])
        scratch_accuracy, _ = fine_tune(scratch, vocab, train_lines, val_lines, cfg, seed,
                                        lambda msg: log("(from scratch) " + msg))
    return dict(model=model, baseline=baseline, mlm_curve=mlm_curve, val_mlm=val_mlm,
                cls_curve=cls_curve, accuracy=accuracy, scratch_accuracy=scratch_accuracy,
                seconds=time.perf_counter() - start)


def fine_tune(model, vocab, train_lines, val_lines, cfg, seed, log):
    """Train the classification head and the encoder; return (held-out accuracy, losses)."""
    rng, eval_rng = np.random.default_rng(seed + 2), np.random.default_rng(seed + 3)
    model.train()
    opt = minidl.optim.AdamW(model.parameters(), lr=cfg["finetune_lr"], weight_decay=0.01)
    sched = minidl.optim.lr_scheduler.warmup_cosine(opt, cfg["finetune_steps"] // 10,
                                                    cfg["finetune_steps"])
    curve, start = [], time.perf_counter()
    for step in range(1, cfg["finetune_steps"] + 1):
        examples, labels = shuffled_or_not(train_lines, cfg["batch_size"], rng,
                                           cfg["line_chars"])
        ids, seg = encode_pairs(vocab, examples, cfg["line_chars"])
        logits = model.class_logits(model(minidl.tensor(ids), minidl.tensor(seg)))
        loss = F.cross_entropy(logits, minidl.tensor(labels))
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        curve.append(loss.item())
        if step % max(1, cfg["finetune_steps"] // 5) == 0:
            log(f"fine-tune step {step:5d}  loss {np.mean(curve[-50:]):.3f}  "
                f"{time.perf_counter() - start:6.0f} s")
    model.eval()
    correct = total = 0
    with minidl.no_grad():
        for _ in range(cfg["eval_batches"]):
            examples, labels = shuffled_or_not(val_lines, cfg["batch_size"], eval_rng,
                                               cfg["line_chars"])
            ids, seg = encode_pairs(vocab, examples, cfg["line_chars"])
            pred = model.class_logits(model(minidl.tensor(ids), minidl.tensor(seg))).argmax(-1)
            correct += int((pred.numpy() == labels).sum())
            total += len(labels)
    return correct / total, curve


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="folder holding tinyshakespeare/input.txt "
                                       "(default: $MINIDL_DATA)")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    cfg = dict(QUICK if args.quick else FULL)
    r = run(cfg, args.data, args.seed)
    first = float(np.mean(r["mlm_curve"][:10]))
    n_eval = cfg["eval_batches"] * cfg["batch_size"]
    print(f"MLM loss {first:.3f} -> validation {r['val_mlm']:.3f} nats/char; unigram baseline "
          f"{r['baseline']:.3f}; {r['seconds']:.0f} s")
    print(f"word-order accuracy on {n_eval} held-out lines (chance 50%): pre-trained "
          f"{100 * r['accuracy']:.1f}%" + (
              f", from scratch {100 * r['scratch_accuracy']:.1f}%"
              if r["scratch_accuracy"] is not None else ""))
    if args.quick:
        assert r["val_mlm"] < 0.85 * first, \
            f"quick run did not learn: MLM loss {first:.3f} -> {r['val_mlm']:.3f}"
    else:
        assert r["val_mlm"] < cfg["mlm_target_fraction"] * r["baseline"], \
            f"MLM loss {r['val_mlm']:.3f} is not clearly below the unigram baseline"
        assert r["accuracy"] > cfg["accuracy_target"], \
            f"accuracy {r['accuracy']:.3f} is not above {cfg['accuracy_target']}"
    print("target reached")
    return r


if __name__ == "__main__":
    main()
