"""PyTorch parity: values and gradients of every Variable operation against torch, in float64.

Skipped (never failed) where PyTorch is not installed.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tinytorch.core.autograd import Variable  # noqa: E402  (after the importorskip, on purpose)

pytestmark = pytest.mark.torch


def run_both(fn_tt, fn_torch, shapes, positive=False, seed=0):
    """Run fn on TinyTorch Variables and on torch tensors with the same float64 inputs.

    Backpropagates the same random projection of the output through both and returns
    (tinytorch output, torch output, tinytorch grads, torch grads) as NumPy arrays.
    """
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(shape) for shape in shapes]
    if positive:
        arrays = [np.abs(a) + 0.5 for a in arrays]
    ours = [Variable(a.copy(), dtype=np.float64) for a in arrays]
    theirs = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]

    out_tt, out_torch = fn_tt(*ours), fn_torch(*theirs)
    projection = rng.standard_normal(out_tt.shape)
    out_tt.backward(projection)
    out_torch.backward(torch.tensor(projection, dtype=torch.float64))
    return (out_tt.data, out_torch.detach().numpy(),
            [v.grad.data for v in ours], [t.grad.numpy() for t in theirs])


def assert_parity(fn_tt, fn_torch, shapes, positive=False):
    out_tt, out_torch, grads_tt, grads_torch = run_both(fn_tt, fn_torch, shapes, positive)
    assert out_tt.shape == out_torch.shape
    np.testing.assert_allclose(out_tt, out_torch, rtol=1e-10, atol=1e-12)
    for i, (ours, theirs) in enumerate(zip(grads_tt, grads_torch)):
        assert ours.shape == theirs.shape, f"input {i}"
        np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12, err_msg=f"gradient of input {i}")


# ---- elementwise arithmetic with broadcasting ------------------------------------------------------

BINARY = {
    "add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b, "pow": lambda a, b: a ** b,
}
BROADCAST_PAIRS = [((2, 3), (2, 3)), ((2, 3), (3,)), ((3,), (2, 3)), ((2, 1), (1, 3)), ((4, 1, 3), (2, 1)),
                   ((), (2, 3)), ((2, 3), ())]


@pytest.mark.parametrize("name", sorted(BINARY))
@pytest.mark.parametrize("left, right", BROADCAST_PAIRS)
def test_binary_ops(name, left, right):
    assert_parity(BINARY[name], BINARY[name], [left, right], positive=True)


UNARY = {
    "neg": lambda a: -a, "radd": lambda a: 2.0 + a, "rsub": lambda a: 1.0 - a, "rmul": lambda a: 3.0 * a,
    "rtruediv": lambda a: 2.0 / a, "rpow": lambda a: 2.0 ** a, "pow-scalar": lambda a: a ** 3,
    "pow-fraction": lambda a: a ** 0.5, "pow-negative": lambda a: a ** -2.0, "exp": lambda a: a.exp(),
    "log": lambda a: a.log(), "square-minus-self": lambda a: a * a - a,
}


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_ops(name):
    assert_parity(UNARY[name], UNARY[name], [(2, 3)], positive=True)


def test_division_by_tensor_and_constants():
    assert_parity(lambda a, b: (a + 1.0) / (b * b + 1.0), lambda a, b: (a + 1.0) / (b * b + 1.0), [(3, 4), (4,)])


# ---- matmul ---------------------------------------------------------------------------------------

MATMUL_SHAPES = [((2, 3), (3, 4)), ((5, 2, 3), (5, 3, 4)), ((5, 2, 3), (3, 4)), ((2, 3), (5, 3, 4)),
                 ((2, 1, 2, 3), (4, 3, 2)), ((3, 1, 2, 3), (1, 2, 3, 2)), ((3,), (3, 4)), ((2, 3), (3,)),
                 ((3,), (3,)), ((5, 2, 3), (3,)), ((3,), (5, 3, 2))]


@pytest.mark.parametrize("left, right", MATMUL_SHAPES)
def test_matmul(left, right):
    assert_parity(lambda a, b: a @ b, lambda a, b: a @ b, [left, right])


# ---- reductions ------------------------------------------------------------------------------------

AXES = [None, 0, 1, 2, -1, (0, 1), (0, 2), (1, 2), (0, 1, 2), (-1, 0)]


def torch_dims(axis, ndim):
    return tuple(range(ndim)) if axis is None else axis


@pytest.mark.parametrize("axis", AXES)
@pytest.mark.parametrize("keepdims", [False, True])
def test_sum(axis, keepdims):
    assert_parity(lambda a: a.sum(axis=axis, keepdims=keepdims),
                  lambda a: a.sum(dim=torch_dims(axis, 3), keepdim=keepdims), [(2, 3, 4)])


@pytest.mark.parametrize("axis", AXES)
@pytest.mark.parametrize("keepdims", [False, True])
def test_mean(axis, keepdims):
    assert_parity(lambda a: a.mean(axis=axis, keepdims=keepdims),
                  lambda a: a.mean(dim=torch_dims(axis, 3), keepdim=keepdims), [(2, 3, 4)])


@pytest.mark.parametrize("axis", AXES)
@pytest.mark.parametrize("keepdims", [False, True])
def test_max(axis, keepdims):
    assert_parity(lambda a: a.max(axis=axis, keepdims=keepdims),
                  lambda a: torch.amax(a, dim=torch_dims(axis, 3), keepdim=keepdims), [(2, 3, 4)])


@pytest.mark.parametrize("axis", [None, 0, 1, (0, 1)])
def test_max_with_ties_matches_amax(axis):
    values = np.array([[1.0, 3.0, 3.0, 0.0], [2.0, 2.0, 2.0, 2.0], [5.0, -1.0, 5.0, 5.0]])
    ours = Variable(values.copy(), dtype=np.float64)
    theirs = torch.tensor(values, requires_grad=True)
    projection = np.random.default_rng(1).standard_normal(np.max(values, axis=axis).shape)
    ours.max(axis=axis).backward(projection)
    torch.amax(theirs, dim=torch_dims(axis, 2)).backward(torch.tensor(projection))
    np.testing.assert_allclose(ours.grad.data, theirs.grad.numpy(), rtol=1e-12)


# ---- shape operations and indexing ------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(6, 4), (-1,), (4, 3, 2), (24, 1)])
def test_reshape(shape):
    assert_parity(lambda a: a.reshape(*shape), lambda a: a.reshape(*shape), [(2, 3, 4)])


@pytest.mark.parametrize("axes", [(), (1, 0, 2), (2, 0, 1), (0, 2, 1)])
def test_transpose(axes):
    torch_axes = axes if axes else (2, 1, 0)
    assert_parity(lambda a: a.transpose(*axes), lambda a: a.permute(*torch_axes), [(2, 3, 4)])


def test_T_of_a_matrix():
    assert_parity(lambda a: a.T @ a, lambda a: a.T @ a, [(3, 2)])


INDICES = {
    "int": 1, "negative": -1, "pair": (1, 2), "slice": slice(1, None), "column": (slice(None), 2),
    "step": (slice(None, None, 2), slice(1, 4)), "repeated": [0, 0, 2, 0],
    "repeated-pairs": ([0, 1, 1, 1], [3, 2, 2, 2]), "mask": [True, False, True],
    "column-mask": (slice(None), [True, False, True, True]),
}


@pytest.mark.parametrize("name", sorted(INDICES))
def test_indexing(name):
    index = INDICES[name]

    def to_torch(part):
        return torch.tensor(part) if isinstance(part, list) else part
    torch_index = tuple(to_torch(p) for p in index) if isinstance(index, tuple) else to_torch(index)
    ours_index = tuple(np.array(p) if isinstance(p, list) else p for p in index) if isinstance(index, tuple) \
        else (np.array(index) if isinstance(index, list) else index)
    assert_parity(lambda a: a[ours_index], lambda a: a[torch_index], [(3, 4)])


# ---- composites, constants and accumulation -------------------------------------------------------

def test_small_network_with_softmax_cross_entropy():
    x = np.random.default_rng(3).standard_normal((4, 3))
    labels = np.array([0, 1, 1, 0])

    def ours(w1, b1, w2):
        h = x @ w1 + b1
        h = h * (h > 0)
        logits = h @ w2
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_probs = shifted - shifted.exp().sum(axis=1, keepdims=True).log()
        return -log_probs[np.arange(4), labels].mean()

    def theirs(w1, b1, w2):
        h = torch.tensor(x) @ w1 + b1
        h = h * (h > 0)
        logits = h @ w2
        shifted = logits - torch.amax(logits, dim=1, keepdim=True)
        log_probs = shifted - shifted.exp().sum(dim=1, keepdim=True).log()
        return -log_probs[torch.arange(4), torch.tensor(labels)].mean()

    assert_parity(ours, theirs, [(3, 5), (5,), (5, 2)])


def test_accumulation_over_two_backward_calls():
    rng = np.random.default_rng(4)
    w_np, x1, x2 = rng.standard_normal((3, 2)), rng.standard_normal((4, 3)), rng.standard_normal((5, 3))
    ours = Variable(w_np.copy())
    theirs = torch.tensor(w_np, requires_grad=True)
    for x in (x1, x2):
        ((x @ ours).exp().sum()).backward()
        ((torch.tensor(x) @ theirs).exp().sum()).backward()
    np.testing.assert_allclose(ours.grad.data, theirs.grad.numpy(), rtol=1e-10)


def test_variable_reused_in_several_branches():
    assert_parity(lambda a: (a * a.exp() + a / (a + 2.0)).sum(axis=0) * a.mean(),
                  lambda a: (a * a.exp() + a / (a + 2.0)).sum(dim=0) * a.mean(), [(3, 4)], positive=True)


if __name__ == "__main__":
    import sys

    import pytest
    sys.exit(pytest.main([__file__, "-q"]))
