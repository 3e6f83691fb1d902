"""Tests of tinytorch.core.profiling (the exported package): FLOP and parameter counts against hand-derived
formulas, memory footprints, tracemalloc and memray profiles of known allocations, per-layer tables.
No test asserts a wall-clock time: per-layer timing is checked with a fake clock."""

import sys
import tracemalloc

import numpy as np
import pytest

from tinytorch.core.activations import GELU, ReLU, Sigmoid, Softmax, Tanh
from tinytorch.core.attention import LayerNorm, MultiHeadAttention, SelfAttention
from tinytorch.core.autograd import Variable
from tinytorch.core.embeddings import Embedding, PositionalEncoding
from tinytorch.core.layers import Dense, Dropout, Module
from tinytorch.core.networks import MLP, Sequential
from tinytorch.core.optimizers import SGD, Adam
from tinytorch.core.profiling import (
    LayerProfile,
    MemoryFootprint,
    count_flops,
    count_parameters,
    format_bytes,
    layer_flops,
    memory_footprint,
    memray_profile,
    profile_layers,
    profile_memory,
)
from tinytorch.core.spatial import AvgPool2D, Conv2D, Flatten, MaxPool2D, flatten
from tinytorch.core.tensor import Tensor


class CountingFloat:
    """A number that counts every multiplication and addition done with it."""

    ops = 0

    def __init__(self, value):
        self.value = value

    def _v(self, other):
        return other.value if isinstance(other, CountingFloat) else other

    def __mul__(self, other):
        CountingFloat.ops += 1
        return CountingFloat(self.value * self._v(other))

    def __add__(self, other):
        CountingFloat.ops += 1
        return CountingFloat(self.value + self._v(other))

    __rmul__, __radd__ = __mul__, __add__


counting = np.vectorize(CountingFloat, otypes=[object])


# --- parameters -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("layer, expected", [
    (Dense(7, 5), 7 * 5 + 5), (Dense(7, 5, bias=False), 35), (Conv2D(3, 8, (3, 5)), 8 * 3 * 15 + 8),
    (Conv2D(3, 8, 3, bias=False), 8 * 27), (LayerNorm((4, 6)), 48), (Embedding(50, 8), 400),
    (SelfAttention(12), 4 * (144 + 12)), (MultiHeadAttention(12, 3), 4 * (144 + 12)),
    (ReLU(), 0), (Flatten(), 0), (Dropout(0.2), 0), (PositionalEncoding(10, 4), 0),
])
def test_count_parameters_matches_the_formula(layer, expected):
    assert count_parameters(layer) == expected == sum(p.size for p in getattr(layer, "parameters", list)())


def test_count_parameters_of_a_parameter_list_and_a_model():
    mlp = MLP(10, [20, 30], 4, seed=0)
    assert count_parameters(mlp) == count_parameters(mlp.parameters()) == 10 * 20 + 20 + 20 * 30 + 30 + 30 * 4 + 4


def test_count_parameters_rejects_non_models():
    with pytest.raises(TypeError, match="str"):
        count_parameters("model")


# --- FLOPs ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("layer, shape, flops, out", [
    (Dense(3, 2), (7, 3), 2 * 7 * 3 * 2, (7, 2)),
    (Dense(3, 2), (2, 4, 3), 2 * 8 * 3 * 2, (2, 4, 2)),
    (Conv2D(2, 3, (3, 2), stride=(2, 1), padding=(1, 0)), (5, 2, 9, 6), 2 * 5 * 3 * 5 * 5 * 2 * 6, (5, 3, 5, 5)),
    (MaxPool2D(3, stride=1), (2, 4, 5, 5), 2 * 4 * 9 * 8, (2, 4, 3, 3)),
    (AvgPool2D((2, 3)), (1, 2, 7, 7), 1 * 2 * 3 * 2 * 6, (1, 2, 3, 2)),
    (Flatten(), (3, 2, 5, 5), 0, (3, 50)),
    (flatten, (3, 4, 5), 0, (3, 20)),
    (ReLU(), (2, 3, 4), 24, (2, 3, 4)), (Tanh(), (9,), 9, (9,)), (Sigmoid(), (9,), 36, (9,)),
    (GELU(), (4, 4), 80, (4, 4)), (GELU(approximate="tanh"), (4, 4), 144, (4, 4)),
    (Softmax(), (6, 4), 6 * 18, (6, 4)), (Softmax(axis=0), (6, 4), 4 * 28, (6, 4)),
    (LayerNorm((3, 4)), (5, 3, 4), 5 * (7 * 12 + 3), (5, 3, 4)),
    (Embedding(10, 6), (2, 7), 0, (2, 7, 6)),
    (PositionalEncoding(20, 6), (3, 5, 6), 90, (3, 5, 6)),
])
def test_layer_flops_match_hand_derived_formulas(layer, shape, flops, out):
    assert layer_flops(layer, shape) == (flops, out)


def test_layer_output_shapes_agree_with_running_the_layer():
    rng = np.random.default_rng(0)
    for layer, shape in [(Conv2D(2, 3, 3, stride=2, padding=1), (2, 2, 9, 7)), (MaxPool2D(2), (1, 3, 7, 5)),
                         (AvgPool2D(3, stride=2), (1, 1, 9, 9)), (MultiHeadAttention(8, 2), (2, 3, 5, 8)),
                         (Embedding(9, 4), (3, 2))]:
        x = rng.integers(0, 9, shape) if isinstance(layer, Embedding) else rng.standard_normal(shape)
        assert layer_flops(layer, shape)[1] == layer(Tensor(x)).shape


def test_attention_flops_grow_quadratically_with_length_beyond_the_projections():
    d, heads = 16, 4
    def extra(L):
        return count_flops(MultiHeadAttention(d, heads), (1, L, d)) - 4 * 2 * L * d * d
    # 2 L^2 d twice, h L^2 scale, h L (5L - 2) softmax
    for L in (1, 7, 32):
        assert extra(L) == 4 * L * L * d + heads * L * L + heads * L * (5 * L - 2)


def test_a_one_by_one_convolution_costs_what_a_dense_layer_over_channels_costs():
    assert count_flops(Conv2D(6, 5, 1), (3, 6, 4, 4)) == count_flops(Dense(6, 5), (3 * 4 * 4, 6))


@pytest.mark.parametrize("rows, i, o", [(1, 1, 1), (3, 4, 2), (5, 7, 3)])
def test_dense_flops_equal_the_arithmetic_actually_performed(rows, i, o):
    layer = Dense(i, o, seed=0)
    x = np.random.default_rng(rows).standard_normal((rows, i)).astype(np.float32)
    np.testing.assert_allclose(layer(Tensor(x)).data, x @ layer.weights.data + layer.bias.data, rtol=1e-6)
    CountingFloat.ops = 0
    counting(x) @ counting(layer.weights.data) + counting(layer.bias.data)     # what Dense computes
    assert CountingFloat.ops == count_flops(layer, (rows, i))


def test_sequential_sums_its_layers():
    mlp = MLP(8, [16], 3, activation=Tanh, output_activation=Softmax, seed=0)
    shape, total = (4, 8), 0
    for layer in mlp:
        flops, shape = layer_flops(layer, shape)
        total += flops
    assert count_flops(mlp, (4, 8)) == total == 2 * 4 * 8 * 16 + 4 * 16 + 2 * 4 * 16 * 3 + 4 * 13
    nested = Sequential([Sequential([Dense(8, 16), ReLU()]), Dense(16, 3)])
    assert count_flops(nested, (4, 8)) == 2 * 4 * 8 * 16 + 64 + 2 * 4 * 16 * 3


class Custom(Module):
    def forward(self, x):
        return x


def test_unknown_layer_types_raise_a_type_error_naming_the_type():
    with pytest.raises(TypeError, match="Custom"):
        count_flops(Custom(), (2, 3))
    with pytest.raises(TypeError, match="Custom"):
        count_flops(Sequential([Dense(3, 3), Custom()]), (2, 3))


@pytest.mark.parametrize("layer, shape, fragment", [
    (Dense(4, 2), (3, 5), "(3, 5)"), (Conv2D(3, 2, 3), (1, 2, 5, 5), "(1, 2, 5, 5)"),
    (Conv2D(1, 2, 5), (1, 1, 3, 3), "does not fit"), (MaxPool2D(2), (4, 4), "(N, C, H, W)"),
    (LayerNorm(8), (2, 4), "(2, 4)"), (MultiHeadAttention(8, 2), (2, 3, 4), "(2, 3, 4)"),
])
def test_shape_errors_name_the_shapes(layer, shape, fragment):
    with pytest.raises(ValueError) as caught:
        count_flops(layer, shape)
    assert fragment in str(caught.value)


@pytest.mark.parametrize("shape, error", [("32", TypeError), ((), ValueError), ((3, 0), ValueError),
                                          ((2.0, 3), ValueError)])
def test_input_shapes_are_validated(shape, error):
    with pytest.raises(error, match="input_shape"):
        count_flops(Dense(3, 2), shape)


# --- memory footprint ---------------------------------------------------------------------------------------

def test_memory_footprint_of_a_cnn_with_momentum():
    cnn = Sequential([Conv2D(1, 4, 3, padding=1), ReLU(), MaxPool2D(2), Flatten(), Dense(64, 10)])
    P = count_parameters(cnn)
    fp = memory_footprint(cnn, SGD(cnn.parameters(), lr=0.1, momentum=0.9), input_shape=(2, 1, 8, 8))
    assert isinstance(fp, MemoryFootprint)
    assert (fp.parameters, fp.gradients, fp.optimizer_state) == (4 * P, 4 * P, 4 * P)
    outputs = [2 * 4 * 64, 2 * 4 * 64, 2 * 4 * 16, 2 * 64, 2 * 10]
    assert fp.activations_training == 4 * sum(outputs)
    assert fp.activations_inference == 4 * max(a + b for a, b in zip([2 * 64] + outputs, outputs))


def test_memory_footprint_follows_the_dtype_and_the_parameters_dtype():
    layer = Dense(10, 10)
    for p in layer.parameters():
        p.data = p.data.astype(np.float64)
    fp = memory_footprint(layer, "adam", input_shape=(3, 10), dtype=np.float64)
    assert fp.parameters == 8 * 110 and fp.optimizer_state == 16 * 110
    assert fp.activations_training == 8 * 30 and fp.activations_inference == 8 * 60


def test_memory_footprint_without_input_counts_no_activations():
    fp = memory_footprint(Dense(4, 4), "sgd")
    assert fp.activations_training == fp.activations_inference == 0
    assert fp.training == 2 * 4 * 20        # parameters + gradients, plain SGD keeps no state


def test_adam_state_predicted_equals_adam_state_after_a_step():
    mlp = MLP(6, [12], 3, seed=0)
    opt = Adam(mlp.parameters())
    x = Variable(np.ones((4, 6), dtype=np.float32), requires_grad=False)
    (mlp(x) * 1.0).sum().backward()
    opt.step()
    assert memory_footprint(mlp, opt).optimizer_state == opt.state_bytes()


# --- tracemalloc / memray ---------------------------------------------------------------------------------

def make_arrays(n, scale=1.0):
    big = np.full(n, scale)                     # line +1: kept
    return big


def test_profile_memory_peak_and_site_of_a_known_allocation():
    profile = profile_memory(make_arrays, 200_000, scale=2.0)
    assert profile.result.nbytes == 1_600_000 and profile.result[0] == 2.0
    assert profile.peak_bytes >= 1_600_000 and profile.current_bytes >= 1_600_000
    site = profile.sites[0]
    assert site.filename == __file__ and site.lineno == make_arrays.__code__.co_firstlineno + 1
    assert f"{site.lineno}" in str(profile) and "tracemalloc" in str(profile)


def test_profile_memory_sees_temporaries_in_the_peak_only():
    def temporary():
        np.ones(500_000).sum()                  # 4 MB, freed at once
    profile = profile_memory(temporary)
    assert profile.peak_bytes >= 4_000_000 and profile.current_bytes < 100_000


def test_profile_memory_inside_an_outer_trace_keeps_it_running():
    tracemalloc.start(5)
    try:
        profile = profile_memory(make_arrays, 10_000)
        assert tracemalloc.is_tracing() and profile.peak_bytes >= 80_000
    finally:
        tracemalloc.stop()


def test_profile_memory_stops_tracing_when_fn_raises():
    def boom():
        raise KeyError("inside")
    with pytest.raises(KeyError):
        profile_memory(boom)
    assert not tracemalloc.is_tracing()
    with pytest.raises(TypeError, match="int"):
        profile_memory(3)


def test_memray_profile_explains_a_missing_memray(monkeypatch):
    monkeypatch.setitem(sys.modules, "memray", None)            # `import memray` now raises ImportError
    with pytest.raises(ImportError, match="pip install memray"):
        memray_profile(make_arrays, 10)


def test_memray_profile_peak_and_site_of_a_known_allocation():
    pytest.importorskip("memray")
    profile = memray_profile(make_arrays, 300_000)
    assert profile.tool == "memray" and profile.result.nbytes == 2_400_000
    assert profile.peak_bytes >= 2_400_000 and profile.total_allocations >= 1
    assert any(s.filename == __file__ and s.lineno == make_arrays.__code__.co_firstlineno + 1 for s in profile.sites)


def test_memray_profile_refuses_to_nest_with_a_clear_message(tmp_path):
    memray = pytest.importorskip("memray")
    with memray.Tracker(str(tmp_path / "outer.bin")):
        with pytest.raises(RuntimeError, match="already tracking"):
            memray_profile(make_arrays, 10)


# --- per-layer profile --------------------------------------------------------------------------------------

class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_profile_layers_of_a_cnn_has_one_row_per_layer(capsys):
    cnn = Sequential([Conv2D(1, 2, 3, seed=0), ReLU(), AvgPool2D(2), Flatten(), Dense(2 * 3 * 3, 4, seed=1)])
    x = np.random.default_rng(0).standard_normal((3, 1, 8, 8)).astype(np.float32)
    profile = profile_layers(cnn, x, repeats=2, warmup=0, min_time=0.0, timer=Clock())
    assert isinstance(profile, LayerProfile) and len(profile.rows) == 5
    assert [r.output_shape for r in profile.rows] == [(3, 2, 6, 6), (3, 2, 6, 6), (3, 2, 3, 3), (3, 18), (3, 4)]
    assert [r.flops for r in profile.rows] == [layer_flops(layer, s)[0] for layer, s in
                                               zip(cnn, [(3, 1, 8, 8), (3, 2, 6, 6), (3, 2, 6, 6), (3, 2, 3, 3), (3, 18)])]
    assert sum(r.flops for r in profile.rows) == count_flops(cnn, x.shape)
    out = capsys.readouterr().out
    assert out.count("\n") == 7 and "Conv2D(1->2, 3x3)" in out and "AvgPool2D(2x2)" in out


def test_profile_layers_of_a_single_layer_with_backward():
    layer = Dense(4, 3, seed=0)
    before = layer.weights.grad
    profile = profile_layers(layer, Variable(np.ones((2, 4), dtype=np.float32), requires_grad=False),
                             repeats=2, min_time=0.0, verbose=False)
    assert len(profile.rows) == 1 and profile.rows[0].backward is not None and profile.rows[0].share == 1.0
    assert layer.weights.grad is before


def test_profile_layers_rejects_non_layers():
    with pytest.raises(TypeError, match="int"):
        profile_layers(5, np.ones(3))


def test_format_bytes():
    assert [format_bytes(n) for n in (0, 1023, 1536, 3 * 2 ** 20, 2 ** 30)] == \
        ["0 B", "1023 B", "1.50 KiB", "3.00 MiB", "1.00 GiB"]


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
