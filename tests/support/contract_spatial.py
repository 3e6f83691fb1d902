"""The contract of module 06 (Conv2D, pooling, flatten)."""

import numpy as np

from tinytorch.core.autograd import Variable, check_gradients
from tinytorch.core.spatial import AvgPool2D, Conv2D, MaxPool2D, flatten
from tinytorch.core.tensor import Tensor


def spatial_contract():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 2, 5, 5))
    conv = Conv2D(2, 3, 3, padding=1, seed=0)
    w, b = conv.weight.data.astype(np.float64), conv.bias.data.astype(np.float64)
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    want = np.zeros((2, 3, 5, 5))
    for i in range(5):  # a direct loop over output pixels: the reference, not the implementation
        for j in range(5):
            want[:, :, i, j] = np.einsum("ncij,ocij->no", padded[:, :, i:i + 3, j:j + 3], w) + b
    assert np.allclose(conv(Tensor(x)).data, want, atol=1e-5), "Conv2D disagrees with a direct convolution"
    pooled = MaxPool2D(2)(Tensor(x)).data
    assert np.allclose(pooled, x[:, :, :4, :4].reshape(2, 2, 2, 2, 2, 2).max(axis=(3, 5)))
    assert np.allclose(AvgPool2D(2)(Tensor(x)).data, x[:, :, :4, :4].reshape(2, 2, 2, 2, 2, 2).mean(axis=(3, 5)))
    assert flatten(Tensor(x)).shape == (2, 50)
    # Max pooling has a kink where a window's two largest entries meet, and a central difference (eps 1e-6)
    # straddling it disagrees with backward(): distinct values at least 0.05 apart, in random order.
    distinct = (rng.permutation(x.size) + rng.uniform(0.0, 0.5, x.size)).reshape(x.shape) / 10
    check_gradients(lambda a: MaxPool2D(2)(a), Variable(distinct))
