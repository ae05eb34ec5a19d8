"""`Optimizer`: parameter groups, per-parameter state, zero_grad, state_dict — as in PyTorch.

An optimizer holds

  param_groups  a list of dicts; each has 'params' (a list of Tensors) and every option of
                the optimizer ('lr', 'weight_decay', ...). A group that does not name an
                option takes it from `defaults`, so one model can train its biases without
                weight decay and its embeddings with another learning rate:
                    Adam([{'params': weights, 'weight_decay': 0.1},
                          {'params': biases}], lr=1e-3)       # biases: weight_decay 0
  state         a dict keyed by the parameter Tensor itself: {'step': 3, 'exp_avg': Tensor..}
                ('step' is a Python int; PyTorch keeps a 0-d tensor. Loading either works.)
  defaults      the options given to the constructor.

`state_dict()` refers to parameters by their position (0, 1, 2 ... counted across groups in
order), never by the Tensors themselves, so a checkpoint can be loaded into a new optimizer
built over a freshly constructed model with the same parameter order.

Subclasses implement `_step_group(group)`. It gathers, for every parameter that has a
gradient, the arrays the update needs, and hands them as lists to ONE fused multi-tensor call
of the parameter's device (`be.fused.adam_step(params, grads, ...)`): on the GPU that is one
kernel launch for the whole model instead of one per tensor per operation. Parameters are
bucketed by (device, dtype, and whatever the formula needs to be equal across the call, such
as Adam's step count); normally that is a single bucket, hence a single call.
"""
from __future__ import annotations

from collections import defaultdict

from ..autograd.function import bump_version
from ..autograd.grad_mode import enable_grad, no_grad
from ..tensor import Tensor


class _RequiredParameter:
    """Marks a default the user must supply (e.g. a learning rate without default)."""

    def __repr__(self) -> str:
        return "<required parameter>"


required = _RequiredParameter()


class Optimizer:
    """Base class of all optimizers. See the module docstring for the data layout."""

    def __init__(self, params, defaults: dict):
        self.defaults = defaults
        if not any(v is required for v in defaults.values()):
            self._check_group(defaults)   # each group is checked again as it is added
        if isinstance(params, Tensor):
            raise TypeError("params argument given to the optimizer should be an iterable of "
                            "Tensors or dicts, but got a single Tensor; wrap it in a list: [t]")
        if isinstance(params, dict):
            raise TypeError("params argument given to the optimizer should be an iterable of "
                            "Tensors or dicts, but got a dict; pass a list of param groups: "
                            "[{'params': ...}]")
        _reject_set(params)
        self.state: defaultdict = defaultdict(dict)
        self.param_groups: list = []
        groups = list(params)
        if len(groups) == 0:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    # ---- parameter groups ---------------------------------------------------------------
    def add_param_group(self, param_group: dict) -> None:
        """Add a group of parameters with its own options (missing ones come from defaults).
        Useful when unfreezing layers during fine-tuning."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group).__name__}")
        if "params" not in param_group:
            raise ValueError("param_group must have a 'params' entry with the Tensors to optimize")
        params = param_group["params"]
        if isinstance(params, Tensor):
            params = [params]
        else:
            _reject_set(params)
            params = list(params)
        group = dict(param_group)
        named = [isinstance(p, tuple) for p in params]
        if any(named):  # named_parameters(): (name, tensor) pairs
            if not all(named):
                raise ValueError("all optimizer params should be with/without names. "
                                 "Some param names are missing")
            group["param_names"] = [name for name, _ in params]
            params = [p for _, p in params]
        for i, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise TypeError(f"optimizer can only optimize Tensors, but param {i} of the "
                                f"group is a {type(p).__name__}")
            if not (p.is_leaf or p._retains_grad):
                raise ValueError(f"can't optimize a non-leaf Tensor (param {i} of the group, "
                                 f"shape {tuple(p.shape)}, made by {p.grad_fn.name()}); "
                                 "optimize the leaf it was computed from, or .detach() it and "
                                 "call requires_grad_()")
        if len({id(p) for p in params}) != len(params):
            raise ValueError("optimizer contains a parameter group with duplicate parameters")
        group["params"] = params
        for name, default in self.defaults.items():
            if default is required and name not in group:
                raise ValueError("parameter group didn't specify a value of required "
                                 f"optimization parameter {name}")
            group.setdefault(name, default)
        for other in self.param_groups:
            if ("param_names" in other) != ("param_names" in group):
                raise ValueError("all optimizer param groups should be with/without names. "
                                 "cannot add param group "
                                 f"{'with' if 'param_names' in group else 'without'} names "
                                 "to the optimizer")
        existing = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in existing for p in params):
            raise ValueError("some parameters appear in more than one parameter group")
        self._check_group(group)
        self.param_groups.append(group)

    def _check_group(self, group: dict) -> None:
        """Validate a group's options (subclasses check their hyper-parameters here, with
        `check_option`); called for the defaults and for every group added or loaded."""

    # ---- gradients and the step ---------------------------------------------------------
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients: `.grad = None` (default), or fill them with zeros."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    g = p.grad
                    if g.grad_fn is not None:   # a grad made with create_graph=True
                        g = p.grad = g.detach()
                    g._data.fill(0)
                    bump_version(g)

    def step(self, closure=None):
        """Update every parameter that has a gradient; parameters whose grad is None are
        skipped (their state does not advance). `closure`, if given, re-evaluates the model
        and returns the loss (it runs with gradients enabled); step returns that loss."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        with no_grad():
            for group in self.param_groups:
                self._step_group(group)
        return loss

    def _step_group(self, group: dict) -> None:
        raise NotImplementedError

    # ---- checkpoints --------------------------------------------------------------------
    def state_dict(self) -> dict:
        """{'state': {index: per-parameter state}, 'param_groups': [options + 'params':
        [indices]]}, PyTorch's layout. The state's Tensors are the live buffers, not copies:
        save the dict (minidl.save) before stepping again if you keep it around."""
        index_of = {}
        groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            for p in group["params"]:
                index_of.setdefault(id(p), len(index_of))
            packed["params"] = [index_of[id(p)] for p in group["params"]]
            groups.append(packed)
        state = {index_of[id(p)]: dict(s) for p, s in self.state.items()
                 if isinstance(p, Tensor) and id(p) in index_of}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore options and state saved by `state_dict()`. The groups must match this
        optimizer's in number and size; state buffers are copied into the dtype and device
        of their parameter (the loaded dict is not aliased)."""
        if not isinstance(state_dict, dict) or "state" not in state_dict \
                or "param_groups" not in state_dict:
            got = sorted(state_dict) if isinstance(state_dict, dict) else type(state_dict).__name__
            raise ValueError("load_state_dict expects a dict with 'state' and 'param_groups' "
                             f"(as returned by Optimizer.state_dict()), got {got}")
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"loaded state dict has a different number of parameter groups: "
                             f"{len(saved_groups)} saved, {len(self.param_groups)} in this "
                             "optimizer")
        for i, (ours, saved) in enumerate(zip(self.param_groups, saved_groups)):
            if len(ours["params"]) != len(saved["params"]):
                raise ValueError(
                    f"loaded state dict contains a parameter group that doesn't match the size "
                    f"of optimizer's group: group {i} has {len(saved['params'])} params saved "
                    f"but {len(ours['params'])} here")
        param_of = {}
        for ours, saved in zip(self.param_groups, saved_groups):
            for p, index in zip(ours["params"], saved["params"]):
                param_of[index] = p
        new_state = defaultdict(dict)
        for index, saved_state in state_dict["state"].items():
            p = param_of.get(_as_index(index))
            if p is None:
                raise ValueError(f"loaded state dict has state for parameter {index!r}, which "
                                 "no parameter group lists")
            new_state[p] = {key: _copy_state_value(p, index, key, value)
                            for key, value in saved_state.items()}
        new_groups = []
        for ours, saved in zip(self.param_groups, saved_groups):
            group = {k: _plain_copy(v) for k, v in saved.items()}
            group["params"] = ours["params"]
            if "param_names" in ours and "param_names" not in saved:
                group["param_names"] = ours["param_names"]
            for name, default in self.defaults.items():   # options added since the save
                group.setdefault(name, default)
            self._check_group(group)
            new_groups.append(group)
        self.state = new_state
        self.param_groups = new_groups

    def __repr__(self) -> str:
        lines = [type(self).__name__ + " ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for key in sorted(k for k in group if k != "params"):
                lines.append(f"    {key}: {group[key]}")
        lines.append(")")
        return "\n".join(lines)

    # ---- helpers for subclasses ---------------------------------------------------------
    @staticmethod
    def _params_with_grads(group: dict):
        """Yield (param, grad array) for the group's params that have a gradient, checking
        that the gradient fits the parameter."""
        for p in group["params"]:
            g = p.grad
            if g is None:
                continue
            garr = g._data
            if garr.shape != p._data.shape or garr.dtype != p._data.dtype \
                    or g._be is not p._be:
                raise RuntimeError(
                    f"a parameter of shape {tuple(p.shape)}, dtype {p.dtype}, device {p.device} "
                    f"has a .grad of shape {tuple(g.shape)}, dtype {g.dtype}, device {g.device}; "
                    "they must match")
            if not garr.flags.c_contiguous:
                garr = p._be.xp.ascontiguousarray(garr)
            yield p, garr

    @staticmethod
    def _new_buffer(p: Tensor, fill: float = 0.0) -> Tensor:
        """A state buffer shaped like p, on p's device, in p's dtype."""
        xp = p._be.xp
        arr = xp.zeros(p._data.shape, dtype=p._data.dtype) if fill == 0 else \
            xp.full(p._data.shape, fill, dtype=p._data.dtype)
        return Tensor._wrap(arr, p._be, None, 0)


class Bucket:
    """The lists of arrays for one fused multi-tensor call: `arrays['params']`,
    `arrays['grads']`, state buffers..., all on one device (`be`) in one dtype, sharing `key`
    (e.g. Adam's step count)."""

    __slots__ = ("be", "key", "arrays", "tensors")

    def __init__(self, be, key, names):
        self.be, self.key = be, key
        self.arrays = {name: [] for name in names}
        self.tensors = []   # the parameter Tensors, to bump their version after the update


class Buckets:
    """Parameters sorted into Buckets by (device, dtype, key); usually there is one.

    A parameter that is not C-contiguous (the fused kernels want contiguous arrays) is
    updated through a contiguous copy that `finish()` writes back."""

    __slots__ = ("_by_key", "_writebacks")

    def __init__(self):
        self._by_key = {}
        self._writebacks = []

    def add(self, p: Tensor, key, **arrays) -> None:
        """Append p's arrays; `arrays` names every list of the call, `params` first."""
        param_array = arrays["params"]
        if not param_array.flags.c_contiguous:
            copy = p._be.xp.ascontiguousarray(param_array)
            self._writebacks.append((param_array, copy, p._be.xp))
            arrays["params"] = copy
        full_key = (id(p._be), param_array.dtype, key)
        bucket = self._by_key.get(full_key)
        if bucket is None:
            bucket = self._by_key[full_key] = Bucket(p._be, key, arrays)
        bucket.tensors.append(p)
        for name, arr in arrays.items():
            bucket.arrays[name].append(arr)

    def __iter__(self):
        return iter(self._by_key.values())

    def finish(self) -> None:
        """Write back non-contiguous params and bump every updated parameter's version (it
        was changed in place: a graph that saved its old value must refuse to backward)."""
        for original, copy, xp in self._writebacks:
            xp.copyto(original, copy)
        for bucket in self._by_key.values():
            for p in bucket.tensors:
                bump_version(p)


def _reject_set(params) -> None:
    if isinstance(params, (set, frozenset)):
        raise TypeError("optimizer parameters need to be organized in ordered collections, but "
                        "the ordering of tensors in sets will change between runs. Please use "
                        "a list instead.")


def _as_index(key):
    """State keys are ints; a checkpoint format may have turned them into strings."""
    if isinstance(key, str) and key.isdigit():
        return int(key)
    return key


def _copy_state_value(p: Tensor, index, key, value):
    """Copy a saved state value for parameter p: Tensors move to p's device (and float ones
    to p's dtype) as fresh buffers; 'step' becomes a Python int."""
    if key == "step":
        return int(float(value))
    if isinstance(value, Tensor):
        if value.is_floating_point() and tuple(value.shape) != tuple(p.shape) \
                and value.numel() != 1:
            raise ValueError(f"state '{key}' of parameter {index} has shape {tuple(value.shape)} "
                             f"but the parameter has shape {tuple(p.shape)}: the checkpoint "
                             "belongs to a different model")
        arr = value._data if value._be is p._be else p._be.from_numpy(value._be.to_numpy(
            value._data))
        dtype = p._data.dtype if value.is_floating_point() else arr.dtype
        arr = p._be.xp.array(arr, dtype=dtype, copy=True)
        return Tensor._wrap(arr, p._be, None, 0)
    return _plain_copy(value)


def _plain_copy(value):
    if isinstance(value, dict):
        return {k: _plain_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain_copy(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_plain_copy(v) for v in value)
    return value


def check_option(ok: bool, message: str) -> None:
    """Hyper-parameter validation with PyTorch's wording ('Invalid learning rate: -1')."""
    if not ok:
        raise ValueError(message)


def reject_unsupported(optimizer: str, differentiable: bool = False,
                       capturable: bool = False) -> None:
    """`foreach` and `fused` are accepted and ignored (minidl always takes its fused multi-tensor
    path); these two change what the step means and are not offered."""
    if differentiable:
        raise NotImplementedError(f"{optimizer}(differentiable=True) is not supported: minidl's "
                                  "optimizer steps update arrays in place outside autograd")
    if capturable:
        raise NotImplementedError(f"{optimizer}(capturable=True) is not supported: minidl has no "
                                  "CUDA graph capture")
