"""Module 14 (benchmarking) with everything it stands on: the harness timing real TinyTorch work.

The clock is either a fake one (exact assertions) or the real one (only structural assertions: how many
calls were made, that the benchmarked work really happened). No test asserts a wall-clock duration.
"""

import sys
from pathlib import Path

import numpy as np
import pytest

from tinytorch.core.activations import ReLU
from tinytorch.core.autograd import Variable, no_grad
from tinytorch.core.benchmarking import BenchmarkSuite, benchmark, compare
from tinytorch.core.dataloader import DataLoader, TensorDataset
from tinytorch.core.layers import Dense
from tinytorch.core.networks import Sequential, create_mlp
from tinytorch.core.optimizers import SGD, Adam
from tinytorch.core.tensor import Tensor
from tinytorch.core.training import CrossEntropyLoss, Trainer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))  # contract_*.py, also when run as a script
from contract_activations import activations_contract  # tests/support/
from contract_autograd import autograd_contract  # tests/support/
from contract_dataloader import dataloader_contract  # tests/support/
from contract_layers import layers_contract  # tests/support/
from contract_networks import networks_contract  # tests/support/
from contract_optimizers import optimizers_contract  # tests/support/
from contract_tensor import tensor_contract  # tests/support/
from contract_training import training_contract  # tests/support/


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_benchmarked_training_steps_really_train():
    """Every call the harness makes is a real step: warmup + calibration + repeats x loops of them."""
    rng = np.random.default_rng(0)
    centers = np.array([[2.0, 0.0], [-2.0, 0.0]])
    y = rng.integers(0, 2, 128)
    x = Variable((centers[y] + 0.5 * rng.standard_normal((128, 2))).astype(np.float32), requires_grad=False)
    model = create_mlp(2, [16], 2, seed=0)
    opt, loss_fn = SGD(model.parameters(), lr=0.1), CrossEntropyLoss()
    steps = {"n": 0}

    def step():
        steps["n"] += 1
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()

    with no_grad():
        before = float(loss_fn(model(Tensor(x.data)), y).data)
    r = benchmark(step, repeats=5, warmup=2, inner_loops=4)
    assert steps["n"] == 2 + 5 * 4
    with no_grad():
        after = float(loss_fn(model(Tensor(x.data)), y).data)
    assert after < before
    assert r.repeats == 5 and r.inner_loops == 4 and r.median > 0 and r.ci_low <= r.median <= r.ci_high


def test_suite_over_real_layers_with_a_cost_model_clock():
    """A fake clock charged with each forward's FLOPs: the suite's ratio equals the FLOP ratio exactly."""
    clock = FakeClock()
    small, big = Dense(32, 32, seed=0), Dense(32, 128, seed=1)
    x = Tensor(np.ones((16, 32), dtype=np.float32))

    def timed(layer):
        def run():
            out = layer(x)
            clock.now += 2 * x.shape[0] * layer.in_features * layer.out_features * 1e-9   # 1 GFLOP/s
            return out
        return run

    suite = BenchmarkSuite(repeats=6, warmup=1, min_time=1e-4, timer=clock)
    results = suite.add("small", timed(small)).add("big", timed(big)).run()
    c = compare(results["big"], results["small"])
    assert c.significant and abs(c.ratio - 4.0) < 1e-9
    assert "small is 4.00x faster than big" in str(c)


def test_trainer_epochs_benchmarked_interleaved_with_inference():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((64, 4)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64)
    model = Sequential([Dense(4, 8, seed=0), ReLU(), Dense(8, 2, seed=1)])
    trainer = Trainer(model, Adam(model.parameters(), lr=0.01), CrossEntropyLoss())
    loader = DataLoader(TensorDataset(X, y), batch_size=16)
    suite = BenchmarkSuite(repeats=3, warmup=0, min_time=0.0)
    suite.add("epoch", trainer.train_epoch, loader).add("inference", model, Tensor(X))
    results = suite.run()
    assert suite.order == ["epoch", "inference"] * 3
    assert all(r.median > 0 for r in results.values())
    assert "vs epoch" in suite.table()


LOWER_CONTRACTS = [
    tensor_contract, autograd_contract, activations_contract, layers_contract, networks_contract,
    dataloader_contract, optimizers_contract, training_contract,
]


@pytest.mark.parametrize("contract", LOWER_CONTRACTS, ids=lambda contract: contract.__name__)
def test_the_modules_below_keep_their_contract(contract):
    """A module is only as sound as what it stands on: each lower module's contract, checked again here."""
    contract()


if __name__ == "__main__":
    import sys

    import pytest

    sys.exit(pytest.main([__file__, "-q"]))
