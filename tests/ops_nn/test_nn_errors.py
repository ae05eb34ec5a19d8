"""Bad input gives an error that says what was expected and what was given."""
import numpy as np
import pytest

import minidl
import minidl.nn.functional as F


def t(*shape, dtype="float32"):
    return minidl.zeros(*shape, dtype=dtype)


def idx(values):
    return minidl.tensor(np.array(values))


ERRORS = [
    # classification losses
    ("ce_target_out_of_range", lambda: F.cross_entropy(t(3, 5), idx([0, 7, 1])), IndexError,
     r"target 7 is out of bounds: expected class indices in \[0, 4\]"),
    ("ce_negative_target", lambda: F.cross_entropy(t(2, 5), idx([-1, 0])), IndexError,
     r"target -1 is out of bounds"),
    ("ce_batch_mismatch", lambda: F.cross_entropy(t(3, 5), idx([0, 1])), ValueError,
     r"expected input batch_size \(3\) to match target batch_size \(2\)"),
    ("ce_spatial_target_shape", lambda: F.cross_entropy(t(2, 3, 4), idx(np.zeros((2, 5), int))),
     RuntimeError, r"expected target size \[2, 4\], got \[2, 5\]"),
    ("ce_unbatched_target", lambda: F.cross_entropy(t(5), idx([1])), RuntimeError,
     r"target must be a 0-d class index"),
    ("ce_int_logits", lambda: F.cross_entropy(t(2, 3, dtype="int64"), idx([0, 1])), TypeError,
     r"floating point tensor, got minidl.int64"),
    ("ce_weight_shape", lambda: F.cross_entropy(t(2, 3), idx([0, 1]), weight=t(4)),
     RuntimeError, r"weight must be a tensor of shape \[3\].*got \[4\]"),
    ("ce_probs_ignore_index", lambda: F.cross_entropy(t(2, 3), t(2, 3), ignore_index=0),
     RuntimeError, r"ignore_index is not supported for floating point target"),
    ("ce_probs_shape", lambda: F.cross_entropy(t(2, 3), t(2, 4)), ValueError,
     r"must have the input's shape \[2, 3\], got \[2, 4\]"),
    ("ce_smoothing_range", lambda: F.cross_entropy(t(2, 3), idx([0, 1]), label_smoothing=1.5),
     ValueError, r"label_smoothing must be between 0.0 and 1.0, got 1.5"),
    ("nll_target_out_of_range", lambda: F.nll_loss(t(2, 3), idx([3, 0])), IndexError,
     r"target 3 is out of bounds"),
    ("bad_reduction", lambda: F.mse_loss(t(2), t(2), reduction="avg"), ValueError,
     r"'avg' is not a valid value for reduction"),
    ("mse_weight_shape", lambda: F.mse_loss(t(2, 3), t(2, 3), weight=t(3)), ValueError,
     r"weights and input must have the same size"),
    ("bce_not_probabilities", lambda: F.binary_cross_entropy(t(3) + 1.5, t(3)), RuntimeError,
     r"all elements of input should be between 0 and 1"),
    ("bce_shape", lambda: F.binary_cross_entropy(t(3), t(3, 1)), ValueError,
     r"target size \(\[3, 1\]\) that is different to the input size \(\[3\]\)"),
    ("bce_logits_shape", lambda: F.binary_cross_entropy_with_logits(t(3), t(3, 1)), ValueError,
     r"target size \(\[3, 1\]\) must be the same as input size \(\[3\]\)"),
    ("smooth_l1_negative_beta", lambda: F.smooth_l1_loss(t(2), t(2), beta=-1.0), ValueError,
     r"does not support negative values for beta"),
    # convolution
    ("conv_channel_mismatch", lambda: F.conv2d(t(2, 4, 5, 5), t(8, 3, 3, 3)), RuntimeError,
     r"weight of size \[8, 3, 3, 3\], expected input\[2, 4, 5, 5\] to have 3 channels, but "
     r"got 4 channels instead"),
    ("conv_groups_channels", lambda: F.conv2d(t(1, 4, 5, 5), t(6, 1, 3, 3), groups=2),
     RuntimeError, r"given groups=2.*to have 2 channels, but got 4"),
    ("conv_dtype_mismatch", lambda: F.conv2d(t(1, 3, 5, 5), t(2, 3, 3, 3, dtype="float64")),
     TypeError, r"input \(minidl.float32\), weight \(minidl.float64\) must have the same dtype"),
    ("conv_input_dims", lambda: F.conv2d(t(3, 5), t(2, 3, 3, 3)), RuntimeError,
     r"expected 3D \(unbatched\) or 4D \(batched\) input, but got input of size: \[3, 5\]"),
    ("conv_kernel_too_big", lambda: F.conv2d(t(1, 1, 2, 2), t(1, 1, 3, 3)), RuntimeError,
     r"Kernel size: \(3 x 3\). Kernel size can't be greater than actual input size"),
    ("conv_same_strided", lambda: F.conv2d(t(1, 1, 5, 5), t(1, 1, 3, 3), stride=2,
                                           padding="same"), ValueError,
     r"padding='same' is not supported for strided convolutions"),
    ("conv_bad_padding_string", lambda: F.conv2d(t(1, 1, 5, 5), t(1, 1, 3, 3), padding="full"),
     ValueError, r"padding must be an int, a tuple, 'valid' or 'same', got 'full'"),
    ("conv_bias_shape", lambda: F.conv2d(t(1, 1, 5, 5), t(2, 1, 3, 3), t(3)), RuntimeError,
     r"expected bias of shape \[2\]"),
    ("conv_transpose_output_padding", lambda: F.conv_transpose2d(t(1, 2, 3, 3), t(2, 1, 3, 3),
                                                                 stride=2, output_padding=2),
     ValueError, r"output padding must be smaller than either stride or dilation"),
    ("conv_transpose_channels", lambda: F.conv_transpose2d(t(1, 3, 3, 3), t(2, 1, 3, 3)),
     RuntimeError, r"expected input\[1, 3, 3, 3\] to have 2 channels"),
    # pooling
    ("pool_padding_too_big", lambda: F.max_pool2d(t(1, 1, 5, 5), 3, padding=2), RuntimeError,
     r"pad should be at most half of kernel size"),
    ("pool_int_input", lambda: F.max_pool2d(t(1, 1, 4, 4, dtype="int64"), 2), TypeError,
     r"floating point tensor"),
    ("pool_dims", lambda: F.avg_pool2d(t(4, 4), 2), RuntimeError,
     r"expected 3D \(unbatched\) or 4D \(batched\) input"),
    ("pool_too_small", lambda: F.max_pool2d(t(1, 1, 2, 2), 3), RuntimeError,
     r"input \[1, 1, 2, 2\] is too small for kernel_size \(3, 3\)"),
    # normalisation
    ("layer_norm_shape", lambda: F.layer_norm(t(2, 3), (4,)), RuntimeError,
     r"expected input with shape \[\*, 4\], but got input of size \[2, 3\]"),
    ("layer_norm_weight_shape", lambda: F.layer_norm(t(2, 4), (4,), t(3)), RuntimeError,
     r"weight must have shape \[4\], got \[3\]"),
    ("layer_norm_weight_dtype", lambda: F.layer_norm(t(2, 4), (4,), t(4, dtype="float64")),
     TypeError, r"weight has dtype minidl.float64 but input has dtype minidl.float32"),
    ("batch_norm_eval_needs_stats", lambda: F.batch_norm(t(2, 3), None, None), RuntimeError,
     r"running_mean and running_var must be given when training=False"),
    ("batch_norm_one_value", lambda: F.batch_norm(t(1, 3), None, None, training=True),
     ValueError, r"expected more than 1 value per channel when training"),
    ("group_norm_divisible", lambda: F.group_norm(t(2, 6, 4), 4), RuntimeError,
     r"divisible by num_groups, but got input of shape \[2, 6, 4\] and num_groups=4"),
    # embedding
    ("embedding_index_range", lambda: F.embedding(idx([0, 5]), t(5, 2)), IndexError,
     r"index 5 is out of range for a table with 5 rows"),
    ("embedding_float_indices", lambda: F.embedding(t(3), t(5, 2)), TypeError,
     r"indices .* must be an integer tensor"),
    ("embedding_padding_idx", lambda: F.embedding(idx([0]), t(5, 2), padding_idx=5), ValueError,
     r"padding_idx must be within num_embeddings"),
    ("embedding_weight_dims", lambda: F.embedding(idx([0]), t(5)), RuntimeError,
     r"weight must be a 2-D \(num_embeddings, embedding_dim\) tensor, got \[5\]"),
    # attention
    ("sdpa_mask_and_causal", lambda: F.scaled_dot_product_attention(
        t(1, 3, 2), t(1, 3, 2), t(1, 3, 2), t(3, 3), is_causal=True), RuntimeError,
     r"explicit attn_mask should not be set when is_causal=True"),
    ("sdpa_head_dim", lambda: F.scaled_dot_product_attention(t(1, 3, 2), t(1, 3, 4), t(1, 3, 4)),
     RuntimeError, r"query \[1, 3, 2\] and key \[1, 3, 4\] need the same last dim"),
    ("sdpa_dtype", lambda: F.scaled_dot_product_attention(t(3, 2), t(3, 2, dtype="float64"),
                                                           t(3, 2)),
     TypeError, r"same dtype, but got query.dtype: minidl.float32, key.dtype: minidl.float64"),
    ("sdpa_mask_shape", lambda: F.scaled_dot_product_attention(t(1, 3, 2), t(1, 4, 2),
                                                               t(1, 4, 2), t(3, 3)),
     RuntimeError, r"attn_mask of shape \[3, 3\] cannot be broadcast to .*\[1, 3, 4\]"),
    ("sdpa_dropout_range", lambda: F.scaled_dot_product_attention(t(3, 2), t(3, 2), t(3, 2),
                                                                  dropout_p=1.0),
     ValueError, r"dropout_p must be in \[0, 1\)"),
    # linear
    ("linear_shape", lambda: F.linear(t(2, 3), t(4, 5)), RuntimeError,
     r"input of shape \[2, 3\] and weight of shape \[4, 5\] cannot be multiplied"),
    ("linear_dtype", lambda: F.linear(t(2, 3), t(4, 3, dtype="float64")), TypeError,
     r"must share one dtype"),
]


@pytest.mark.parametrize("make_error,exc,message", [e[1:] for e in ERRORS],
                         ids=[e[0] for e in ERRORS])
def test_error_message(make_error, exc, message):
    with pytest.raises(exc, match=message):
        make_error()
