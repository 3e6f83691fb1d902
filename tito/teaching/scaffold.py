"""`tito module new NN_name`: a module skeleton in the house format that checks and builds at once.

It writes the dev file (header, directives, a solution cell, a graded test cell, a Systems Analysis),
a module test file, a progressive test (with the contracts of the modules below) and the module's own
contract in tests/support/. The skeleton's one function is a placeholder to replace.
"""

from __future__ import annotations

import json
from pathlib import Path

from tito.model.layout import MODULE_DIR_RE, SOURCE_DIR, SUPPORT_DIR, TESTS_DIR, discover


class ScaffoldError(Exception):
    pass


def _meta(grade_id: str, *, solution: bool = False, graded: bool = False, points: int | None = None) -> str:
    fields = {"grade": graded, "grade_id": grade_id, "locked": graded, "schema_version": 3, "solution": solution}
    if points is not None:
        fields["points"] = points
    return "nbgrader=" + json.dumps(fields)


def dev_file_text(number: int, name: str, uses_tensor: bool) -> str:
    title = name.replace("_", " ").title()
    tensor_import = "\nfrom tinytorch.core.tensor import Tensor" if uses_tensor else ""
    body = "Tensor(x) * factor" if uses_tensor else "np.asarray(x) * factor"
    return f'''# ---
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
# # Module {number:02d}: {title}
#
# What the learner builds here, why it matters, and what it stands on. Replace this prose.

# %% {_meta(f"{name}-imports")}
#| default_exp core.{name}
#| export
import time

import numpy as np{tensor_import}

# %% [markdown]
# ## A first function
#
# Explain the idea, show the shapes, say what it costs. `{name}_scale` is a placeholder: replace it
# with the module's first real function, keeping the solution markers around the part students write.

# %% {_meta(f"{name}-scale", solution=True)}
#| export
def {name}_scale(x, factor=2.0):
    """Multiply every element of x by factor. Shapes: any -> the same shape."""
    ### BEGIN SOLUTION
    return {body}
    ### END SOLUTION

# %% {_meta(f"test-{name}-scale", graded=True, points=1)}
def test_unit_{name}_scale():
    """{name}_scale doubles every element and keeps the shape."""
    out = {name}_scale(np.ones((2, 3)))
    values = np.asarray(out)
    assert values.shape == (2, 3)
    assert np.allclose(values, 2.0)

test_unit_{name}_scale()

# %% [markdown]
# ## Systems Analysis
#
# Measure the module's cost with real numbers: how time and memory grow with the input size.

# %% {_meta(f"{name}-analysis")}
def analyze_{name}_scaling():
    """Time of {name}_scale for growing sizes: it should grow linearly with the element count."""
    for n in (10_000, 100_000, 1_000_000):
        x = np.ones(n, dtype=np.float32)
        start = time.perf_counter()
        {name}_scale(x)
        seconds = time.perf_counter() - start
        print(f"n={{n:>9,}}  {{seconds * 1e6:8.1f}} us  {{x.nbytes / 2**20:6.2f}} MiB in")

analyze_{name}_scaling()
'''


def test_file_text(name: str) -> str:
    return f'''"""Tests of tinytorch.core.{name} (the exported package)."""

import numpy as np

from tinytorch.core.{name} import {name}_scale


def test_{name}_scale_multiplies_every_element():
    assert np.allclose(np.asarray({name}_scale(np.arange(4.0), factor=3.0)), [0.0, 3.0, 6.0, 9.0])


def test_{name}_scale_keeps_the_shape():
    assert np.asarray({name}_scale(np.zeros((2, 5)))).shape == (2, 5)


if __name__ == "__main__":
    import sys

    import pytest

    sys.exit(pytest.main([__file__, "-q"]))
'''


def progressive_test_text(name: str, uses_tensor: bool, tensor_contract: bool) -> str:
    setup = ("from tinytorch.core.tensor import Tensor\n" if uses_tensor else "")
    value = "Tensor(np.ones(3))" if uses_tensor else "np.ones(3)"
    # The support folder goes on sys.path in the file itself, so it also runs as a plain script.
    contract_import = ("\nimport sys\nfrom pathlib import Path\n\n"
                       'sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))  '
                       "# contract_*.py, also when run as a script\n"
                       "from contract_tensor import tensor_contract  # tests/support/\n") if tensor_contract else ""
    contracts = "tensor_contract" if tensor_contract else ""
    return f'''"""{name} together with the modules it stands on."""

import numpy as np
import pytest

{setup}from tinytorch.core.{name} import {name}_scale
{contract_import}

def test_{name}_works_with_the_modules_below():
    out = {name}_scale({value})
    assert np.allclose(np.asarray(out), 2.0)


LOWER_CONTRACTS = [{contracts}]


@pytest.mark.parametrize("contract", LOWER_CONTRACTS, ids=lambda contract: contract.__name__)
def test_the_modules_below_keep_their_contract(contract):
    """A module is only as sound as what it stands on: each lower module's contract, checked again here."""
    contract()


if __name__ == "__main__":
    import sys

    sys.exit(pytest.main([__file__, "-q"]))
'''


def contract_text(name: str) -> str:
    return f'''"""The contract of module {name}: what later modules may rely on, checked against NumPy."""

import numpy as np

from tinytorch.core.{name} import {name}_scale


def {name}_contract():
    assert np.allclose(np.asarray({name}_scale(np.arange(3.0), factor=2.0)), [0.0, 2.0, 4.0])
'''


def create_module(root: Path, key: str) -> list[Path]:
    """Write the skeleton of module `key` ("12_compression"); returns the files written, dev file first."""
    match = MODULE_DIR_RE.match(key)
    if not match:
        raise ScaffoldError(f"{key!r} is not a module name: use NN_name, two digits, an underscore and "
                            "lower-case letters, digits or underscores (e.g. 12_compression)")
    number, name = int(match.group(1)), match.group(2)
    existing = discover(root)
    for module in existing:
        if module.number == number or module.name == name:
            raise ScaffoldError(f"{module.key} already exists: pick another number and name")
    folder = Path(root) / SOURCE_DIR / key
    if folder.exists():
        raise ScaffoldError(f"{folder} already exists")
    uses_tensor = any(m.key == "01_tensor" for m in existing) and number > 1
    files = {
        folder / f"{name}_dev.py": dev_file_text(number, name, uses_tensor),
        folder / f"test_{name}_core.py": test_file_text(name),
        Path(root) / TESTS_DIR / f"module_{number:02d}" / "test_progressive_integration.py":
            progressive_test_text(name, uses_tensor, (Path(root) / SUPPORT_DIR / "contract_tensor.py").is_file()),
        Path(root) / SUPPORT_DIR / f"contract_{name}.py": contract_text(name),
    }
    for path in files:
        if path.exists():
            raise ScaffoldError(f"{path} already exists: not overwriting it")
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return list(files)
