"""Framework benchmarks: how much TinyTorch's abstractions cost beside hand-written NumPy and PyTorch.

    python benchmarks/framework.py            # every section
    python benchmarks/framework.py --quick    # fewer repeats
    python benchmarks/framework.py char       # only the sections whose title contains "char"

Section "mlp training step": one full training step (forward, cross-entropy, backward, Adam step) of the
digits MLP of examples/digits_mlp (64 -> 128 -> 64 -> 10, ReLU, float32) at batch 64, three ways:

- TinyTorch: create_mlp + CrossEntropyLoss + Adam, the graph recorded by autograd;
- NumPy by hand: the same arithmetic with the backward pass and the Adam update written out;
- PyTorch's CPU build, when it is installed (otherwise the section says so and goes on).

The three run interleaved in one process (round-robin, so drifting machine load hits them alike), each
timed many times; we report medians and the ratios to the hand-written NumPy step. Before timing, the
hand-written gradients are checked against TinyTorch's, so both compute the same thing.

Section "char_transformer training step": one training step (forward, sequence cross-entropy, backward,
Adam step) of the character transformer of examples/char_transformer, with that script's configuration
(d_model, heads, layers, d_ff, sequence length, dropout, batch, learning rate, read from the script itself)
and a batch of its training windows, two ways:

- TinyTorch: CharTransformer + SequenceCrossEntropyLoss + Adam, exactly the step train_language_model runs;
- the same model written in PyTorch (token embedding + sinusoidal positions, pre-norm blocks with four
  d_model x d_model projections, causal scaled-dot-product attention, ReLU feed-forward, dropout on each
  branch, final LayerNorm, linear head; torch.optim.Adam), one thread, with TinyTorch's initial weights.

Before timing, both models are put in eval mode (no dropout) and their logits, loss and gradients are
compared. Columns: the wall-clock median and quartiles, tokens per second, the ratio to PyTorch, the median
CPU time of this process per step (what the step costs even when other programs share the machine) and
minor page faults per step (fresh memory pages). Target: TinyTorch / PyTorch <= 1.5x (median step time).

Each step keeps its loss until the next step's forward pass replaces it, as `loss = ...` in a training loop
does (train_language_model's included). Written the other way, with each step's graph freed as the step
returns, glibc hands the ~20 MiB of activations back to the operating system every step and the next step
faults them in again: about 5,000 more minor page faults and 10-13 ms more per TinyTorch step on the
2-core virtual machine these numbers come from.

Section "conv2d": if benchmarks/conv2d.py exists, its `run()` is called and the rows it returns printed.

BLAS runs single-threaded (OPENBLAS/OMP/MKL_NUM_THREADS=1 unless already set, torch.set_num_threads(1)):
at these sizes threads add noise, not speed, and the comparison stays fair.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time
from pathlib import Path

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")       # before NumPy is imported

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from anywhere: import this tree's tinytorch
    sys.path.insert(0, str(ROOT))

from tinytorch.core.autograd import Variable  # noqa: E402
from tinytorch.core.capstone import CharTransformer, LanguageModelDataset, SequenceCrossEntropyLoss  # noqa: E402
from tinytorch.core.embeddings import CharTokenizer  # noqa: E402
from tinytorch.core.networks import create_mlp  # noqa: E402
from tinytorch.core.optimizers import Adam  # noqa: E402
from tinytorch.core.training import CrossEntropyLoss  # noqa: E402

HERE = Path(__file__).resolve().parent
SIZES = [64, 128, 64, 10]
BATCH = 64
LR, BETAS, EPS = 1e-3, (0.9, 0.999), 1e-8


# --- the three implementations of one training step -----------------------------------------------

def make_data(seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((BATCH, SIZES[0])).astype(np.float32), rng.integers(0, SIZES[-1], BATCH)


def tinytorch_step_fn(x, y):
    """A TinyTorch training step; returns (step function, model)."""
    model = create_mlp(SIZES[0], SIZES[1:-1], SIZES[-1], seed=0)
    optimizer, loss_fn = Adam(model.parameters(), lr=LR), CrossEntropyLoss()
    inputs = Variable(x, requires_grad=False)

    def step():
        loss = loss_fn(model(inputs), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss

    return step, model


class NumpyMLP:
    """The same MLP with forward, backward and Adam written by hand: the lower bound for NumPy code."""

    def __init__(self, weights):
        self.params = [np.array(w, copy=True) for w in weights]          # W1, b1, W2, b2, W3, b3
        self.m = [np.zeros_like(p) for p in self.params]
        self.v = [np.zeros_like(p) for p in self.params]
        self.t = 0

    def gradients(self, x, y):
        W1, b1, W2, b2, W3, b3 = self.params
        z1 = x @ W1 + b1
        h1 = np.maximum(z1, 0)
        z2 = h1 @ W2 + b2
        h2 = np.maximum(z2, 0)
        logits = h2 @ W3 + b3
        shifted = logits - logits.max(axis=1, keepdims=True)
        exp = np.exp(shifted)
        sum_exp = exp.sum(axis=1, keepdims=True)
        rows = np.arange(len(y))
        loss = np.mean(np.log(sum_exp[:, 0]) - shifted[rows, y])
        g = exp / sum_exp                               # dL/dlogits = (softmax - onehot) / N
        g[rows, y] -= 1.0
        g /= len(y)
        gW3, gb3 = h2.T @ g, g.sum(axis=0)
        g = (g @ W3.T) * (z2 > 0)
        gW2, gb2 = h1.T @ g, g.sum(axis=0)
        g = (g @ W2.T) * (z1 > 0)
        gW1, gb1 = x.T @ g, g.sum(axis=0)
        return loss, [gW1, gb1, gW2, gb2, gW3, gb3]

    def step(self, x, y):
        loss, grads = self.gradients(x, y)
        self.t += 1
        beta1, beta2 = BETAS
        c1, c2 = 1 - beta1 ** self.t, np.sqrt(1 - beta2 ** self.t)
        for p, g, m, v in zip(self.params, grads, self.m, self.v):
            m *= beta1
            m += (1 - beta1) * g
            v *= beta2
            v += (1 - beta2) * g * g
            p -= (LR / c1) * m / (np.sqrt(v) / c2 + EPS)
        return loss


def torch_step_fn(x, y, weights):
    """A PyTorch training step with the same initial weights, or None when PyTorch is missing."""
    try:
        import torch
    except ImportError:
        return None, None
    torch.set_num_threads(1)
    layers = []
    for i, (n_in, n_out) in enumerate(zip(SIZES[:-1], SIZES[1:])):
        linear = torch.nn.Linear(n_in, n_out)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(weights[2 * i].T.copy()))
            linear.bias.copy_(torch.from_numpy(weights[2 * i + 1]))
        layers += [linear, torch.nn.ReLU()]
    model = torch.nn.Sequential(*layers[:-1])
    optimizer = torch.optim.Adam(model.parameters(), lr=LR, betas=BETAS, eps=EPS)
    loss_fn = torch.nn.CrossEntropyLoss()
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    def step():
        loss = loss_fn(model(xt), yt)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss

    return step, torch.__version__


def check_same_computation(model, x, y):
    """The hand-written gradients equal TinyTorch's for the same weights and batch (float32 round-off)."""
    reference = NumpyMLP([p.data for p in model.parameters()])
    loss, grads = reference.gradients(x, y)
    ours = CrossEntropyLoss()(model(Variable(x, requires_grad=False)), y)
    for p in model.parameters():
        p.zero_grad()
    ours.backward()
    worst = max(float(np.max(np.abs(p.grad.data - g))) for p, g in zip(model.parameters(), grads))
    for p in model.parameters():
        p.zero_grad()
    if abs(float(ours.data) - loss) > 1e-5 or worst > 1e-5:
        raise AssertionError(f"the NumPy reference disagrees with TinyTorch: loss {loss} vs {float(ours.data)}, "
                             f"largest gradient difference {worst}")
    return worst


# --- timing ---------------------------------------------------------------------------------------

def _minor_page_faults():
    """Minor page faults of this process so far (0 where the resource module is missing, as on Windows)."""
    try:
        import resource
    except ImportError:
        return 0
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def interleaved_medians(functions, rounds, warmup=20, extra=None):
    """Median seconds per call of each function, timed round-robin (one call each per round).

    Returns (medians, quartiles) of the wall-clock time. If `extra` is a dict, it also receives, per function,
    {"cpu": median CPU seconds of this process per call, "faults": minor page faults per call}: CPU time
    leaves out the time other programs on a shared machine took the core, and faults count fresh memory pages.
    """
    for fn in functions.values():
        for _ in range(warmup):
            fn()
    times = {name: [] for name in functions}
    cpu = {name: [] for name in functions}
    faults = dict.fromkeys(functions, 0)
    names = list(functions)
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:    # rotate the order each round
            first_fault, start_cpu, start = _minor_page_faults(), time.process_time(), time.perf_counter()
            functions[name]()
            times[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
            faults[name] += _minor_page_faults() - first_fault
    if extra is not None:
        for name in functions:
            extra[name] = {"cpu": float(np.median(cpu[name])), "faults": faults[name] / rounds}
    return {name: float(np.median(t)) for name, t in times.items()}, {
        name: (float(np.percentile(t, 25)), float(np.percentile(t, 75))) for name, t in times.items()}


def mlp_training_step(rounds=400):
    """Section: one training step of the digits MLP; returns printable rows."""
    x, y = make_data()
    tiny_step, model = tinytorch_step_fn(x, y)
    weights = [p.data.copy() for p in model.parameters()]
    worst = check_same_computation(model, x, y)
    reference = NumpyMLP(weights)
    functions = {"tinytorch": tiny_step, "numpy by hand": lambda: reference.step(x, y)}
    torch_step, torch_version = torch_step_fn(x, y, weights)
    if torch_step is not None:
        functions[f"pytorch {torch_version}"] = torch_step
    medians, quartiles = interleaved_medians(functions, rounds)

    count = sum(w.size for w in weights)
    rows = [f"MLP {'-'.join(map(str, SIZES))} ({count} parameters, float32), batch {BATCH}, Adam + cross-entropy; "
            f"median of {rounds} interleaved steps",
            f"hand-written NumPy gradients match TinyTorch's (largest difference {worst:.1e})",
            f"{'implementation':22s} {'median (us)':>12s} {'IQR (us)':>17s} {'vs NumPy':>9s}"]
    base = medians["numpy by hand"]
    for name, seconds in medians.items():
        low, high = quartiles[name]
        rows.append(f"{name:22s} {seconds * 1e6:12.1f} {low * 1e6:8.1f}-{high * 1e6:<8.1f} {seconds / base:8.2f}x")
    if torch_step is None:
        rows.append("pytorch: not installed, skipped (pip install torch to compare)")
    ratio = medians["tinytorch"] / base
    verdict = "within" if ratio <= 3.0 else "NOT within"
    rows.append(f"TinyTorch / NumPy = {ratio:.2f}x: {verdict} the 3x target")
    return rows


# --- char_transformer: the example's training step, TinyTorch beside PyTorch ---------------------

CHAR_EXAMPLE = ROOT / "examples" / "char_transformer" / "train.py"
CHAR_RATIO_TARGET = 1.5


def char_example_config():
    """The example script's constants (its main() is not run) and its corpus's token ids."""
    spec = importlib.util.spec_from_file_location("tinytorch_example_char_transformer", CHAR_EXAMPLE)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    text = example.CORPUS.read_text(encoding="utf-8")
    tokenizer = CharTokenizer(text)
    ids = tokenizer.encode(text)
    config = {name: getattr(example, name) for name in
              ("D_MODEL", "HEADS", "LAYERS", "D_FF", "SEQ_LEN", "DROPOUT", "BATCH", "LR", "HELD_OUT")}
    config["VOCAB"] = tokenizer.vocab_size
    return config, ids[:int(len(ids) * (1 - config["HELD_OUT"]))]


def char_batch(config, train_ids, seed=0):
    """One batch of BATCH training windows (inputs, targets), int64 (BATCH, SEQ_LEN), as the example draws them."""
    dataset = LanguageModelDataset(train_ids, config["SEQ_LEN"])
    k = np.random.default_rng(seed).choice(len(dataset), config["BATCH"], replace=False)
    inputs, targets = dataset[k]
    return inputs.data, targets.data


def tinytorch_char_model(config):
    return CharTransformer(config["VOCAB"], config["D_MODEL"], config["HEADS"], config["LAYERS"], config["D_FF"],
                           max_len=config["SEQ_LEN"], dropout=config["DROPOUT"], seed=0)


def tinytorch_char_step_fn(model, config, inputs, targets):
    """TinyTorch's training step: the body of train_language_model's loop."""
    optimizer, loss_fn = Adam(model.parameters(), lr=config["LR"]), SequenceCrossEntropyLoss()
    model.train()
    loop = {}

    def step():
        # As the loop's `loss = ...`: the new loss replaces the previous one (and frees its graph) only once the
        # new forward pass is done, so the allocator reuses that memory instead of returning it to the system.
        loss = loop["loss"] = loss_fn(model(inputs), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss

    return step


def torch_char_model(config, tiny):
    """The same transformer in PyTorch, initialised with the TinyTorch model's weights (or None)."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(1)
    nn, F = torch.nn, torch.nn.functional
    d, heads = config["D_MODEL"], config["HEADS"]

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)
            self.w_q, self.w_k, self.w_v, self.w_o = (nn.Linear(d, d) for _ in range(4))
            self.ffn = nn.Sequential(nn.Linear(d, config["D_FF"]), nn.ReLU(), nn.Linear(config["D_FF"], d))
            self.dropout1, self.dropout2 = nn.Dropout(config["DROPOUT"]), nn.Dropout(config["DROPOUT"])

        def forward(self, x):
            b, n, _ = x.shape
            h = self.norm1(x)
            q, k, v = (w(h).view(b, n, heads, d // heads).transpose(1, 2) for w in (self.w_q, self.w_k, self.w_v))
            a = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(b, n, d)
            x = x + self.dropout1(self.w_o(a))
            return x + self.dropout2(self.ffn(self.norm2(x)))

    class TorchCharTransformer(nn.Module):
        def __init__(self):
            super().__init__()
            self.token_embedding = nn.Embedding(config["VOCAB"], d)
            self.register_buffer("position", torch.from_numpy(tiny.position.encoding.data.copy()))
            self.blocks = nn.ModuleList(Block() for _ in range(config["LAYERS"]))
            self.norm = nn.LayerNorm(d)
            self.head = nn.Linear(d, config["VOCAB"])

        def forward(self, ids):
            x = self.token_embedding(ids) + self.position[:ids.shape[-1]]
            for block in self.blocks:
                x = block(x)
            return self.head(self.norm(x))

    model = TorchCharTransformer()

    def copy(dst, src, transpose=False):
        with torch.no_grad():
            dst.copy_(torch.from_numpy(np.ascontiguousarray(src.data.T if transpose else src.data)))

    def copy_linear(dst, src):
        copy(dst.weight, src.weights, transpose=True)
        copy(dst.bias, src.bias)

    def copy_norm(dst, src):
        copy(dst.weight, src.gamma)
        copy(dst.bias, src.beta)

    copy(model.token_embedding.weight, tiny.token_embedding.weight)
    for ours, theirs in zip(model.blocks, tiny.blocks):
        copy_norm(ours.norm1, theirs.norm1)
        copy_norm(ours.norm2, theirs.norm2)
        for name in ("w_q", "w_k", "w_v", "w_o"):
            copy_linear(getattr(ours, name), getattr(theirs.attention, name))
        copy_linear(ours.ffn[0], theirs.ffn[0])
        copy_linear(ours.ffn[2], theirs.ffn[2])
    copy_norm(model.norm, tiny.norm)
    copy_linear(model.head, tiny.head)
    return model


def torch_char_step_fn(model, config, inputs, targets):
    import torch
    optimizer = torch.optim.Adam(model.parameters(), lr=config["LR"])
    xt, yt = torch.from_numpy(inputs), torch.from_numpy(targets).reshape(-1)
    model.train()
    loop = {}

    def step():
        loss = loop["loss"] = torch.nn.functional.cross_entropy(model(xt).reshape(-1, config["VOCAB"]), yt)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss

    return step


def check_char_models(tiny, reference, config, inputs, targets):
    """In eval mode (no dropout), TinyTorch and PyTorch give the same logits, loss and gradients.

    Returns (largest logit difference, largest gradient difference relative to the gradient's scale).
    """
    import torch
    tiny.eval()
    reference.eval()
    try:
        ours = SequenceCrossEntropyLoss()(tiny(inputs), targets)
        tiny.zero_grad()
        ours.backward()
        logits = reference(torch.from_numpy(inputs))
        theirs = torch.nn.functional.cross_entropy(logits.reshape(-1, config["VOCAB"]),
                                                   torch.from_numpy(targets).reshape(-1))
        reference.zero_grad()
        theirs.backward()
        logit_diff = float(np.max(np.abs(tiny(inputs).data - logits.detach().numpy())))
        ours_grads = {id(p): p.grad.data for p in tiny.parameters()}
        pairs = [(ours_grads[id(tiny.token_embedding.weight)], reference.token_embedding.weight.grad.numpy()),
                 (ours_grads[id(tiny.head.weights)], reference.head.weight.grad.numpy().T)]
        for ours_block, theirs_block in zip(tiny.blocks, reference.blocks):
            pairs += [(ours_grads[id(ours_block.attention.w_q.weights)], theirs_block.w_q.weight.grad.numpy().T),
                      (ours_grads[id(ours_block.ffn[0].weights)], theirs_block.ffn[0].weight.grad.numpy().T),
                      (ours_grads[id(ours_block.norm1.gamma)], theirs_block.norm1.weight.grad.numpy())]
        grad_diff = max(float(np.max(np.abs(a - b)) / (np.max(np.abs(b)) + 1e-12)) for a, b in pairs)
    finally:
        tiny.zero_grad()
        reference.zero_grad()
        tiny.train()
        reference.train()
    theirs = float(theirs.detach())
    if abs(float(ours.data) - theirs) > 1e-4 or logit_diff > 1e-3 or grad_diff > 1e-3:
        raise AssertionError(f"the PyTorch model disagrees with TinyTorch's: loss {float(ours.data)} vs "
                             f"{theirs}, largest logit difference {logit_diff}, largest relative "
                             f"gradient difference {grad_diff}")
    return logit_diff, grad_diff


def char_transformer_step(rounds=60):
    """Section: one training step of examples/char_transformer; returns printable rows."""
    config, train_ids = char_example_config()
    inputs, targets = char_batch(config, train_ids)
    tiny = tinytorch_char_model(config)
    count = sum(p.data.size for p in tiny.parameters())
    rows = [f"CharTransformer vocab {config['VOCAB']}, d_model {config['D_MODEL']}, {config['HEADS']} heads, "
            f"{config['LAYERS']} layers, d_ff {config['D_FF']}, dropout {config['DROPOUT']} ({count:,} parameters, "
            f"float32), batch {config['BATCH']} x {config['SEQ_LEN']} characters, Adam lr {config['LR']}; "
            f"median of {rounds} interleaved steps"]
    reference = torch_char_model(config, tiny)
    functions = {"tinytorch": tinytorch_char_step_fn(tiny, config, inputs, targets)}
    if reference is None:
        rows.append("pytorch: not installed, skipped (pip install torch to compare)")
    else:
        import torch
        logit_diff, grad_diff = check_char_models(tiny, reference, config, inputs, targets)
        rows.append(f"PyTorch model with TinyTorch's weights, eval mode: largest logit difference {logit_diff:.1e}, "
                    f"largest relative gradient difference {grad_diff:.1e}")
        functions[f"pytorch {torch.__version__} (1 thread)"] = torch_char_step_fn(reference, config, inputs, targets)
    extra = {}
    medians, quartiles = interleaved_medians(functions, rounds, warmup=5, extra=extra)
    base_name = next((name for name in medians if name.startswith("pytorch")), "tinytorch")
    base = medians[base_name]
    tokens = inputs.size
    rows.append(f"{'implementation':30s} {'median (ms)':>12s} {'IQR (ms)':>17s} {'tokens/s':>10s} {'vs PyTorch':>11s} "
                f"{'CPU (ms)':>9s} {'faults/step':>12s}")
    for name, seconds in medians.items():
        low, high = quartiles[name]
        rows.append(f"{name:30s} {seconds * 1e3:12.2f} {low * 1e3:8.2f}-{high * 1e3:<8.2f} "
                    f"{tokens / seconds:10,.0f} {seconds / base:10.2f}x {extra[name]['cpu'] * 1e3:9.2f} "
                    f"{extra[name]['faults']:12,.0f}")
    if reference is not None:
        ratio = medians["tinytorch"] / base
        cpu_ratio = extra["tinytorch"]["cpu"] / extra[base_name]["cpu"]
        verdict = "within" if ratio <= CHAR_RATIO_TARGET else "NOT within"
        rows.append(f"TinyTorch / PyTorch = {ratio:.2f}x: {verdict} the {CHAR_RATIO_TARGET}x target "
                    f"(CPU time: {cpu_ratio:.2f}x)")
    return rows


def conv2d_section():
    """Section: benchmarks/conv2d.py's run(), when that file exists."""
    path = HERE / "conv2d.py"
    if not path.is_file():
        return ["benchmarks/conv2d.py not found: section skipped"]
    spec = importlib.util.spec_from_file_location("tinytorch_benchmark_conv2d", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return [row if isinstance(row, str) else "  ".join(str(cell) for cell in row) for row in module.run()]


SECTIONS = [("mlp training step", mlp_training_step),
            ("char_transformer training step", char_transformer_step),
            ("conv2d forward + backward", conv2d_section)]
QUICK_ROUNDS = {mlp_training_step: 60, char_transformer_step: 15}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    quick = "--quick" in argv
    wanted = [word for word in argv if not word.startswith("--")]
    print(f"numpy {np.__version__}, python {sys.version.split()[0]}, "
          f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')}")
    for title, section in SECTIONS:
        if wanted and not any(word in title for word in wanted):
            continue
        print(f"\n== {title} ==", flush=True)
        rows = section(rounds=QUICK_ROUNDS[section]) if quick and section in QUICK_ROUNDS else section()
        for row in rows:
            print(row, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
