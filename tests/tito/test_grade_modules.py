"""Grading the real modules: reference solutions score full points, released notebooks score zero."""

import sys
from pathlib import Path

import nbformat
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from treebuilder import REPO  # noqa: E402

from tito.model.devfile import DevFile  # noqa: E402
from tito.model.layout import discover  # noqa: E402
from tito.steps.notebooks import release_notebook  # noqa: E402
from tito.teaching.grade import grade  # noqa: E402

MODULES = [m for m in discover(REPO)]


def completed_notebook(module, folder: Path) -> Path:
    """The dev file as a notebook, solutions in place: what a perfect student hands in."""
    import jupytext

    path = folder / f"{module.name}-completed.ipynb"
    nbformat.write(jupytext.read(module.dev_file), path)
    return path


def released_notebook(module, folder: Path) -> Path:
    path = folder / f"{module.name}-released.ipynb"
    path.write_bytes(release_notebook(DevFile.read(module.dev_file)))
    return path


@pytest.mark.parametrize("module", MODULES, ids=[m.key for m in MODULES])
def test_reference_solutions_score_full_points_and_the_release_scores_zero(module, tmp_path):
    if not module.export_file.is_file():
        pytest.fail(f"{module.export_file} is missing: the root conftest runs `doit export` first")
    completed, released = completed_notebook(module, tmp_path), released_notebook(module, tmp_path)
    full, empty = grade(REPO, module.key, [completed, released], jobs=2, timeout=300)
    assert full.max_total > 0
    assert full.total == full.max_total, [(c.grade_id, c.status, c.reason) for c in full.cells]
    assert empty.total == 0, [(c.grade_id, c.status, c.reason) for c in empty.cells if c.points]
    assert all("NotImplementedError" in c.reason or c.status != "passed" for c in empty.cells)


def test_fifty_notebooks_grade_in_parallel(tmp_path):
    module = next(m for m in MODULES if m.key == "01_tensor")
    completed = completed_notebook(module, tmp_path)
    copies = []
    for index in range(50):
        copy = tmp_path / f"student{index:02d}.ipynb"
        copy.write_bytes(completed.read_bytes())
        copies.append(copy)
    gradebook = tmp_path / "gradebook.csv"
    results = grade(REPO, module.key, copies, jobs=2, timeout=300, gradebook=gradebook)
    assert len(results) == 50
    assert all(r.total == r.max_total > 0 for r in results)
    rows = gradebook.read_text().splitlines()
    assert rows[0] == "notebook,grade_id,points,max_points,status,reason,submitted,days_late,penalty,final"
    assert sum(",TOTAL," in row for row in rows) == 50


if __name__ == "__main__":
    import sys

    import pytest

    sys.exit(pytest.main([__file__, "-q"]))
