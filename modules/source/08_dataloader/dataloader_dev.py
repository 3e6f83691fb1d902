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
# # Module 08: DataLoader
#
# A model never sees a whole dataset at once. Training walks over the data in **mini-batches**:
# 32, 64 or 256 examples stacked along a new first axis, so that one matrix multiplication processes
# the whole batch. Each pass over the data is an **epoch**, and the order of the examples changes from
# epoch to epoch (shuffling), so the gradient estimates are not biased by the order in which the data
# happens to be stored.
#
# This module builds the three pieces PyTorch uses for that:
#
# 1. `Dataset`: the interface of "something with a length that gives example `i`".
# 2. `TensorDataset`: a dataset made of arrays that share their first axis (features, labels, ...).
#    It also accepts an **array of indices**, so a whole batch comes out of one vectorized NumPy
#    indexing operation.
# 3. `DataLoader`: turns a dataset into batches: the batch size, shuffling with its own random
#    generator (reproducible with a seed), and what to do with a last, smaller batch.
#
# It stands on module 01 (`Tensor`): every batch is a tuple of `Tensor`s. Batches are plain tensors,
# not `Variable`s: data is a constant; gradients flow to the model's parameters, not to the inputs.

# %% nbgrader={"grade": false, "grade_id": "dataloader-imports", "locked": false, "schema_version": 3, "solution": false}
#| default_exp core.dataloader
#| export
import numbers

import numpy as np

from tinytorch.core.tensor import Tensor

# %% [markdown]
# ## 1. Dataset: the interface
#
# A dataset answers two questions: how many examples are there (`len(dataset)`) and what is example
# `i` (`dataset[i]`, a tuple such as `(features, label)`). Everything else (batching, shuffling) is the
# loader's job, so a dataset can be an array in memory, a folder of images or a generator of synthetic
# data, and the same loader works with all of them.
#
# `Dataset` is abstract: its two methods raise `NotImplementedError` until a subclass defines them.
# The class attribute `supports_batch_indexing` tells the loader whether `dataset[index_array]` returns
# a whole batch at once; a plain `Dataset` says no, and the loader then fetches items one by one.

# %% nbgrader={"grade": false, "grade_id": "dataset", "locked": false, "schema_version": 3, "solution": false}
#| export
class Dataset:
    """The interface every dataset follows: `len(dataset)` and `dataset[i]`.

    `dataset[i]` returns one example, usually a tuple `(features, label)` of arrays or Tensors.
    Subclasses that can also take an integer index array and return a whole batch in one call set
    `supports_batch_indexing = True` (see `TensorDataset`).
    """

    supports_batch_indexing = False

    def __len__(self):
        raise NotImplementedError(f"{type(self).__name__} must define __len__ (the number of examples)")

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__ (example number `index`)")

# %% [markdown]
# ## 2. TensorDataset: arrays that share their first axis
#
# The common case: the data already sits in memory as arrays, e.g. images `X` of shape (N, 64) and
# labels `y` of shape (N,). Example `i` is `(X[i], y[i])`. The only rule is that every array has the
# **same first dimension N**; a mismatch (say 1000 images and 999 labels) is a bug we report at
# construction, naming every shape.
#
# Indexing is NumPy's, applied to every array with the same index:
#
# | index | result |
# |---|---|
# | `ds[3]` | `(Tensor X[3], Tensor y[3])`: shapes (64,) and () |
# | `ds[np.array([5, 0, 9])]` | `(Tensor X[[5, 0, 9]], ...)`: shapes (3, 64) and (3,) |
# | `ds[10:20]` | shapes (10, 64) and (10,) |
#
# The second row is what makes loading fast: one fancy-indexing call copies a whole batch in compiled
# code, instead of a Python loop that builds the batch one example at a time.

# %% nbgrader={"grade": false, "grade_id": "tensor-dataset", "locked": false, "schema_version": 3, "solution": true}
#| export
def _as_array(value, position):
    """The NumPy array behind a Tensor, array or nested list (Tensor's dtype rules for lists)."""
    if isinstance(value, Tensor):
        return value.data
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, (list, tuple)):
        return Tensor(value).data
    raise TypeError(f"TensorDataset argument {position} must be a Tensor, NumPy array or list, "
                    f"got {type(value).__name__}")


class TensorDataset(Dataset):
    """A dataset of arrays that share their first axis: example i is (a[i] for a in arrays).

    TensorDataset(X, y): X of shape (N, ...), y of shape (N, ...). Indexing with an int gives one
    example; with an integer array or a slice it gives a whole batch (shape (B, ...)) in one NumPy call.
    Items are tuples of Tensors that keep the arrays' dtypes.
    """

    supports_batch_indexing = True

    def __init__(self, *arrays):
        ### BEGIN SOLUTION
        if not arrays:
            raise ValueError("TensorDataset needs at least one array, e.g. TensorDataset(X, y)")
        self.arrays = tuple(_as_array(a, i) for i, a in enumerate(arrays))
        shapes = [a.shape for a in self.arrays]
        if any(len(shape) == 0 for shape in shapes):
            raise ValueError(f"TensorDataset arrays need a first axis (the examples), got shapes {shapes}")
        if len({shape[0] for shape in shapes}) != 1:
            raise ValueError(
                f"TensorDataset arrays must have the same first dimension (one row per example), "
                f"got shapes {shapes} (first dimensions {[s[0] for s in shapes]})"
            )
        ### END SOLUTION

    def __len__(self):
        return self.arrays[0].shape[0]

    def __getitem__(self, index):
        """A tuple of Tensors, one per array, each indexed by `index` (int, slice or int array)."""
        ### BEGIN SOLUTION
        if isinstance(index, Tensor):
            index = index.data
        if isinstance(index, numbers.Integral) and not isinstance(index, bool):
            n = len(self)
            if not -n <= index < n:
                raise IndexError(f"index {index} is out of range for a TensorDataset of {n} examples")
        return tuple(Tensor(a[index]) for a in self.arrays)
        ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "test-tensor-dataset", "locked": true, "points": 5, "schema_version": 3, "solution": false}
def test_unit_tensor_dataset():
    """TensorDataset: length, single items, vectorized batch indexing, dtypes and shape errors."""
    X = np.arange(20, dtype=np.float32).reshape(10, 2)
    y = np.arange(10)
    ds = TensorDataset(X, Tensor(y))
    assert len(ds) == 10
    x3, y3 = ds[3]
    assert isinstance(x3, Tensor) and isinstance(y3, Tensor)
    np.testing.assert_array_equal(x3.data, X[3])
    assert y3.data == 3 and y3.shape == ()
    idx = np.array([7, 0, 7])
    xb, yb = ds[idx]
    assert xb.shape == (3, 2) and yb.shape == (3,)
    np.testing.assert_array_equal(xb.data, X[idx])
    np.testing.assert_array_equal(yb.data, y[idx])
    assert xb.dtype == np.float32 and yb.dtype == y.dtype        # dtypes are kept
    assert ds[2:5][0].shape == (3, 2)
    for bad in [(np.zeros((10, 2)), np.zeros(9)), ()]:
        try:
            TensorDataset(*bad)
        except ValueError as error:
            assert "(10, 2)" in str(error) or "at least one" in str(error)
        else:
            raise AssertionError(f"TensorDataset{[getattr(b, 'shape', b) for b in bad]} should fail")
    try:
        ds[10]
    except IndexError as error:
        assert "10" in str(error)
    else:
        raise AssertionError("ds[10] on 10 examples should raise IndexError")
    print("TensorDataset: ok")


test_unit_tensor_dataset()

# %% [markdown]
# ## 3. DataLoader: batches, shuffling, reproducibility
#
# `DataLoader(dataset, batch_size=1, shuffle=False, drop_last=False, seed=None)` (PyTorch's defaults).
# One epoch is one `for batch in loader:` loop:
#
# 1. Make the **order** of the examples: `0, 1, ..., N-1`, or a fresh random permutation when
#    `shuffle=True`.
# 2. Cut the order into consecutive chunks of `batch_size` indices. With N = 10 and batch 4 the chunks
#    have 4, 4 and 2 indices; `drop_last=True` drops the short one (useful when every batch must have
#    the same size, e.g. for batch statistics). `len(loader)` is the number of batches:
#    `ceil(N / B)`, or `floor(N / B)` with `drop_last`.
# 3. Fetch each chunk: one call `dataset[indices]` when the dataset supports batch indexing; otherwise
#    fetch the items one by one and stack each field with `np.stack` (the general, slower path).
#
# **Randomness.** The loader owns a `np.random.Generator` seeded with `seed`. Each epoch draws a new
# permutation from it, so epochs differ, while two loaders with the same seed produce exactly the same
# sequence of epochs: runs are reproducible without touching NumPy's global random state.
#
# **Cost.** A batch is a *copy* (fancy indexing never returns a view): B × (bytes per example) per
# array, allocated anew each batch. Shuffling costs one permutation of N integers per epoch.

# %% nbgrader={"grade": false, "grade_id": "dataloader", "locked": false, "schema_version": 3, "solution": true}
#| export
def _check_flag(name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"DataLoader {name} must be True or False, got {value!r}")
    return bool(value)


def _stack_items(items):
    """Stack a list of examples (tuples, or single values) into a tuple of batch Tensors.

    The fallback for datasets without batch indexing: B items of k fields -> k arrays of shape (B, ...).
    """
    first = items[0]
    if not isinstance(first, tuple):
        items = [(item,) for item in items]
    fields = len(items[0])
    batch = []
    for k in range(fields):
        values = [np.asarray(item[k].data if isinstance(item[k], Tensor) else item[k]) for item in items]
        shapes = {v.shape for v in values}
        if len(shapes) != 1:
            raise ValueError(f"cannot stack field {k} of a batch: items have different shapes {sorted(shapes)}")
        batch.append(Tensor(np.stack(values)))
    return tuple(batch)


class DataLoader:
    """Iterate over a dataset in mini-batches: `for x, y in DataLoader(ds, batch_size=32, shuffle=True)`.

    Each batch is a tuple of Tensors with a leading batch axis: X of shape (N, F) gives batches of shape
    (batch_size, F); the last batch may be smaller unless drop_last=True. With shuffle=True every epoch
    uses a new permutation drawn from the loader's own generator, seeded with `seed` (None = fresh
    entropy), so the same seed gives the same sequence of epochs.
    """

    def __init__(self, dataset, batch_size=1, shuffle=False, drop_last=False, seed=None):
        ### BEGIN SOLUTION
        if not (hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__")):
            raise TypeError(f"DataLoader needs a dataset with __len__ and __getitem__ (e.g. a TensorDataset), "
                            f"got {type(dataset).__name__}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral):
            raise TypeError(f"DataLoader batch_size must be an integer, got {batch_size!r} "
                            f"({type(batch_size).__name__})")
        if batch_size < 1:
            raise ValueError(f"DataLoader batch_size must be at least 1, got {batch_size}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)):
            raise TypeError(f"DataLoader seed must be an integer or None, got {seed!r}")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = _check_flag("shuffle", shuffle)
        self.drop_last = _check_flag("drop_last", drop_last)
        self.seed = seed
        self._rng = np.random.default_rng(seed)
        ### END SOLUTION

    def __len__(self):
        """The number of batches in one epoch."""
        ### BEGIN SOLUTION
        n = len(self.dataset)
        if self.drop_last:
            return n // self.batch_size
        return -(-n // self.batch_size)          # ceil(n / batch_size) in integers
        ### END SOLUTION

    def __iter__(self):
        """One epoch: yields tuples of Tensors, each with a leading batch axis."""
        ### BEGIN SOLUTION
        n = len(self.dataset)
        order = self._rng.permutation(n) if self.shuffle else np.arange(n)
        stop = len(self) * self.batch_size if self.drop_last else n
        batched = getattr(self.dataset, "supports_batch_indexing", False)
        for start in range(0, stop, self.batch_size):
            indices = order[start:start + self.batch_size]
            if batched:
                yield tuple(self.dataset[indices])           # one vectorized fetch for the whole batch
            else:
                yield _stack_items([self.dataset[int(i)] for i in indices])
        ### END SOLUTION

    def __repr__(self):
        return (f"DataLoader({type(self.dataset).__name__} of {len(self.dataset)}, batch_size={self.batch_size}, "
                f"shuffle={self.shuffle}, drop_last={self.drop_last}, seed={self.seed})")

# %% nbgrader={"grade": true, "grade_id": "test-dataloader-batches", "locked": true, "points": 5, "schema_version": 3, "solution": false}
def test_unit_dataloader_batches():
    """DataLoader: batch shapes, len, drop_last, every example exactly once, no shuffle keeps order."""
    X = np.arange(30, dtype=np.float32).reshape(10, 3)
    y = np.arange(10)
    ds = TensorDataset(X, y)
    loader = DataLoader(ds, batch_size=4)
    batches = list(loader)
    assert len(loader) == 3 == len(batches)
    assert [b[0].shape for b in batches] == [(4, 3), (4, 3), (2, 3)]
    assert all(isinstance(t, Tensor) for b in batches for t in b)
    np.testing.assert_array_equal(np.concatenate([b[1].data for b in batches]), y)   # in order
    dropped = DataLoader(ds, batch_size=4, drop_last=True)
    assert len(dropped) == 2 and [b[0].shape[0] for b in dropped] == [4, 4]
    assert len(DataLoader(ds, batch_size=20)) == 1 and len(DataLoader(ds, batch_size=20, drop_last=True)) == 0
    # rows stay aligned with their labels
    for xb, yb in DataLoader(ds, batch_size=3, shuffle=True, seed=0):
        np.testing.assert_array_equal(xb.data[:, 0], 3 * yb.data)
    print("DataLoader batches: ok")


test_unit_dataloader_batches()

# %% nbgrader={"grade": true, "grade_id": "test-dataloader-shuffle", "locked": true, "points": 5, "schema_version": 3, "solution": false}
def test_unit_dataloader_shuffle():
    """Shuffling: a permutation per epoch, a new one each epoch, the same sequence for the same seed."""
    ds = TensorDataset(np.arange(50))

    def epoch(loader):
        return np.concatenate([b[0].data for b in loader])

    a, b = DataLoader(ds, batch_size=8, shuffle=True, seed=3), DataLoader(ds, batch_size=8, shuffle=True, seed=3)
    a1, a2 = epoch(a), epoch(a)
    np.testing.assert_array_equal(np.sort(a1), np.arange(50))       # every example exactly once
    assert not np.array_equal(a1, a2)                                # a new order each epoch
    np.testing.assert_array_equal(epoch(b), a1)                      # same seed, same sequence
    np.testing.assert_array_equal(epoch(b), a2)
    assert not np.array_equal(epoch(DataLoader(ds, batch_size=8, shuffle=True, seed=4)), a1)
    print("DataLoader shuffle: ok")


test_unit_dataloader_shuffle()

# %% nbgrader={"grade": true, "grade_id": "test-dataloader-generic", "locked": true, "points": 5, "schema_version": 3, "solution": false}
def test_unit_dataloader_generic_and_errors():
    """A Dataset without batch indexing is stacked item by item; bad arguments give clear errors."""

    class Squares(Dataset):
        def __len__(self):
            return 7

        def __getitem__(self, i):
            return np.array([i, i * i], dtype=np.float64), i % 2

    batches = list(DataLoader(Squares(), batch_size=3))
    assert [b[0].shape for b in batches] == [(3, 2), (3, 2), (1, 2)]
    np.testing.assert_array_equal(batches[1][0].data, [[3, 9], [4, 16], [5, 25]])
    np.testing.assert_array_equal(batches[1][1].data, [1, 0, 1])
    for kwargs, error in [({"batch_size": 0}, ValueError), ({"batch_size": 2.0}, TypeError),
                          ({"batch_size": True}, TypeError), ({"shuffle": "yes"}, TypeError),
                          ({"seed": 1.5}, TypeError)]:
        try:
            DataLoader(Squares(), **kwargs)
        except error as caught:
            assert str(list(kwargs.values())[0]) in str(caught)
        else:
            raise AssertionError(f"DataLoader(**{kwargs}) should raise {error.__name__}")
    try:
        DataLoader(3)
    except TypeError as caught:
        assert "int" in str(caught)
    else:
        raise AssertionError("DataLoader(3) should raise TypeError")
    try:
        len(Dataset())
    except NotImplementedError:
        pass
    else:
        raise AssertionError("the abstract Dataset must not have a length")
    print("DataLoader generic datasets and errors: ok")


test_unit_dataloader_generic_and_errors()

# %% [markdown]
# ## Systems Analysis
#
# Two questions decide how a data pipeline behaves:
#
# 1. **Time per epoch.** The vectorized path makes one indexing call per batch; the generic path makes
#    B Python calls and a `np.stack` per batch. We time one epoch of both over the same 20,000 examples
#    of 64 features (the size of the 8x8 digits), for several batch sizes.
# 2. **Memory per batch.** A batch is a fresh copy: batch_size × bytes per example. We print it for a few
#    batch sizes, float32 versus float64.

# %% nbgrader={"grade": false, "grade_id": "dataloader-analysis", "locked": false, "schema_version": 3, "solution": false}
import time


class _ItemByItem(Dataset):
    """The same data as a TensorDataset, but without batch indexing: forces the stacking path."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, i):
        return self.dataset[i]


def _epoch_seconds(loader, repeats=3):
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _batch in loader:
            pass
        best = min(best, time.perf_counter() - start)
    return best


def analyze_epoch_time():
    """Seconds per shuffled epoch: one vectorized fetch per batch versus stacking items one by one."""
    rng = np.random.default_rng(0)
    ds = TensorDataset(rng.standard_normal((20_000, 64)).astype(np.float32), rng.integers(0, 10, 20_000))
    slow = _ItemByItem(ds)
    print("batch   batches   vectorized (ms)   item-by-item (ms)   speed-up")
    for batch_size in [16, 64, 256]:
        fast_t = _epoch_seconds(DataLoader(ds, batch_size, shuffle=True, seed=0))
        slow_t = _epoch_seconds(DataLoader(slow, batch_size, shuffle=True, seed=0), repeats=1)
        print(f"{batch_size:5d}   {-(-20_000 // batch_size):7d}   {fast_t * 1e3:15.2f}   "
              f"{slow_t * 1e3:17.1f}   {slow_t / fast_t:7.0f}x")


def analyze_batch_memory():
    """Bytes of one (features, labels) batch of 64-feature examples with int64 labels."""
    print("batch   float32 batch   float64 batch")
    for batch_size in [32, 256, 4096]:
        sizes = []
        for dtype in (np.float32, np.float64):
            ds = TensorDataset(np.zeros((batch_size, 64), dtype=dtype), np.zeros(batch_size, dtype=np.int64))
            xb, yb = next(iter(DataLoader(ds, batch_size)))
            sizes.append(xb.data.nbytes + yb.data.nbytes)
        print(f"{batch_size:5d}   {sizes[0] / 1024:10.1f} KB   {sizes[1] / 1024:10.1f} KB")
    ds = TensorDataset(np.zeros((100, 64), dtype=np.float32))
    xb, = next(iter(DataLoader(ds, 32, shuffle=True, seed=0)))
    print(f"a shuffled batch shares memory with the dataset: {np.shares_memory(xb.data, ds.arrays[0])} "
          f"(fancy indexing copies)")


analyze_epoch_time()
analyze_batch_memory()

# %% [markdown]
# ### What the numbers say
#
# - The vectorized loader spends a few milliseconds per epoch; the item-by-item path pays Python's cost
#   for every example (an indexing call, a Tensor, a tuple) and is tens of times slower, the gap
#   growing with the batch size. Both pay a per-batch overhead, so larger batches make an epoch cheaper.
# - A batch costs batch_size × 64 × 4 bytes of features in float32 (plus 8 bytes per int64 label),
#   allocated anew for every batch, because fancy indexing copies. float64 doubles it.
#
# ## Summary
#
# You built `Dataset` (the interface), `TensorDataset` (arrays sharing their first axis, with batch
# indexing) and `DataLoader` (batches, `len`, `drop_last`, reproducible per-epoch shuffling with its own
# generator). Module 11's `Trainer` loops over a `DataLoader` every epoch.
