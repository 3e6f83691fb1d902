# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Module 06: Spatial layers (convolution and pooling)
#
# A `Dense` layer connects every input number to every output number. For an image that is wasteful
# twice over: a 3 x 32 x 32 image has 3,072 inputs, so a dense layer with an output of the same spatial
# size and 16 channels would need 3,072 x 16,384 = 50 million weights, and it would have to learn
# separately that an edge is an edge in the top-left corner and in the bottom-right one.
#
# A **convolution** fixes both problems with two assumptions about images:
#
# - **locality**: an output pixel depends only on a small window of input pixels (say 3 x 3);
# - **weight sharing**: the same small filter slides over every position.
#
# `Conv2D(3, 16, kernel_size=3)` has 16 x 3 x 3 x 3 + 16 = 448 parameters, whatever the image size.
#
# What you will build, in order:
#
# 1. `conv2d_naive`: the definition of convolution as nested Python loops (the reference, not exported).
# 2. `_im2col` / `_col2im`: rearrange every window of the image into one column of a matrix (with
#    NumPy's stride tricks, no loops), and its exact reverse for the backward pass.
# 3. `conv2d`: convolution as **one big matrix multiplication**, with its backward pass through
#    `record_op`, and the `Conv2D` layer that owns the weights.
# 4. `max_pool2d` / `avg_pool2d` with `MaxPool2D` / `AvgPool2D`: downsampling, with the gradient rules.
# 5. `flatten`: the bridge from (batch, channels, height, width) feature maps to `Dense` layers.
#
# It stands on `Tensor` (module 01), `Variable` and `record_op` (module 02) and `Module` (module 04).
# The **Systems Analysis** then measures why the loops are hopeless, what im2col costs in memory, and how
# many floating-point operations a convolution really is.
#
# Every image tensor here is **NCHW**: (batch, channels, height, width), as in PyTorch.

# %% nbgrader={"grade": false, "grade_id": "spatial-imports", "locked": false, "schema_version": 3, "solution": false}
#| default_exp core.spatial
#| export
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from tinytorch.core.tensor import Tensor, best_time
from tinytorch.core.autograd import Variable, record_op
from tinytorch.core.layers import Module

# %% [markdown]
# ## 1. Convolution, the slow way
#
# A convolution layer holds a weight of shape **(out_channels, in_channels, kh, kw)**: one
# (in_channels, kh, kw) filter per output channel, plus one bias per output channel. Output channel `o`
# at position (y, x) is the dot product of filter `o` with the input window whose top-left corner is
# at (y * stride, x * stride):
#
# ```
# out[n, o, y, x] = bias[o] + sum over c, i, j of  weight[o, c, i, j] * x_padded[n, c, y*s + i, x*s + j]
# ```
#
# (Deep-learning "convolution" does not flip the kernel: strictly speaking it is a cross-correlation.
# PyTorch, TensorFlow and TinyTorch all use this definition.)
#
# **Padding** p adds p rows/columns of zeros on each side, so windows can be centred on border pixels.
# **Stride** s moves the window s pixels at a time. The output size along one axis is
#
# ```
# H_out = (H + 2 * p - kh) // s + 1          e.g. H=32, p=1, kh=3, s=1  ->  32  ("same" padding)
#                                                 H=32, p=0, kh=3, s=2  ->  15
# ```
#
# Written as loops, that is seven nested loops: batch, output channel, output row, output column, input
# channel, kernel row, kernel column. Every single multiply-add costs a trip through the Python
# interpreter. We keep this function as the **reference**: it is the definition, easy to check by eye,
# and the vectorized version must agree with it. It is not exported.

# %% nbgrader={"grade": false, "grade_id": "conv2d-naive", "locked": false, "schema_version": 3, "solution": false}
def conv2d_naive(x, weight, bias=None, stride=1, padding=0):
    """The definition of 2-D convolution, one multiply-add at a time (NumPy arrays in and out).

    Shapes: x (N, C, H, W), weight (O, C, kh, kw), bias (O,) or None -> (N, O, H_out, W_out).
    `stride` and `padding` are ints (the same along height and width).
    """
    N, C, H, W = x.shape
    O, _, kh, kw = weight.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    H_out = (H + 2 * padding - kh) // stride + 1
    W_out = (W + 2 * padding - kw) // stride + 1
    out = np.zeros((N, O, H_out, W_out), dtype=np.result_type(x, weight))
    for n in range(N):
        for o in range(O):
            for y in range(H_out):
                for xx in range(W_out):
                    total = 0.0 if bias is None else bias[o]
                    for c in range(C):
                        for i in range(kh):
                            for j in range(kw):
                                total += weight[o, c, i, j] * xp[n, c, y * stride + i, xx * stride + j]
                    out[n, o, y, xx] = total
    return out

# %% [markdown]
# ## 2. Arguments and errors
#
# `kernel_size`, `stride` and `padding` may each be an int (the same for height and width) or a pair
# `(height, width)`, as in PyTorch. `_pair` normalises them. `_check_nchw` rejects anything that is not a
# 4-D batch of images, and `_output_hw` applies the output-size formula, refusing a kernel that does not
# fit inside the (padded) input: that would give an output of size zero, and a clear error now is much
# kinder than an empty tensor three layers later.

# %% nbgrader={"grade": false, "grade_id": "spatial-args", "locked": false, "schema_version": 3, "solution": false}
#| export
def _pair(value, name):
    """(int, int) from an int or a pair of ints; `name` is the argument's name, for the error message."""
    def is_int(v):
        return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))

    if is_int(value):
        return (int(value), int(value))
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(is_int(v) for v in value):
        return (int(value[0]), int(value[1]))
    raise TypeError(f"{name} must be an int or a pair of ints (height, width), got {value!r}")


def _check_at_least(pair, minimum, name):
    """Raise ValueError unless both entries of `pair` are >= minimum."""
    if min(pair) < minimum:
        raise ValueError(f"{name} must be >= {minimum} along height and width, got {pair}")


def _as_tensor(x):
    """Tensors and Variables pass through unchanged; arrays and numbers become a Tensor."""
    return x if isinstance(x, Tensor) else Tensor(x)


def _check_nchw(x, who):
    """Raise ValueError unless x is a 4-D (batch, channels, height, width) tensor."""
    if x.ndim != 4:
        hint = ""
        if x.ndim == 3:
            hint = f"; for a single image of shape {x.shape} use x.reshape(1, {', '.join(map(str, x.shape))})"
        raise ValueError(f"{who} expects NCHW input with 4 dimensions (batch, channels, height, width), "
                         f"got shape {x.shape}{hint}")


def _output_hw(height, width, kernel, stride, padding, who):
    """(H_out, W_out) of a sliding window; ValueError if the kernel is larger than the padded input."""
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    padded = (height + 2 * ph, width + 2 * pw)
    if kh > padded[0] or kw > padded[1]:
        raise ValueError(f"{who}: kernel {kernel} is larger than the padded input {padded} "
                         f"(input height x width {(height, width)}, padding {padding})")
    return (padded[0] - kh) // sh + 1, (padded[1] - kw) // sw + 1

# %% nbgrader={"grade": false, "grade_id": "test-spatial-args", "locked": true, "schema_version": 3, "solution": false}
def test_unit_spatial_args():
    """_pair accepts ints and pairs; errors name the bad value; output sizes follow the formula."""
    assert _pair(3, "kernel_size") == (3, 3)
    assert _pair((2, 5), "stride") == (2, 5)
    assert _pair(np.int64(4), "padding") == (4, 4)
    for bad in [(1, 2, 3), 2.0, True, "3", (1, 1.5)]:
        try:
            _pair(bad, "kernel_size")
        except TypeError as error:
            assert "kernel_size" in str(error) and repr(bad) in str(error)
        else:
            raise AssertionError(f"_pair accepted {bad!r}")
    assert _output_hw(32, 32, (3, 3), (1, 1), (1, 1), "t") == (32, 32)
    assert _output_hw(32, 32, (3, 3), (2, 2), (0, 0), "t") == (15, 15)
    assert _output_hw(7, 9, (3, 2), (2, 3), (1, 0), "t") == (4, 3)
    try:
        _output_hw(2, 2, (5, 5), (1, 1), (1, 1), "Conv2D")
    except ValueError as error:
        assert "(5, 5)" in str(error) and "(4, 4)" in str(error)
    else:
        raise AssertionError("a kernel larger than the padded input was accepted")
    try:
        _check_nchw(Tensor(np.zeros((3, 8, 8))), "Conv2D")
    except ValueError as error:
        assert "(3, 8, 8)" in str(error) and "reshape(1, 3, 8, 8)" in str(error)
    else:
        raise AssertionError("a 3-D input was accepted")


test_unit_spatial_args()

# %% [markdown]
# ## 3. im2col: every window becomes a column
#
# The loops compute, for every output position, a dot product between a filter and a window of
# `K = C * kh * kw` input numbers. If we lay every window of image n out as one **column** of a matrix
# (P = H_out * W_out output positions per image)
#
# ```
# cols: (N, K, P)          cols[n] has one column per output position of image n
# W2:   (O, K)             one row per filter: weight.reshape(O, -1)
# W2 @ cols: (N, O, P)     -> reshape (N, O, H_out, W_out): already NCHW, no transpose needed
# ```
#
# then the whole convolution is a matrix multiplication, which BLAS runs at close to the CPU's peak
# speed. This trick is called **im2col** ("image to columns"). `np.matmul` broadcasts `W2` over the
# batch axis of `cols`: one NumPy call, which loops over the images in C, not in Python. (Stacking all
# images into a single (K, N * P) matrix would also work, but its (O, N, ...) result would then need
# a transposing copy to become NCHW, and memory traffic is what this layer mostly spends its time on.)
#
# Building `cols` without loops: `np.lib.stride_tricks.sliding_window_view(xp, (kh, kw), axis=(2, 3))`
# returns a **view** of shape (N, C, Hp - kh + 1, Wp - kw + 1, kh, kw): element [n, c, y, x, i, j] is
# `xp[n, c, y + i, x + j]`. No number is copied; NumPy just describes the same memory with extra
# strides (moving one step along `y` or along `i` both move one row in memory). Slicing
# `[:, :, ::sh, ::sw]` keeps every stride-th window, still a view. Only the final `reshape` to (N, K, P)
# copies, because the windows overlap: each input pixel appears in up to `kh * kw` columns. That copy
# is im2col's price in memory, which the Systems Analysis measures.

# %% nbgrader={"grade": false, "grade_id": "im2col", "locked": false, "schema_version": 3, "solution": true}
#| export
def _windows(xp, kernel, stride):
    """Every (kh, kw) window of xp taken with the given stride, as a view (no copy).

    Shapes: xp (N, C, Hp, Wp) -> (N, C, H_out, W_out, kh, kw), where
    [n, c, y, x, i, j] is xp[n, c, y * sh + i, x * sw + j].
    """
    ### BEGIN SOLUTION
    (kh, kw), (sh, sw) = kernel, stride
    return sliding_window_view(xp, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]
    ### END SOLUTION


def _im2col(xp, kernel, stride):
    """The im2col matrices of a padded batch: for each image, one column per output position.

    Shapes: xp (N, C, Hp, Wp) -> cols (N, C * kh * kw, H_out * W_out); rows are ordered (c, i, j),
    like weight.reshape(O, -1), and columns (y, x).
    """
    ### BEGIN SOLUTION
    win = _windows(xp, kernel, stride)  # (N, C, H_out, W_out, kh, kw), a view
    N, C, H_out, W_out, kh, kw = win.shape
    # (c, i, j) next to each other, then (y, x); the reshape makes the one copy.
    return win.transpose(0, 1, 4, 5, 2, 3).reshape(N, C * kh * kw, H_out * W_out)
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "test-im2col", "locked": true, "points": 3, "schema_version": 3, "solution": false}
def test_unit_im2col():
    """Each column of _im2col is the window a loop would have cut out, for a non-square kernel and stride."""
    rng = np.random.default_rng(0)
    xp = rng.standard_normal((2, 3, 7, 6))
    kernel, stride = (3, 2), (2, 1)
    win = _windows(xp, kernel, stride)
    assert win.shape == (2, 3, 3, 5, 3, 2)
    assert np.shares_memory(win, xp), "_windows must be a view, not a copy"
    cols = _im2col(xp, kernel, stride)
    assert cols.shape == (2, 3 * 3 * 2, 3 * 5)
    for n in range(2):
        for y in range(3):
            for x in range(5):
                window = xp[n, :, y * 2:y * 2 + 3, x:x + 2]
                np.testing.assert_array_equal(cols[n, :, y * 5 + x], window.reshape(-1))


test_unit_im2col()

# %% [markdown]
# ## 4. col2im: the backward of im2col
#
# In the backward pass we will get the gradient with respect to every window entry, `dwin[..., i, j, y, x]`,
# and must send it back to the input pixel it was copied from. Because windows overlap, one input pixel
# receives the sum of the gradients of all its copies: **overlapping windows accumulate**.
#
# The loop that does this need not visit pixels. Fix a kernel offset (i, j): the entries
# `dwin[..., i, j, :, :]` of all windows came from input rows i, i + sh, i + 2 sh, ... and columns
# j, j + sw, ...: one strided slice of the input. So col2im is `kh * kw` vectorized additions
#
# ```
# for i in range(kh):
#     for j in range(kw):
#         dx[..., i : i + sh*(H_out-1) + 1 : sh, j : j + sw*(W_out-1) + 1 : sw] += dwin[..., i, j, :, :]
# ```
#
# 9 iterations for a 3 x 3 kernel, whatever the batch and image size. Within one offset the slice hits
# each pixel at most once, so `+=` is safe (no need for `np.add.at`).
#
# We write `_col2im` for any two leading axes (A, B) so that convolution and both pooling layers can
# share it. The test checks the defining property of an adjoint: for any x and any y,
# `sum(windows(x) * y) == sum(x * col2im(y))`.

# %% nbgrader={"grade": false, "grade_id": "col2im", "locked": false, "schema_version": 3, "solution": true}
#| export
def _col2im(dwin, out_hw, stride):
    """Scatter-add window gradients back onto the image they were cut from (the adjoint of _windows).

    Shapes: dwin (A, B, kh, kw, H_out, W_out), out_hw = (H, W) -> (A, B, H, W), where
    result[a, b, y * sh + i, x * sw + j] accumulates dwin[a, b, i, j, y, x].
    Loops over the kh * kw kernel offsets only.
    """
    ### BEGIN SOLUTION
    A, B, kh, kw, H_out, W_out = dwin.shape
    sh, sw = stride
    out = np.zeros((A, B) + tuple(out_hw), dtype=dwin.dtype)
    for i in range(kh):
        for j in range(kw):
            # Offset (i, j) of every window: rows i, i+sh, ..., columns j, j+sw, ...: one strided slice.
            out[:, :, i:i + sh * (H_out - 1) + 1:sh, j:j + sw * (W_out - 1) + 1:sw] += dwin[:, :, i, j]
    return out
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "test-col2im", "locked": true, "points": 3, "schema_version": 3, "solution": false}
def test_unit_col2im():
    """_col2im is the adjoint of _windows (dot-product test), and overlapping windows accumulate."""
    rng = np.random.default_rng(1)
    for shape, kernel, stride in [((2, 3, 6, 7), (3, 3), (1, 1)), ((1, 2, 7, 6), (3, 2), (2, 1)),
                                  ((2, 1, 5, 5), (2, 2), (2, 2)), ((1, 1, 6, 6), (3, 3), (2, 3))]:
        x = rng.standard_normal(shape)
        win = _windows(x, kernel, stride)  # (N, C, Ho, Wo, kh, kw)
        y = rng.standard_normal(win.shape)
        dwin = y.transpose(0, 1, 4, 5, 2, 3)  # _col2im takes (A, B, kh, kw, Ho, Wo)
        back = _col2im(dwin, shape[2:], stride)
        assert back.shape == shape
        np.testing.assert_allclose(np.sum(win * y), np.sum(x * back), rtol=1e-12)
    # How many 3x3 stride-1 windows of a 4x4 image cover each pixel: corners 1, centre 4.
    ones = np.ones((1, 1, 3, 3, 2, 2))
    counts = _col2im(ones, (4, 4), (1, 1))[0, 0]
    np.testing.assert_array_equal(counts, [[1, 2, 2, 1], [2, 4, 4, 2], [2, 4, 4, 2], [1, 2, 2, 1]])


test_unit_col2im()

# %% [markdown]
# ## 5. `conv2d`: forward and backward
#
# **Forward** (shapes for N images, C -> O channels, a kh x kw kernel):
#
# ```
# xp   = pad(x)                                  (N, C, Hp, Wp)
# cols = _im2col(xp)                             (N, K, P)       K = C*kh*kw, P = Ho*Wo
# W2   = weight.reshape(O, K)                    (O, K)
# out  = W2 @ cols + bias                        (N, O, P)  -> reshape (N, O, Ho, Wo)
# ```
#
# **Backward.** Given `g = dL/dout` of shape (N, O, Ho, Wo), view it like the forward's product:
# `G3 = g.reshape(N, O, P)` (free: no data moves). The forward was a matmul `W2 @ cols[n]` per image,
# so its gradients are the two matmul rules from module 02, with the weight's summed over the images
# (the same W2 was used for every image):
#
# ```
# dW2   = sum over n of G3[n] @ cols[n].T          (O, K)     -> reshape to weight's (O, C, kh, kw)
# dcols = W2.T @ G3                                (N, K, P)  -> view as (N, C, kh, kw, Ho, Wo)
# dx    = col2im(dcols), then cut the padding off
# dbias = g.sum over (N, Ho, Wo)
# ```
#
# The backward costs two matmuls of the forward's size, so a training step's convolution work is about
# 3x its forward. We keep `cols` from the forward for `dW2` (speed, at the price of keeping that buffer
# alive until backward); `record_op` drops it at once when no gradient is recorded. When the input is
# plain data (the first layer's images) we skip `dx` entirely: nobody asked for it.
#
# `record_op(out, inputs, backward)` is the door into the autograd graph (docs/framework.md): a `Tensor`
# in gives a plain `Tensor` out, a `Variable` in records the operation so that `.backward()` reaches
# the weights.

# %% nbgrader={"grade": false, "grade_id": "conv2d", "locked": false, "schema_version": 3, "solution": true}
#| export
def _needs_grad(t):
    """True when t is a Variable that wants a gradient (so computing it is not wasted work)."""
    return isinstance(t, Variable) and bool(t.requires_grad)


def conv2d(x, weight, bias=None, stride=1, padding=0):
    """2-D convolution (cross-correlation, as PyTorch) of a batch of images, differentiable.

    Shapes: x (N, C, H, W), weight (O, C, kh, kw), bias (O,) or None -> (N, O, H_out, W_out) with
    H_out = (H + 2 * ph - kh) // sh + 1 (likewise W_out). `stride` and `padding` are ints or pairs.
    A Tensor in gives a Tensor out; Variables keep the graph so gradients reach x, weight and bias.
    """
    x, weight = _as_tensor(x), _as_tensor(weight)
    stride, padding = _pair(stride, "stride"), _pair(padding, "padding")
    _check_at_least(stride, 1, "stride")
    _check_at_least(padding, 0, "padding")
    _check_nchw(x, "conv2d")
    if weight.ndim != 4:
        raise ValueError(f"conv2d expects a weight of shape (out_channels, in_channels, kh, kw), "
                         f"got shape {weight.shape}")
    O, C, kh, kw = weight.shape
    N, C_in, H, W = x.shape
    if C_in != C:
        raise ValueError(f"conv2d: input has {C_in} channels (shape {x.shape}) but the weight expects {C} "
                         f"(weight shape {weight.shape} = (out, in, kh, kw))")
    if bias is not None:
        bias = _as_tensor(bias)
        if bias.shape != (O,):
            raise ValueError(f"conv2d expects a bias of shape ({O},), one per output channel, got {bias.shape}")
    ### BEGIN SOLUTION
    H_out, W_out = _output_hw(H, W, (kh, kw), stride, padding, "conv2d")
    ph, pw = padding
    xp = np.pad(x.data, ((0, 0), (0, 0), (ph, ph), (pw, pw))) if ph or pw else x.data
    cols = _im2col(xp, (kh, kw), stride)  # (N, K, P)
    w2 = weight.data.reshape(O, C * kh * kw)  # (O, K)
    out = w2 @ cols  # (N, O, P): one BLAS matmul per image, looped over in C
    if bias is not None:
        b_col = bias.data.reshape(O, 1)
        if np.result_type(out, b_col) == out.dtype:
            out += b_col  # in place: one fewer output-sized buffer to allocate
        else:
            out = out + b_col  # e.g. float32 data with a float64 bias: promote as NumPy does
    out = out.reshape(N, O, H_out, W_out)
    padded_hw = xp.shape[2:]  # backward needs the padded size, not xp itself: let xp be freed

    def backward(grad):
        g3 = grad.reshape(N, O, H_out * W_out)  # a view of the output gradient
        dx = dweight = dbias = None
        if _needs_grad(weight):
            # (N, O, P) @ (N, P, K) -> (N, O, K), summed over the images.
            dweight = (g3 @ cols.transpose(0, 2, 1)).sum(axis=0).reshape(O, C, kh, kw)
        if _needs_grad(x):
            dcols = (w2.T @ g3).reshape(N, C, kh, kw, H_out, W_out)  # (K, O) @ (N, O, P) -> (N, K, P)
            dxp = _col2im(dcols, padded_hw, stride)  # (N, C, Hp, Wp)
            dx = dxp[:, :, ph:ph + H, pw:pw + W]  # cut the padding off (its gradient is dropped)
        if bias is None:
            return dx, dweight
        if _needs_grad(bias):
            dbias = grad.sum(axis=(0, 2, 3))
        return dx, dweight, dbias

    inputs = (x, weight) if bias is None else (x, weight, bias)
    return record_op(out, inputs, backward, name="conv2d")
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "test-conv2d", "locked": true, "points": 6, "schema_version": 3, "solution": false}
from tinytorch.core.autograd import check_gradients

CONV_CONFIGS = [  # (x shape, weight shape, stride, padding)
    ((2, 1, 5, 5), (2, 1, 3, 3), 1, 0),  # one input channel
    ((2, 3, 6, 5), (4, 3, 3, 3), 1, 1),  # several channels, "same" padding
    ((1, 2, 7, 7), (3, 2, 3, 3), 2, 1),  # stride 2
    ((2, 2, 6, 7), (2, 2, 3, 2), (2, 1), (1, 0)),  # non-square kernel, stride and padding
]


def test_unit_conv2d():
    """conv2d equals the loops; a Tensor in gives a Tensor out; gradients of x, weight, bias match finite differences."""
    rng = np.random.default_rng(2)
    for x_shape, w_shape, stride, padding in CONV_CONFIGS:
        x = rng.standard_normal(x_shape)
        w = rng.standard_normal(w_shape)
        b = rng.standard_normal(w_shape[0])
        out = conv2d(Tensor(x), Tensor(w), Tensor(b), stride=stride, padding=padding)
        assert type(out) is Tensor, f"a Tensor in must give a plain Tensor out, got {type(out).__name__}"
        if isinstance(stride, int):
            np.testing.assert_allclose(out.data, conv2d_naive(x, w, b, stride, padding), rtol=1e-10, atol=1e-12)
        xv, wv, bv = Variable(x), Variable(w), Variable(b)
        check_gradients(lambda a, k, c: conv2d(a, k, c, stride=stride, padding=padding), xv, wv, bv)
        check_gradients(lambda a, k: conv2d(a, k, stride=stride, padding=padding), xv, wv)
    # Non-square stride/padding against the loops: pad by hand, then compare with the int version.
    x = rng.standard_normal((1, 2, 6, 7))
    w = rng.standard_normal((2, 2, 3, 2))
    ours = conv2d(Tensor(x), Tensor(w), stride=(2, 1), padding=(1, 0)).data
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (0, 0)))
    np.testing.assert_allclose(ours, conv2d_naive(xp, w, None, 1, 0)[:, :, ::2, :], rtol=1e-10, atol=1e-12)


def test_unit_conv2d_errors():
    """Bad shapes give ValueErrors that name both shapes."""
    w = Tensor(np.zeros((4, 3, 3, 3)))
    cases = [
        (np.zeros((3, 8, 8)), "(3, 8, 8)"),  # not 4-D
        (np.zeros((2, 1, 8, 8)), "(4, 3, 3, 3)"),  # channel mismatch names the weight's shape
        (np.zeros((1, 3, 2, 2)), "larger than the padded input"),
    ]
    for x, expected in cases:
        try:
            conv2d(Tensor(x), w)
        except ValueError as error:
            assert expected in str(error), f"message {str(error)!r} should mention {expected!r}"
        else:
            raise AssertionError(f"conv2d accepted input of shape {x.shape}")


test_unit_conv2d()
test_unit_conv2d_errors()

# %% [markdown]
# ## 6. The `Conv2D` layer
#
# The layer owns the parameters and remembers the hyper-parameters; `forward` calls `conv2d`.
#
# - `weight`: (out_channels, in_channels, kh, kw), `bias`: (out_channels,), both float32 `Variable`s.
# - **Initialisation, as PyTorch:** uniform in ±1/sqrt(fan_in) with fan_in = in_channels * kh * kw,
#   for weight and bias alike. Dividing by sqrt(fan_in) keeps the output's scale independent of how
#   many inputs each output sums: with fan_in = 27 or 2,700 the activations start at a similar size.
# - `seed` makes the initialisation reproducible (`np.random.default_rng(seed)`).
#
# The layer checks the channel count itself so that its error message speaks of the layer
# (`Conv2D(in_channels=3)`) rather than of weight shapes.
#
# Polymorphism, as `Dense` (module 04): a plain `Tensor` in gives a plain `Tensor` out (inference: no
# graph, nothing kept for backward); a `Variable` in records the operation so gradients reach `weight`
# and `bias`. To train on a batch of images, wrap it: `Variable(images, requires_grad=False)`.

# %% nbgrader={"grade": false, "grade_id": "conv2d-layer", "locked": false, "schema_version": 3, "solution": true}
#| export
class Conv2D(Module):
    """2-D convolution layer over NCHW images.

    Shapes: input (N, in_channels, H, W) -> output (N, out_channels, H_out, W_out),
    H_out = (H + 2 * padding_h - kh) // stride_h + 1 (likewise W_out).
    Parameters: weight (out_channels, in_channels, kh, kw) and bias (out_channels,), float32.
    kernel_size, stride and padding are ints or (height, width) pairs.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True, seed=None):
        super().__init__()
        for name, value in [("in_channels", in_channels), ("out_channels", out_channels)]:
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
                raise TypeError(f"Conv2D {name} must be a positive int, got {value!r} ({type(value).__name__})")
            if value < 1:
                raise ValueError(f"Conv2D {name} must be a positive int, got {value}")
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.stride = _pair(stride, "stride")
        self.padding = _pair(padding, "padding")
        _check_at_least(self.kernel_size, 1, "kernel_size")
        _check_at_least(self.stride, 1, "stride")
        _check_at_least(self.padding, 0, "padding")
        ### BEGIN SOLUTION
        kh, kw = self.kernel_size
        bound = 1.0 / np.sqrt(self.in_channels * kh * kw)  # PyTorch: uniform(-1/sqrt(fan_in), 1/sqrt(fan_in))
        rng = np.random.default_rng(seed)
        shape = (self.out_channels, self.in_channels, kh, kw)
        self.weight = Variable(rng.uniform(-bound, bound, shape).astype(np.float32), requires_grad=True)
        if bias:
            self.bias = Variable(rng.uniform(-bound, bound, self.out_channels).astype(np.float32),
                                 requires_grad=True)
        else:
            self.bias = None
        ### END SOLUTION

    def forward(self, x):
        """(N, in_channels, H, W) -> (N, out_channels, H_out, W_out)."""
        x = _as_tensor(x)
        _check_nchw(x, "Conv2D")
        if x.shape[1] != self.in_channels:
            raise ValueError(f"Conv2D(in_channels={self.in_channels}) got input of shape {x.shape} with "
                             f"{x.shape[1]} channels; expected (batch, {self.in_channels}, height, width)")
        ### BEGIN SOLUTION
        weight, bias = self.weight, self.bias
        if not isinstance(x, Variable):
            # A plain Tensor in: values only, no graph (as Dense). Wrapping the parameters' arrays as
            # constants makes conv2d return a Tensor and keeps no backward state alive.
            weight = Tensor(weight.data)
            bias = None if bias is None else Tensor(bias.data)
        return conv2d(x, weight, bias, stride=self.stride, padding=self.padding)
        ### END SOLUTION

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, bias={self.bias is not None}")

# %% nbgrader={"grade": true, "grade_id": "test-conv2d-layer", "locked": true, "points": 4, "schema_version": 3, "solution": false}
def test_unit_conv2d_layer():
    """Conv2D: shapes, PyTorch's init bounds, parameters, seeds, errors naming both channel counts, gradients."""
    layer = Conv2D(3, 8, kernel_size=3, padding=1, seed=0)
    assert layer.weight.shape == (8, 3, 3, 3) and layer.bias.shape == (8,)
    assert layer.weight.dtype == np.float32 and layer.bias.dtype == np.float32
    bound = 1 / np.sqrt(27)
    assert np.abs(layer.weight.data).max() <= bound and np.abs(layer.bias.data).max() <= bound
    assert np.abs(layer.weight.data).max() > 0.8 * bound, "weights should fill the init range"
    params = layer.parameters()
    assert len(params) == 2 and params[0] is layer.weight and params[1] is layer.bias
    np.testing.assert_array_equal(Conv2D(3, 8, 3, seed=0).weight.data, layer.weight.data)
    assert len(Conv2D(3, 8, 3, bias=False).parameters()) == 1

    x = np.random.default_rng(3).standard_normal((2, 3, 9, 9)).astype(np.float32)
    assert layer(Tensor(x)).shape == (2, 8, 9, 9)
    assert type(layer(Tensor(x))) is Tensor
    assert Conv2D(3, 4, (3, 2), stride=2)(Tensor(x)).shape == (2, 4, 4, 4)
    try:
        layer(Tensor(np.zeros((2, 1, 9, 9), dtype=np.float32)))
    except ValueError as error:
        assert "in_channels=3" in str(error) and "(2, 1, 9, 9)" in str(error)
    else:
        raise AssertionError("Conv2D accepted an input with the wrong number of channels")

    # float64 gradient check through the layer (docs/framework.md: parameters may be cast to float64).
    small = Conv2D(2, 3, (2, 3), stride=(1, 2), padding=1, seed=1)
    for p in small.parameters():
        p.data = p.data.astype(np.float64)
    xv = Variable(np.random.default_rng(4).standard_normal((2, 2, 4, 5)))
    check_gradients(lambda a, w, b: small(a), xv, small.weight, small.bias)


test_unit_conv2d_layer()

# %% [markdown]
# ## 7. Pooling
#
# Pooling shrinks feature maps by summarising each window with one number: no parameters, just a fixed
# rule applied to every channel separately. `MaxPool2D(2)` halves height and width (a quarter of the
# numbers), so the next convolution sees a wider part of the image for the same kernel size.
#
# The stride defaults to the kernel size (as PyTorch): windows tile the image without overlapping.
# With `stride < kernel_size` they overlap, and an input pixel can belong to several windows.
# Windows that would run off the edge are dropped (PyTorch's default `ceil_mode=False`).
#
# **Max pooling**: `out = max over the window`. Its gradient flows only to the position of the maximum:
# the other entries did not influence the output. **Ties**: if several entries share the maximum,
# TinyTorch does what PyTorch's `max_pool2d` does and sends the **whole** gradient to the **first**
# maximum in the window, reading the window row by row. Note this differs from `Tensor.max` (module
# 02), which splits the gradient evenly among ties like PyTorch's `amax`: each follows its PyTorch
# namesake.
#
# Max pooling does almost no arithmetic (kh·kw − 1 comparisons per output), so its cost is memory
# traffic, and the obvious implementation — copy every window out, then `argmax` over it — spends its
# time copying. Instead we visit the window **offsets**: for offset (i, j), the strided view
# `x[:, :, i::sh, j::sw]` (cut to H_out × W_out) holds entry (i, j) of *every* window at once, and a
# running `np.maximum` over the kh·kw views gives the output without copying any window. That is a
# Python loop over kernel offsets (4 iterations for a 2×2 pool), never over pixels or images. The
# backward pass walks the offsets in the same row-major order: the first offset whose value equals the
# maximum claims the window's gradient, which is exactly the first-maximum rule.
#
# **Average pooling**: `out = mean of the window`; every entry receives `grad / (kh * kw)`. Its backward
# builds a window-shaped gradient (A, B, kh, kw, Ho, Wo) — a broadcast view that costs no memory — and
# hands it to `_col2im`, which adds overlapping windows' contributions together.

# %% nbgrader={"grade": false, "grade_id": "pooling", "locked": false, "schema_version": 3, "solution": true}
#| export
def _pool_setup(x, kernel_size, stride, who):
    """Validate a pooling call; returns (x as Tensor, kernel, stride, (H_out, W_out))."""
    x = _as_tensor(x)
    kernel = _pair(kernel_size, "kernel_size")
    stride = kernel if stride is None else _pair(stride, "stride")
    _check_at_least(kernel, 1, "kernel_size")
    _check_at_least(stride, 1, "stride")
    _check_nchw(x, who)
    out_hw = _output_hw(x.shape[2], x.shape[3], kernel, stride, (0, 0), who)
    return x, kernel, stride, out_hw


def max_pool2d(x, kernel_size, stride=None):
    """Max over each (kh, kw) window, per channel; differentiable.

    Shapes: x (N, C, H, W) -> (N, C, H_out, W_out), H_out = (H - kh) // sh + 1. stride defaults to
    kernel_size. Gradient: all of it to the first maximum of each window in row-major order (PyTorch's
    rule for ties); overlapping windows add up.
    """
    x, (kh, kw), stride, (H_out, W_out) = _pool_setup(x, kernel_size, stride, "max_pool2d")
    N, C, H, W = x.shape
    ### BEGIN SOLUTION
    sh, sw = stride

    def at_offset(a, i, j):
        """The (N, C, H_out, W_out) view of `a` holding entry (i, j) of every window (no copy)."""
        return a[:, :, i:i + sh * (H_out - 1) + 1:sh, j:j + sw * (W_out - 1) + 1:sw]

    offsets = [(i, j) for i in range(kh) for j in range(kw)]  # row-major, so ties go to the first
    out = at_offset(x.data, 0, 0).copy()
    for i, j in offsets[1:]:  # a loop over the kh*kw kernel offsets, never over pixels
        np.maximum(out, at_offset(x.data, i, j), out=out)

    def backward(grad):
        dx = np.zeros((N, C, H, W), dtype=grad.dtype)
        unclaimed = np.ones(out.shape, dtype=bool)  # windows whose maximum has not taken the gradient yet
        for i, j in offsets:
            winner = unclaimed & (at_offset(x.data, i, j) == out)
            at_offset(dx, i, j)[...] += np.where(winner, grad, 0)  # one offset: no element twice
            unclaimed &= ~winner
        return (dx,)

    return record_op(out, (x,), backward, name="max_pool2d")
    ### END SOLUTION


def avg_pool2d(x, kernel_size, stride=None):
    """Mean over each (kh, kw) window, per channel; differentiable.

    Shapes: x (N, C, H, W) -> (N, C, H_out, W_out), H_out = (H - kh) // sh + 1. stride defaults to
    kernel_size. Gradient: grad / (kh * kw) to every entry of each window; overlapping windows add up.
    """
    x, (kh, kw), stride, (H_out, W_out) = _pool_setup(x, kernel_size, stride, "avg_pool2d")
    N, C, H, W = x.shape
    ### BEGIN SOLUTION
    out = _windows(x.data, (kh, kw), stride).mean(axis=(-2, -1))

    def backward(grad):
        share = grad / (kh * kw)  # (N, C, Ho, Wo)
        dwin = np.broadcast_to(share[:, :, None, None], (N, C, kh, kw, H_out, W_out))  # a view, no copy
        return (_col2im(dwin, (H, W), stride),)

    return record_op(out, (x,), backward, name="avg_pool2d")
    ### END SOLUTION


class MaxPool2D(Module):
    """Max pooling layer: (N, C, H, W) -> (N, C, H_out, W_out); stride defaults to kernel_size."""

    def __init__(self, kernel_size, stride=None):
        super().__init__()
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.stride = self.kernel_size if stride is None else _pair(stride, "stride")
        _check_at_least(self.kernel_size, 1, "kernel_size")
        _check_at_least(self.stride, 1, "stride")

    def forward(self, x):
        return max_pool2d(x, self.kernel_size, self.stride)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}"


class AvgPool2D(Module):
    """Average pooling layer: (N, C, H, W) -> (N, C, H_out, W_out); stride defaults to kernel_size."""

    def __init__(self, kernel_size, stride=None):
        super().__init__()
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.stride = self.kernel_size if stride is None else _pair(stride, "stride")
        _check_at_least(self.kernel_size, 1, "kernel_size")
        _check_at_least(self.stride, 1, "stride")

    def forward(self, x):
        return avg_pool2d(x, self.kernel_size, self.stride)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}"

# %% nbgrader={"grade": true, "grade_id": "test-pooling", "locked": true, "points": 6, "schema_version": 3, "solution": false}
def _pool_naive(x, kernel, stride, reduce):
    """Pooling by loops over output positions (reference for the tests)."""
    N, C, H, W = x.shape
    (kh, kw), (sh, sw) = kernel, stride
    out = np.zeros((N, C, (H - kh) // sh + 1, (W - kw) // sw + 1))
    for y in range(out.shape[2]):
        for xx in range(out.shape[3]):
            out[:, :, y, xx] = reduce(x[:, :, y * sh:y * sh + kh, xx * sw:xx * sw + kw], axis=(2, 3))
    return out


def test_unit_pooling():
    """Pooling values equal the loops; gradients match finite differences (also overlapping); ties go to the first max."""
    rng = np.random.default_rng(5)
    for shape, kernel, stride in [((2, 3, 6, 6), (2, 2), None), ((1, 2, 7, 6), (3, 3), (1, 1)),
                                  ((2, 1, 7, 8), (3, 2), (2, 1)), ((1, 1, 5, 5), (2, 2), (3, 3))]:
        x = rng.standard_normal(shape)
        s = kernel if stride is None else stride
        np.testing.assert_allclose(max_pool2d(Tensor(x), kernel, stride).data, _pool_naive(x, kernel, s, np.max))
        np.testing.assert_allclose(avg_pool2d(Tensor(x), kernel, stride).data, _pool_naive(x, kernel, s, np.mean))
        check_gradients(lambda a: max_pool2d(a, kernel, stride), Variable(x))
        check_gradients(lambda a: avg_pool2d(a, kernel, stride), Variable(x))

    # Ties: a window of equal values sends its whole gradient to its first (top-left) entry.
    x = Variable(np.ones((1, 1, 4, 4)))
    max_pool2d(x, 2).sum().backward()
    expected = np.zeros((4, 4))
    expected[::2, ::2] = 1.0
    np.testing.assert_array_equal(x.grad.data[0, 0], expected)

    # Overlap: one large value in the middle of a 4x4 image is the max of all four 3x3 stride-1 windows.
    x = Variable(np.zeros((1, 1, 4, 4)))
    x.data[0, 0, 1, 2] = 5.0
    max_pool2d(x, 3, stride=1).sum().backward()
    assert x.grad.data[0, 0, 1, 2] == 4.0 and x.grad.data.sum() == 4.0

    layer = MaxPool2D(2)
    assert layer.stride == (2, 2) and layer.parameters() == []
    assert layer(Tensor(np.zeros((2, 3, 9, 8)))).shape == (2, 3, 4, 4)
    assert AvgPool2D(3, stride=1)(Tensor(np.zeros((2, 3, 9, 8)))).shape == (2, 3, 7, 6)
    try:
        MaxPool2D(5)(Tensor(np.zeros((1, 1, 4, 4))))
    except ValueError as error:
        assert "(5, 5)" in str(error) and "(4, 4)" in str(error)
    else:
        raise AssertionError("a pooling window larger than the input was accepted")


test_unit_pooling()

# %% [markdown]
# ## 8. `flatten`: from feature maps to a classifier
#
# After the convolutions, a classifier (`Dense`) wants one vector per example. `flatten(x)` keeps the
# batch axis and joins all others: (N, C, H, W) -> (N, C * H * W), in C order, exactly like PyTorch's
# `torch.flatten(x, 1)`. It is a reshape, so it moves no data; its backward reshapes the gradient back.
# `Flatten()` is the same as a layer, for use inside `Sequential`.

# %% nbgrader={"grade": false, "grade_id": "flatten", "locked": false, "schema_version": 3, "solution": true}
#| export
def flatten(x):
    """Join every axis after the first: (N, d1, d2, ...) -> (N, d1 * d2 * ...); differentiable."""
    x = _as_tensor(x)
    if x.ndim < 2:
        raise ValueError(f"flatten keeps the batch axis and joins the others, so it needs at least 2 dimensions, "
                         f"got shape {x.shape}")
    ### BEGIN SOLUTION
    shape = x.shape
    out = x.data.reshape(shape[0], -1)

    def backward(grad):
        return (grad.reshape(shape),)

    return record_op(out, (x,), backward, name="flatten")
    ### END SOLUTION


class Flatten(Module):
    """Layer form of `flatten`: (N, d1, d2, ...) -> (N, d1 * d2 * ...)."""

    def forward(self, x):
        return flatten(x)

# %% nbgrader={"grade": true, "grade_id": "test-flatten", "locked": true, "points": 2, "schema_version": 3, "solution": false}
def test_unit_flatten():
    """flatten keeps the batch axis, matches NumPy's C order, and passes gradients back in the input's shape."""
    x = np.arange(2 * 3 * 4 * 5, dtype=np.float64).reshape(2, 3, 4, 5)
    out = flatten(Tensor(x))
    assert type(out) is Tensor and out.shape == (2, 60)
    np.testing.assert_array_equal(out.data, x.reshape(2, -1))
    assert Flatten()(Tensor(x)).shape == (2, 60)
    check_gradients(lambda a: flatten(a) * flatten(a), Variable(np.random.default_rng(6).standard_normal((2, 3, 2))))
    try:
        flatten(Tensor(np.zeros(5)))
    except ValueError as error:
        assert "(5,)" in str(error)
    else:
        raise AssertionError("flatten accepted a 1-D input")


test_unit_flatten()

# %% [markdown]
# ## Systems Analysis
#
# Three questions, answered with measurements:
#
# 1. **Loops versus im2col.** How much faster is im2col plus one (batched) matmul than the seven nested
#    loops that define convolution, on the same numbers?
# 2. **im2col's memory.** The `cols` matrix holds every window separately. With stride 1 and "same"
#    padding, each input pixel is copied into `kh * kw` columns: the buffer is `kh * kw` times the
#    input. How does that grow with the kernel, and what does a stride of 2 change?
# 3. **FLOPs.** A convolution does `2 * N * O * Ho * Wo * C * kh * kw` floating-point operations
#    (a multiply and an add per weight per output position). How many is that, how fast do we run them,
#    and how does it compare with the parameter count, which weight sharing keeps tiny?
# 4. **What training keeps alive.** With a `Variable` input, `conv2d` keeps `cols` for the backward
#    pass; with a plain `Tensor` (inference) nothing is kept. How much memory is that per layer?

# %% nbgrader={"grade": false, "grade_id": "spatial-analysis", "locked": false, "schema_version": 3, "solution": false}
def conv_flops(x_shape, w_shape, stride=1, padding=0):
    """Floating-point operations of one conv2d forward: 2 per multiply-add."""
    N, C, H, W = x_shape
    O, _, kh, kw = w_shape
    H_out = (H + 2 * padding - kh) // stride + 1
    W_out = (W + 2 * padding - kw) // stride + 1
    return 2 * N * O * H_out * W_out * C * kh * kw


def analyze_loops_vs_im2col():
    """Time the naive loops and the im2col version on the same small problem; print the speedup."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 16, 16)).astype(np.float32)
    w = rng.standard_normal((8, 3, 3, 3)).astype(np.float32)
    b = rng.standard_normal(8).astype(np.float32)
    naive = best_time(lambda: conv2d_naive(x, w, b, 1, 1), repeats=1)
    fast = best_time(lambda: conv2d(Tensor(x), Tensor(w), Tensor(b), padding=1), repeats=20)
    same = np.allclose(conv2d_naive(x, w, b, 1, 1), conv2d(Tensor(x), Tensor(w), Tensor(b), padding=1).data,
                       rtol=1e-4, atol=1e-5)
    flops = conv_flops(x.shape, w.shape, 1, 1)
    print(f"conv2d forward, x {x.shape}, weight {w.shape}, padding 1: {flops / 1e6:.2f} MFLOP")
    print(f"  naive 7 nested loops : {naive * 1e3:9.2f} ms  ({flops / naive / 1e6:8.2f} MFLOP/s)")
    print(f"  im2col + matmul      : {fast * 1e3:9.3f} ms  ({flops / fast / 1e6:8.1f} MFLOP/s)")
    print(f"  speedup              : {naive / fast:9.0f}x   (same result: {same})")


def analyze_im2col_memory():
    """Bytes of the im2col matrix versus the input it was built from, for several kernels and strides."""
    x = np.zeros((32, 3, 32, 32), dtype=np.float32)
    print(f"input {x.shape} float32: {x.nbytes / 1e6:.2f} MB")
    print("kernel  stride  padding   cols shape            cols MB   cols / input")
    for k, s in [(1, 1), (3, 1), (5, 1), (7, 1), (3, 2)]:
        p = k // 2
        xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
        cols = _im2col(xp, (k, k), (s, s))
        print(f"{k}x{k}     {s}       {p}         {str(cols.shape):20s} {cols.nbytes / 1e6:8.2f}   "
              f"{cols.nbytes / x.nbytes:6.2f}x")
    print("stride 1 with 'same' padding: the buffer is kh*kw times the input; stride 2 divides it by 4.")


def analyze_conv_flops():
    """FLOPs, measured forward and forward+backward time, and parameters of one Conv2D layer as the batch grows."""
    layer = Conv2D(3, 16, 3, padding=1, seed=0)
    n_params = sum(p.size for p in layer.parameters())
    dense_equivalent = (3 * 32 * 32) * (16 * 32 * 32)
    print(f"Conv2D(3, 16, 3, padding=1): {n_params} parameters; a Dense layer with the same input and output "
          f"sizes would need {dense_equivalent / 1e6:.0f} million")
    print("batch   forward MFLOP   forward ms   GFLOP/s   fwd+bwd ms   fwd+bwd / fwd")
    rng = np.random.default_rng(1)
    for batch in [4, 16, 32]:
        x = rng.standard_normal((batch, 3, 32, 32)).astype(np.float32)
        flops = conv_flops(x.shape, layer.weight.shape, 1, 1)
        fwd = best_time(lambda: layer(Tensor(x)), repeats=5)

        def train_step():
            xv = Variable(x)
            layer(xv).sum().backward()
            for p in layer.parameters():
                p.zero_grad()

        both = best_time(train_step, repeats=5)
        print(f"{batch:5d}   {flops / 1e6:13.1f}   {fwd * 1e3:10.2f}   {flops / fwd / 1e9:7.2f}   "
              f"{both * 1e3:10.2f}   {both / fwd:13.1f}")
    print("time grows about linearly with the batch; backward adds two matmuls of the forward's size.")


def analyze_training_memory():
    """Bytes held after a forward pass: inference (Tensor in) versus training (Variable in, graph kept)."""
    import tracemalloc  # NumPy reports its array buffers to tracemalloc

    layer = Conv2D(16, 32, 3, padding=1, seed=0)
    x = np.random.default_rng(2).standard_normal((32, 16, 16, 16)).astype(np.float32)
    print(f"Conv2D(16, 32, 3, padding=1) on x {x.shape} float32 ({x.nbytes / 1e6:.1f} MB)")
    for label, make in [("Tensor in (inference)", lambda: Tensor(x)),
                        ("Variable in (training)", lambda: Variable(x, requires_grad=False))]:
        tracemalloc.start()
        out = layer(make())
        held, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(f"  {label:24s} held after forward {held / 1e6:6.2f} MB (output {out.data.nbytes / 1e6:.2f} MB), "
              f"peak during forward {peak / 1e6:6.2f} MB")
        del out
    print("  training keeps the im2col buffer (kh*kw = 9 times the input) alive until backward.")


analyze_loops_vs_im2col()
analyze_im2col_memory()
analyze_conv_flops()
analyze_training_memory()
