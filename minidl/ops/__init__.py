"""Floor 4: the differentiable op library, one file per family.

Each op is a `Function` subclass (forward on arrays, backward on Tensors) next to a lowercase
functional wrapper that checks arguments and applies PyTorch's promotion rules.
"""
from .elementwise import (add, sub, mul, div, pow, neg, abs, exp, log, log1p, sqrt, rsqrt, sin,
                          cos, tanh, floor, ceil, round, trunc, sign, clamp, clip, maximum, minimum,
                          where, remainder, eq, ne, lt, le, gt, ge, greater, less, greater_equal,
                          less_equal, not_equal, logical_and, logical_or, logical_xor, logical_not,
                          bitwise_and, bitwise_or, bitwise_xor, bitwise_not, isnan, isinf, isfinite,
                          equal, allclose, isclose, clone, contiguous, to_dtype)
from .activation import (relu, leaky_relu, elu, sigmoid, softplus, silu, gelu, hardtanh, relu6,
                         mish, logsigmoid)
from .reduce import (sum, mean, prod, max, min, amax, amin, argmax, argmin, var, std, var_mean,
                     std_mean, logsumexp, cumsum, cumprod, norm, all, any, sum_to_size,
                     count_nonzero)
from .shape import (reshape, view, flatten, unflatten, squeeze, unsqueeze, permute, transpose,
                    swapaxes, swapdims, t, movedim, expand, broadcast_to, broadcast_shapes,
                    broadcast_tensors, repeat, tile, repeat_interleave, cat, concat, concatenate,
                    stack, split, chunk, unbind, narrow, pad, tril, triu, roll, flip, fliplr, flipud)
from .linalg import matmul, mm, bmm, mv, dot, outer, einsum
from .indexing import (getitem, setitem, gather, scatter_add, scatter, index_select, index_add,
                       masked_fill, masked_select, one_hot, nonzero, argwhere, take_along_dim)
from .sorting import sort, argsort, msort, topk, kthvalue, median
from .sampling import multinomial
from .softmax import softmax, log_softmax
from .normalization import layer_norm, rms_norm, group_norm
from .conv import conv1d, conv2d, conv_transpose1d, conv_transpose2d
from .pool import max_pool1d, max_pool2d, avg_pool1d, adaptive_avg_pool1d
from .dropout import dropout
from . import tensor_methods as _tensor_methods  # noqa: F401  (binds methods onto Tensor)
