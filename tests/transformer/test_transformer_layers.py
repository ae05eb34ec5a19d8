"""Transformer layers against torch.nn's: TransformerEncoderLayer, TransformerDecoderLayer,
TransformerEncoder, TransformerDecoder and Transformer built with the same arguments,
PyTorch's (perturbed) weights copied in, then output, every parameter gradient and every
input gradient compared, in train mode (dropout 0) and eval mode.

A new case is one row of CASES.
"""
import warnings
from dataclasses import dataclass, field

import numpy as np
import pytest

import minidl
import minidl.nn.functional as MF
from minidl.nn import transformer as mt

from .parity import compare, compare_grads, copy_weights, pair_inputs, perturb_, weighted_sum

torch = pytest.importorskip("torch")
# PyTorch explains why its nested-tensor fast path is off; nothing to act on
pytestmark = pytest.mark.filterwarnings("ignore:enable_nested_tensor is True")

D, H, FF = 8, 2, 16          # d_model, heads, feed-forward width
T_SRC, T_TGT, N = 5, 4, 3


def _gelu_tanh(lib_F):
    return lambda x: lib_F.gelu(x, approximate="tanh")


def build(lib, kind, opts):
    """The module `kind` on `lib` (torch.nn or minidl.nn.transformer + functional)."""
    nn, F = lib
    act = opts.get("activation", "relu")
    if act == "gelu_tanh_callable":
        act = _gelu_tanh(F)
    elif act == "silu_module":
        act = nn.SiLU()
    kw = dict(dim_feedforward=FF, dropout=0.0, activation=act,
              batch_first=opts.get("batch_first", False), norm_first=opts.get("norm_first", False),
              bias=opts.get("bias", True), layer_norm_eps=opts.get("eps", 1e-5))
    if kind == "encoder_layer":
        return nn.TransformerEncoderLayer(D, H, **kw)
    if kind == "decoder_layer":
        return nn.TransformerDecoderLayer(D, H, **kw)
    if kind == "encoder":
        return nn.TransformerEncoder(nn.TransformerEncoderLayer(D, H, **kw), 2,
                                     norm=nn.LayerNorm(D) if opts.get("final_norm") else None,
                                     enable_nested_tensor=False)
    if kind == "decoder":
        return nn.TransformerDecoder(nn.TransformerDecoderLayer(D, H, **kw), 2,
                                     norm=nn.LayerNorm(D) if opts.get("final_norm") else None)
    if kind == "transformer":
        return nn.Transformer(D, H, num_encoder_layers=2, num_decoder_layers=2, **kw)
    raise ValueError(kind)


class _MinidlNN:
    """minidl's classes under torch.nn's names (what minidl.nn will export)."""
    TransformerEncoderLayer = mt.TransformerEncoderLayer
    TransformerDecoderLayer = mt.TransformerDecoderLayer
    TransformerEncoder = mt.TransformerEncoder
    TransformerDecoder = mt.TransformerDecoder
    Transformer = mt.Transformer
    LayerNorm = minidl.nn.LayerNorm
    SiLU = minidl.nn.SiLU


# ---- masks (bool True = forbidden) -----------------------------------------------------------

def causal(T, S, rng, as_float):
    m = np.triu(np.ones((T, S), bool), 1)
    return np.where(m, -np.inf, 0.0) if as_float else m


def random_mask(T, S, rng, as_float):
    m = rng.random((T, S)) < 0.3
    m[:, 0] = False                          # every query keeps a key
    return np.where(m, -np.inf, rng.uniform(-1, 0.5, (T, S))) if as_float else m


def padding(n, S, rng, as_float):
    m = rng.random((n, S)) < 0.3
    m[:, 0] = False
    return np.where(m, -np.inf, 0.0) if as_float else m


@dataclass
class Case:
    id: str
    kind: str
    opts: dict = field(default_factory=dict)
    masks: dict = field(default_factory=dict)    # argument name -> (maker, as_float)
    flags: dict = field(default_factory=dict)    # is_causal hints
    unbatched: bool = False
    dtypes: tuple = ("float64",)


C, R, P = causal, random_mask, padding
CASES = [
    Case("enc_layer", "encoder_layer", dtypes=("float64", "float32")),
    Case("enc_layer_norm_first", "encoder_layer", dict(norm_first=True)),
    Case("enc_layer_batch_first", "encoder_layer", dict(batch_first=True)),
    Case("enc_layer_bf_nf_gelu", "encoder_layer",
         dict(batch_first=True, norm_first=True, activation="gelu"), dtypes=("float64", "float32")),
    Case("enc_layer_callable_act_no_bias", "encoder_layer",
         dict(activation="gelu_tanh_callable", bias=False, eps=1e-3)),
    Case("dec_layer_module_activation", "decoder_layer", dict(activation="silu_module")),
    Case("enc_layer_causal_hint", "encoder_layer", masks=dict(src_mask=(C, False)),
         flags=dict(is_causal=True)),
    Case("enc_layer_causal_float", "encoder_layer", dict(norm_first=True),
         masks=dict(src_mask=(C, True))),
    Case("enc_layer_bool_mask_padding", "encoder_layer", dict(batch_first=True),
         masks=dict(src_mask=(R, False), src_key_padding_mask=(P, False))),
    Case("enc_layer_float_mask_padding", "encoder_layer",
         masks=dict(src_mask=(R, True), src_key_padding_mask=(P, True))),
    Case("enc_layer_unbatched", "encoder_layer", masks=dict(src_mask=(C, False)),
         unbatched=True),
    Case("dec_layer", "decoder_layer", dtypes=("float64", "float32")),
    Case("dec_layer_norm_first_bf", "decoder_layer", dict(norm_first=True, batch_first=True)),
    Case("dec_layer_causal_hint", "decoder_layer", masks=dict(tgt_mask=(C, True)),
         flags=dict(tgt_is_causal=True)),
    Case("dec_layer_all_masks_bool", "decoder_layer", dict(activation="gelu"),
         masks=dict(tgt_mask=(C, False), memory_mask=(R, False),
                    tgt_key_padding_mask=(P, False), memory_key_padding_mask=(P, False))),
    Case("dec_layer_all_masks_float", "decoder_layer", dict(norm_first=True, batch_first=True),
         masks=dict(tgt_mask=(C, True), memory_mask=(R, True),
                    tgt_key_padding_mask=(P, True), memory_key_padding_mask=(P, True))),
    Case("encoder", "encoder", dict(final_norm=True)),
    Case("encoder_detects_causal", "encoder", dict(norm_first=True, batch_first=True),
         masks=dict(mask=(C, True))),
    Case("encoder_padding", "encoder", dict(batch_first=True),
         masks=dict(src_key_padding_mask=(P, False))),
    Case("decoder", "decoder", dict(final_norm=True, batch_first=True),
         masks=dict(tgt_mask=(C, True), memory_key_padding_mask=(P, False))),
    Case("transformer", "transformer", masks=dict(tgt_mask=(C, True)),
         dtypes=("float64", "float32")),
    Case("transformer_bf_nf_gelu", "transformer",
         dict(batch_first=True, norm_first=True, activation="gelu"),
         masks=dict(tgt_mask=(C, False), src_key_padding_mask=(P, False),
                    memory_key_padding_mask=(P, False))),
    Case("transformer_causal_hints", "transformer", dict(batch_first=True),
         masks=dict(tgt_mask=(C, True), src_mask=(C, True)),
         flags=dict(tgt_is_causal=True, src_is_causal=True)),
    Case("transformer_all_masks_float", "transformer",
         masks=dict(src_mask=(R, True), tgt_mask=(C, True), memory_mask=(R, True),
                    src_key_padding_mask=(P, True), tgt_key_padding_mask=(P, True),
                    memory_key_padding_mask=(P, True))),
]
ROWS = [(c, dt, mode) for c in CASES for dt in c.dtypes for mode in ("train", "eval")]

# the (rows, columns) of each mask argument
_MASK_DIMS = {"src_mask": ("S", "S"), "mask": ("S", "S"), "tgt_mask": ("T", "T"),
              "memory_mask": ("T", "S"), "src_key_padding_mask": ("N", "S"),
              "tgt_key_padding_mask": ("N", "T"), "memory_key_padding_mask": ("N", "S")}


def _sequence_inputs(case, rng, dtype):
    """The sequence arguments of `kind` (src / tgt, memory)."""
    bf = case.opts.get("batch_first", False)

    def seq(T):
        shape = (T, D) if case.unbatched else ((N, T, D) if bf else (T, N, D))
        return rng.standard_normal(shape).astype(dtype)
    if case.kind in ("encoder_layer", "encoder"):
        return [seq(T_SRC)]
    if case.kind in ("decoder_layer", "decoder"):
        return [seq(T_TGT), seq(T_SRC)]
    return [seq(T_SRC), seq(T_TGT)]       # transformer(src, tgt)


@pytest.mark.parametrize("case,dtype,mode", ROWS, ids=[f"{c.id}-{dt}-{m}" for c, dt, m in ROWS])
def test_matches_torch(case, dtype, mode):
    rng = np.random.default_rng(0)
    tmod = build((torch.nn, torch.nn.functional), case.kind, case.opts).to(getattr(torch, dtype))
    perturb_(tmod)
    mmod = build((_MinidlNN, MF), case.kind, case.opts).to(getattr(minidl, dtype))
    copy_weights(tmod, mmod)
    if mode == "eval":
        tmod.eval()
        mmod.eval()

    seqs = _sequence_inputs(case, rng, dtype)
    sizes = {"S": T_SRC, "T": T_TGT, "N": N}
    names, arrays = [], []
    for name, (maker, as_float) in case.masks.items():
        rows, cols = _MASK_DIMS[name]
        m = maker(sizes[rows], sizes[cols], rng, as_float)
        if case.unbatched and rows == "N":
            m = m[0]
        names.append(name)
        arrays.append(m.astype(dtype) if as_float else m)
    t_in, m_in = pair_inputs(torch, seqs + arrays, [True] * len(seqs) + [False] * len(arrays))
    k = len(seqs)
    t_kw = dict(zip(names, t_in[k:]), **case.flags)
    m_kw = dict(zip(names, m_in[k:]), **case.flags)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")    # PyTorch warns about mixed bool/float masks
        t_out = tmod(*t_in[:k], **t_kw)
    m_out = mmod(*m_in[:k], **m_kw)

    compare("output", m_out, t_out, dtype)
    weighted_sum(torch.from_numpy, [t_out]).backward()
    weighted_sum(minidl.tensor, [m_out]).backward()
    compare_grads(tmod, mmod, t_in, m_in, dtype)


# ---- structure -------------------------------------------------------------------------------

STRUCTURES = ["encoder_layer", "decoder_layer", "encoder", "decoder", "transformer"]


@pytest.mark.parametrize("kind", STRUCTURES)
@pytest.mark.parametrize("opts", [dict(), dict(bias=False, final_norm=True)],
                         ids=["default", "no_bias"])
def test_state_dict_keys_and_shapes_match_torch(kind, opts):
    t = build((torch.nn, torch.nn.functional), kind, opts)
    m = build((_MinidlNN, MF), kind, opts)
    assert {k: tuple(v.shape) for k, v in m.state_dict().items()} == \
        {k: tuple(v.shape) for k, v in t.state_dict().items()}


def test_encoder_layers_are_independent_copies():
    enc = mt.TransformerEncoder(mt.TransformerEncoderLayer(D, H, FF), num_layers=3)
    weights = [layer.linear1.weight for layer in enc.layers]
    assert len({id(w) for w in weights}) == 3
    with minidl.no_grad():
        weights[0].fill_(1.0)
    assert not np.allclose(weights[1].detach().numpy(), 1.0)


def test_transformer_init_is_xavier_for_matrices():
    """Every matrix ~ U(-b, b) with b = sqrt(6 / (fan_in + fan_out)); norms keep ones/zeros."""
    model = mt.Transformer(d_model=32, nhead=4, num_encoder_layers=1, num_decoder_layers=1,
                           dim_feedforward=64)
    for name, p in model.named_parameters():
        a = p.detach().numpy()
        if a.ndim == 2:
            bound = np.sqrt(6.0 / (a.shape[0] + a.shape[1]))
            assert np.abs(a).max() <= bound, name
            assert np.abs(a).max() > 0.8 * bound, name
        elif "norm" in name:
            assert np.all(a == (1.0 if name.endswith("weight") else 0.0)), name


@pytest.mark.parametrize("size", [1, 4, 7])
@pytest.mark.parametrize("dtype", [None, "float64", "bool"])
def test_square_subsequent_mask_matches_torch(size, dtype):
    from torch.nn.modules.transformer import _generate_square_subsequent_mask as torch_mask
    expected = torch_mask(size, dtype=getattr(torch, dtype) if dtype else None)
    if dtype == "bool":
        actual = mt._generate_square_subsequent_mask(size, dtype=minidl.bool)
    else:
        actual = mt.Transformer.generate_square_subsequent_mask(
            size, dtype=getattr(minidl, dtype) if dtype else None)
        assert str(actual.dtype).split(".")[-1] == str(expected.dtype).split(".")[-1]
    np.testing.assert_array_equal(actual.numpy(), expected.numpy())


DETECT = [  # (id, mask maker, hint, expected)
    ("float_causal", lambda: mt.Transformer.generate_square_subsequent_mask(4), None, True),
    ("bool_causal", lambda: mt._generate_square_subsequent_mask(4, dtype=minidl.bool), None,
     True),
    ("other_mask", lambda: minidl.zeros(4, 4), None, False),
    ("wrong_size", lambda: mt.Transformer.generate_square_subsequent_mask(3), None, False),
    ("hint_wins", lambda: minidl.zeros(4, 4), True, True),
    ("no_mask", lambda: None, None, False),
]


@pytest.mark.parametrize("make,hint,expected", [d[1:] for d in DETECT], ids=[d[0] for d in DETECT])
def test_detect_is_causal_mask(make, hint, expected):
    assert mt._detect_is_causal_mask(make(), hint, 4) is expected


ERRORS = [  # (id, call, exception, message fragment)
    ("bad_activation", lambda: mt.TransformerEncoderLayer(D, H, activation="tanh"),
     RuntimeError, "activation should be relu/gelu, not tanh"),
    ("batch_mismatch", lambda: mt.Transformer(D, H, 1, 1, FF)(minidl.randn(5, 2, D),
                                                             minidl.randn(4, 3, D)),
     RuntimeError, "the batch number of src and tgt must be equal"),
    ("feature_mismatch", lambda: mt.Transformer(D, H, 1, 1, FF)(minidl.randn(5, 2, D + 1),
                                                               minidl.randn(4, 2, D + 1)),
     RuntimeError, "must be equal to d_model=8"),
    ("causal_hint_without_mask",
     lambda: mt.TransformerEncoderLayer(D, H, FF)(minidl.randn(5, 2, D), is_causal=True),
     RuntimeError, "Need attn_mask if specifying the is_causal hint"),
]


@pytest.mark.parametrize("call,exc,message", [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_errors(call, exc, message):
    with pytest.raises(exc) as info:
        call()
    assert message in str(info.value)
