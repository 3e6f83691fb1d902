"""What a learner sees in a student repository: `tito module status`, `tito module complete`,
`tito milestones`, `tito milestone run`, `tito module notebook`.

Every state comes from tito.steps.progress (the files and the build's last results); this file only
words it. The front (tito.cli) runs the doit tasks in between.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tito.model.graph import Graph
from tito.steps.process import run, subprocess_env, tail
from tito.steps.progress import (
    COMPLETE,
    MISSING,
    NOT_STARTED,
    ModuleProgress,
    all_progress,
    file_inputs,
    first_stub,
    inputs_key,
    milestones,
    module_progress,
    record_problems,
    record_result,
    sync_paired_notebooks,
)

MILESTONE_TIMEOUT = 1800


class LearnerError(Exception):
    """A learner's command cannot go on; the message says what to do."""


# --- tito module status -----------------------------------------------------------------------------------


def _score(progress: ModuleProgress) -> tuple[str, str]:
    if progress.state == NOT_STARTED:
        return f"0 of {progress.graded_total}", f"0 of {progress.points_total:g}"
    if progress.state == MISSING or progress.graded_passed is None:
        return f"? of {progress.graded_total}", f"? of {progress.points_total:g}"
    return (f"{progress.graded_passed} of {progress.graded_total}",
            f"{progress.points:g} of {progress.points_total:g}")


def _detail(progress: ModuleProgress) -> str:
    if progress.problems:
        return f"problem: {progress.problems[0]}"
    if progress.state == COMPLETE:
        return "graded tests, module tests and progressive test pass"
    if progress.state == NOT_STARTED:
        return f"start: {progress.next_stub}" if progress.next_stub else ""
    if progress.state == MISSING:
        return f"{progress.dev_file} is missing: restore it with `git checkout HEAD -- {progress.dev_file}`"
    if progress.integrate == "failed" and (progress.graded_passed is None or not progress.failure):
        return f"progressive test fails: {progress.integrate_failure or f'`tito module complete {progress.key}`'}"
    if progress.graded_passed is None:
        return f"not tested since a change to it or to a module below it: `tito module complete {progress.key}`"
    if progress.failure:
        return f"first failure: {progress.failure}"
    if progress.tests == "failed":
        return "graded tests pass; the module's test files fail"
    if progress.integrate == "failed":
        return "the progressive test fails"
    if progress.integrate == "not run":
        return f"progressive test not run: `tito module complete {progress.key}`"
    return ""


def next_step(progress: dict[str, ModuleProgress]) -> str:
    """The one thing to do next: the lowest module that is not complete, and what it needs."""
    for item in progress.values():
        if item.state == COMPLETE:
            continue
        if item.state == MISSING:
            return f"restore {item.dev_file} (`git checkout HEAD -- {item.dev_file}`)"
        if item.problems:
            return f"fix {item.problems[0]}"
        if item.next_stub:
            return f"{item.next_stub}, then `tito module complete {item.key}`"
        if item.failure or item.integrate_failure:
            return f"fix {item.failure or item.integrate_failure}, then `tito module complete {item.key}`"
        return f"`tito module complete {item.key}`"
    return "every module is complete: run the milestones (`tito milestones`)"


def status_table(root: Path) -> str:
    root = Path(root)
    sync_paired_notebooks(root)
    graph = Graph.load(root)
    progress = all_progress(root, graph)
    rows = [("module", "state", "graded tests", "points", "")]
    for item in progress.values():
        rows.append((item.key, item.state, *_score(item), _detail(item)))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row[:4], widths)) + "  " + row[4] for row in rows]
    lines = [line.rstrip() for line in lines]
    lines.insert(1, "  ".join("-" * width for width in widths))
    counts = {state: sum(1 for p in progress.values() if p.state == state) for state in (COMPLETE, NOT_STARTED)}
    started = len(progress) - counts[COMPLETE] - counts[NOT_STARTED]
    lines.append("")
    lines.append(f"{counts[COMPLETE]} complete, {started} in progress, {counts[NOT_STARTED]} not started.")
    for item in progress.values():
        lines += item.problems[1:]
    unlocked = [m for m in milestones(root, graph, progress) if m.unlocked]
    lines.append(f"Milestones unlocked: {len(unlocked)} of {len(example_names(root))} (`tito milestones`).")
    lines.append(f"Next: {next_step(progress)}")
    return "\n".join(lines)


def example_names(root: Path) -> list[str]:
    from tito.model.layout import example_scripts

    return [script.parent.name for script in example_scripts(root)]


# --- tito module complete -----------------------------------------------------------------------------------


@dataclass
class Completion:
    """What `tito module complete` runs, and what was locked before it ran."""

    key: str
    tasks: list[str]
    modules_ready_before: set[str]
    milestones_before: set[str]


def _ready_modules(graph: Graph, progress: dict[str, ModuleProgress]) -> set[str]:
    """Modules that are not complete and whose lower modules all are: the ones a learner can do now."""
    return {m.key for m in graph.modules if progress[m.key].state != COMPLETE
            and all(progress[u.key].state == COMPLETE for u in graph.upstream(m))}


def before_completing(root: Path, key: str) -> Completion:
    """The tasks `tito module complete KEY` runs; LearnerError when the module cannot be completed yet."""
    root = Path(root)
    sync_paired_notebooks(root)
    graph = Graph.load(root)
    try:
        module = graph.module(key)
    except LookupError as error:
        raise LearnerError(str(error)) from None
    problems = record_problems(root, module)
    if problems:
        raise LearnerError("\n".join(problems) + "\nGrading and updates match the course's cells by grade_id: fix "
                           "the file, then run this again.")
    progress = all_progress(root, graph)
    if progress[module.key].state == NOT_STARTED:
        stub = first_stub(root, module)
        raise LearnerError(f"{module.key} is not started: {stub or 'write its solution cells'} first, then run "
                           f"`tito module complete {module.key}` again.")
    # Every export, not only this module's: the root conftest's helpers import modules the graph does not see.
    tasks = [f"check:{module.key}", "export", f"test:{module.key}"]
    if module.progressive_test.is_file():
        tasks.append(f"integrate:{module.key}")
    return Completion(module.key, tasks, _ready_modules(graph, progress),
                      {m.name for m in milestones(root, graph, progress) if m.unlocked})


def after_completing(root: Path, plan: Completion) -> tuple[bool, str]:
    """(complete?, what to tell the learner) after the tasks ran."""
    root = Path(root)
    graph = Graph.load(root)
    progress = all_progress(root, graph)
    item = progress[plan.key]
    if item.state != COMPLETE:
        lines = [f"{plan.key} is {item.summary}."]
        detail = _detail(item)
        if detail:
            lines.append(detail[0].upper() + detail[1:] + ".")
        lines.append(f"Next: {next_step({plan.key: item})}")
        return False, "\n".join(lines)
    lines = [f"{plan.key} is {item.summary}."]
    ready = sorted(_ready_modules(graph, progress) - plan.modules_ready_before)
    for key in ready:
        stub = first_stub(root, graph.module(key))
        lines.append(f"Unlocked {key}: every module it stands on is complete"
                     f"{f'; start with: {stub}' if stub else ''}.")
    now = milestones(root, graph, progress)
    for milestone in now:
        if milestone.unlocked and milestone.name not in plan.milestones_before:
            lines.append(f"Milestone unlocked: {milestone.name}: `tito milestone run {milestone.name}` trains it on "
                         "your own tinytorch.")
    if len(lines) == 1:
        lines.append("Nothing new is unlocked by this one alone.")
    lines.append(f"Next: {next_step(progress)}")
    return True, "\n".join(lines)


# --- milestones ---------------------------------------------------------------------------------------------


def milestones_table(root: Path) -> str:
    root = Path(root)
    graph = Graph.load(root)
    progress = all_progress(root, graph)
    found = milestones(root, graph, progress)
    if not found:
        return "No milestones: this repository has no examples/<name>/train.py."
    rows = [("milestone", "state", "")]
    for milestone in found:
        if milestone.unlocked:
            result = {"passed": "; passed on your current package", "failed": "; FAILED on your current package"}
            rows.append((milestone.name, "unlocked",
                         f"`tito milestone run {milestone.name}`{result.get(milestone.result, '')}"))
        else:
            missing = ", ".join(f"{key} ({state})" for key, state in milestone.missing)
            rows.append((milestone.name, "locked", f"needs {missing}"))
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row[:2], widths)) + "  " + row[2] for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    unlocked = sum(1 for m in found if m.unlocked)
    lines += ["", f"{unlocked} of {len(found)} unlocked. A milestone unlocks when every module it uses is complete."]
    return "\n".join(line.rstrip() for line in lines)


def run_milestone(root: Path, name: str, anyway: bool = False) -> tuple[int, str]:
    """Train one example on the learner's package (its output streams live); (exit code, last words).

    The caller brings the exports up to date first (`doit export`).
    """
    root = Path(root)
    graph = Graph.load(root)
    progress = all_progress(root, graph)
    found = {m.name: m for m in milestones(root, graph, progress)}
    if name not in found:
        raise LearnerError(f"no milestone {name!r} (known: {', '.join(found) or 'none'})")
    milestone = found[name]
    if not milestone.unlocked and not anyway:
        missing = ", ".join(f"{key} ({state})" for key, state in milestone.missing)
        raise LearnerError(f"{name} is locked: it needs {missing}. Complete them (`tito module status` says what "
                           f"is next), or run it anyway: `tito milestone run {name} --anyway`.")
    script = root / milestone.script
    inputs = inputs_key(root, file_inputs(graph, script))
    print(f"--- {milestone.script} on your tinytorch ({', '.join(milestone.modules)})", flush=True)
    code, _, seconds = run(root, [sys.executable, milestone.script], MILESTONE_TIMEOUT, capture=False)
    record_result(root, "example", name, {"inputs": inputs, "passed": code == 0})
    if code == 0:
        return 0, f"Milestone {name}: passed in {seconds:.1f} s, on your own tinytorch."
    reason = "timed out" if code == -1 else f"exited with code {code}"
    return 1, (f"Milestone {name}: FAILED ({reason} after {seconds:.1f} s; its output is above). "
               f"Run `python {milestone.script}` to reproduce it.")


# --- tito module notebook -------------------------------------------------------------------------------------


def pair_notebook(root: Path, key: str) -> Path:
    """Pair a dev file with a notebook next to it (jupytext: `formats: ipynb,py:percent` in its header);
    returns the notebook. Pairing an already paired file only brings the two in sync."""
    root = Path(root)
    try:
        module = Graph.load(root).module(key)
    except LookupError as error:
        raise LearnerError(str(error)) from None
    notebook = module.dev_file.with_suffix(".ipynb")
    command = [sys.executable, "-m", "jupytext", "--set-formats", "ipynb,py:percent", str(module.dev_file)]
    if notebook.is_file():
        command = [sys.executable, "-m", "jupytext", "--sync", str(module.dev_file)]
    done = subprocess.run(command, cwd=root, env=subprocess_env(root), capture_output=True, text=True)
    if done.returncode != 0:
        shown = module.dev_file.relative_to(root)
        raise LearnerError(f"jupytext could not pair {shown}:\n{tail(done.stdout + done.stderr)}")
    return notebook.relative_to(root)


def module_line(root: Path, key: str) -> str:
    """One line about a module, for messages."""
    root = Path(root)
    graph = Graph.load(root)
    return f"{key} is {module_progress(root, graph, graph.module(key)).summary}."
