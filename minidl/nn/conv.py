"""Convolutions: Conv1d, Conv2d, ConvTranspose2d (PyTorch's parameters, defaults and init).

Weight shapes:   Conv:          (out_channels, in_channels // groups, *kernel_size)
                 ConvTranspose: (in_channels, out_channels // groups, *kernel_size)
Init: weight ~ kaiming_uniform_(a=sqrt(5)), i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)), and the
bias from the same bound, where fan_in = weight.size(1) * prod(kernel_size). For the transposed
convolution that is out_channels/groups * prod(kernel): PyTorch's rule, kept so that the same
seedless statistics hold.

Padding: an int, a tuple, 'valid' (no padding) or 'same' (output size = input size, stride 1).
'same' pads dilation*(k-1) in total per dimension, the odd one extra on the right (end) side.
padding_mode 'reflect', 'replicate' or 'circular' pads the input explicitly, then convolves
without padding.
"""
from __future__ import annotations

import math

from ..creation import empty
from ..ops.shape import pad as _pad
from . import functional as F
from . import init
from .module import Module
from .parameter import Parameter

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _ntuple(value, n: int, name: str) -> tuple:
    if isinstance(value, (tuple, list)):
        if len(value) != n:
            raise ValueError(f"{name} must be an int or a tuple of {n} ints, got {value!r}")
        return tuple(int(v) for v in value)
    return (int(value),) * n


class _ConvNd(Module):
    _dims = 2

    def __init__(self, in_channels, out_channels, kernel_size, stride, padding, dilation,
                 transposed, output_padding, groups, bias, padding_mode, device=None,
                 dtype=None):
        super().__init__()
        n = self._dims
        if groups <= 0:
            raise ValueError(f"groups must be a positive integer, got {groups}")
        if in_channels % groups != 0:
            raise ValueError(f"in_channels must be divisible by groups (got in_channels="
                             f"{in_channels}, groups={groups})")
        if out_channels % groups != 0:
            raise ValueError(f"out_channels must be divisible by groups (got out_channels="
                             f"{out_channels}, groups={groups})")
        if padding_mode not in _PADDING_MODES:
            raise ValueError(f"padding_mode must be one of {_PADDING_MODES}, but got "
                             f"padding_mode='{padding_mode}'")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = _ntuple(kernel_size, n, "kernel_size")
        self.stride = _ntuple(stride, n, "stride")
        self.dilation = _ntuple(dilation, n, "dilation")
        self.transposed = transposed
        self.output_padding = _ntuple(output_padding, n, "output_padding")
        self.groups = groups
        self.padding_mode = padding_mode
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"Invalid padding string {padding!r}, should be one of "
                                 "'same', 'valid'")
            if padding == "same" and any(s != 1 for s in self.stride):
                raise ValueError("padding='same' is not supported for strided convolutions")
            self.padding = padding
        else:
            self.padding = _ntuple(padding, n, "padding")
        # (left, right) per dimension, LAST dimension first: the layout ops.pad expects
        self._reversed_padding_repeated_twice = self._explicit_padding()

        if transposed:
            shape = (in_channels, out_channels // groups, *self.kernel_size)
        else:
            shape = (out_channels, in_channels // groups, *self.kernel_size)
        self.weight = Parameter(empty(*shape, device=device, dtype=dtype))
        if bias:
            self.bias = Parameter(empty(out_channels, device=device, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def _explicit_padding(self) -> list:
        widths = []
        for d in reversed(range(self._dims)):
            if self.padding == "valid":
                widths += [0, 0]
            elif self.padding == "same":
                total = self.dilation[d] * (self.kernel_size[d] - 1)
                widths += [total // 2, total - total // 2]
            else:
                widths += [self.padding[d], self.padding[d]]
        return widths

    def reset_parameters(self) -> None:
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            if fan_in != 0:
                bound = 1 / math.sqrt(fan_in)
                init.uniform_(self.bias, -bound, bound)

    def _padded_input_and_padding(self, input):
        """Return (input, padding for the conv call). Symmetric zero padding goes to the conv
        itself; anything else (other modes, the uneven side of 'same') pads the input first."""
        widths = self._reversed_padding_repeated_twice
        symmetric = all(widths[2 * i] == widths[2 * i + 1] for i in range(self._dims))
        if self.padding_mode == "zeros" and symmetric:
            return input, tuple(reversed(widths[0::2]))
        mode = "constant" if self.padding_mode == "zeros" else self.padding_mode
        return _pad(input, widths, mode=mode), (0,) * self._dims

    def extra_repr(self) -> str:
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if self.padding != (0,) * self._dims:
            s += f", padding={self.padding}"
        if self.dilation != (1,) * self._dims:
            s += f", dilation={self.dilation}"
        if self.output_padding != (0,) * self._dims:
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s


class Conv1d(_ConvNd):
    """1-D convolution over (N, C, L) inputs."""
    _dims = 1

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, groups: int = 1, bias: bool = True, padding_mode: str = "zeros",
                 device=None, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         False, 0, groups, bias, padding_mode, device, dtype)

    def forward(self, input):
        x, padding = self._padded_input_and_padding(input)
        return F.conv1d(x, self.weight, self.bias, self.stride, padding, self.dilation,
                        self.groups)


class Conv2d(_ConvNd):
    """2-D convolution over (N, C, H, W) inputs."""
    _dims = 2

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, groups: int = 1, bias: bool = True, padding_mode: str = "zeros",
                 device=None, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         False, 0, groups, bias, padding_mode, device, dtype)

    def forward(self, input):
        x, padding = self._padded_input_and_padding(input)
        return F.conv2d(x, self.weight, self.bias, self.stride, padding, self.dilation,
                        self.groups)


class ConvTranspose2d(_ConvNd):
    """The gradient of Conv2d with respect to its input, used as an upsampling layer.

    Output size per dimension: (in - 1)*stride - 2*padding + dilation*(k - 1) + output_padding
    + 1. Several output sizes map to the same input size under a strided Conv2d; `output_size=`
    in forward picks one (it sets output_padding for that call)."""
    _dims = 2

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 output_padding=0, groups: int = 1, bias: bool = True, dilation=1,
                 padding_mode: str = "zeros", device=None, dtype=None):
        if padding_mode != "zeros":
            raise ValueError(f'Only "zeros" padding mode is supported for ConvTranspose2d, got '
                             f'{padding_mode!r}')
        if isinstance(padding, str):
            raise ValueError(f"ConvTranspose2d takes numeric padding, got {padding!r}")
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         True, output_padding, groups, bias, padding_mode, device, dtype)

    def _output_padding(self, input, output_size):
        if output_size is None:
            return self.output_padding
        output_size = tuple(output_size)[-2:]
        spatial = tuple(input.shape[-2:])
        low = [(spatial[d] - 1) * self.stride[d] - 2 * self.padding[d]
               + self.dilation[d] * (self.kernel_size[d] - 1) + 1 for d in range(2)]
        high = [low[d] + self.stride[d] - 1 for d in range(2)]
        for d in range(2):
            if not low[d] <= output_size[d] <= high[d]:
                raise ValueError(f"requested an output size of {list(output_size)}, but valid "
                                 f"sizes range from {low} to {high} (for an input of "
                                 f"{list(spatial)})")
        return tuple(output_size[d] - low[d] for d in range(2))

    def forward(self, input, output_size=None):
        output_padding = self._output_padding(input, output_size)
        return F.conv_transpose2d(input, self.weight, self.bias, self.stride, self.padding,
                                  output_padding, self.groups, self.dilation)
