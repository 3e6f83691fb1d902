"""tito.grade: autograding student notebooks in sandboxes.

One project tree per test module, in a temporary folder: 01_base (from treebuilder) and 02_calc
(fixtures/calc_dev.py: graded cells test-add 2 points, test-scaler 3, test-add-arrays 1), both exported
with tito.export. Student notebooks are the release notebook of 02_calc with some cells completed.
"""

import csv
import json
import shutil
import sys
import time
from pathlib import Path

import nbformat
import pytest

from tito.model.devfile import DevFile
from tito.model.graph import Graph
from tito.steps.export import build_export, package_body
from tito.steps.notebooks import release_notebook
from tito.teaching.grade import (
    GradingError,
    changed_files,
    format_table,
    grade,
    repository_digest,
    student_export,
    to_json,
    write_gradebook,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from treebuilder import MODULES, dev_file  # noqa: E402

FIXTURES = Path(__file__).resolve().parent / "fixtures"
FULL = 6  # points of the fixture module

ADD = '#| export\ndef add(a, b):\n    """Return a + b."""\n    return a + b\n'
SCALER = ('#| export\nclass Scaler:\n    def __init__(self, factor):\n        self.factor = factor\n\n'
          '    def scale(self, x):\n        return np.asarray(x) * self.factor * base_value()\n')


def make_project(root: Path) -> Path:
    """A project with 01_base and 02_calc, both exported: what the fixtures grade against."""
    (root / "tinytorch" / "core").mkdir(parents=True)
    (root / "tinytorch" / "__init__.py").write_text('"""fixture package"""\n')
    (root / "tinytorch" / "core" / "__init__.py").write_text('"""fixture core"""\n')
    base = root / "modules" / "source" / "01_base"
    base.mkdir(parents=True)
    (base / "base_dev.py").write_text(dev_file("base", *MODULES["01_base"]))
    calc = root / "modules" / "source" / "02_calc"
    calc.mkdir(parents=True)
    shutil.copy(FIXTURES / "calc_dev.py", calc / "calc_dev.py")
    graph = Graph.load(root)
    for module in graph.modules:
        module.export_file.write_text(build_export(DevFile.of(module), graph))
    return root


def release_of(project: Path) -> str:
    return release_notebook(DevFile.read(project / "modules" / "source" / "02_calc" / "calc_dev.py")).decode()


def stub_sources(release: str) -> dict:
    """The release notebook's source of each solution cell (the stubs), by grade_id."""
    notebook = nbformat.reads(release, as_version=4)
    return {c.metadata["nbgrader"]["grade_id"]: c.source for c in notebook.cells
            if c.metadata.get("nbgrader", {}).get("solution")}


def make_student(release: str, folder: Path, name="student", add=ADD, scaler=SCALER, drop=(), **sources) -> Path:
    """A notebook made from the release: these sources by grade_id (underscores for dashes)."""
    notebook = nbformat.reads(release, as_version=4)
    sources = {"calc-add": add, "calc-scaler": scaler,
               **{key.replace("_", "-"): value for key, value in sources.items()}}
    cells = []
    for cell in notebook.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in drop:
            continue
        if grade_id in sources:
            cell.source = sources[grade_id]
        cells.append(cell)
    notebook.cells = cells
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.ipynb"
    path.write_text(nbformat.writes(notebook))
    return path


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return make_project(tmp_path_factory.mktemp("grading") / "project")


@pytest.fixture(scope="module")
def release(project):
    return release_of(project)


@pytest.fixture
def student(release, tmp_path):
    """student(name, add=..., scaler=..., **by_grade_id) -> path of a notebook with those cell sources."""

    def make(name="student", **kwargs):
        return make_student(release, tmp_path, name, **kwargs)

    return make


def by_id(result) -> dict:
    return {cell.grade_id: cell for cell in result.cells}


def test_a_correct_notebook_gets_full_points(project, student):
    [result] = grade(project, "02_calc", [student()], timeout=30)
    assert (result.total, result.max_total) == (FULL, FULL), format_table([result])
    assert {c.status for c in result.cells} == {"passed"}
    assert result.notes == []


def test_the_unchanged_release_gets_zero_with_the_stub_as_reason(project, release, tmp_path):
    path = tmp_path / "release.ipynb"
    path.write_text(release)
    [result] = grade(project, "02_calc", [path], timeout=30)
    assert result.total == 0
    assert by_id(result)["test-add"].reason == \
        "NotImplementedError: Implement add (see the docstring above) (at calc_dev.py:36)"


def test_one_broken_function_gives_partial_points(project, student):
    [result] = grade(project, "02_calc", [student(add=ADD.replace("a + b", "a - b"))], timeout=30)
    cells = by_id(result)
    assert result.total == 3
    assert cells["test-scaler"].status == "passed" and cells["test-scaler"].points == 3
    assert cells["test-add"].status == "failed" and cells["test-add"].points == 0
    assert cells["test-add"].reason == "AssertionError: add(2, 3) should be 5 (at calc_dev.py:36)"


def test_hidden_tests_of_the_dev_file_are_graded(project, student):
    # Passes the visible test, fails the hidden one, which only the dev file has.
    add = "#| export\ndef add(a, b):\n    return 5 if (a, b) == (2, 3) else a * b\n"
    [result] = grade(project, "02_calc", [student(add=add)], timeout=30)
    assert by_id(result)["test-add"].reason.startswith("AssertionError: hidden: add(-7, 7) should be 0")


def test_edited_locked_test_cells_are_replaced_by_the_originals(project, student):
    broken = ADD.replace("a + b", "a - b")
    path = student(add=broken, test_add="def test_unit_add():\n    pass\n\ntest_unit_add()\n")
    [result] = grade(project, "02_calc", [path], timeout=30)
    assert by_id(result)["test-add"].status == "failed"


def test_a_missing_graded_cell_gets_zero(project, student):
    [result] = grade(project, "02_calc", [student(drop=("test-scaler",))], timeout=30)
    cells = by_id(result)
    assert cells["test-scaler"].status == "missing" and "grade_id 'test-scaler'" in cells["test-scaler"].reason
    assert result.total == FULL - 3


def test_the_student_export_replaces_the_module_in_the_package(project, student):
    # A non-test cell reads the package's copy of the module: it must be the student's code.
    probe = ("import inspect, tinytorch.core.calc as exported\n"
             "assert 'a * 1 + b' in inspect.getsource(exported.add), inspect.getsource(exported.add)\n")
    add = ADD.replace("a + b", "a * 1 + b")
    [result] = grade(project, "02_calc", [student(add=add, calc_analysis=probe)], timeout=30)
    assert result.total == FULL and result.notes == [], format_table([result])


def test_student_export_is_the_exporters_own_body():
    cells = ["#| export\ndef f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION\n", "#| export\nX = 2"]
    assert student_export(cells) == "\n__all__ = ['f', 'X']\n\ndef f():\n    return 1\n\n\nX = 2\n"
    assert student_export(cells) == package_body(cells)


def test_an_infinite_loop_costs_only_the_cells_it_hangs(project, student):
    loop = SCALER.replace("return np.asarray(x)", "while True:\n            pass\n        return np.asarray(x)")
    start = time.perf_counter()
    [result] = grade(project, "02_calc", [student(scaler=loop)], timeout=3)
    elapsed = time.perf_counter() - start
    cells = by_id(result)
    assert cells["test-scaler"].status == "timeout" and "time limit" in cells["test-scaler"].reason
    assert result.total == FULL - 3, format_table([result])
    assert elapsed < 12


def test_unbounded_allocation_hits_the_memory_limit(project, student):
    hog = SCALER.replace("return np.asarray(x)", "hoard = []\n        while True:\n"
                                                 "            hoard.append(bytearray(50_000_000))\n"
                                                 "        return np.asarray(x)")
    [result] = grade(project, "02_calc", [student(scaler=hog)], timeout=30, memory_mb=600)
    cells = by_id(result)
    assert cells["test-scaler"].status == "memory", format_table([result])
    assert "600 MB" in cells["test-scaler"].reason
    assert result.total == FULL - 3


def test_sys_exit_fails_only_its_cells(project, student):
    add = "#| export\nimport sys\n\ndef add(a, b):\n    sys.exit(3)\n"
    [result] = grade(project, "02_calc", [student(add=add)], timeout=30)
    cells = by_id(result)
    assert cells["test-add"].status == "error" and "sys.exit(3)" in cells["test-add"].reason
    assert cells["test-scaler"].status == "passed"


def test_os_exit_before_reporting_gets_zero_with_a_reason(project, student):
    add = "#| export\nimport os\n\ndef add(a, b):\n    os._exit(0)\n"
    [result] = grade(project, "02_calc", [student(add=add)], timeout=30)
    cells = by_id(result)
    assert cells["test-add"].status == "error" and "exited with code 0" in cells["test-add"].reason
    assert cells["test-add-arrays"].status == "error"
    assert cells["test-scaler"].status == "passed", format_table([result])  # re-run without the cells that died


def test_repository_changes_are_detected(tmp_path):
    (tmp_path / "tinytorch").mkdir()
    (tmp_path / "tinytorch" / "a.py").write_text("a")
    before = repository_digest(tmp_path)
    (tmp_path / "tinytorch" / "a.py").write_text("b")
    (tmp_path / "modules").mkdir()
    (tmp_path / "modules" / "new.py").write_text("c")
    assert changed_files(before, repository_digest(tmp_path)) == ["modules/new.py", "tinytorch/a.py"]


def test_not_a_notebook_gets_zero_with_a_clear_reason(project, tmp_path):
    bad = tmp_path / "essay.ipynb"
    bad.write_text("Dear grader, my dog ate my notebook.")
    [result] = grade(project, "02_calc", [bad], timeout=30)
    assert result.total == 0 and len(result.cells) == 3
    assert all(c.status == "error" and c.reason.startswith("not a Jupyter notebook") for c in result.cells)


def test_many_notebooks_in_parallel(project, student):
    broken = ADD.replace("a + b", "a - b")
    paths = [student(f"s{i:02d}", add=broken if i % 3 == 0 else ADD) for i in range(21)]
    start = time.perf_counter()
    results = grade(project, "02_calc", paths, jobs=2, timeout=30)
    elapsed = time.perf_counter() - start
    assert [r.notebook for r in results] == paths
    assert [r.total for r in results] == [3 if i % 3 == 0 else FULL for i in range(21)]
    assert elapsed < 30


def test_reports(project, student, tmp_path):
    paths = [student("alice"), student("bob", add=ADD.replace("a + b", "a - b"))]
    gradebook = tmp_path / "out" / "gradebook.csv"
    results = grade(project, "02_calc", paths, timeout=30, gradebook=gradebook)

    table = format_table(results)
    assert "alice.ipynb  TOTAL" in table and "6/6" in table and "3/6" in table
    assert "AssertionError: add(2, 3) should be 5" in table

    data = json.loads(to_json(results))
    assert [(d["total"], d["max_total"]) for d in data] == [(6, 6), (3, 6)]
    assert data[1]["cells"][0] == {"grade_id": "test-add", "points": 0, "max_points": 2, "status": "failed",
                                   "reason": "AssertionError: add(2, 3) should be 5 (at calc_dev.py:36)",
                                   "output": ""}
    assert [(d["penalty"], d["final"], d["late"]) for d in data] == [(0, 6, None), (0, 3, None)]

    rows = list(csv.DictReader(gradebook.open()))
    assert list(rows[0]) == ["notebook", "grade_id", "points", "max_points", "status", "reason", "submitted",
                             "days_late", "penalty", "final"]
    totals = [(Path(r["notebook"]).name, r["points"], r["status"], r["penalty"], r["final"])
              for r in rows if r["grade_id"] == "TOTAL"]
    assert totals == [("alice.ipynb", "6", "complete", "0", "6"), ("bob.ipynb", "3", "incomplete", "0", "3")]
    write_gradebook(results, gradebook)  # rewriting is fine


def test_grading_needs_the_export(project, tmp_path, student):
    copy = tmp_path / "copy"
    shutil.copytree(project, copy)
    (copy / "tinytorch" / "core" / "calc.py").unlink()
    with pytest.raises(GradingError, match=r"tinytorch/core/calc.py is missing.*doit export"):
        grade(copy, "02_calc", [student()])
    with pytest.raises(GradingError, match="no module '07_nothing'"):
        grade(copy, "07_nothing", [student()])


def test_progress_is_plain_when_piped_and_a_bar_on_a_terminal():
    import io
    from types import SimpleNamespace

    from tito.teaching.grade_progress import reporter

    done = SimpleNamespace(notebook=Path("alice.ipynb"), total=3, max_total=6)
    piped = io.StringIO()
    with reporter(2, piped) as progress:
        progress.log("a message")
        progress(1, 2, done)
    assert piped.getvalue() == "a message\n[1/2] alice.ipynb: 3/6\n"
    pytest.importorskip("rich", reason="rich draws the bar (dev and grading extras)")

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    terminal = Terminal()
    with reporter(2, terminal) as progress:
        progress(1, 2, done)
    assert "grading (alice.ipynb)" in terminal.getvalue() and "1/2" in terminal.getvalue()


if __name__ == "__main__":
    import sys

    import pytest

    sys.exit(pytest.main([__file__, "-q"]))
