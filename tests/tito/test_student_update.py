"""Course updates, bad input, notebooks and grading in a student repository made from the real course.

The learner has completed 01-03 (reference solution cells pasted, `tito module complete` run) and added
cells of their own. Course versions are copies of the course with one change each, in temporary
folders. Every test works on its own copy of the learner's repository.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_student import paste_solutions, run_in, status_rows, tito  # noqa: E402
from treebuilder import REPO  # noqa: E402

from tito.steps.progress import split_cells  # noqa: E402
from tito.teaching.student import course_files, new_student_repository  # noqa: E402

DONE = ["01_tensor", "02_autograd", "03_activations"]
AUTOGRAD = "modules/source/02_autograd/autograd_dev.py"
ACTIVATIONS = "modules/source/03_activations/activations_dev.py"
LAYERS = "modules/source/04_layers/layers_dev.py"
SCRATCH = "# %%\nscratch = 42  # a cell of my own, without metadata\n\n"
SCRATCH_WITH_METADATA = ('# %% nbgrader={"grade": false, "grade_id": "my-notes", "locked": false, "schema_version": 3, '
                         '"solution": false}\nMY_NOTES = "mine"\n\n')
OLD_DOCSTRING = '"""True when operations on Variables are recorded (the default), False inside `no_grad()`."""'
NEW_DOCSTRING = '"""Whether operations on Variables are recorded: True by default, False inside `no_grad()`."""'


def git(root: Path, *args: str) -> str:
    command = ["git", "-C", str(root), "-c", "user.name=learner", "-c", "user.email=l@example.org",
               "-c", "commit.gpgsign=false", *args]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout


def insert_before(path: Path, marker_start: str, text: str) -> None:
    content = path.read_text(encoding="utf-8")
    at = content.index(marker_start)
    path.write_text(content[:at] + text + content[at:], encoding="utf-8")


@pytest.fixture(scope="module")
def completed(tmp_path_factory):
    root = tmp_path_factory.mktemp("completed") / "learner"
    new_student_repository(REPO, root, DONE)
    for key in DONE:
        paste_solutions(REPO, root, key)
        done = tito(root, "module", "complete", key)
        assert done.code == 0, done.output
    insert_before(root / AUTOGRAD, '# %% nbgrader={"grade": true, "grade_id": "test-grad-mode"', SCRATCH)
    insert_before(root / ACTIVATIONS, '# %% nbgrader={"grade": false, "grade_id": "activations-test-imports"',
                  SCRATCH_WITH_METADATA)
    git(root, "add", "-A")
    git(root, "commit", "-qm", "01-03 complete")
    return root


@pytest.fixture
def learner(completed, tmp_path):
    copy = tmp_path / "learner"
    shutil.copytree(completed, copy, symlinks=True)
    return copy


def course_version(tmp_path: Path, *changes: str) -> Path:
    """A copy of the course with changes: "update" (new prose and a changed test in 02, a new cell in 03)
    and/or "conflict" (a changed docstring in 02's solution cell grad-mode)."""
    course = tmp_path / ("course-" + "-".join(changes))
    for rel in course_files(REPO):
        (course / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, course / rel)
    autograd, activations = course / AUTOGRAD, course / ACTIVATIONS
    if "update" in changes:
        text = autograd.read_text(encoding="utf-8")
        grad_mode = '# %% nbgrader={"grade": false, "grade_id": "grad-mode"'
        text = text.replace(grad_mode, "# UPDATED PROSE: a new paragraph from the course.\n\n" + grad_mode, 1)
        old = '    print("✅ no_grad and is_grad_enabled work")'
        assert old in text
        text = text.replace(old, '    print("UPDATED TEST RAN")\n' + old, 1)
        autograd.write_text(text, encoding="utf-8")
        insert_before(activations, '# %% nbgrader={"grade": false, "grade_id": "activations-test-imports"',
                      '# %% [markdown]\n# A NEW CELL from the course.\n\n# %% nbgrader={"grade": false, "grade_id": '
                      '"activations-new-cell", "locked": false, "schema_version": 3, "solution": false}\n'
                      "NEW_CELL_VALUE = 3\n\n")
    if "conflict" in changes:
        text = autograd.read_text(encoding="utf-8")
        assert OLD_DOCSTRING in text
        autograd.write_text(text.replace(OLD_DOCSTRING, NEW_DOCSTRING), encoding="utf-8")
    return course


def solution_cells(path: Path) -> dict[str, str]:
    return {c.grade_id: c.text for c in split_cells(path.read_text(encoding="utf-8")) if c.solution}


def tree_digest(root: Path) -> dict[str, str]:
    """Every file of the repository (git's, doit's and tito's own folders aside), by content."""
    found = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in (".git", ".tito", "__pycache__")]
        for name in files:
            if not name.startswith(".doit"):
                path = Path(folder, name)
                found[path.relative_to(root).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def test_an_update_brings_the_course_and_keeps_the_learners_work(learner, tmp_path):
    course = course_version(tmp_path, "update")
    solutions = {rel: solution_cells(learner / rel) for rel in (f"modules/source/{k}/{k[3:]}_dev.py" for k in DONE)}
    before = (learner / AUTOGRAD).read_text(encoding="utf-8")

    done = tito(learner, "student", "update", "--from", str(course))
    assert done.code == 0, done.output
    assert f"updated {AUTOGRAD}" in done.output and f"updated {ACTIVATIONS}" in done.output

    for rel, cells in solutions.items():
        assert solution_cells(learner / rel) == cells, f"{rel}: the learner's solutions changed"
    autograd = (learner / AUTOGRAD).read_text(encoding="utf-8")
    assert "# UPDATED PROSE: a new paragraph from the course." in autograd
    assert 'print("UPDATED TEST RAN")' in autograd
    activations = (learner / ACTIVATIONS).read_text(encoding="utf-8")
    assert '"grade_id": "activations-new-cell"' in activations and "NEW_CELL_VALUE = 3" in activations
    # The learner's own cells stay where they were: right after the cell they followed.
    ids = [c.grade_id or c.text.splitlines()[1] for c in split_cells(autograd) if c.kind == "code"]
    assert ids[ids.index("grad-mode") + 1] == SCRATCH.splitlines()[1]
    ids = [c.grade_id for c in split_cells(activations) if c.kind == "code"]
    assert ids[ids.index("activations-imports") + 1] == "my-notes"  # the course's new cell comes after it

    backups = list((learner / ".tito/backups").glob(f"*/{AUTOGRAD}"))
    assert len(backups) == 1 and backups[0].read_text(encoding="utf-8") == before

    # The changed test runs, on the learner's own code.
    completed = tito(learner, "module", "complete", "02_autograd")
    assert completed.code == 0, completed.output
    script = run_in(learner, AUTOGRAD)
    assert script.code == 0 and "UPDATED TEST RAN" in script.output, script.output

    # A second update changes nothing.
    digest, folders = tree_digest(learner), sorted((learner / ".tito/backups").iterdir())
    again = tito(learner, "student", "update", "--from", str(course))
    assert again.code == 0, again.output
    assert "Already up to date" in again.output
    assert tree_digest(learner) == digest
    assert sorted((learner / ".tito/backups").iterdir()) == folders


def test_a_conflicting_update_keeps_both_versions_and_names_them(learner, tmp_path):
    course = course_version(tmp_path, "conflict")
    mine = solution_cells(learner / AUTOGRAD)["grad-mode"]
    done = tito(learner, "student", "update", "--from", str(course))
    assert done.code == 1, done.output
    match = re.search(rf"{AUTOGRAD}:(\d+): conflict: the course changed the provided code of solution cell "
                      r"'grad-mode'.*?the course's new version follows at line (\d+)", done.output)
    assert match, done.output
    lines = (learner / AUTOGRAD).read_text(encoding="utf-8").splitlines()
    ours, theirs = int(match.group(1)), int(match.group(2))
    assert lines[ours - 1].startswith("# %% nbgrader=") and '"grade_id": "grad-mode"' in lines[ours - 1]
    assert lines[theirs - 1] == "# %% [raw]"
    assert solution_cells(learner / AUTOGRAD)["grad-mode"] == mine  # the learner's version still runs
    assert any(line.startswith("# ") and NEW_DOCSTRING in line for line in lines[theirs:theirs + 12])
    assert list((learner / ".tito/backups").glob(f"*/{AUTOGRAD}"))

    assert tito(learner, "module", "complete", "02_autograd").code == 0
    digest = tree_digest(learner)
    again = tito(learner, "student", "update", "--from", str(course))
    assert again.code == 1 and "is still there" in again.output, again.output
    assert tree_digest(learner) == digest


def test_bad_input_gets_file_and_line_and_nothing_is_overwritten(learner, tmp_path):
    layers = learner / LAYERS
    text = layers.read_text(encoding="utf-8")
    dense = ('# %% nbgrader={"grade": false, "grade_id": "dense", "locked": false, "schema_version": 3, '
             '"solution": true}')
    assert dense in text
    layers.write_text(text.replace(dense, "# %%"), encoding="utf-8")  # an editor dropped the metadata
    autograd = learner / AUTOGRAD
    autograd.write_text(autograd.read_text(encoding="utf-8").replace('"grade_id": "test-grad-mode"',
                                                                     '"grade_id": "my-test"'), encoding="utf-8")
    (learner / "modules/source/05_networks/networks_dev.py").unlink()
    digest = tree_digest(learner)

    done = tito(learner, "student", "update", "--from", str(course_version(tmp_path, "update")))
    assert done.code == 2, done.output
    assert re.search(rf"{LAYERS}:\d+: this cell lost its nbgrader metadata: it is the course's cell 'dense'",
                     done.output)
    assert re.search(rf"{AUTOGRAD}:\d+: grade_id 'my-test' is not the course's: this is the course's cell "
                     "'test-grad-mode'", done.output)
    assert "modules/source/05_networks/networks_dev.py:1: missing" in done.output
    assert "nothing was changed" in done.output
    reset = tito(learner, "module", "reset", "04_layers")
    assert reset.code == 2 and "lost its nbgrader metadata" in reset.output
    assert tree_digest(learner) == digest

    check = run_in(learner, "-m", "doit", "check:04_layers")
    assert check.code != 0 and re.search(rf"{LAYERS}:\d+: this cell lost its nbgrader metadata", check.output)
    states = status_rows(learner)
    assert states["05_networks"] == "missing" and states["02_autograd"] == "in progress"


def test_check_accepts_the_cells_a_learner_adds(completed):
    done = run_in(completed, "-m", "doit", "check:02_autograd", "check:03_activations")
    assert done.code == 0, done.output


def test_a_paired_notebook_is_what_the_graph_builds(learner):
    done = tito(learner, "module", "notebook", "04_layers")
    assert done.code == 0, done.output
    notebook = learner / "modules/source/04_layers/layers_dev.ipynb"
    assert notebook.is_file() and "formats: ipynb,py:percent" in (learner / LAYERS).read_text(encoding="utf-8")
    assert status_rows(learner)["04_layers"] == "not started"

    import nbformat

    book = nbformat.read(notebook, as_version=4)
    stub = 'raise NotImplementedError("Implement Dropout.forward (see the docstring above)")'
    cell = next(c for c in book.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "dropout")
    assert stub in cell.source
    cell.source = cell.source.replace(stub, "return x  # written in the notebook")
    nbformat.write(book, notebook)
    later = time.time() + 2
    os.utime(notebook, (later, later))

    exported = run_in(learner, "-m", "doit", "export:04_layers")
    assert exported.code == 0, exported.output
    assert "return x  # written in the notebook" in (learner / LAYERS).read_text(encoding="utf-8")
    assert "return x  # written in the notebook" in (learner / "tinytorch/core/layers.py").read_text(encoding="utf-8")
    assert status_rows(learner)["04_layers"] == "in progress"


def test_grading_dev_files_and_a_repository_with_a_missing_module(learner):
    from tito.teaching.student import grade_student_work

    (learner / ACTIVATIONS).unlink()
    graded = grade_student_work(REPO, [learner, learner / AUTOGRAD], ["01_tensor", "03_activations"], jobs=2,
                                timeout=300)
    by_source = {(g.source, g.key): g.result for g in graded}
    repo = learner.name
    tensor = by_source[(f"{repo}:01_tensor", "01_tensor")]
    assert tensor.total == tensor.max_total > 0
    missing = by_source[(f"{repo}:03_activations", "03_activations")]
    assert missing.total == 0 < missing.max_total and {c.status for c in missing.cells} == {"missing"}
    dev_file = by_source[(str(learner / AUTOGRAD), "02_autograd")]
    assert dev_file.total == dev_file.max_total > 0
