"""Unit tests of module 06_spatial against the exported package (tinytorch.core.spatial).

Every gradient is compared with central finite differences in float64 (check_gradients). Values are
compared with loop references written here from the definitions, not with numbers copied from a run.
"""

import numpy as np
import pytest

from tinytorch.core.autograd import Variable, check_gradients, no_grad
from tinytorch.core.layers import Module
from tinytorch.core.spatial import AvgPool2D, Conv2D, Flatten, MaxPool2D, avg_pool2d, conv2d, flatten, max_pool2d
from tinytorch.core.tensor import Tensor

# --- loop references, straight from the definitions --------------------------------------------------

def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def conv2d_loops(x, w, b=None, stride=1, padding=0):
    """out[n, o, y, x] = b[o] + sum_{c,i,j} w[o, c, i, j] * xpad[n, c, y*sh + i, x*sw + j]."""
    (sh, sw), (ph, pw) = _pair(stride), _pair(padding)
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    N, C, Hp, Wp = xp.shape
    O, _, kh, kw = w.shape
    Ho, Wo = (Hp - kh) // sh + 1, (Wp - kw) // sw + 1
    out = np.zeros((N, O, Ho, Wo))
    for y in range(Ho):
        for xx in range(Wo):
            window = xp[:, :, y * sh:y * sh + kh, xx * sw:xx * sw + kw]  # (N, C, kh, kw)
            out[:, :, y, xx] = np.einsum("ncij,ocij->no", window, w)
    if b is not None:
        out += b.reshape(1, -1, 1, 1)
    return out


def pool_loops(x, kernel, stride, reduce):
    (kh, kw), (sh, sw) = _pair(kernel), _pair(stride)
    N, C, H, W = x.shape
    Ho, Wo = (H - kh) // sh + 1, (W - kw) // sw + 1
    out = np.zeros((N, C, Ho, Wo))
    for y in range(Ho):
        for xx in range(Wo):
            out[:, :, y, xx] = reduce(x[:, :, y * sh:y * sh + kh, xx * sw:xx * sw + kw], axis=(2, 3))
    return out


def max_pool_grad_loops(x, kernel, stride, grad_out):
    """PyTorch's rule: each window sends its whole gradient to its first maximum (row-major)."""
    (kh, kw), (sh, sw) = _pair(kernel), _pair(stride)
    dx = np.zeros_like(x)
    N, C, Ho, Wo = grad_out.shape
    for n in range(N):
        for c in range(C):
            for y in range(Ho):
                for xx in range(Wo):
                    window = x[n, c, y * sh:y * sh + kh, xx * sw:xx * sw + kw]
                    i, j = np.unravel_index(np.argmax(window), window.shape)
                    dx[n, c, y * sh + i, xx * sw + j] += grad_out[n, c, y, xx]
    return dx


CONV_CONFIGS = [  # (x shape, weight shape, stride, padding)
    ((2, 1, 5, 5), (2, 1, 3, 3), 1, 0),             # one input channel, one... two filters
    ((1, 1, 6, 6), (1, 1, 3, 3), 1, 1),             # one channel in, one out, "same" padding
    ((2, 3, 6, 5), (4, 3, 3, 3), 1, 1),             # several channels
    ((2, 2, 7, 7), (3, 2, 3, 3), 2, 1),             # stride 2 with padding 1
    ((1, 2, 8, 8), (2, 2, 3, 3), 2, 0),             # stride 2, last column unused
    ((2, 2, 6, 7), (2, 2, 3, 2), (2, 1), (1, 0)),   # non-square kernel, stride, padding
    ((1, 3, 5, 6), (2, 3, 1, 4), 1, (0, 2)),        # 1 x 4 kernel
    ((2, 2, 4, 4), (3, 2, 4, 4), 1, 0),             # kernel as large as the input: 1 x 1 output
    ((1, 1, 3, 3), (1, 1, 5, 5), 1, 1),             # kernel as large as the padded input
]


def _rng(seed=0):
    return np.random.default_rng(seed)


# --- conv2d --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("x_shape, w_shape, stride, padding", CONV_CONFIGS)
def test_conv2d_matches_loops(x_shape, w_shape, stride, padding):
    rng = _rng(1)
    x, w, b = rng.standard_normal(x_shape), rng.standard_normal(w_shape), rng.standard_normal(w_shape[0])
    out = conv2d(Tensor(x), Tensor(w), Tensor(b), stride=stride, padding=padding)
    expected = conv2d_loops(x, w, b, stride, padding)
    assert out.shape == expected.shape
    np.testing.assert_allclose(out.data, expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(conv2d(Tensor(x), Tensor(w), stride=stride, padding=padding).data,
                               conv2d_loops(x, w, None, stride, padding), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("x_shape, w_shape, stride, padding", CONV_CONFIGS)
def test_conv2d_gradients(x_shape, w_shape, stride, padding):
    rng = _rng(2)
    x, w, b = (Variable(rng.standard_normal(s)) for s in (x_shape, w_shape, (w_shape[0],)))
    check_gradients(lambda a, k, c: conv2d(a, k, c, stride=stride, padding=padding), x, w, b)
    check_gradients(lambda a, k: conv2d(a, k, None, stride=stride, padding=padding), x, w)


def test_conv2d_polymorphism():
    rng = _rng(3)
    x, w = rng.standard_normal((1, 2, 5, 5)), rng.standard_normal((3, 2, 3, 3))
    plain = conv2d(Tensor(x), Tensor(w))
    assert type(plain) is Tensor
    out = conv2d(Variable(x), Tensor(w))
    assert isinstance(out, Variable) and out.requires_grad
    # Only what requires a gradient receives one: a constant weight gets none.
    xv = Variable(x)
    wv = Variable(w, requires_grad=False)
    conv2d(xv, wv).sum().backward()
    assert xv.grad is not None and xv.grad.shape == x.shape and wv.grad is None
    # A data input (requires_grad=False) still lets the gradient reach the weight.
    xd, wg = Variable(x, requires_grad=False), Variable(w)
    conv2d(xd, wg).sum().backward()
    assert xd.grad is None and wg.grad.shape == w.shape
    # Nothing is recorded under no_grad.
    with no_grad():
        quiet = conv2d(Variable(x), Variable(w))
    assert not quiet.requires_grad


def test_conv2d_gradients_accumulate():
    rng = _rng(4)
    x, w = Variable(rng.standard_normal((1, 1, 4, 4))), Variable(rng.standard_normal((2, 1, 2, 2)))
    conv2d(x, w).sum().backward()
    once = w.grad.data.copy()
    conv2d(x, w).sum().backward()
    np.testing.assert_allclose(w.grad.data, 2 * once)
    # The weight gradient of sum(conv(x)) is, for each kernel entry, the sum of the inputs it touched.
    expected = np.stack([x.data[0, 0, i:i + 3, j:j + 3].sum() for i in range(2) for j in range(2)]).reshape(2, 2)
    np.testing.assert_allclose(once[0, 0], expected)


def test_conv2d_keeps_float32():
    rng = _rng(5)
    x = Tensor(rng.standard_normal((2, 3, 8, 8)).astype(np.float32))
    w = Tensor(rng.standard_normal((4, 3, 3, 3)).astype(np.float32))
    assert conv2d(x, w, padding=1).dtype == np.float32


@pytest.mark.parametrize("x_shape, w_shape, kwargs, words", [
    ((3, 8, 8), (4, 3, 3, 3), {}, ["4 dimensions", "(3, 8, 8)"]),
    ((2, 3, 1, 8, 8), (4, 3, 3, 3), {}, ["4 dimensions", "(2, 3, 1, 8, 8)"]),
    ((2, 1, 8, 8), (4, 3, 3, 3), {}, ["1 channels", "(2, 1, 8, 8)", "(4, 3, 3, 3)"]),
    ((1, 3, 2, 2), (4, 3, 3, 3), {}, ["(3, 3)", "larger than the padded input", "(2, 2)"]),
    ((1, 3, 2, 2), (4, 3, 5, 5), {"padding": 1}, ["(5, 5)", "(4, 4)"]),
    ((1, 3, 8, 8), (4, 3, 3), {}, ["(4, 3, 3)"]),
    ((1, 3, 8, 8), (4, 3, 3, 3), {"stride": 0}, ["stride", "(0, 0)"]),
    ((1, 3, 8, 8), (4, 3, 3, 3), {"padding": -1}, ["padding", "(-1, -1)"]),
])
def test_conv2d_errors(x_shape, w_shape, kwargs, words):
    with pytest.raises(ValueError) as info:
        conv2d(Tensor(np.zeros(x_shape)), Tensor(np.zeros(w_shape)), **kwargs)
    for word in words:
        assert word in str(info.value), f"{str(info.value)!r} should mention {word!r}"


def test_conv2d_bias_and_argument_errors():
    x, w = Tensor(np.zeros((1, 3, 8, 8))), Tensor(np.zeros((4, 3, 3, 3)))
    with pytest.raises(ValueError, match=r"\(4,\).*\(3,\)"):
        conv2d(x, w, Tensor(np.zeros(3)))
    with pytest.raises(TypeError, match="stride"):
        conv2d(x, w, stride=1.5)
    with pytest.raises(TypeError, match="padding"):
        conv2d(x, w, padding=(1, 1, 1))


# --- Conv2D --------------------------------------------------------------------------------------------

def test_conv2d_layer_parameters_and_init():
    layer = Conv2D(3, 16, kernel_size=(3, 5), seed=0)
    assert isinstance(layer, Module)
    assert layer.weight.shape == (16, 3, 3, 5) and layer.bias.shape == (16,)
    assert layer.weight.dtype == np.float32 and layer.bias.dtype == np.float32
    assert layer.weight.requires_grad and layer.bias.requires_grad
    assert layer.parameters() == [layer.weight, layer.bias]
    bound = 1 / np.sqrt(3 * 3 * 5)
    for p in layer.parameters():
        assert np.abs(p.data).max() <= bound
    # uniform(-b, b) has mean 0 and standard deviation b / sqrt(3). Over 720 weights the mean has sd
    # b / sqrt(3 * 720) = 0.0215 b (0.15 b is 7 sd: normal tail 3e-12; the former 0.1 b was 4.6 sd, 3e-6) and the
    # standard deviation sd 0.0096 b (0.1 b: 10 sd).
    assert abs(layer.weight.data.mean()) < 0.15 * bound
    assert abs(layer.weight.data.std() - bound / np.sqrt(3)) < 0.1 * bound
    np.testing.assert_array_equal(Conv2D(3, 16, (3, 5), seed=0).weight.data, layer.weight.data)
    assert not np.array_equal(Conv2D(3, 16, (3, 5), seed=1).weight.data, layer.weight.data)
    no_bias = Conv2D(3, 16, 3, bias=False)
    assert no_bias.bias is None and no_bias.parameters() == [no_bias.weight]
    assert layer.kernel_size == (3, 5) and layer.stride == (1, 1) and layer.padding == (0, 0)
    assert "Conv2D" in repr(layer) and "(3, 5)" in repr(layer)


@pytest.mark.parametrize("kwargs, in_hw, out_hw", [
    ({"kernel_size": 3}, (8, 8), (6, 6)),
    ({"kernel_size": 3, "padding": 1}, (8, 8), (8, 8)),
    ({"kernel_size": 3, "stride": 2, "padding": 1}, (8, 8), (4, 4)),
    ({"kernel_size": (3, 1), "stride": (1, 2), "padding": (1, 0)}, (7, 9), (7, 5)),
    ({"kernel_size": 5, "stride": 3}, (11, 12), (3, 3)),
])
def test_conv2d_layer_output_shapes(kwargs, in_hw, out_hw):
    layer = Conv2D(2, 5, **kwargs)
    out = layer(Tensor(np.zeros((3, 2) + in_hw, dtype=np.float32)))
    assert type(out) is Tensor
    assert out.shape == (3, 5) + out_hw


def test_conv2d_layer_gradients_float64():
    layer = Conv2D(2, 3, (3, 2), stride=(2, 1), padding=(1, 1), seed=7)
    for p in layer.parameters():
        p.data = p.data.astype(np.float64)
    x = Variable(_rng(8).standard_normal((2, 2, 5, 4)))
    check_gradients(lambda a, w, b: layer(a), x, layer.weight, layer.bias)


def test_conv2d_layer_variable_in_reaches_parameters():
    layer = Conv2D(1, 2, 3, padding=1, seed=0)
    x = Variable(_rng(9).standard_normal((4, 1, 6, 6)).astype(np.float32), requires_grad=False)
    out = layer(x)
    assert isinstance(out, Variable) and out.requires_grad
    out.sum().backward()
    assert layer.weight.grad.shape == (2, 1, 3, 3) and layer.bias.grad.shape == (2,)
    assert layer.weight.grad.dtype == np.float32
    # d sum(out) / d bias[o] counts the output positions: batch * height * width.
    np.testing.assert_allclose(layer.bias.grad.data, np.full(2, 4 * 6 * 6))


def test_conv2d_layer_errors():
    layer = Conv2D(3, 4, 3)
    with pytest.raises(ValueError) as info:
        layer(Tensor(np.zeros((2, 1, 8, 8), dtype=np.float32)))
    assert "in_channels=3" in str(info.value) and "(2, 1, 8, 8)" in str(info.value)
    with pytest.raises(ValueError, match=r"\(3, 8, 8\)"):
        layer(Tensor(np.zeros((3, 8, 8), dtype=np.float32)))
    with pytest.raises(ValueError, match="larger than the padded input"):
        layer(Tensor(np.zeros((1, 3, 2, 8), dtype=np.float32)))
    for bad in [dict(in_channels=0, out_channels=4, kernel_size=3), dict(in_channels=3, out_channels=4, kernel_size=0),
                dict(in_channels=3, out_channels=4, kernel_size=3, stride=0),
                dict(in_channels=3, out_channels=4, kernel_size=3, padding=-2)]:
        with pytest.raises(ValueError):
            Conv2D(**bad)
    with pytest.raises(TypeError, match="kernel_size"):
        Conv2D(3, 4, kernel_size=2.5)
    with pytest.raises(TypeError, match="in_channels"):
        Conv2D(3.0, 4, 3)


# --- pooling -------------------------------------------------------------------------------------------

POOL_CONFIGS = [  # (x shape, kernel, stride); stride None = kernel
    ((2, 3, 6, 6), 2, None),
    ((1, 2, 7, 7), 2, None),          # odd size: the last row and column are dropped
    ((2, 1, 7, 6), 3, 1),             # overlapping windows
    ((1, 2, 8, 7), (3, 2), (2, 1)),   # non-square, overlapping along height
    ((1, 1, 6, 6), 2, 3),             # stride > kernel: gaps
    ((2, 2, 4, 5), (4, 5), None),     # one window covering everything
]


@pytest.mark.parametrize("shape, kernel, stride", POOL_CONFIGS)
def test_pooling_matches_loops(shape, kernel, stride):
    x = _rng(10).standard_normal(shape)
    s = kernel if stride is None else stride
    np.testing.assert_allclose(max_pool2d(Tensor(x), kernel, stride).data, pool_loops(x, kernel, s, np.max))
    np.testing.assert_allclose(avg_pool2d(Tensor(x), kernel, stride).data, pool_loops(x, kernel, s, np.mean))
    assert type(max_pool2d(Tensor(x), kernel, stride)) is Tensor
    assert type(avg_pool2d(Tensor(x), kernel, stride)) is Tensor


@pytest.mark.parametrize("shape, kernel, stride", POOL_CONFIGS)
def test_pooling_gradients(shape, kernel, stride, away_from_kinks):
    x = Variable(_rng(11).standard_normal(shape))
    away_from_kinks(lambda a: max_pool2d(a, kernel, stride), x)   # no near-ties in a window (conftest)
    check_gradients(lambda a: max_pool2d(a, kernel, stride), x)
    check_gradients(lambda a: avg_pool2d(a, kernel, stride), x)


@pytest.mark.parametrize("kernel, stride", [(2, None), (3, 1), ((2, 3), (1, 2)), (3, 2)])
def test_max_pool_ties_go_to_first_max(kernel, stride):
    """Inputs with many ties (small integers): the whole gradient goes to the first max of each window."""
    x = _rng(12).integers(0, 3, size=(2, 2, 7, 7)).astype(np.float64)
    xv = Variable(x)
    out = max_pool2d(xv, kernel, stride)
    grad_out = _rng(13).standard_normal(out.shape)
    out.backward(grad_out)
    s = kernel if stride is None else stride
    np.testing.assert_allclose(xv.grad.data, max_pool_grad_loops(x, kernel, s, grad_out))


def test_max_pool_tie_examples():
    x = Variable(np.array([[[[1.0, 3.0], [3.0, 0.0]]]]))
    max_pool2d(x, 2).backward(np.array([[[[5.0]]]]))
    np.testing.assert_array_equal(x.grad.data, [[[[0.0, 5.0], [0.0, 0.0]]]])  # (0, 1) comes before (1, 0)
    flat = Variable(np.full((1, 1, 4, 4), 2.0))
    max_pool2d(flat, 2).sum().backward()
    expected = np.zeros((4, 4))
    expected[::2, ::2] = 1.0
    np.testing.assert_array_equal(flat.grad.data[0, 0], expected)


def test_pooling_overlap_accumulates():
    x = Variable(np.zeros((1, 1, 5, 5)))
    x.data[0, 0, 2, 2] = 1.0  # the max of all nine 3x3 stride-1 windows
    max_pool2d(x, 3, stride=1).sum().backward()
    assert x.grad.data[0, 0, 2, 2] == 9.0 and x.grad.data.sum() == 9.0
    y = Variable(np.zeros((1, 1, 4, 4)))
    avg_pool2d(y, 3, stride=1).sum().backward()  # four windows; each entry gets 1/9 per window covering it
    counts = np.array([[1, 2, 2, 1], [2, 4, 4, 2], [2, 4, 4, 2], [1, 2, 2, 1]])
    np.testing.assert_allclose(y.grad.data[0, 0], counts / 9)


def test_pool_layers():
    x = Tensor(_rng(14).standard_normal((2, 3, 9, 8)).astype(np.float32))
    pool = MaxPool2D(2)
    assert pool.kernel_size == (2, 2) and pool.stride == (2, 2) and pool.parameters() == []
    out = pool(x)
    assert out.shape == (2, 3, 4, 4) and out.dtype == np.float32
    np.testing.assert_array_equal(out.data, max_pool2d(x, 2).data)
    avg = AvgPool2D((3, 2), stride=1)
    assert avg(x).shape == (2, 3, 7, 7) and avg.stride == (1, 1)
    assert "MaxPool2D" in repr(pool) and "AvgPool2D" in repr(avg)
    assert isinstance(pool(Variable(x.data)), Variable)


@pytest.mark.parametrize("fn", [max_pool2d, avg_pool2d])
def test_pooling_errors(fn):
    with pytest.raises(ValueError, match=r"\(4, 4\)"):
        fn(Tensor(np.zeros((4, 4))), 2)
    with pytest.raises(ValueError) as info:
        fn(Tensor(np.zeros((1, 1, 4, 4))), 5)
    assert "(5, 5)" in str(info.value) and "(4, 4)" in str(info.value)
    with pytest.raises(ValueError, match="stride"):
        fn(Tensor(np.zeros((1, 1, 4, 4))), 2, 0)
    with pytest.raises(TypeError, match="kernel_size"):
        fn(Tensor(np.zeros((1, 1, 4, 4))), "2")


# --- flatten -------------------------------------------------------------------------------------------

def test_flatten():
    x = np.arange(2 * 3 * 4 * 5, dtype=np.float64).reshape(2, 3, 4, 5)
    out = flatten(Tensor(x))
    assert type(out) is Tensor and out.shape == (2, 60)
    np.testing.assert_array_equal(out.data, x.reshape(2, 60))
    assert flatten(Tensor(np.zeros((7, 3)))).shape == (7, 3)
    assert Flatten()(Tensor(x)).shape == (2, 60) and Flatten().parameters() == []
    v = Variable(_rng(15).standard_normal((2, 2, 3, 2)))
    check_gradients(lambda a: flatten(a) * np.arange(12.0), v)
    with pytest.raises(ValueError, match=r"\(5,\)"):
        flatten(Tensor(np.zeros(5)))


def test_small_cnn_gradients_end_to_end(away_from_kinks):
    """conv -> max pool -> flatten -> avg of a second conv: all parts in one graph, float64."""
    rng = _rng(16)
    x = Variable(rng.standard_normal((2, 1, 6, 6)))
    w1, b1 = Variable(rng.standard_normal((2, 1, 3, 3))), Variable(rng.standard_normal(2))
    w2 = Variable(rng.standard_normal((3, 2, 2, 2)))

    def net(a, k1, c1, k2):
        h = max_pool2d(conv2d(a, k1, c1, padding=1), 2)        # (2, 2, 3, 3)
        h = avg_pool2d(conv2d(h, k2, stride=1), 2, stride=1)   # (2, 3, 1, 1)
        return flatten(h)

    assert net(x, w1, b1, w2).shape == (2, 3)
    away_from_kinks(net, x, w1, b1, w2)   # no near-ties in a max-pool window (conftest)
    check_gradients(net, x, w1, b1, w2)


if __name__ == "__main__":
    import sys

    import pytest
    sys.exit(pytest.main([__file__, "-q"]))
