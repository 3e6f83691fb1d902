"""The learner's track on the real course: student repositories made in temporary folders.

- A fresh student repository of all sixteen modules: no solution line of the course in any file or git
  object; one commit; the dev files are the release notebooks' student versions; `doit` succeeds,
  `pytest` passes (everything skipped, with the reason) and `tito module status` shows sixteen modules
  not started.
- A learner completes the modules xor_network reaches, one at a time, by pasting each reference solution
  cell into the dev file and running `tito module complete`: each module moves from not started to
  complete, xor_network unlocks exactly after the last of them, and trains on the learner's package. A
  wrong Dense.backward fails test:04_layers with the graded test's message and the progressive tests
  above 04. Reset puts the stubs back after a backup. Grading the repository: complete modules score
  full points, a module not started zero.

Every command runs in a subprocess inside the student repository, with its own copy of tito, as a
learner runs it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from treebuilder import REPO  # noqa: E402

from tito.model.devfile import DevFile, parse_cells  # noqa: E402
from tito.model.layout import discover, find_module  # noqa: E402
from tito.steps.notebooks import release_notebook  # noqa: E402
from tito.steps.progress import RECORD, RawCell, join_cells, split_cells  # noqa: E402
from tito.teaching.student import COURSE_ONLY, leaks, new_student_repository, secret_lines  # noqa: E402

# The modules xor_network reaches (the graph knows them), in curriculum order.
XOR_MODULES = ["01_tensor", "02_autograd", "03_activations", "04_layers", "05_networks", "08_dataloader",
               "09_optimizers", "11_training"]


@dataclass
class Run:
    code: int
    output: str


def env_for(root: Path) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(root)  # the student repository's own tito and tinytorch
    for name in ("TITO_BUILD", "TITO_DISCARD_EDITS"):
        env.pop(name, None)
    return env


def run_in(root: Path, *command: str, timeout: float = 900) -> Run:
    done = subprocess.run([sys.executable, *command], cwd=root, env=env_for(root), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=timeout)
    return Run(done.returncode, done.stdout)


def doit(root: Path, *args: str) -> Run:
    return run_in(root, "-m", "doit", *args)


def tito(root: Path, *args: str) -> Run:
    return run_in(root, "-m", "tito.cli", *args)


def status_rows(root: Path) -> dict[str, str]:
    """module key -> state, from `tito module status`."""
    done = tito(root, "module", "status")
    assert done.code == 0, done.output
    rows = {}
    for line in done.output.splitlines():
        match = re.match(r"^(\d\d_\w+)\s+(not started|in progress|complete|missing)\s", line)
        if match:
            rows[match.group(1)] = match.group(2)
    return rows


def milestone_states(root: Path) -> dict[str, str]:
    done = tito(root, "milestones")
    assert done.code == 0, done.output
    return dict(re.findall(r"^(\w+)\s+(locked|unlocked)\b", done.output, re.M))


def paste_solutions(course: Path, student: Path, key: str, transform=None) -> None:
    """Paste the course's reference solution cells of one module into the student's dev file, as a learner
    who wrote exactly that code would have it (the solution markers dropped)."""
    module = find_module(course, key)
    reference = {c.grade_id: c for c in split_cells(module.dev_file.read_text(encoding="utf-8")) if c.solution}
    target = student / module.dev_file.relative_to(course)
    cells = split_cells(target.read_text(encoding="utf-8"))
    for index, cell in enumerate(cells):
        if cell.solution and cell.grade_id in reference:
            text = "".join(line for line in reference[cell.grade_id].text.splitlines(keepends=True)
                           if line.strip() not in ("### BEGIN SOLUTION", "### END SOLUTION"))
            if transform:
                text = transform(cell.grade_id, text)
            cells[index] = RawCell(text, cell.line, cell.kind, cell.nbgrader)
    target.write_text(join_cells(cells), encoding="utf-8")


# --- a fresh student repository of the whole course ------------------------------------------------------


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    root = tmp_path_factory.mktemp("fresh") / "learner"
    new_student_repository(REPO, root)
    return root


def test_no_solution_line_of_the_course_is_in_any_file_or_git_object(fresh, tmp_path):
    secrets = secret_lines(REPO)
    assert len(secrets) > 500, "the course's solution blocks hold hundreds of lines found nowhere else"
    assert leaks(fresh, secrets) == []

    # The check reads git's objects too: a secret committed and then deleted is found.
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(fresh), str(clone)], check=True)
    secret = sorted(secrets)[0]
    (clone / "notes.py").write_text(secret + "\n")
    git = ["git", "-C", str(clone), "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    subprocess.run([*git, "add", "notes.py"], check=True)
    subprocess.run([*git, "commit", "-qm", "oops"], check=True)
    subprocess.run([*git, "rm", "-q", "notes.py"], check=True)
    subprocess.run([*git, "commit", "-qm", "remove it"], check=True)
    found = leaks(clone, secrets)
    assert found and all(item.startswith("git object ") for item in found), found


def test_the_repository_has_what_a_learner_needs_and_nothing_of_the_course_maintainers(fresh):
    commits = subprocess.run(["git", "-C", str(fresh), "rev-list", "--count", "HEAD"], capture_output=True,
                             text=True, check=True).stdout.strip()
    assert commits == "1"
    for needed in ("dodo.py", "setup.cfg", "pyproject.toml", "conftest.py", "tito/tasks.py", "tests/conftest.py",
                   "docs/design.md", "benchmarks/framework.py", "examples/xor_network/train.py",
                   "tinytorch/__init__.py", RECORD):
        assert (fresh / needed).is_file(), needed
    for course_only in COURSE_ONLY:
        if course_only != RECORD:
            assert not (fresh / course_only).exists(), course_only
    record = json.loads((fresh / RECORD).read_text())
    assert sorted(record["modules"]) == [m.key for m in discover(REPO)]
    assert record["course"]["commit"]

    course_readme, readme = (REPO / "README.md").read_text(), (fresh / "README.md").read_text()
    quick_start = re.compile(r"## Quick start\n.*?```bash\n(.*?)```", re.S)
    assert quick_start.search(readme).group(1) == quick_start.search(course_readme).group(1)
    assert "## Learn" in readme and "tito module complete" in readme

    # Every dev file is its release notebook, cell for cell: the same stubs, the hidden tests removed.
    for module in discover(REPO):
        ours = parse_cells((fresh / module.dev_file.relative_to(REPO)).read_text(encoding="utf-8"))
        released = json.loads(release_notebook(DevFile.of(module)))["cells"]
        assert [c.source for c in ours] == ["".join(c["source"]) for c in released], module.key


def test_doit_succeeds_pytest_passes_and_every_module_is_not_started(fresh):
    done = doit(fresh)
    assert done.code == 0, done.output
    assert "test:04_layers waits for 01_tensor (not started: implement " in done.output
    assert "example:xor_network waits for 01_tensor" in done.output
    assert "Traceback" not in done.output
    for family in ("report", "release"):
        assert f"{family}: skipped in a student repository" in done.output

    tests = run_in(fresh, "-m", "pytest", "-rs")
    assert tests.code == 0, tests.output
    assert "passed" not in tests.output and "failed" not in tests.output
    assert re.search(r"SKIPPED \[1\] modules/source/04_layers/test_layers_core.py:1: this file waits for 01_tensor "
                     r"\(not started: implement \S+ at modules/source/01_tensor/tensor_dev.py:\d+\)", tests.output)

    states = status_rows(fresh)
    assert len(states) == 16 and set(states.values()) == {"not started"}, states
    assert set(milestone_states(fresh).values()) == {"locked"}


# --- a learner completes the modules of the XOR milestone ---------------------------------------------------


@pytest.fixture(scope="module")
def learner(tmp_path_factory):
    """A student repository of the XOR modules (and what they need), completed one module at a time.

    Asserts along the way: a module is not started until its solutions are pasted, complete after
    `tito module complete`; xor_network stays locked until the last of its modules is complete.
    """
    root = tmp_path_factory.mktemp("learner") / "learner"
    new_student_repository(REPO, root, XOR_MODULES)
    history = []
    for key in XOR_MODULES:
        assert status_rows(root)[key] == "not started"
        assert milestone_states(root)["xor_network"] == "locked"
        paste_solutions(REPO, root, key)
        done = tito(root, "module", "complete", key)
        assert done.code == 0, done.output
        assert f"{key} is complete:" in done.output
        history.append(done.output)
        states = status_rows(root)
        assert all(states[k] == "complete" for k in XOR_MODULES[:XOR_MODULES.index(key) + 1]), states
    assert "Milestone unlocked: xor_network" in history[-1]
    assert all("Milestone unlocked: xor_network" not in output for output in history[:-1])
    return root


def test_completing_modules_moves_them_to_complete_and_unlocks_xor_at_the_end(learner):
    states = status_rows(learner)
    assert all(states[key] == "complete" for key in XOR_MODULES)
    assert states["06_spatial"] == "not started"  # included because the root conftest imports it
    milestones = milestone_states(learner)
    assert milestones["xor_network"] == "unlocked"
    status = tito(learner, "module", "status").output
    assert re.search(r"^04_layers\s+complete\s+3 of 3\s+25 of 25", status, re.M), status
    assert "Next: implement " in status


def test_the_xor_milestone_trains_on_the_learners_own_package(learner):
    done = tito(learner, "milestone", "run", "xor_network")
    assert done.code == 0, done.output
    assert "OK: target (accuracy 1.00, loss < 0.01)" in done.output
    assert "Milestone xor_network: passed" in done.output
    assert "passed on your current package" in tito(learner, "milestones").output
    locked = tito(learner, "milestone", "run", "digits_cnn")
    assert locked.code != 0


def test_a_wrong_dense_backward_fails_its_graded_test_and_the_progressive_tests_above(learner):
    dev = learner / "modules/source/04_layers/layers_dev.py"
    good = dev.read_text(encoding="utf-8")
    right = "grad_w = x2.T @ g2 if weights.requires_grad else None"
    assert right in good
    dev.write_text(good.replace(right, "grad_w = 2 * (x2.T @ g2) if weights.requires_grad else None"), encoding="utf-8")
    try:
        done = doit(learner, "test:04_layers")
        assert done.code != 0
        assert "test:04_layers: 2 of 3 graded tests pass (15 of 25 points)." in done.output, done.output
        assert re.search(r"First failure: graded test 'test-dense' \(10 points\), "
                         r"modules/source/04_layers/layers_dev.py:\d+:", done.output), done.output
        assert "Not equal to tolerance" in done.output
        above = doit(learner, "--continue", "integrate:05_networks", "integrate:11_training")
        assert above.code != 0
        assert "TaskFailed - taskid:integrate:05_networks" in above.output
        assert "TaskFailed - taskid:integrate:11_training" in above.output
        assert "waits for" not in above.output
        assert status_rows(learner)["04_layers"] == "in progress"
    finally:
        dev.write_text(good, encoding="utf-8")
    assert doit(learner, "test:04_layers", "integrate:04_layers").code == 0
    assert status_rows(learner)["04_layers"] == "complete"


def test_grading_a_student_repository(learner):
    from tito.teaching.student import grade_student_work

    graded = {g.key: g.result for g in grade_student_work(REPO, [learner], ["01_tensor", "04_layers", "06_spatial"],
                                                         jobs=2, timeout=300)}
    assert graded["01_tensor"].total == graded["01_tensor"].max_total > 0
    assert graded["04_layers"].total == graded["04_layers"].max_total > 0
    assert graded["06_spatial"].total == 0 and graded["06_spatial"].max_total > 0
    assert all("NotImplementedError" in c.reason for c in graded["06_spatial"].cells)


def test_reset_puts_the_stubs_back_after_a_backup(learner, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(learner, copy, symlinks=True)
    dev = copy / "modules/source/04_layers/layers_dev.py"
    before = dev.read_text(encoding="utf-8")
    done = tito(copy, "module", "reset", "04_layers")
    assert done.code == 0, done.output
    assert "3 solution cell(s) back to their stubs" in done.output
    backups = list((copy / ".tito/backups").glob("*/modules/source/04_layers/layers_dev.py"))
    assert len(backups) == 1 and backups[0].read_text(encoding="utf-8") == before
    fresh_version = subprocess.run(["git", "-C", str(copy), "show", "HEAD:modules/source/04_layers/layers_dev.py"],
                                   capture_output=True, text=True, check=True).stdout
    assert dev.read_text(encoding="utf-8") == fresh_version
    states = status_rows(copy)
    assert states["04_layers"] == "not started" and states["03_activations"] == "complete"
    again = tito(copy, "module", "reset", "04_layers")
    assert again.code == 0 and "nothing changed" in again.output
