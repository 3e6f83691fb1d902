"""A small module tree, built in a temporary folder, for testing the build graph for real.

Four modules: 01_base <- 02_mid <- 03_top, and 04_side which stands on 01_base only. Each has a dev
file in the house format, a module test file, and a progressive test; one example reaches 02_mid.
`doit` runs in a subprocess exactly as a user runs it, and `executed` reads which tasks ran.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
EXECUTED_RE = re.compile(r"^\.  (\S+)\s*$", re.MULTILINE)

HEADER = '''# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---
'''


def meta(grade_id: str, *, solution=False, grade=False, points=None) -> str:
    fields = {"grade": grade, "grade_id": grade_id, "locked": grade, "schema_version": 3, "solution": solution}
    if points is not None:
        fields["points"] = points
    return "nbgrader=" + json.dumps(fields, sort_keys=True)


def dev_file(name: str, imports: list[str], body: str, prose: str = "A fixture module.") -> str:
    import_lines = "\n".join(imports)
    return textwrap.dedent(f"""\
{HEADER}
# %% [markdown]
# # {name}
#
# {prose}

# %% {meta(name + "-imports")}
#| default_exp core.{name}
#| export
{import_lines}

# %% {meta(name + "-code", solution=True)}
#| export
{body}

# %% {meta(name + "-test", grade=True, points=1)}
def test_unit_{name}():
    assert {name}_value() > 0

test_unit_{name}()

# %% [markdown]
# ## Systems Analysis

# %% {meta(name + "-analysis")}
def analyze_{name}_size():
    print("bytes:", len(repr({name}_value())))

analyze_{name}_size()
""")


MODULES = {
    "01_base": ([], "def base_value():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION"),
    "02_mid": (["from tinytorch.core.base import base_value"],
               "def mid_value():\n    ### BEGIN SOLUTION\n    return base_value() + 1\n    ### END SOLUTION"),
    "03_top": (["from tinytorch.core.mid import mid_value"], "def top_value():\n    return mid_value() + 1"),
    "04_side": (["from tinytorch.core.base import base_value"], "def side_value():\n    return base_value() * 10"),
}


@dataclass
class Result:
    code: int
    output: str

    @property
    def executed(self) -> set[str]:
        return set(EXECUTED_RE.findall(self.output))


class Tree:
    def __init__(self, root: Path):
        self.root = Path(root)

    # --- building -----------------------------------------------------------------------------------

    @classmethod
    def create(cls, root: Path) -> Tree:
        tree = cls(root)
        tree.write("dodo.py", "from tito.tasks import *  # noqa\n")
        tree.write("tinytorch/__init__.py", '"""fixture package"""\n')
        tree.write("tinytorch/core/__init__.py", '"""fixture core"""\n')
        for key, (imports, body) in MODULES.items():
            tree.add_module(key, imports, body)
        tree.write("examples/uses_mid/train.py",
                   "from tinytorch.core.mid import mid_value\n\nassert mid_value() >= 2\nprint('target reached')\n")
        return tree

    def add_module(self, key: str, imports: list[str], body: str) -> None:
        number, name = key.split("_", 1)
        folder = f"modules/source/{key}"
        self.write(f"{folder}/{name}_dev.py", dev_file(name, imports, body))
        self.write(f"{folder}/test_{name}_core.py",
                   f"from tinytorch.core.{name} import {name}_value\n\n\n"
                   f"def test_{name}_positive():\n    assert {name}_value() > 0\n")
        self.write(f"tests/module_{number}/test_progressive_integration.py",
                   f"from tinytorch.core.{name} import {name}_value\n\n\n"
                   f"def test_{name}_with_everything_below():\n    assert {name}_value() >= 1\n")

    def write(self, rel: str, text: str) -> None:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    def read(self, rel: str) -> str:
        return (self.root / rel).read_text()

    def replace(self, rel: str, old: str, new: str) -> None:
        text = self.read(rel)
        assert old in text, f"{old!r} not in {rel}"
        self.write(rel, text.replace(old, new, 1))

    def dev(self, key: str) -> str:
        return f"modules/source/{key}/{key.split('_', 1)[1]}_dev.py"

    # --- running ------------------------------------------------------------------------------------

    def env(self, **extra: str) -> dict:
        env = dict(os.environ)
        # The fixture's own tinytorch must win; tito comes from this repository.
        env["PYTHONPATH"] = os.pathsep.join([str(self.root), str(REPO)])
        env.pop("TITO_BUILD", None)
        env.pop("TITO_DISCARD_EDITS", None)
        env.update(extra)
        return env

    def doit(self, *args: str, timeout: float = 300, **env: str) -> Result:
        done = subprocess.run([sys.executable, "-m", "doit", *args], cwd=self.root, env=self.env(**env),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout)
        return Result(done.returncode, done.stdout)

    def popen_doit(self, *args: str, new_session: bool = False, **env: str) -> subprocess.Popen:
        """doit in the background; `new_session` puts it and everything it starts in a process group of
        their own (as a terminal does), for signalling all of them at once."""
        return subprocess.Popen([sys.executable, "-m", "doit", *args], cwd=self.root, env=self.env(**env),
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                start_new_session=new_session)

    def outputs(self) -> dict[str, bytes]:
        """Every export and release notebook, by path: what any build of the same sources must reproduce."""
        notebooks = sorted((self.root / "modules" / "release").glob("*/*.ipynb"))
        return {**self.generated(), **{str(p.relative_to(self.root)): p.read_bytes() for p in notebooks}}

    def report_view(self) -> dict[str, tuple]:
        """The memory reports without their measurements (peaks, times and dates differ on every run): per
        profile, whether memray ran, its folder's files, whether the folder still matches the hashes its
        stats.json records, and the row and flame-graph link of reports/index.html."""
        if str(REPO) not in sys.path:
            sys.path.insert(0, str(REPO))
        from tito.steps.generated import state
        from tito.steps.memory import REPORT

        reports = self.root / "reports"
        index = (reports / "index.html").read_text()
        rows = dict(re.findall(r'<tr[^>]*><td>([^<]+)</td>.*?(?:href="([^"]+)"|</tr>)', index))
        view = {}
        for entry in json.loads((reports / "summary.json").read_text())["entries"]:
            folder = (reports / entry["flamegraph"]).parent
            view[entry["label"]] = (entry["available"], sorted(p.name for p in folder.iterdir()),
                                    state(folder, REPORT), rows.get(entry["label"]))
        return view

    def leftovers(self) -> list[str]:
        """Temporary files and folders (of a build that was interrupted) still in the tree."""
        found = [*self.root.rglob(".*.tmp-*"), *(self.root / "reports" / ".partial").glob("*")]
        return sorted(str(p.relative_to(self.root)) for p in found)

    def generated(self) -> dict[str, bytes]:
        """Every generated file's bytes, by path relative to the root."""
        return {str(p.relative_to(self.root)): p.read_bytes()
                for p in sorted((self.root / "tinytorch" / "core").glob("*.py")) if p.name != "__init__.py"}


ALL_TASKS = {
    *(f"{family}:{key}" for family in ("check", "export", "test", "integrate", "release")
      for key in MODULES),
    "check:public-names", "check:example:uses_mid", "example:uses_mid", "report",
}
