"""PyTorch parity of module 16: a TransformerBlock and a whole CharTransformer against hand-written torch
equivalents with the same (copied) weights: values, gradients of every parameter, and Adam training steps."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from tinytorch.core.autograd import Variable
from tinytorch.core.capstone import CharTransformer, SequenceCrossEntropyLoss, TransformerBlock
from tinytorch.core.optimizers import Adam
from tinytorch.core.tensor import Tensor


def to_float64(module):
    for p in module.parameters():
        p.data = p.data.astype(np.float64)


def torch_params(module, dtype=torch.float64):
    """{dotted name: leaf tensor requiring grad} copied from a TinyTorch module's parameters."""
    return {name: torch.tensor(p.data, dtype=dtype, requires_grad=True) for name, p in module.named_parameters()}


def torch_block(x, P, prefix, heads):
    """The pre-norm causal block written out in torch: x + MHA(LN(x)), then x + FFN(LN(x)).

    TinyTorch's Dense stores weights as (in, out), so a projection is x @ W + b.
    """
    d = x.shape[-1]
    p = lambda name: P[f"{prefix}{name}"]                                    # noqa: E731
    h = F.layer_norm(x, (d,), p("norm1.gamma"), p("norm1.beta"), eps=1e-5)

    def split(t):                                                           # (B, L, d) -> (B, H, L, d/H)
        return t.reshape(*t.shape[:-1], heads, d // heads).transpose(-3, -2)
    q, k, v = (split(h @ p(f"attention.w_{n}.weights") + p(f"attention.w_{n}.bias")) for n in "qkv")
    attended = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    merged = attended.transpose(-3, -2).reshape(x.shape)
    x = x + merged @ p("attention.w_o.weights") + p("attention.w_o.bias")
    h = F.layer_norm(x, (d,), p("norm2.gamma"), p("norm2.beta"), eps=1e-5)
    hidden = torch.relu(h @ p("ffn.0.weights") + p("ffn.0.bias"))
    return x + hidden @ p("ffn.2.weights") + p("ffn.2.bias")


def torch_model(ids, model, P):
    """CharTransformer in torch: embedding + the same sinusoidal table, blocks, final LayerNorm, head."""
    seq = ids.shape[-1]
    table = torch.tensor(model.position.encoding.data[:seq], dtype=P["token_embedding.weight"].dtype)
    x = P["token_embedding.weight"][torch.tensor(ids)] + table
    for i, block in enumerate(model.blocks):
        x = torch_block(x, P, f"blocks.{i}.", block.attention.num_heads)
    x = F.layer_norm(x, (model.d_model,), P["norm.gamma"], P["norm.beta"], eps=1e-5)
    return x @ P["head.weights"] + P["head.bias"]


def assert_grads_match(module, P, tol):
    for name, p in module.named_parameters():
        assert p.grad is not None, name
        np.testing.assert_allclose(p.grad.data, P[name].grad.numpy(), rtol=tol, atol=tol, err_msg=name)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def test_block_values_and_gradients_match_torch(rng):
    block = TransformerBlock(12, 3, 40, seed=1)
    to_float64(block)
    for p in block.parameters():                          # LayerNorm off its identity initialisation
        p.data = p.data + rng.normal(size=p.shape) * 0.1
    x = rng.normal(size=(2, 7, 12))
    projection = rng.normal(size=(2, 7, 12))

    xv = Variable(x)
    out = block(xv)
    (out * Tensor(projection)).sum().backward()

    P = torch_params(block)
    tx = torch.tensor(x, requires_grad=True)
    t_out = torch_block(tx, P, "", heads=3)
    (t_out * torch.tensor(projection)).sum().backward()

    np.testing.assert_allclose(out.data, t_out.detach().numpy(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(xv.grad.data, tx.grad.numpy(), rtol=1e-10, atol=1e-10)
    assert_grads_match(block, P, 1e-10)


def test_block_float32_forward_matches_torch(rng):
    block = TransformerBlock(16, 4, 64, seed=2)
    x = rng.normal(size=(3, 9, 16)).astype(np.float32)
    P = torch_params(block, dtype=torch.float32)
    expected = torch_block(torch.tensor(x), P, "", heads=4).detach().numpy()
    out = block(Tensor(x))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.data, expected, rtol=1e-4, atol=1e-5)


def test_model_loss_and_every_gradient_match_torch(rng):
    model = CharTransformer(10, 12, 2, 2, 24, max_len=8, seed=3)
    to_float64(model)
    ids = rng.integers(0, 10, size=(3, 9))
    loss = SequenceCrossEntropyLoss()(model(ids[:, :-1]), ids[:, 1:])
    loss.backward()

    P = torch_params(model)
    logits = torch_model(ids[:, :-1], model, P)
    t_loss = F.cross_entropy(logits.reshape(-1, 10), torch.tensor(ids[:, 1:].reshape(-1)))
    t_loss.backward()

    assert np.isclose(loss.item(), t_loss.item(), rtol=1e-12)
    assert_grads_match(model, P, 1e-9)


def test_five_adam_steps_match_torch(rng):
    model = CharTransformer(8, 8, 2, 1, 16, max_len=6, seed=4)
    to_float64(model)
    P = torch_params(model)
    ours = Adam(model.parameters(), lr=1e-2)
    theirs = torch.optim.Adam(list(P.values()), lr=1e-2)
    loss_fn = SequenceCrossEntropyLoss()
    for _ in range(5):
        ids = rng.integers(0, 8, size=(4, 7))
        loss = loss_fn(model(ids[:, :-1]), ids[:, 1:])
        ours.zero_grad()
        loss.backward()
        ours.step()
        t_loss = F.cross_entropy(torch_model(ids[:, :-1], model, P).reshape(-1, 8),
                                 torch.tensor(ids[:, 1:].reshape(-1)))
        theirs.zero_grad()
        t_loss.backward()
        theirs.step()
        assert np.isclose(loss.item(), t_loss.item(), rtol=1e-9)
    for name, p in model.named_parameters():
        np.testing.assert_allclose(p.data, P[name].detach().numpy(), rtol=1e-8, atol=1e-10, err_msg=name)


if __name__ == "__main__":
    import sys

    sys.exit(pytest.main([__file__, "-q"]))
