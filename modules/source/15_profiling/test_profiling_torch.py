"""Parity with PyTorch: FLOP counts against torch.utils.flop_counter.FlopCounterMode (which counts matrix
products and convolutions, 2 FLOPs per multiply-add, bias free), parameter counts against the same
architectures built in torch.nn."""

import pytest

torch = pytest.importorskip("torch")
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from tinytorch.core.attention import LayerNorm, MultiHeadAttention  # noqa: E402
from tinytorch.core.embeddings import Embedding  # noqa: E402
from tinytorch.core.layers import Dense  # noqa: E402
from tinytorch.core.networks import MLP, Sequential  # noqa: E402
from tinytorch.core.profiling import count_flops, count_parameters, layer_flops  # noqa: E402
from tinytorch.core.spatial import Conv2D, Flatten  # noqa: E402

pytestmark = pytest.mark.torch


def torch_flops(module, *inputs):
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        module(*inputs)
    return counter.get_total_flops()


@pytest.mark.parametrize("bias", [True, False])
def test_dense_and_conv_flops_match_torch(bias):
    assert count_flops(Dense(32, 16, bias=bias), (8, 32)) == torch_flops(torch.nn.Linear(32, 16, bias=bias),
                                                                          torch.zeros(8, 32))
    ours = count_flops(Conv2D(3, 5, (3, 2), stride=(2, 1), padding=1, bias=bias), (4, 3, 11, 9))
    theirs = torch_flops(torch.nn.Conv2d(3, 5, (3, 2), stride=(2, 1), padding=1, bias=bias), torch.zeros(4, 3, 11, 9))
    assert ours == theirs


def test_a_small_cnn_matches_torch():
    ours = Sequential([Conv2D(1, 4, 3, padding=1), Conv2D(4, 8, 3, stride=2), Flatten(), Dense(8 * 3 * 3, 10)])
    theirs = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.Conv2d(4, 8, 3, stride=2),
                                 torch.nn.Flatten(), torch.nn.Linear(72, 10))
    assert count_flops(ours, (2, 1, 8, 8)) == torch_flops(theirs, torch.zeros(2, 1, 8, 8))


def test_attention_matrix_products_match_torch():
    """Our MultiHeadAttention count minus its elementwise part (scale, softmax) = torch's matmul count."""
    B, L, d, h = 2, 7, 16, 4
    lin = [torch.nn.Linear(d, d) for _ in range(4)]

    def attention(x):
        q, k, v = (m(x).view(B, L, h, d // h).transpose(1, 2) for m in lin[:3])
        w = torch.softmax(q @ k.transpose(-1, -2) / (d // h) ** 0.5, dim=-1)
        return lin[3]((w @ v).transpose(1, 2).reshape(B, L, d))

    elementwise = h * B * L * L + h * B * L * (5 * L - 2)
    assert layer_flops(MultiHeadAttention(d, h), (B, L, d))[0] - elementwise == torch_flops(attention,
                                                                                            torch.zeros(B, L, d))


@pytest.mark.parametrize("ours, theirs", [
    (lambda: MLP(64, [128, 64], 10), lambda: torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(),
                                                                 torch.nn.Linear(128, 64), torch.nn.ReLU(),
                                                                 torch.nn.Linear(64, 10))),
    (lambda: Conv2D(3, 16, 5), lambda: torch.nn.Conv2d(3, 16, 5)),
    (lambda: LayerNorm(32), lambda: torch.nn.LayerNorm(32)),
    (lambda: Embedding(100, 24), lambda: torch.nn.Embedding(100, 24)),
    (lambda: MultiHeadAttention(32, 4), lambda: torch.nn.MultiheadAttention(32, 4)),
])
def test_parameter_counts_match_torch(ours, theirs):
    assert count_parameters(ours()) == sum(p.numel() for p in theirs().parameters())


if __name__ == "__main__":
    import sys

    sys.exit(pytest.main([__file__, "-q"]))
