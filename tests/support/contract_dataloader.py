"""The contract of module 08 (Dataset, TensorDataset, DataLoader)."""

import numpy as np

from tinytorch.core.dataloader import DataLoader, TensorDataset
from tinytorch.core.tensor import Tensor


def dataloader_contract():
    x, y = np.arange(20.0).reshape(10, 2), np.arange(10)
    dataset = TensorDataset(x, y)
    assert len(dataset) == 10
    batches = list(DataLoader(dataset, batch_size=4))
    assert [len(b[1].data) for b in batches] == [4, 4, 2]
    assert all(isinstance(part, Tensor) for b in batches for part in b)
    assert np.array_equal(np.concatenate([b[0].data for b in batches]), x)
    first = [b[1].data.tolist() for b in DataLoader(dataset, batch_size=3, shuffle=True, seed=7)]
    again = [b[1].data.tolist() for b in DataLoader(dataset, batch_size=3, shuffle=True, seed=7)]
    assert first == again and sorted(sum(first, [])) == list(range(10))
    assert len(DataLoader(dataset, batch_size=4, drop_last=True)) == 2
