"""MultiheadAttention against torch.nn.MultiheadAttention: the same constructor call, PyTorch's
(perturbed) weights copied in, then output, attention weights, every parameter gradient and
every input gradient compared, in train mode (dropout 0) and eval mode.

A new case is one row of CASES.
"""
import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import pytest

import minidl
from minidl.nn.attention import MultiheadAttention

from .parity import (compare, compare_grads, copy_weights, pair_inputs, perturb_, to_numpy,
                     weighted_sum)

torch = pytest.importorskip("torch")


# ---- masks (MultiheadAttention's convention: bool True = forbidden) ------------------------

def causal_bool(L, S, N, H, rng):
    return np.triu(np.ones((L, S), bool), 1)


def causal_float(L, S, N, H, rng):
    return np.where(causal_bool(L, S, N, H, rng), -np.inf, 0.0)


def random_bool(shape_of):
    """Random forbidden entries, but key 0 always allowed: no query loses every key."""
    def make(L, S, N, H, rng):
        m = rng.random(shape_of(L, S, N, H)) < 0.35
        m[..., 0] = False
        return m
    return make


def random_float(shape_of, with_inf=True):
    def make(L, S, N, H, rng):
        m = rng.uniform(-2.0, 1.0, shape_of(L, S, N, H))
        if with_inf:
            m[random_bool(shape_of)(L, S, N, H, rng)] = -np.inf
        return m
    return make


mask_2d = lambda L, S, N, H: (L, S)              # noqa: E731
mask_3d = lambda L, S, N, H: (N * H, L, S)       # noqa: E731
padding = lambda L, S, N, H: (N, S)              # noqa: E731


@dataclass
class Case:
    id: str
    ctor: dict = field(default_factory=dict)     # beyond embed_dim=8, num_heads=2
    inputs: str = "self"                         # "self" (q is k is v), "kv" (k is v), "separate"
    L: int = 5
    S: int = 6                                   # ignored for "self"
    N: int = 3
    attn_mask: object = None                     # maker(L, S, N, H, rng) -> array
    key_padding_mask: object = None
    call: dict = field(default_factory=dict)     # need_weights, average_attn_weights, is_causal
    mask_grad: bool = False                      # the float attn_mask requires grad
    unbatched: bool = False
    dtypes: tuple = ("float64",)


CASES = [
    Case("self_weights"),
    Case("self_no_weights", call=dict(need_weights=False), dtypes=("float64", "float32")),
    Case("self_weights_per_head", call=dict(average_attn_weights=False)),
    Case("cross_kv", inputs="kv"),
    Case("separate_qkv", inputs="separate", call=dict(need_weights=False)),
    Case("kdim_vdim", ctor=dict(kdim=5, vdim=3), inputs="separate"),
    Case("kdim_vdim_no_weights", ctor=dict(kdim=5, vdim=3), inputs="separate",
         call=dict(need_weights=False)),
    Case("batch_first", ctor=dict(batch_first=True), dtypes=("float64", "float32")),
    Case("batch_first_cross", ctor=dict(batch_first=True), inputs="kv",
         call=dict(need_weights=False)),
    Case("no_bias", ctor=dict(bias=False)),
    Case("four_heads", ctor=dict(num_heads=4), call=dict(need_weights=False)),
    Case("bool_mask_2d", attn_mask=random_bool(mask_2d), inputs="kv"),
    Case("bool_mask_2d_sdpa", attn_mask=random_bool(mask_2d), inputs="kv",
         call=dict(need_weights=False)),
    Case("float_mask_2d", attn_mask=random_float(mask_2d)),
    Case("float_mask_2d_sdpa", attn_mask=random_float(mask_2d), call=dict(need_weights=False),
         dtypes=("float64", "float32")),
    Case("float_mask_grad", attn_mask=random_float(mask_2d, with_inf=False), mask_grad=True,
         call=dict(need_weights=False)),
    Case("float_mask_grad_weights", attn_mask=random_float(mask_3d, with_inf=False),
         mask_grad=True),
    Case("bool_mask_3d", attn_mask=random_bool(mask_3d), inputs="kv"),
    Case("float_mask_3d_sdpa", attn_mask=random_float(mask_3d), inputs="kv",
         call=dict(need_weights=False)),
    Case("bool_padding", key_padding_mask=random_bool(padding), inputs="kv"),
    Case("bool_padding_sdpa", key_padding_mask=random_bool(padding),
         call=dict(need_weights=False), ctor=dict(batch_first=True)),
    Case("float_padding", key_padding_mask=random_float(padding), inputs="kv",
         call=dict(need_weights=False)),
    Case("bool_padding_and_mask", key_padding_mask=random_bool(padding),
         attn_mask=random_bool(mask_2d)),
    Case("float_padding_and_3d_mask", key_padding_mask=random_float(padding),
         attn_mask=random_float(mask_3d), call=dict(need_weights=False)),
    Case("causal_via_bool_mask", attn_mask=causal_bool, call=dict(need_weights=False)),
    Case("causal_via_float_mask_weights", attn_mask=causal_float),
    Case("causal_hint_sdpa", attn_mask=causal_bool, call=dict(need_weights=False,
                                                              is_causal=True),
         dtypes=("float64", "float32")),
    Case("causal_hint_float_batch_first", ctor=dict(batch_first=True), attn_mask=causal_float,
         call=dict(need_weights=False, is_causal=True)),
    Case("causal_hint_with_padding", attn_mask=causal_bool, key_padding_mask=random_bool(padding),
         call=dict(need_weights=False, is_causal=True)),
    Case("causal_hint_with_weights", attn_mask=causal_float, call=dict(is_causal=True)),
    Case("bias_kv", ctor=dict(add_bias_kv=True), inputs="kv", attn_mask=random_bool(mask_2d),
         key_padding_mask=random_bool(padding)),
    Case("bias_kv_sdpa", ctor=dict(add_bias_kv=True, batch_first=True),
         key_padding_mask=random_float(padding), call=dict(need_weights=False)),
    Case("zero_attn", ctor=dict(add_zero_attn=True), attn_mask=random_float(mask_3d)),
    Case("bias_kv_zero_attn", ctor=dict(add_bias_kv=True, add_zero_attn=True), inputs="kv",
         key_padding_mask=random_bool(padding), call=dict(need_weights=False)),
    Case("unbatched", unbatched=True),
    Case("unbatched_cross_masks", unbatched=True, inputs="separate",
         attn_mask=random_bool(lambda L, S, N, H: (H, L, S)),
         key_padding_mask=random_bool(lambda L, S, N, H: (S,)), call=dict(need_weights=False)),
    Case("unbatched_batch_first", unbatched=True, ctor=dict(batch_first=True),
         attn_mask=causal_bool, call=dict(is_causal=True, need_weights=False)),
]

ROWS = [(c, dt, mode) for c in CASES for dt in c.dtypes for mode in ("train", "eval")]


def _inputs(case, E, kdim, vdim, rng, dtype):
    """query, key, value arrays in the module's layout, and which of them are the same."""
    bf = case.ctor.get("batch_first", False)
    S = case.L if case.inputs == "self" else case.S

    def seq(T, width):
        if case.unbatched:
            return rng.standard_normal((T, width)).astype(dtype)
        shape = (case.N, T, width) if bf else (T, case.N, width)
        return rng.standard_normal(shape).astype(dtype)
    q = seq(case.L, E)
    if case.inputs == "self":
        return (q,), S
    k = seq(S, kdim)
    if case.inputs == "kv":
        return (q, k), S
    return (q, k, seq(S, vdim)), S


def _qkv(tensors, inputs):
    """Rebuild (query, key, value) keeping the identities PyTorch's fast GEMM paths test."""
    if inputs == "self":
        return tensors[0], tensors[0], tensors[0]
    if inputs == "kv":
        return tensors[0], tensors[1], tensors[1]
    return tuple(tensors)


@pytest.mark.parametrize("case,dtype,mode", ROWS,
                         ids=[f"{c.id}-{dt}-{m}" for c, dt, m in ROWS])
def test_matches_torch(case, dtype, mode):
    rng = np.random.default_rng(0)
    ctor = dict(embed_dim=8, num_heads=2, dropout=0.0)
    ctor.update(case.ctor)
    E, H = ctor["embed_dim"], ctor["num_heads"]
    kdim, vdim = ctor.get("kdim") or E, ctor.get("vdim") or E
    tdt = getattr(torch, dtype)
    tm = torch.nn.MultiheadAttention(**ctor).to(tdt)
    perturb_(tm)
    mm = MultiheadAttention(**ctor).to(getattr(minidl, dtype))
    copy_weights(tm, mm)
    if mode == "eval":
        tm.eval()
        mm.eval()

    arrays, S = _inputs(case, E, kdim, vdim, rng, dtype)
    N = 1 if case.unbatched else case.N
    masks = [None, None]
    if case.attn_mask is not None:
        masks[0] = case.attn_mask(case.L, S, N, H, rng)
    if case.key_padding_mask is not None:
        masks[1] = case.key_padding_mask(case.L, S, N, H, rng)
    masks = [m if m is None or m.dtype == bool else m.astype(dtype) for m in masks]
    t_in, m_in = pair_inputs(torch, list(arrays) + masks,
                             [True] * len(arrays) + [case.mask_grad, False])
    tq, tk, tv = _qkv(t_in[:len(arrays)], case.inputs)
    mq, mk, mv = _qkv(m_in[:len(arrays)], case.inputs)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # PyTorch warns about mixed bool/float masks
        t_out, t_w = tm(tq, tk, tv, attn_mask=t_in[-2], key_padding_mask=t_in[-1], **case.call)
    m_out, m_w = mm(mq, mk, mv, attn_mask=m_in[-2], key_padding_mask=m_in[-1], **case.call)

    compare("output", m_out, t_out, dtype)
    compare("attention weights", m_w, t_w, dtype)
    weighted_sum(torch.from_numpy, [t_out, t_w]).backward()
    weighted_sum(minidl.tensor, [m_out, m_w]).backward()
    compare_grads(tm, mm, t_in, m_in, dtype)


# ---- rows whose every key is masked ---------------------------------------------------------

DEAD_ROWS = [  # (id, how the dead (batch, query) rows arise, need_weights, batch_first)
    ("padding_all_keys_of_batch_1", "padding", True, False),
    ("padding_all_keys_sdpa", "padding", False, True),
    ("mask_row_2", "mask", True, True),
    ("mask_row_2_sdpa", "mask", False, False),
    ("both", "both", False, False),
]


@pytest.mark.parametrize("kind,need_weights,batch_first", [r[1:] for r in DEAD_ROWS],
                         ids=[r[0] for r in DEAD_ROWS])
def test_fully_masked_rows_give_bias_and_zero_weights(kind, need_weights, batch_first):
    """A query with no key left: output = out_proj.bias (zero attention), weights 0, and no
    NaN anywhere. PyTorch gives NaN there, so the reference is PyTorch run on a mask whose
    dead rows are opened up, with those rows then replaced by out_proj.bias (and zero
    weights): attention rows do not mix, so every other value and gradient is unchanged."""
    rng = np.random.default_rng(3)
    L = S = 5
    N, H, E = 3, 2, 8
    kpm = np.zeros((N, S), bool)
    mask = np.zeros((L, S), bool)
    if kind in ("padding", "both"):
        kpm[1] = True
    if kind in ("mask", "both"):
        mask[2] = True
    dead = mask[None, :, :] | kpm[:, None, :]                    # (N, L, S) forbidden
    dead_rows = dead.all(-1)                                     # (N, L)
    assert dead_rows.any()
    merged = np.where(dead, -np.inf, 0.0)
    merged[dead_rows] = 0.0                                      # opened up for PyTorch
    merged_3d = np.repeat(merged, H, axis=0)                     # (N*H, L, S), batch-major

    tm = torch.nn.MultiheadAttention(E, H, batch_first=batch_first).double()
    perturb_(tm)
    mm = MultiheadAttention(E, H, batch_first=batch_first).double()
    copy_weights(tm, mm)
    shape = (N, L, E) if batch_first else (L, N, E)
    x = rng.standard_normal(shape)
    (tx,), (mx,) = pair_inputs(torch, [x], [True])

    t_out, t_w = tm(tx, tx, tx, attn_mask=torch.from_numpy(merged_3d), need_weights=need_weights)
    rows = torch.from_numpy(dead_rows.T[:, :, None] if not batch_first else dead_rows[:, :, None])
    t_out = torch.where(rows, tm.out_proj.bias.expand_as(t_out), t_out)
    if t_w is not None:
        t_w = torch.where(torch.from_numpy(dead_rows[:, :, None]), 0.0, t_w)
    m_out, m_w = mm(mx, mx, mx, attn_mask=minidl.tensor(mask),
                    key_padding_mask=minidl.tensor(kpm), need_weights=need_weights)

    assert np.isfinite(to_numpy(m_out)).all()
    compare("output", m_out, t_out, "float64")
    compare("attention weights", m_w, t_w, "float64")
    weighted_sum(torch.from_numpy, [t_out, t_w]).backward()
    weighted_sum(minidl.tensor, [m_out, m_w]).backward()
    compare_grads(tm, mm, [tx], [mx], "float64")


# ---- parameters ----------------------------------------------------------------------------

LAYOUTS = [dict(), dict(bias=False), dict(kdim=5, vdim=3), dict(kdim=5, vdim=3, bias=False),
           dict(add_bias_kv=True), dict(batch_first=True)]


@pytest.mark.parametrize("ctor", LAYOUTS, ids=[str(c) for c in LAYOUTS])
def test_parameter_names_and_shapes_match_torch(ctor):
    t_shapes = {k: tuple(v.shape) for k, v in
                torch.nn.MultiheadAttention(8, 2, **ctor).state_dict().items()}
    m_shapes = {k: tuple(v.shape) for k, v in MultiheadAttention(8, 2, **ctor).state_dict().items()}
    assert m_shapes == t_shapes


def test_default_init_is_pytorchs():
    """Xavier-uniform in_proj_weight (bound sqrt(6 / (E + 3E))), zero in_proj_bias and
    out_proj.bias."""
    E = 64
    m = MultiheadAttention(E, 4)
    w = m.in_proj_weight.detach().numpy()
    bound = math.sqrt(6.0 / (E + 3 * E))
    assert np.abs(w).max() <= bound
    assert abs(w.std() - bound / math.sqrt(3)) < 0.05 * bound
    assert not m.in_proj_bias.detach().numpy().any()
    assert not m.out_proj.bias.detach().numpy().any()


# ---- errors ---------------------------------------------------------------------------------

def _x(*shape, dtype=minidl.float32):
    return minidl.randn(*shape).to(dtype)


ERRORS = [  # (id, ctor, call(module), exception, message fragment)
    ("heads_do_not_divide", dict(embed_dim=6, num_heads=4), None, ValueError,
     "embed_dim (6) must be divisible by num_heads (4)"),
    ("zero_heads", dict(embed_dim=8, num_heads=0), None, ValueError, "greater than 0"),
    ("is_causal_without_mask", {}, lambda m: m(_x(4, 2, 8), _x(4, 2, 8), _x(4, 2, 8),
                                               is_causal=True),
     RuntimeError, "Need attn_mask if specifying the is_causal hint"),
    ("wrong_mask_shape", {}, lambda m: m(_x(4, 2, 8), _x(5, 2, 8), _x(5, 2, 8),
                                         attn_mask=minidl.zeros(4, 4)),
     RuntimeError, "attn_mask must have shape [4, 5] or [4, 4, 5], got [4, 4]"),
    ("wrong_padding_shape", {}, lambda m: m(_x(4, 2, 8), _x(5, 2, 8), _x(5, 2, 8),
                                            key_padding_mask=minidl.zeros(5, 2)),
     RuntimeError, "expected key_padding_mask of shape [2, 5], got [5, 2]"),
    ("int_mask", {}, lambda m: m(_x(4, 2, 8), _x(4, 2, 8), _x(4, 2, 8),
                                 attn_mask=minidl.zeros(4, 4, dtype=minidl.int64)),
     TypeError, "only bool and floating types of attn_mask are supported"),
    ("float_mask_dtype", {}, lambda m: m(_x(4, 2, 8), _x(4, 2, 8), _x(4, 2, 8),
                                         attn_mask=minidl.zeros(4, 4, dtype=minidl.float64)),
     TypeError, "must have the inputs' dtype"),
    ("feature_width", {}, lambda m: m(_x(4, 2, 7), _x(4, 2, 8), _x(4, 2, 8)),
     RuntimeError, "expected query with 8 features"),
    ("batch_mismatch", {}, lambda m: m(_x(4, 2, 8), _x(4, 3, 8), _x(4, 3, 8)),
     RuntimeError, "query has batch size 2 but key has 3"),
    ("key_value_lengths", {}, lambda m: m(_x(4, 2, 8), _x(4, 2, 8), _x(5, 2, 8)),
     RuntimeError, "must agree in every dim but the last"),
    ("four_dims", {}, lambda m: m(_x(1, 4, 2, 8), _x(1, 4, 2, 8), _x(1, 4, 2, 8)),
     RuntimeError, "query should be unbatched 2D or batched 3D"),
]


@pytest.mark.parametrize("ctor,call,exc,message", [e[1:] for e in ERRORS],
                         ids=[e[0] for e in ERRORS])
def test_errors(ctor, call, exc, message):
    kwargs = dict(embed_dim=8, num_heads=2)
    kwargs.update(ctor)
    with pytest.raises(exc) as info:
        module = MultiheadAttention(**kwargs)
        call(module)
    assert message in str(info.value)


@pytest.mark.parametrize("need_weights", [True, False])
def test_attention_dropout_acts_in_training_only(need_weights):
    """Train mode with dropout p: each returned weight is 0 or w / (1 - p), w the eval-mode
    weight (PyTorch returns the weights after dropout); eval mode is deterministic."""
    minidl.manual_seed(0)
    m = MultiheadAttention(8, 2, dropout=0.5).double()
    x = minidl.tensor(np.random.default_rng(0).standard_normal((6, 3, 8)))
    m.eval()
    out_eval, w_eval = m(x, x, x, average_attn_weights=False)
    out_eval2, _ = m(x, x, x)
    np.testing.assert_array_equal(to_numpy(out_eval), to_numpy(out_eval2))
    m.train()
    out_train, w_train = m(x, x, x, need_weights=need_weights, average_attn_weights=False)
    assert not np.allclose(to_numpy(out_train), to_numpy(out_eval))
    if need_weights:
        w, ref = to_numpy(w_train), to_numpy(w_eval)
        dropped = w == 0
        assert 0.3 < dropped.mean() < 0.7
        np.testing.assert_allclose(w[~dropped], 2 * ref[~dropped], rtol=1e-12)
