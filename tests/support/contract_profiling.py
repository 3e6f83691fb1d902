"""The contract of module 15 (FLOP and parameter counts)."""

from tinytorch.core.layers import Dense
from tinytorch.core.profiling import count_flops, count_parameters


def profiling_contract():
    layer = Dense(8, 4, seed=0)
    assert count_parameters(layer) == 8 * 4 + 4
    assert count_flops(layer, (3, 8)) == 2 * 3 * 8 * 4  # a multiply-add is 2 FLOPs; the bias is free
