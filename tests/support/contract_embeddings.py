"""The contract of module 10 (CharTokenizer, Embedding, PositionalEncoding)."""

import numpy as np

from tinytorch.core.autograd import Variable
from tinytorch.core.embeddings import CharTokenizer, Embedding, PositionalEncoding
from tinytorch.core.tensor import Tensor


def embeddings_contract():
    tokenizer = CharTokenizer()
    tokenizer.fit("hello world")
    ids = tokenizer.encode("hello")
    assert tokenizer.decode(ids) == "hello"
    table = Embedding(10, 4, seed=0)
    out = table(np.array([[1, 2, 2]]))
    assert isinstance(out, Variable) and out.shape == (1, 3, 4)
    assert np.array_equal(out.data[0, 1], table.weight.data[2])
    out.sum().backward()
    assert np.allclose(table.weight.grad.data[2], 2.0) and np.allclose(table.weight.grad.data[0], 0.0)
    encoding = PositionalEncoding(16, 4)
    shifted = encoding(Tensor(np.zeros((1, 3, 4)))).data[0]
    position, i = np.arange(3)[:, None], np.arange(0, 4, 2)
    assert np.allclose(shifted[:, 0::2], np.sin(position / 10000 ** (i / 4)), atol=1e-6)
    assert np.allclose(shifted[:, 1::2], np.cos(position / 10000 ** (i / 4)), atol=1e-6)
