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
# # Module 05: Networks
#
# Layers (module 04) and activations (module 03) are the bricks; a **network** is the wall. This module
# builds the containers that turn a list of layers into one model, and the file format that lets a
# trained model outlive the Python process:
#
# 1. `Sequential([layer, layer, ...])`: apply layers in order. Indexable, sliceable, iterable.
# 2. `MLP(input_size, hidden_sizes, output_size, activation=ReLU, output_activation=None)`: the
#    multi-layer perceptron, `Dense -> activation -> ... -> Dense`, as a `Sequential`.
# 3. `create_mlp(..., seed=None)`: the same, with one seed for reproducible initialisation.
# 4. `save_parameters(model, path)` / `load_parameters(model, path)`: every parameter to and from a
#    `.npz` file, keyed by its name in the model (`0.weights`, `0.bias`, `2.weights`, ...).
#
# It stands on `Module`, `Dense` (04), the activations (03) and `Variable` (02). Module 11 trains these
# networks; module 12 compresses them.

# %% nbgrader={"grade": false, "grade_id": "networks-imports", "locked": false, "schema_version": 3, "solution": false}
#| default_exp core.networks
#| export
import numpy as np

from tinytorch.core.activations import ReLU
from tinytorch.core.layers import Dense, Module

# %% nbgrader={"grade": false, "grade_id": "networks-test-imports", "locked": false, "schema_version": 3, "solution": false}
# Only the tests and analyses in this file need these; they are not part of the package.
from tinytorch.core.tensor import Tensor, best_time
from tinytorch.core.autograd import Variable, check_gradients
from tinytorch.core.activations import Sigmoid, Softmax, Tanh

# %% [markdown]
# ## 1. Sequential: composition as a list
#
# Most networks are a chain: the output of one layer is the input of the next. `Sequential` stores the
# chain as a list and its `forward` is a four-line loop over **layers** (a handful of them; never over
# data elements):
#
# ```
# x -> layers[0] -> layers[1] -> ... -> layers[-1] -> y
# ```
#
# It is a `Module`, so `parameters()`, `train()`/`eval()` and `zero_grad()` come for free. It overrides
# one hook, `_children()`, to name its layers `0, 1, 2, ...` (PyTorch's naming): parameter names are then
# `0.weights`, `0.bias`, `2.weights`, which is what the saved files use. Activations are ordinary
# callables in the list: they have no parameters and need no registration.
#
# Following PyTorch's container protocol, `model[0]` is the first layer, `model[1:]` a new `Sequential`
# sharing the same layer objects, `len(model)` the number of layers, and `for layer in model` iterates.

# %% nbgrader={"grade": false, "grade_id": "sequential", "locked": false, "schema_version": 3, "solution": true}
#| export
class Sequential(Module):
    """Apply a list of layers in order: Sequential([Dense(4, 8), ReLU(), Dense(8, 2)]).

    Shapes: whatever the first layer takes -> whatever the last layer returns.
    Layers are Modules or any callables (activations). Parameters are named '<index>.<name>'.
    """

    def __init__(self, layers=None):
        super().__init__()
        if layers is None:
            layers = []
        if isinstance(layers, Module) or not isinstance(layers, (list, tuple)):
            raise TypeError(f"Sequential takes a list of layers, e.g. Sequential([Dense(4, 8), ReLU()]); "
                            f"got {type(layers).__name__}")
        for index, layer in enumerate(layers):
            if not callable(layer):
                raise TypeError(f"Sequential layer {index} is not callable: {type(layer).__name__}")
        self.layers = list(layers)

    def _children(self):
        return [(str(index), layer) for index, layer in enumerate(self.layers)]

    def forward(self, x):
        """Feed x through every layer in turn."""
        ### BEGIN SOLUTION
        for layer in self.layers:
            x = layer(x)
        return x
        ### END SOLUTION

    def append(self, layer):
        """Add a layer at the end; returns self."""
        if not callable(layer):
            raise TypeError(f"Sequential can only append callables, got {type(layer).__name__}")
        self.layers.append(layer)
        return self

    def __getitem__(self, index):
        if isinstance(index, slice):
            return Sequential(self.layers[index])
        return self.layers[index]

    def __len__(self):
        return len(self.layers)

    def __iter__(self):
        return iter(self.layers)


# %% nbgrader={"grade": true, "grade_id": "test-sequential", "locked": true, "points": 10, "schema_version": 3, "solution": false}
def test_unit_sequential():
    """Sequential: order of application, container protocol, parameter names, gradients, errors."""
    first, second = Dense(3, 5, seed=0), Dense(5, 2, seed=1)
    model = Sequential([first, ReLU(), second])
    x = Tensor(np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32))
    expected = second(ReLU()(first(x)))
    y = model(x)
    assert type(y) is Tensor and y.shape == (4, 2)
    np.testing.assert_array_equal(y.data, expected.data)

    assert len(model) == 3 and model[0] is first and model[-1] is second
    assert [type(layer).__name__ for layer in model] == ["Dense", "ReLU", "Dense"]
    assert isinstance(model[1:], Sequential) and model[1:][1] is second
    names = [name for name, _ in model.named_parameters()]
    assert names == ["0.weights", "0.bias", "2.weights", "2.bias"], names
    assert "(1): ReLU()" in repr(model)

    for p in model.parameters():
        p.data = p.data.astype(np.float64)
    xv = Variable(np.random.default_rng(1).normal(size=(4, 3)), requires_grad=True)
    check_gradients(lambda x, *params: model(x), xv, *model.parameters())

    assert Sequential()(x) is x                      # an empty chain is the identity
    for bad in (Dense(2, 2), [Dense(2, 2), 3]):
        try:
            Sequential(bad)
        except TypeError:
            pass
        else:
            raise AssertionError(f"Sequential({bad!r}) must raise TypeError")
    print("Sequential: ok")


test_unit_sequential()

# %% [markdown]
# ## 2. MLP: the multi-layer perceptron
#
# An MLP alternates Dense layers and a nonlinearity. With `input_size=784, hidden_sizes=[128, 64],
# output_size=10` it is
#
# ```
# Dense(784, 128) -> ReLU -> Dense(128, 64) -> ReLU -> Dense(64, 10) [-> output_activation]
# (batch, 784)      (batch, 128)             (batch, 64)            (batch, 10)
# ```
#
# The last layer has **no** activation by default: a classifier outputs raw logits (the loss of module
# 11 applies a stable log-softmax itself) and a regressor outputs unbounded values. Pass
# `output_activation=Sigmoid` for probabilities of a binary problem, or `Softmax` for class
# probabilities.
#
# `activation` is a class (`ReLU`, `Tanh`, ...), instantiated once per hidden layer, or an instance that
# is reused (activations hold no state), or `None` for a purely linear network. Parameter count:
# `sum(in * out + out)` over the Dense layers; `MLP(784, [128, 64], 10)` has 109,386.
#
# `MLP` **is** a `Sequential` (a subclass), so everything above (indexing, names like `2.weights`,
# saving) works on it. One `seed` draws every layer's initial weights from a single generator.

# %% nbgrader={"grade": false, "grade_id": "mlp", "locked": false, "schema_version": 3, "solution": true}
#| export
def _make_activation(activation, what):
    """A class -> a new instance; a callable instance -> itself; None -> None."""
    if activation is None:
        return None
    if isinstance(activation, type):
        return activation()
    if callable(activation):
        return activation
    raise TypeError(f"MLP {what} must be an activation class (e.g. ReLU), an instance, or None; "
                    f"got {activation!r}")


def _check_sizes(input_size, hidden_sizes, output_size):
    if isinstance(hidden_sizes, (int, np.integer)) and not isinstance(hidden_sizes, bool):
        raise TypeError(f"MLP hidden_sizes must be a list of ints, e.g. [{hidden_sizes}], got {hidden_sizes!r}")
    if not isinstance(hidden_sizes, (list, tuple)):
        raise TypeError(f"MLP hidden_sizes must be a list of ints, got {type(hidden_sizes).__name__}")
    sizes = [input_size, *hidden_sizes, output_size]
    for size in sizes:
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size <= 0:
            raise ValueError(f"MLP sizes must be positive ints: input_size={input_size!r}, "
                             f"hidden_sizes={list(hidden_sizes)!r}, output_size={output_size!r}")
    return [int(s) for s in sizes]


class MLP(Sequential):
    """Multi-layer perceptron: Dense -> activation for each hidden size, then Dense (-> output_activation).

    Shapes: (..., input_size) -> (..., output_size).
    seed: None, an int or an np.random.Generator, shared by all Dense layers (in order).
    """

    def __init__(self, input_size, hidden_sizes, output_size, activation=ReLU, output_activation=None, seed=None):
        sizes = _check_sizes(input_size, hidden_sizes, output_size)
        ### BEGIN SOLUTION
        rng = np.random.default_rng(seed)
        layers = []
        for n_in, n_out in zip(sizes[:-2], sizes[1:-1]):       # the hidden layers
            layers.append(Dense(n_in, n_out, seed=rng))
            act = _make_activation(activation, "activation")
            if act is not None:
                layers.append(act)
        layers.append(Dense(sizes[-2], sizes[-1], seed=rng))   # the output layer
        out_act = _make_activation(output_activation, "output_activation")
        if out_act is not None:
            layers.append(out_act)
        super().__init__(layers)
        ### END SOLUTION
        self.input_size, self.hidden_sizes, self.output_size = sizes[0], sizes[1:-1], sizes[-1]


def create_mlp(input_size, hidden_sizes, output_size, activation=ReLU, output_activation=None, seed=None):
    """Build an MLP (see MLP); `seed` makes its initial weights reproducible."""
    return MLP(input_size, hidden_sizes, output_size, activation=activation,
               output_activation=output_activation, seed=seed)


# %% nbgrader={"grade": true, "grade_id": "test-mlp", "locked": true, "points": 10, "schema_version": 3, "solution": false}
def test_unit_mlp():
    """MLP: structure, shapes, parameter count, seeds, activations, gradients, errors."""
    model = MLP(784, [128, 64], 10)
    assert [type(layer).__name__ for layer in model] == ["Dense", "ReLU", "Dense", "ReLU", "Dense"]
    assert sum(p.size for p in model.parameters()) == 784 * 128 + 128 + 128 * 64 + 64 + 64 * 10 + 10
    assert model(Tensor(np.zeros((32, 784), dtype=np.float32))).shape == (32, 10)

    a, b = create_mlp(3, [4], 2, seed=0), create_mlp(3, [4], 2, seed=0)
    for p, q in zip(a.parameters(), b.parameters()):
        np.testing.assert_array_equal(p.data, q.data)
    assert not np.array_equal(a[0].weights.data, create_mlp(3, [4], 2, seed=1)[0].weights.data)

    probs = create_mlp(3, [5, 5], 4, activation=Tanh, output_activation=Softmax, seed=2)
    assert [type(layer).__name__ for layer in probs] == ["Dense", "Tanh", "Dense", "Tanh", "Dense", "Softmax"]
    p = probs(Tensor(np.ones((2, 3), dtype=np.float32))).data
    np.testing.assert_allclose(p.sum(axis=-1), 1.0, rtol=1e-6)
    assert len(MLP(3, [], 1)) == 1 and len(MLP(3, [4], 1, activation=None)) == 2

    net = create_mlp(2, [3], 1, activation=Tanh, output_activation=Sigmoid, seed=3)
    for param in net.parameters():
        param.data = param.data.astype(np.float64)
    x = Variable(np.random.default_rng(4).normal(size=(5, 2)), requires_grad=True)
    check_gradients(lambda x, *params: net(x), x, *net.parameters())

    for bad in [(3, 4, 2), (3, [0], 2), (0, [4], 2)]:
        try:
            MLP(*bad)
        except (TypeError, ValueError) as error:
            assert "MLP" in str(error)
        else:
            raise AssertionError(f"MLP{bad} must raise")
    print("MLP: ok")


test_unit_mlp()

# %% [markdown]
# ## 3. Saving and loading parameters
#
# A trained model is its parameters. We store them in NumPy's `.npz` format: a zip archive with one
# `.npy` array per entry, keyed by the parameter's **name** from `named_parameters()` (`0.weights`,
# `0.bias`, `2.weights`, ...). Names are stable because discovery follows assignment order, and they
# make a mismatch explainable: "parameter 2.weights has shape (64, 10) in the file but (64, 5) in the
# model" is a bug report you can act on; "array 3 does not fit" is not.
#
# API (one clear pair of functions that works for any `Module`, including later CNNs and transformers):
#
# - `save_parameters(model, path)`: writes exactly `path` (no suffix is added), float32 stays float32.
# - `load_parameters(model, path)`: checks **everything first** (same names, same count, same shapes)
#   and only then copies the arrays into the model, cast to each parameter's dtype. A failed load leaves
#   the model untouched, never half loaded.
#
# Only parameters are saved, not the architecture: you rebuild the model with the same code (and sizes),
# then load. That is PyTorch's `state_dict` approach. Size on disk: the parameter bytes plus a small header
# per array (`np.savez` does not compress).

# %% nbgrader={"grade": false, "grade_id": "save-load", "locked": false, "schema_version": 3, "solution": true}
#| export
def save_parameters(model, path):
    """Write every parameter of `model` to the .npz file `path`, keyed by its name ('0.weights', ...)."""
    if not isinstance(model, Module):
        raise TypeError(f"save_parameters expects a Module, got {type(model).__name__}")
    ### BEGIN SOLUTION
    arrays = {name: param.data for name, param in model.named_parameters()}
    with open(path, "wb") as file:                 # a file object: NumPy adds no '.npz' suffix
        np.savez(file, **arrays)
    ### END SOLUTION


def load_parameters(model, path):
    """Load the parameters saved by save_parameters into `model`, after checking names, count and shapes.

    Raises ValueError naming the parameter and both shapes (or the missing/unexpected names).
    """
    if not isinstance(model, Module):
        raise TypeError(f"load_parameters expects a Module, got {type(model).__name__}")
    ### BEGIN SOLUTION
    params = dict(model.named_parameters())
    with np.load(path, allow_pickle=False) as archive:
        saved = {name: archive[name] for name in archive.files}
    if len(saved) != len(params) or set(saved) != set(params):
        missing = sorted(set(params) - set(saved))
        unexpected = sorted(set(saved) - set(params))
        raise ValueError(f"{path} holds {len(saved)} parameters but the model has {len(params)}; "
                         f"missing from the file: {missing}, not in the model: {unexpected}")
    for name, param in params.items():
        if saved[name].shape != param.shape:
            raise ValueError(f"parameter {name} has shape {saved[name].shape} in {path} but "
                             f"{param.shape} in the model")
    for name, param in params.items():             # everything checked: now copy
        param.data = np.array(saved[name], dtype=param.dtype)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-save-load", "locked": true, "points": 10, "schema_version": 3, "solution": false}
def test_unit_save_load():
    """save/load: exact round trip, names in the file, mismatch errors leave the model untouched."""
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "mlp.npz"
        source = create_mlp(4, [8], 3, seed=0)
        save_parameters(source, path)
        with np.load(path) as archive:
            assert sorted(archive.files) == ["0.bias", "0.weights", "2.bias", "2.weights"]
        target = create_mlp(4, [8], 3, seed=1)
        load_parameters(target, path)
        for p, q in zip(source.parameters(), target.parameters()):
            np.testing.assert_array_equal(p.data, q.data)
            assert q.dtype == np.float32
        x = Tensor(np.ones((2, 4), dtype=np.float32))
        np.testing.assert_array_equal(source(x).data, target(x).data)

        wrong_width = create_mlp(4, [8], 5, seed=2)
        before = wrong_width[2].weights.data.copy()
        try:
            load_parameters(wrong_width, path)
        except ValueError as error:
            assert "2.weights" in str(error) and "(8, 3)" in str(error) and "(8, 5)" in str(error), str(error)
        else:
            raise AssertionError("loading (8, 3) weights into (8, 5) must raise ValueError")
        np.testing.assert_array_equal(wrong_width[2].weights.data, before)
        assert wrong_width[0].weights.data is not None

        try:
            load_parameters(create_mlp(4, [8, 8], 3, seed=3), path)
        except ValueError as error:
            assert "4 parameters" in str(error) and "6" in str(error), str(error)
        else:
            raise AssertionError("loading 4 parameters into a model with 6 must raise ValueError")
    print("save/load: ok")


test_unit_save_load()

# %% [markdown]
# ## Systems Analysis
#
# 1. **Parameters and memory versus depth and width.** Parameters grow linearly with depth but
#    quadratically with width (`width^2` per hidden layer), so width is what makes MLPs big.
# 2. **Forward time versus batch size.** A batch turns `batch` matrix-vector products into one
#    matrix-matrix product. Time per example drops sharply with batch size until the matrices are large
#    enough to keep the CPU busy; then total time grows linearly.
# 3. **File size.** The saved `.npz` against the bytes of the parameters.

# %% nbgrader={"grade": false, "grade_id": "networks-analysis", "locked": false, "schema_version": 3, "solution": false}
import os
import tempfile


def analyze_parameters_vs_shape():
    """Parameter count, float32 MB, and on-disk .npz size for MLPs of growing depth and width."""
    print("input 784, output 10       parameters   float32 MB   .npz MB")
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.npz")
        for hidden in ([128], [128, 128], [128, 128, 128, 128], [512], [2048], [512, 512]):
            model = create_mlp(784, hidden, 10, seed=0)
            count = sum(p.size for p in model.parameters())
            nbytes = sum(p.data.nbytes for p in model.parameters())
            save_parameters(model, path)
            print(f"hidden {str(hidden):22s} {count:12,d}   {nbytes / 1e6:10.2f}   {os.path.getsize(path) / 1e6:7.2f}")


def analyze_forward_vs_batch():
    """Forward time of MLP(784, [256, 128], 10) as the batch grows: total and per example."""
    model = create_mlp(784, [256, 128], 10, seed=0)
    rng = np.random.default_rng(0)
    print("batch    forward (ms)   us/example   Variable forward+backward (ms)")
    for batch in [1, 8, 64, 256, 1024]:
        x = rng.normal(size=(batch, 784)).astype(np.float32)
        seconds = best_time(lambda: model(Tensor(x)), repeats=5)

        def step():
            model.zero_grad()
            model(Variable(x, requires_grad=False)).sum().backward()

        train_seconds = best_time(step, repeats=3)
        print(f"{batch:5d}   {seconds * 1e3:12.3f}   {seconds / batch * 1e6:10.2f}   {train_seconds * 1e3:12.3f}")


analyze_parameters_vs_shape()
analyze_forward_vs_batch()

# %% [markdown]
# ### What the numbers say
#
# - Doubling the depth of 128-wide hidden layers adds about 16.5 K parameters per layer, while going from
#   128 to 512 to 2048 wide multiplies the count by roughly the width ratio (the 784-wide input layer
#   dominates), and a second 512-wide layer adds 262 K: width costs quadratically, depth linearly.
# - Memory is 4 bytes per float32 parameter, and the `.npz` file is that plus a few hundred bytes of
#   header per array: saving is a byte copy, not a conversion.
# - Batching amortises the per-layer Python overhead and turns matrix-vector into matrix-matrix products:
#   the time per example falls by an order of magnitude from batch 1 to batch 256, then stays flat (the
#   CPU is busy; total time grows linearly). At large batches forward+backward costs two to three times the
#   forward alone: the backward adds `dL/dW` (and `dL/dx` for every layer but the first, whose input is
#   data) per Dense layer. At batch 1 the recorded graph's Python overhead dominates instead.
#
# ## Summary
#
# You built `Sequential` and `MLP`, the containers every later model uses, and a parameter file format
# with errors that name the parameter and both shapes. Module 06 adds convolutional layers to the same
# `Sequential`; module 11 trains these networks with the optimizers of module 09.
