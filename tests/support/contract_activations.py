"""The contract of module 03 (activations)."""

import numpy as np

from tinytorch.core.activations import GELU, ReLU, Sigmoid, Softmax, Tanh
from tinytorch.core.autograd import Variable, check_gradients
from tinytorch.core.tensor import Tensor


def activations_contract():
    x = np.linspace(-3, 3, 12).reshape(3, 4)
    expected = {
        ReLU(): np.maximum(x, 0),
        Sigmoid(): 1 / (1 + np.exp(-x)),
        Tanh(): np.tanh(x),
        Softmax(): np.exp(x) / np.exp(x).sum(axis=-1, keepdims=True),
    }
    for activation, want in expected.items():
        got = activation(Tensor(x))
        assert isinstance(got, Tensor) and not isinstance(got, Variable), f"{activation}: a Tensor in, a Tensor out"
        assert np.allclose(got.data, want), f"{activation} values disagree with the formula"
        check_gradients(lambda a, f=activation: f(a), Variable(x.copy()))
    assert np.allclose(GELU()(Tensor(np.array([0.0, 1.0]))).data, [0.0, 0.8413447460685429])
