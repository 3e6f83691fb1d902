"""Tests of tinytorch.core.dataloader (the exported package): Dataset, TensorDataset, DataLoader."""

import numpy as np
import pytest

from tinytorch.core.dataloader import DataLoader, Dataset, TensorDataset
from tinytorch.core.tensor import Tensor


def make_dataset(n=10, features=3):
    X = np.arange(n * features, dtype=np.float32).reshape(n, features)
    y = np.arange(n, dtype=np.int64)
    return X, y, TensorDataset(X, y)


def epoch_labels(loader):
    return np.concatenate([batch[-1].data for batch in loader])


# --- TensorDataset ------------------------------------------------------------------------------

def test_tensor_dataset_accepts_tensors_arrays_and_lists():
    X, y, _ = make_dataset()
    ds = TensorDataset(Tensor(X), y, [float(v) for v in y])
    assert len(ds) == 10
    a, b, c = ds[4]
    np.testing.assert_array_equal(a.data, X[4])
    assert b.data == 4 and b.dtype == np.int64
    assert c.dtype == np.float32                  # a list follows Tensor's rules: floats -> float32


def test_tensor_dataset_batch_indexing_is_one_vectorized_fetch():
    X, y, ds = make_dataset()
    idx = np.array([9, 1, 1, 4])
    xb, yb = ds[idx]
    np.testing.assert_array_equal(xb.data, X[idx])
    np.testing.assert_array_equal(yb.data, y[idx])
    xt, _ = ds[Tensor(idx)]                         # a Tensor of indices works too
    np.testing.assert_array_equal(xt.data, X[idx])
    xs, ys = ds[2:6]
    assert xs.shape == (4, 3) and ys.shape == (4,)
    assert ds[-1][1].data == 9


def test_tensor_dataset_errors_name_the_shapes():
    with pytest.raises(ValueError, match=r"\(5, 2\).*\(4,\)"):
        TensorDataset(np.zeros((5, 2)), np.zeros(4))
    with pytest.raises(ValueError, match="at least one"):
        TensorDataset()
    with pytest.raises(ValueError, match="first axis"):
        TensorDataset(np.array(3.0))
    with pytest.raises(TypeError, match="dict"):
        TensorDataset({"x": 1})
    _, _, ds = make_dataset()
    with pytest.raises(IndexError, match="10"):
        ds[10]


def test_abstract_dataset():
    with pytest.raises(NotImplementedError):
        len(Dataset())
    with pytest.raises(NotImplementedError):
        Dataset()[0]
    assert Dataset.supports_batch_indexing is False and TensorDataset.supports_batch_indexing is True


# --- DataLoader: batching -----------------------------------------------------------------------

@pytest.mark.parametrize("n,batch,drop_last,sizes", [
    (10, 4, False, [4, 4, 2]),
    (10, 4, True, [4, 4]),
    (10, 5, False, [5, 5]),
    (10, 5, True, [5, 5]),
    (10, 1, False, [1] * 10),
    (3, 8, False, [3]),
    (3, 8, True, []),
])
def test_batch_sizes_and_len(n, batch, drop_last, sizes):
    _, _, ds = make_dataset(n)
    loader = DataLoader(ds, batch_size=batch, drop_last=drop_last)
    assert len(loader) == len(sizes)
    assert [b[0].shape[0] for b in loader] == sizes


def test_default_arguments_follow_pytorch():
    _, _, ds = make_dataset()
    loader = DataLoader(ds)
    assert (loader.batch_size, loader.shuffle, loader.drop_last) == (1, False, False)
    assert len(loader) == 10


def test_batches_are_tuples_of_tensors_in_order_without_shuffle():
    X, y, ds = make_dataset()
    batches = list(DataLoader(ds, batch_size=3))
    assert all(isinstance(b, tuple) and len(b) == 2 for b in batches)
    assert all(type(t) is Tensor for b in batches for t in b)
    np.testing.assert_array_equal(np.concatenate([b[0].data for b in batches]), X)
    np.testing.assert_array_equal(epoch_labels(DataLoader(ds, batch_size=3)), y)


def test_loader_uses_one_batch_fetch_per_batch():
    """With batch indexing, the dataset is called once per batch with an index array, never per item."""
    calls = []

    class Recording(TensorDataset):
        def __getitem__(self, index):
            calls.append(np.asarray(index).shape)
            return super().__getitem__(index)

    ds = Recording(np.zeros((10, 2)), np.arange(10))
    list(DataLoader(ds, batch_size=4, shuffle=True, seed=0))
    assert calls == [(4,), (4,), (2,)]


def test_generic_dataset_is_stacked_item_by_item():
    class Pairs(Dataset):
        def __len__(self):
            return 5

        def __getitem__(self, i):
            return Tensor(np.full((2, 2), i, dtype=np.float32)), np.int64(i)

    class Single(Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            return np.array([i, -i])

    (xb, yb), (xc, yc) = list(DataLoader(Pairs(), batch_size=3))
    assert xb.shape == (3, 2, 2) and xc.shape == (2, 2, 2)
    np.testing.assert_array_equal(yb.data, [0, 1, 2])
    assert xb.dtype == np.float32
    (only,), = list(DataLoader(Single(), batch_size=4))      # a single value per item: a 1-tuple
    np.testing.assert_array_equal(only.data, [[0, 0], [1, -1], [2, -2], [3, -3]])


def test_generic_dataset_with_ragged_items_fails_clearly():
    class Ragged(Dataset):
        def __len__(self):
            return 2

        def __getitem__(self, i):
            return (np.zeros(i + 1),)

    with pytest.raises(ValueError, match="different shapes"):
        list(DataLoader(Ragged(), batch_size=2))


# --- DataLoader: shuffling ----------------------------------------------------------------------

def test_shuffle_is_a_permutation_new_each_epoch_and_reproducible():
    _, y, ds = make_dataset(100)
    loader = DataLoader(ds, batch_size=16, shuffle=True, seed=42)
    epochs = [epoch_labels(loader) for _ in range(3)]
    for order in epochs:
        np.testing.assert_array_equal(np.sort(order), y)
    assert not np.array_equal(epochs[0], epochs[1]) and not np.array_equal(epochs[1], epochs[2])
    twin = DataLoader(ds, batch_size=16, shuffle=True, seed=42)
    for order in epochs:
        np.testing.assert_array_equal(epoch_labels(twin), order)
    assert not np.array_equal(epoch_labels(DataLoader(ds, batch_size=16, shuffle=True, seed=43)), epochs[0])


def test_shuffle_keeps_features_and_labels_aligned():
    X, y, ds = make_dataset(50)
    for xb, yb in DataLoader(ds, batch_size=7, shuffle=True, seed=1):
        np.testing.assert_array_equal(xb.data, X[yb.data])


def test_shuffle_does_not_touch_global_random_state():
    _, _, ds = make_dataset(20)
    np.random.seed(0)
    expected = np.random.rand()
    np.random.seed(0)
    list(DataLoader(ds, batch_size=4, shuffle=True, seed=5))
    assert np.random.rand() == expected


def test_drop_last_with_shuffle_drops_a_different_remainder():
    _, _, ds = make_dataset(10)
    loader = DataLoader(ds, batch_size=4, shuffle=True, drop_last=True, seed=0)
    seen = [set(epoch_labels(loader)) for _ in range(7)]
    assert all(len(s) == 8 for s in seen)
    # Over several epochs every example gets its turn: each epoch drops one of 45 pairs, so all 7 drop the
    # first one's with probability 45**-6 = 1e-10 (5 epochs: 2e-7).
    assert len(set.union(*seen)) > 8


# --- DataLoader: argument checks ----------------------------------------------------------------

@pytest.mark.parametrize("kwargs,error,fragment", [
    ({"batch_size": 0}, ValueError, "0"),
    ({"batch_size": -3}, ValueError, "-3"),
    ({"batch_size": 2.5}, TypeError, "2.5"),
    ({"batch_size": "8"}, TypeError, "'8'"),
    ({"batch_size": True}, TypeError, "True"),
    ({"shuffle": 1}, TypeError, "shuffle"),
    ({"drop_last": None}, TypeError, "drop_last"),
    ({"seed": "abc"}, TypeError, "seed"),
])
def test_bad_arguments(kwargs, error, fragment):
    _, _, ds = make_dataset()
    with pytest.raises(error, match=fragment):
        DataLoader(ds, **kwargs)


def test_not_a_dataset():
    with pytest.raises(TypeError, match="int"):
        DataLoader(42)


def test_numpy_integer_batch_size_is_accepted():
    _, _, ds = make_dataset()
    assert len(DataLoader(ds, batch_size=np.int64(3))) == 4


if __name__ == "__main__":
    import sys

    import pytest
    sys.exit(pytest.main([__file__, "-q"]))
