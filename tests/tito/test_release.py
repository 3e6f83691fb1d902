"""tito.notebooks: the student release notebook of a dev file.

The fixture module (fixtures/calc_dev.py) is copied into a project tree in a temporary folder:
modules/source/02_calc/calc_dev.py, the layout the release reads its module key and path from.
"""

import shutil
from pathlib import Path

import jupytext
import nbformat
import pytest

from tito.model.devfile import DevFile
from tito.steps.notebooks import (
    ReleaseError,
    release_is_current,
    release_module,
    release_notebook,
)
from tito.steps.orphans import no_orphans, orphan_files, remove_orphan_files

FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture
def project(tmp_path):
    root = tmp_path / "project"
    folder = root / "modules" / "source" / "02_calc"
    folder.mkdir(parents=True)
    shutil.copy(FIXTURES / "calc_dev.py", folder / "calc_dev.py")
    return root


def dev(root: Path) -> Path:
    return root / "modules" / "source" / "02_calc" / "calc_dev.py"


def cells_by_id(data: bytes) -> dict:
    """The notebook's cells by id, sources as single strings (the .ipynb stores lists of lines)."""
    return {cell["id"]: cell for cell in nbformat.reads(data.decode(), as_version=4).cells}


def test_release_is_a_valid_v4_5_notebook(project):
    data = release_notebook(DevFile.read(dev(project)))
    notebook = nbformat.reads(data.decode(), as_version=4)
    nbformat.validate(notebook)
    assert (notebook.nbformat, notebook.nbformat_minor) == (4, 5)
    assert notebook.metadata.kernelspec.name == "python3"
    assert notebook.metadata.language_info.name == "python"
    stamp = dict(notebook.metadata.tinytorch)
    assert len(stamp.pop("content_sha256")) == 64  # how a hand edit of the notebook is noticed
    assert stamp == {"module": "02_calc", "source": "modules/source/02_calc/calc_dev.py"}
    assert "jupytext" not in notebook.metadata


def test_release_has_no_solution_and_no_hidden_test(project):
    text = release_notebook(DevFile.read(dev(project))).decode()
    for leaked in ("BEGIN SOLUTION", "END SOLUTION", "return a + b", "self.factor * base_value()",
                   "HIDDEN TESTS", "add(-7, 7)"):
        assert leaked not in text, leaked
    cells = cells_by_id(text.encode())
    assert 'raise NotImplementedError("Implement add (see the docstring above)")' in cells["calc-add"]["source"]
    assert 'raise NotImplementedError("Implement Scaler.scale (see the docstring above)")' in \
        cells["calc-scaler"]["source"]
    assert "assert add(2, 3) == 5" in cells["test-add"]["source"]  # visible tests stay


def test_release_keeps_directives_metadata_and_prose(project):
    cells = cells_by_id(release_notebook(DevFile.read(dev(project))))
    assert cells["calc-imports"]["source"].startswith("#| default_exp core.calc\n#| export\n")
    assert cells["calc-add"]["source"].startswith("#| export\n")
    assert cells["test-add"]["metadata"] == {"nbgrader": {"grade": True, "grade_id": "test-add", "locked": True,
                                                          "points": 2, "schema_version": 3, "solution": False}}
    markdown = [c for c in cells.values() if c["cell_type"] == "markdown"]
    assert markdown[0]["source"].startswith("# calc") and markdown[0]["metadata"] == {}
    for cell in cells.values():  # jupytext's own keys are not for students
        assert set(cell["metadata"]) <= {"nbgrader"}, cell["metadata"]
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None


def test_release_is_byte_identical_across_builds(project):
    first = release_notebook(DevFile.read(dev(project)))
    assert release_notebook(DevFile.read(dev(project))) == first
    assert first.endswith(b"}\n")


def test_a_prose_edit_changes_only_that_cell(project):
    before = cells_by_id(release_notebook(DevFile.read(dev(project))))
    path = dev(project)
    path.write_text(path.read_text().replace("# ## Systems Analysis", "# ## Systems Analysis\n#\n# More prose."))
    after = cells_by_id(release_notebook(DevFile.read(dev(project))))
    assert list(before) == list(after)  # ids come from grade ids and indexes, not randomness
    assert [k for k in before if before[k] != after[k]] == [k for k in before if "More prose" in after[k]["source"]]


def test_release_opens_with_jupytext(project):
    notebook = jupytext.reads(release_notebook(DevFile.read(dev(project))).decode(), fmt="ipynb")
    assert [c.cell_type for c in notebook.cells].count("code") == 7


def test_release_refuses_an_invalid_dev_file(project):
    path = dev(project)
    path.write_text(path.read_text().replace("        ### END SOLUTION\n", "", 1))
    with pytest.raises(ReleaseError) as raised:
        release_notebook(DevFile.read(path))
    assert raised.value.messages[0].startswith("modules/source/02_calc/calc_dev.py:")
    assert "never closed" in raised.value.messages[0]


def test_release_module_writes_only_when_changed(project):
    result = release_module(str(project), "02_calc")
    target = project / "modules" / "release" / "02_calc" / "calc.ipynb"
    assert target.read_bytes() == release_notebook(DevFile.read(dev(project)))
    assert release_is_current(None, result, str(dev(project)), str(target))
    mtime = target.stat().st_mtime_ns
    assert release_module(str(project), "02_calc") == result
    assert target.stat().st_mtime_ns == mtime  # unchanged bytes are not rewritten: early cutoff

    target.write_text(target.read_text().replace("calc", "CALC"))  # a hand edit is noticed
    assert not release_is_current(None, result, str(dev(project)), str(target))


def test_release_module_fails_with_file_and_line(project):
    from doit.exceptions import TaskFailed

    path = dev(project)
    path.write_text(path.read_text().replace('"points": 3, ', "", 1))
    failed = release_module(str(project), "02_calc")
    assert isinstance(failed, TaskFailed)
    assert "modules/source/02_calc/calc_dev.py:57: a graded cell" in failed.message
    assert "doit release:02_calc" in failed.message
    assert not (project / "modules" / "release").exists()


def test_release_notebooks_of_removed_modules_are_orphans(project):
    release_module(str(project), "02_calc")
    kept = project / "modules" / "release" / "02_calc" / "calc.ipynb"
    gone = project / "modules" / "release" / "03_gone" / "gone.ipynb"
    gone.parent.mkdir()
    gone.write_bytes(kept.read_bytes())
    mine = project / "modules" / "release" / "02_calc" / "my-notes.ipynb"  # not generated by us: left alone
    mine.write_text('{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}')
    assert orphan_files(str(project)) == [gone]
    assert not no_orphans(str(project))
    remove_orphan_files(str(project))
    assert not gone.parent.exists() and kept.exists() and mine.exists()
    assert no_orphans(str(project))


def test_nbgrader_accepts_the_release(project):
    pytest.importorskip("nbgrader")
    from nbgrader.nbgraderformat.v3 import MetadataValidatorV3

    notebook = nbformat.reads(release_notebook(DevFile.read(dev(project))).decode(), as_version=4)
    MetadataValidatorV3().validate_nb(notebook)


if __name__ == "__main__":
    import sys

    import pytest

    sys.exit(pytest.main([__file__, "-q"]))
