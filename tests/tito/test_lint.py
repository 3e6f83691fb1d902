"""`check:lint`: ruff over the project, part of `doit`, re-run only when a linted file changes.

The real repository has zero findings (CI runs this file through pytest); on a fixture tree with a
ruff configuration, an unused import fails the task with its file and line.
"""

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RUFF_CONFIG = '[tool.ruff]\nline-length = 120\n\n[tool.ruff.lint]\nselect = ["F", "E", "W"]\nignore = ["E501"]\n'

pytest.importorskip("ruff", reason="ruff is part of the dev extras: pip install -e '.[dev]'")


def test_the_repository_has_no_lint_findings():
    from tito.steps.lint import LINTED_FOLDERS

    done = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", *LINTED_FOLDERS, "modules/source",
                           "dodo.py", "conftest.py"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True)
    assert done.returncode == 0, done.stdout


def test_lint_is_a_default_task_of_the_real_graph():
    done = subprocess.run([sys.executable, "-m", "doit", "list", "--all"], cwd=REPO, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
    assert "check:lint" in done.stdout, done.stdout


def test_an_unused_import_fails_lint_and_only_a_linted_edit_reruns_it(tree):
    tree.write("pyproject.toml", RUFF_CONFIG)
    first = tree.doit("check:lint")
    assert first.code == 0 and first.executed == {"check:lint"}, first.output
    assert tree.doit("check:lint").executed == set()  # inputs unchanged: nothing to do

    tree.replace("examples/uses_mid/train.py", "from tinytorch", "import os\nfrom tinytorch")
    failed = tree.doit("check:lint")
    assert failed.code == 1
    assert "examples/uses_mid/train.py:1:8: F401" in failed.output and "`os` imported but unused" in failed.output
    assert "ruff check --fix" in failed.output  # says what to do next

    tree.replace("examples/uses_mid/train.py", "import os\n", "")
    assert tree.doit("check:lint").code == 0


def test_a_tree_without_ruff_configuration_has_no_lint_task(tree):
    listed = tree.doit("list", "--all")
    assert "check:lint" not in listed.output and "check:01_base" in listed.output


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
