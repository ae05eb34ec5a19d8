"""`Module`: the base class of every layer and model.

A Module keeps three ordered tables, filled by plain attribute assignment in `__init__`:

    self.weight = Parameter(...)      -> _parameters['weight']   (learned; optimizers update it)
    self.register_buffer('mean', t)   -> _buffers['mean']        (state that is not learned)
    self.fc = Linear(...)             -> _modules['fc']          (a child module)

Everything else walks those tables recursively: `parameters()`, `named_modules()`, `train()`,
`to()`, `state_dict()`. Names are dotted paths ('encoder.0.weight'), exactly as in PyTorch, so
a PyTorch state_dict converted to arrays loads into the same minidl model.

Calling a module (`model(x)`) runs its forward pre-hooks, `forward`, then its forward hooks.
"""
from __future__ import annotations

import copy
from collections import OrderedDict

from ..autograd.grad_mode import no_grad
from ..tensor import Tensor
from .hooks import RemovableHandle, add_hook, call_with_hooks
from .parameter import Parameter
from . import _state_dict


def _type_name(value) -> str:
    return type(value).__module__ + "." + type(value).__qualname__ if value is not None else "None"


class Module:
    """Base class for all neural-network modules; subclass it and define `forward`."""

    training: bool

    def __init__(self, *args, **kwargs):
        if args or kwargs:
            raise TypeError(f"{type(self).__name__}.__init__() got unexpected arguments "
                            f"{args or ''}{kwargs or ''}: Module.__init__ takes none")
        set_ = object.__setattr__
        set_(self, "training", True)
        set_(self, "_parameters", OrderedDict())
        set_(self, "_buffers", OrderedDict())
        set_(self, "_non_persistent_buffers_set", set())
        set_(self, "_modules", OrderedDict())
        set_(self, "_forward_pre_hooks", OrderedDict())
        set_(self, "_forward_pre_hooks_with_kwargs", {})
        set_(self, "_forward_hooks", OrderedDict())
        set_(self, "_forward_hooks_with_kwargs", {})

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f'Module [{type(self).__name__}] is missing the required '
                                  '"forward" function')

    # ---- registration ---------------------------------------------------------------------
    def _check_new_name(self, name, kind: str) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"cannot assign {kind} before Module.__init__() call "
                                 "(call super().__init__() first in your __init__)")
        if not isinstance(name, str):
            raise TypeError(f"{kind} name should be a string, got {type(name).__name__}")
        if name == "":
            raise KeyError(f'{kind} name can\'t be empty string ""')
        if "." in name:
            raise KeyError(f'{kind} name can\'t contain ".", got "{name}"')

    def register_parameter(self, name: str, param) -> None:
        """Register `param` (a Parameter, or None for an absent one such as `bias=False`)."""
        self._check_new_name(name, "parameter")
        if hasattr(self, name) and name not in self._parameters:
            raise KeyError(f"attribute '{name}' already exists")
        if param is None:
            self._parameters[name] = None
            return
        if not isinstance(param, Parameter):
            raise TypeError(f"cannot assign '{_type_name(param)}' object to parameter '{name}' "
                            "(minidl.nn.Parameter or None required)")
        if param.grad_fn is not None:
            raise ValueError(
                f"Cannot assign non-leaf Tensor to parameter '{name}'. Model parameters must be "
                f"created explicitly. To express '{name}' as a function of another Tensor, compute "
                "the value in the forward() method.")
        self._parameters[name] = param

    def register_buffer(self, name: str, tensor, persistent: bool = True) -> None:
        """Register non-learned state (e.g. BatchNorm's running_mean). Persistent buffers are
        saved in the state_dict; non-persistent ones only follow `.to()`."""
        self._check_new_name(name, "buffer")
        if hasattr(self, name) and name not in self._buffers:
            raise KeyError(f"attribute '{name}' already exists")
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"cannot assign '{_type_name(tensor)}' object to buffer '{name}' "
                            "(minidl.Tensor or None required)")
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent_buffers_set.discard(name)
        else:
            self._non_persistent_buffers_set.add(name)

    def add_module(self, name: str, module) -> None:
        self._check_new_name(name, "module")
        if not isinstance(module, Module) and module is not None:
            raise TypeError(f"{_type_name(module)} is not a Module subclass")
        if hasattr(self, name) and name not in self._modules:
            raise KeyError(f"attribute '{name}' already exists")
        self._modules[name] = module

    register_module = add_module

    def __setattr__(self, name: str, value) -> None:
        d = self.__dict__
        params = d.get("_parameters")

        def remove_from(*tables):
            for t in tables:
                if isinstance(t, dict):
                    t.pop(name, None)
                else:
                    t.discard(name)

        if isinstance(value, Parameter):
            if params is None:
                raise AttributeError("cannot assign parameters before Module.__init__() call "
                                     "(call super().__init__() first in your __init__)")
            remove_from(d, self._buffers, self._modules, self._non_persistent_buffers_set)
            self.register_parameter(name, value)
        elif params is not None and name in params:
            if value is not None:
                raise TypeError(f"cannot assign '{_type_name(value)}' as parameter '{name}' "
                                "(minidl.nn.Parameter or None expected)")
            self.register_parameter(name, value)
        elif isinstance(value, Module):
            if params is None:
                raise AttributeError("cannot assign module before Module.__init__() call "
                                     "(call super().__init__() first in your __init__)")
            remove_from(d, self._parameters, self._buffers, self._non_persistent_buffers_set)
            self._modules[name] = value
        elif params is not None and name in self._modules:
            if value is not None:
                raise TypeError(f"cannot assign '{_type_name(value)}' as child module '{name}' "
                                "(minidl.nn.Module or None expected)")
            self._modules[name] = value
        elif params is not None and name in self._buffers:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"cannot assign '{_type_name(value)}' as buffer '{name}' "
                                "(minidl.Tensor or None expected)")
            self._buffers[name] = value
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name: str):
        # only called when normal lookup failed: look in the three tables
        d = self.__dict__
        for table in ("_parameters", "_buffers", "_modules"):
            t = d.get(table)
            if t is not None and name in t:
                return t[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name: str) -> None:
        for table in (self._parameters, self._buffers, self._modules):
            if name in table:
                del table[name]
                self._non_persistent_buffers_set.discard(name)
                return
        object.__delattr__(self, name)

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self._parameters) | set(self._buffers)
                      | set(self._modules))

    # ---- walking the tree -----------------------------------------------------------------
    def named_modules(self, memo=None, prefix: str = "", remove_duplicate: bool = True):
        """Yield (dotted name, module) for self and every descendant, each module once."""
        if memo is None:
            memo = set()
        if self in memo:
            return
        if remove_duplicate:
            memo.add(self)
        yield prefix, self
        for name, child in self._modules.items():
            if child is None:
                continue
            yield from child.named_modules(memo, prefix + ("." if prefix else "") + name,
                                           remove_duplicate)

    def modules(self):
        for _, m in self.named_modules():
            yield m

    def named_children(self):
        seen = set()
        for name, child in self._modules.items():
            if child is not None and child not in seen:
                seen.add(child)
                yield name, child

    def children(self):
        for _, child in self.named_children():
            yield child

    def _named_members(self, table_of, prefix: str, recurse: bool, remove_duplicate: bool):
        seen = set()  # ids: a Tensor's == is elementwise, so never put tensors in a set
        modules = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) \
            if recurse else [(prefix, self)]
        for module_prefix, module in modules:
            for name, value in table_of(module):
                if value is None or (remove_duplicate and id(value) in seen):
                    continue
                seen.add(id(value))
                yield module_prefix + ("." if module_prefix else "") + name, value

    def named_parameters(self, prefix: str = "", recurse: bool = True,
                         remove_duplicate: bool = True):
        """Yield (dotted name, parameter); a parameter shared by two layers comes once, under
        the first name found (so an optimizer never updates it twice)."""
        return self._named_members(lambda m: m._parameters.items(), prefix, recurse,
                                   remove_duplicate)

    def parameters(self, recurse: bool = True):
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = "", recurse: bool = True,
                      remove_duplicate: bool = True):
        return self._named_members(lambda m: m._buffers.items(), prefix, recurse,
                                   remove_duplicate)

    def buffers(self, recurse: bool = True):
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def get_submodule(self, target: str) -> "Module":
        """The module at a dotted path, e.g. 'encoder.layers.0'."""
        module = self
        if target == "":
            return module
        walked = []
        for item in target.split("."):
            if not isinstance(module, Module) or item not in module._modules:
                where = ".".join(walked) or type(self).__name__
                raise AttributeError(f"{where} has no submodule '{item}' (looking up '{target}')")
            module = module._modules[item]
            walked.append(item)
        return module

    def get_parameter(self, target: str) -> Parameter:
        module_path, _, name = target.rpartition(".")
        module = self.get_submodule(module_path)
        if name not in module._parameters:
            raise AttributeError(f"{type(module).__name__} has no parameter '{name}'")
        return module._parameters[name]

    def apply(self, fn) -> "Module":
        """Call fn on every child (recursively) and then on self; returns self."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    # ---- modes and gradients --------------------------------------------------------------
    def train(self, mode: bool = True) -> "Module":
        if not isinstance(mode, bool):
            raise ValueError(f"training mode is expected to be boolean, got {mode!r}")
        self.training = mode
        for child in self.children():
            child.train(mode)
        return self

    def eval(self) -> "Module":
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> "Module":
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear the gradients: drop them (default, frees memory) or fill them with zeros."""
        for p in self.parameters():
            if p.grad is None:
                continue
            if set_to_none:
                p.grad = None
            else:  # keep the same grad tensor, cut from any graph (create_graph=True made one)
                if p.grad.grad_fn is not None:
                    p.grad.detach_()
                else:
                    p.grad.requires_grad_(False)
                p.grad.zero_()

    # ---- devices and dtypes ---------------------------------------------------------------
    def _apply(self, fn) -> "Module":
        """Convert every parameter, gradient and buffer with fn. Parameters are changed in place
        (same Python object, new array), so an optimizer built before `.to()` still holds them."""
        for child in self.children():
            child._apply(fn)
        with no_grad():
            for p in self._parameters.values():
                if p is None:
                    continue
                _swap_array(p, fn(p))
                if p.grad is not None:
                    _swap_array(p.grad, fn(p.grad))
            for name, b in self._buffers.items():
                if b is not None:
                    self._buffers[name] = fn(b)
        return self

    def to(self, *args, **kwargs) -> "Module":
        """`.to(device)`, `.to(dtype)`, `.to(device, dtype)`, `.to(tensor)`. A dtype converts
        only floating-point tensors: integer buffers (num_batches_tracked) keep theirs."""
        from .. import dtypes as _dt
        device, dtype = kwargs.pop("device", None), kwargs.pop("dtype", None)
        kwargs.pop("non_blocking", None)
        if kwargs:
            raise TypeError(f"to() got unexpected arguments {sorted(kwargs)}")
        for a in args:
            if isinstance(a, Tensor):
                device, dtype = a.device, a.dtype
            elif isinstance(a, _dt.dtype) or (isinstance(a, str) and a in _dt._BY_NAME):
                dtype = a
            elif a is not None:
                device = a
        if dtype is not None:
            dtype = _dt.from_any(dtype)
            if not dtype.is_floating_point:
                raise TypeError("nn.Module.to only accepts floating point dtypes, but got "
                                f"desired dtype={dtype}")

        def convert(t):
            return t.to(device=device, dtype=dtype if t.is_floating_point() else None)
        return self._apply(convert)

    def cpu(self) -> "Module":
        return self.to("cpu")

    def cuda(self, device=None) -> "Module":
        return self.to("cuda" if device is None else
                       (device if isinstance(device, str) else f"cuda:{device}"))

    def _cast_floats(self, dtype_name: str) -> "Module":
        return self._apply(lambda t: t.to(dtype_name) if t.is_floating_point() else t)

    def float(self) -> "Module":
        return self._cast_floats("float32")

    def double(self) -> "Module":
        return self._cast_floats("float64")

    def half(self) -> "Module":
        return self._cast_floats("float16")

    # ---- state_dict -----------------------------------------------------------------------
    def state_dict(self, *, destination=None, prefix: str = "", keep_vars: bool = False):
        """An ordered dict of every parameter and persistent buffer, by dotted name. Values are
        detached (they share memory with the model) unless keep_vars=True."""
        if destination is None:
            destination = OrderedDict()
        self._save_to_state_dict(destination, prefix, keep_vars)
        for name, child in self._modules.items():
            if child is not None:
                child.state_dict(destination=destination, prefix=prefix + name + ".",
                                 keep_vars=keep_vars)
        return destination

    def _save_to_state_dict(self, destination, prefix: str, keep_vars: bool) -> None:
        for name, p in self._parameters.items():
            if p is not None:
                destination[prefix + name] = p if keep_vars else p.detach()
        for name, b in self._buffers.items():
            if b is not None and name not in self._non_persistent_buffers_set:
                destination[prefix + name] = b if keep_vars else b.detach()

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """Copy values (minidl Tensors, NumPy arrays, or anything `numpy.asarray` accepts)
        into the parameters and buffers. With strict=True, missing or unexpected keys raise;
        shape mismatches always raise. Returns (missing_keys, unexpected_keys)."""
        missing, unexpected = _state_dict.load_into(self, state_dict, strict, assign)
        return _state_dict.IncompatibleKeys(missing, unexpected)

    def _load_from_state_dict(self, state_dict, prefix, strict, missing_keys, unexpected_keys,
                              error_msgs, assign=False) -> None:
        """Load this module's own entries (not its children's); subclasses may override it to
        convert old checkpoint formats."""
        _state_dict.load_own_entries(self, state_dict, prefix, missing_keys, unexpected_keys,
                                     error_msgs, assign)

    # ---- calling --------------------------------------------------------------------------
    def register_forward_pre_hook(self, hook, *, prepend: bool = False,
                                  with_kwargs: bool = False) -> RemovableHandle:
        """`hook(module, args)` runs before forward; it may return new args (a tuple, or a
        single value that becomes a 1-tuple). With with_kwargs=True it is called as
        `hook(module, args, kwargs)` and may return a new (args, kwargs) pair."""
        handle = RemovableHandle(self._forward_pre_hooks, self._forward_pre_hooks_with_kwargs)
        add_hook(self._forward_pre_hooks, handle.id, hook, prepend)
        if with_kwargs:
            self._forward_pre_hooks_with_kwargs[handle.id] = True
        return handle

    def register_forward_hook(self, hook, *, prepend: bool = False,
                              with_kwargs: bool = False) -> RemovableHandle:
        """`hook(module, args, output)` runs after forward; a non-None return value replaces
        the output. With with_kwargs=True: `hook(module, args, kwargs, output)`."""
        handle = RemovableHandle(self._forward_hooks, self._forward_hooks_with_kwargs)
        add_hook(self._forward_hooks, handle.id, hook, prepend)
        if with_kwargs:
            self._forward_hooks_with_kwargs[handle.id] = True
        return handle

    def __call__(self, *args, **kwargs):
        if not (self._forward_pre_hooks or self._forward_hooks):
            return self.forward(*args, **kwargs)
        return call_with_hooks(self, args, kwargs)

    # ---- printing and copying -------------------------------------------------------------
    def extra_repr(self) -> str:
        """The text inside this module's parentheses when printed; layers override it."""
        return ""

    def _get_name(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:
        extra = self.extra_repr()
        extra_lines = extra.split("\n") if extra else []
        child_lines = [f"({name}): " + _add_indent(repr(child), 2)
                       for name, child in self._modules.items()]
        text = self._get_name() + "("
        if extra_lines or child_lines:
            if len(extra_lines) == 1 and not child_lines:
                text += extra_lines[0]
            else:
                text += "\n  " + "\n  ".join(extra_lines + child_lines) + "\n"
        return text + ")"

    def __deepcopy__(self, memo):
        # Copy the tensors but not the device backends they point to: a tensor's backend is
        # a per-device singleton that ops compare by identity.
        for t in list(self.parameters()) + list(self.buffers()):
            memo.setdefault(id(t._be), t._be)
            if t.grad is not None:
                memo.setdefault(id(t.grad._be), t.grad._be)
        new = type(self).__new__(type(self))
        memo[id(self)] = new
        for key, value in self.__dict__.items():
            object.__setattr__(new, key, copy.deepcopy(value, memo))
        return new


def _swap_array(t: Tensor, new: Tensor) -> None:
    """Make `t` hold `new`'s array (and device) while staying the same Python object."""
    if new is t:
        return
    t._data = new._data
    t._be = new._be


def _add_indent(text: str, spaces: int) -> str:
    """Indent every line but the first (the first follows '(name): ' on its parent's line)."""
    lines = text.split("\n")
    if len(lines) == 1:
        return text
    pad = " " * spaces
    return lines[0] + "\n" + "\n".join(pad + line for line in lines[1:])
