import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from treebuilder import Tree  # noqa: E402


@pytest.fixture
def tree(tmp_path):
    """A fresh fixture module tree, not yet built."""
    return Tree.create(tmp_path / "project")


@pytest.fixture
def built(tree):
    """The fixture tree after one successful full build."""
    result = tree.doit()
    assert result.code == 0, result.output
    return tree
