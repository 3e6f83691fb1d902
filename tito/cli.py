"""`tito`: short commands over the doit graph, one tree:

    tito module export|test|check|release|status|new ...   work on modules
    tito grade ...                                         autograde student notebooks
    tito package                                           build and check the wheel

Every build step is a doit task; tito translates `tito module export 04_layers` into
`doit export:04_layers` and runs it in the project root. It never re-implements a task. Older
spellings stay as aliases: `tito test`, `tito check` and `tito release` are `tito module test|check|release`.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from tito.model.layout import find_module
from tito.steps.process import doit_command


def project_root(start: Path | None = None) -> Path:
    """The nearest folder at or above `start` that holds dodo.py and modules/source."""
    here = (start or Path.cwd()).resolve()
    # Outside the repository (say, in a folder of submissions), fall back to the checkout tito runs from.
    for folder in [here, *here.parents, Path(__file__).resolve().parents[1]]:
        if (folder / "dodo.py").is_file() and (folder / "modules" / "source").is_dir():
            return folder
    raise SystemExit("tito: no TinyTorch project here: run tito inside the repository "
                     "(the folder with dodo.py and modules/source/).")


def doit(root: Path, *args: str, env: dict | None = None) -> int:
    """Run `doit ARGS` in the project root; returns doit's exit code."""
    return subprocess.call(doit_command(root, *args), cwd=root, env={**os.environ, **(env or {})})


def module_key(root: Path, name: str) -> str:
    try:
        return find_module(root, name).key
    except LookupError as error:
        raise SystemExit(f"tito: {error}") from None


def _tasks(root: Path, family: str, names: list[str]) -> list[str]:
    """`family:NN_name` for each named module, or the whole family when none is named."""
    return [f"{family}:{module_key(root, name)}" for name in names] or [family]


DISCARD = {"TITO_DISCARD_EDITS": "1"}


# --- commands ---------------------------------------------------------------------------------------


def cmd_export(args) -> int:
    root = project_root()
    return doit(root, *_tasks(root, "export", args.modules), env=DISCARD if args.discard_edits else None)


def cmd_test(args) -> int:
    root = project_root()
    if args.all:
        return doit(root, "test", "integrate")
    if not args.modules:
        raise SystemExit("tito module test: name modules (`tito module test 04_layers`) or use --all")
    keys = [module_key(root, name) for name in args.modules]
    tasks = [f"test:{key}" for key in keys]
    if args.integrate:
        tasks += [f"integrate:{key}" for key in keys]
    return doit(root, *tasks)


def cmd_check(args) -> int:
    root = project_root()
    return doit(root, *_tasks(root, "check", args.modules))


def cmd_release(args) -> int:
    root = project_root()
    return doit(root, *_tasks(root, "release", args.modules), env=DISCARD if args.discard_edits else None)


def cmd_status(args) -> int:
    from tito.steps.progress import is_student_repo
    from tito.steps.status import module_status_table

    root = project_root()
    if is_student_repo(root):
        return cmd_student_status(args)
    print(module_status_table(root))
    return 0


def cmd_new(args) -> int:
    from tito.teaching.scaffold import ScaffoldError, create_module

    root = project_root()
    try:
        written = create_module(root, args.name)
    except ScaffoldError as error:
        print(f"tito module new: {error}", file=sys.stderr)
        return 2
    for path in written:
        print(f"created {path}")
    key = args.name
    print(f"\nNext: edit {written[0]}, then `doit check:{key} export:{key} test:{key}`.")
    return doit(root, f"check:{key}", f"export:{key}", f"test:{key}", f"integrate:{key}")


def cmd_grade(args) -> int:
    from tito.teaching.grade import GradingError, format_table, grade, to_json
    from tito.teaching.grade_progress import reporter
    from tito.teaching.late import LateError, LatePolicy

    root = project_root()
    if any(Path(p).is_dir() or p.endswith("_dev.py") for p in args.notebooks):
        return _grade_student_work(args)  # student repositories or their dev files: every module, or --module
    if not args.module:
        raise SystemExit("tito grade: name the notebooks' module with --module (e.g. --module 04_layers)")
    key = module_key(root, args.module)
    gradebook = Path(args.gradebook or f"gradebook-{key}.csv")
    late = None
    if args.late_policy and not args.deadline:
        raise SystemExit("tito grade: --late-policy needs --deadline")
    if args.deadline:
        try:
            late = LatePolicy.parse(args.deadline, args.late_policy or "none")
        except LateError as error:
            raise SystemExit(f"tito grade: {error}") from None
    if args.scheduler and args.cluster:
        raise SystemExit("tito grade: use --scheduler or --cluster, not both")
    notebooks = [Path(p) for p in args.notebooks]
    with reporter(len(notebooks)) as progress:
        try:
            results = grade(root, key, notebooks, jobs=args.jobs, timeout=args.timeout, memory_mb=args.memory_mb,
                            gradebook=gradebook, sandbox=args.sandbox, feedback=args.feedback, late=late,
                            scheduler=args.scheduler, cluster=args.cluster, progress=progress, log=progress.log)
        except GradingError as error:
            print(f"tito grade: {error}", file=sys.stderr)
            return 2
    print(to_json(results) if args.json else format_table(results), end="")
    if not args.json:
        print(f"gradebook: {gradebook}")
        if args.feedback:
            print(f"feedback: {args.feedback}/ (one page per notebook)")
    return 1 if any(note.startswith("WARNING") for r in results for note in r.notes) else 0


def _grade_student_work(args) -> int:
    """`tito grade` given student repositories or dev files: the same as `tito student grade`."""
    args.course = None
    args.paths = args.notebooks
    args.modules = args.module
    return cmd_student_grade(args)


def cmd_package(args) -> int:
    return doit(project_root(), "package")


# --- the learner's track (tito.teaching.student, tito.teaching.learner) --------------------------------


def _student_root(command: str) -> Path:
    """The student repository tito runs in, or SystemExit saying how to get one."""
    from tito.steps.progress import is_student_repo

    root = project_root()
    if not is_student_repo(root):
        raise SystemExit(f"tito {command}: this is the course, not a student repository (no tinytorch-course.json "
                         "at its root). Make one with `tito student new DIR`, then run this inside it.")
    return root


def cmd_student_new(args) -> int:
    from tito.steps.progress import is_student_repo
    from tito.teaching.student import StudentError, new_student_repository, secret_lines

    course = Path(args.course).resolve() if args.course else project_root()
    if is_student_repo(course):
        print(f"tito student new: {course} is itself a student repository: make student repositories from the "
              "course (`--course PATH_TO_COURSE`).", file=sys.stderr)
        return 2
    keys = [key.strip() for key in args.modules.split(",") if key.strip()] if args.modules else None
    try:
        snapshot = new_student_repository(course, Path(args.dir), keys)
    except StudentError as error:
        print(f"tito student new: {error}", file=sys.stderr)
        return 2
    version = snapshot.record["course"]
    commit = (version["commit"] or "outside git")[:12] + (" + uncommitted changes" if version["modified"] else "")
    print(f"Wrote {args.dir}: a student repository with {len(snapshot.modules)} module(s) "
          f"({snapshot.modules[0].key} .. {snapshot.modules[-1].key}), {len(snapshot.files)} files, one commit; "
          f"course version {commit}.")
    for note in snapshot.added:
        print(f"  {note}")
    print(f"Every dev file holds stubs instead of solutions; none of the course's {len(secret_lines(course))} "
          "solution lines is in any file or git object of it.")
    print(f"\nNext:\n  cd {args.dir}\n  python3 -m venv .venv && .venv/bin/python -m pip install -e "
          '".[dev,examples]" && .venv/bin/doit\n  .venv/bin/python -m pytest\n'
          "  source .venv/bin/activate && tito module status")
    return 0


def cmd_student_update(args) -> int:
    from tito.teaching.student import StudentError, update_student_repository

    root = _student_root("student update")
    course = Path(args.course).resolve()
    if not (course / "modules" / "source").is_dir():
        print(f"tito student update: {course} is not a TinyTorch course (no modules/source/)", file=sys.stderr)
        return 2
    try:
        report = update_student_repository(root, course)
    except StudentError as error:
        print(f"tito student update: {error}", file=sys.stderr)
        return 2
    if not report.changed:
        print("Already up to date with the course: nothing changed.")
    else:
        print(f"Updated {len(report.written)} file(s), removed {len(report.removed)}.")
        for rel in report.written:
            print(f"  updated {rel}")
        for rel in report.removed:
            print(f"  removed {rel}")
        if report.backups:
            print(f"Everything replaced or removed was copied to {report.backups}/ first.")
    for note in report.notes:
        print(f"note: {note}")
    for conflict in report.conflicts:
        print(conflict, file=sys.stderr)
    for line in report.unresolved:
        print(line, file=sys.stderr)
    if report.conflicts or report.unresolved:
        count = len(report.conflicts) + len(report.unresolved)
        print(f"{count} conflict(s) to merge by hand (above).", file=sys.stderr)
        return 1
    if report.changed:
        print("Your solutions are as they were. Next: `doit` (or `tito module status`).")
    return 0


def cmd_student_grade(args) -> int:
    from tito.teaching.grade import format_table, write_gradebook
    from tito.teaching.student import StudentError, grade_student_work

    course = Path(args.course).resolve() if args.course else project_root()
    modules = [m.strip() for m in args.modules.split(",") if m.strip()] if args.modules else None
    try:
        graded = grade_student_work(course, [Path(p) for p in args.paths], modules, jobs=args.jobs,
                                    timeout=args.timeout, memory_mb=args.memory_mb)
    except (StudentError, LookupError) as error:
        print(f"tito student grade: {error}", file=sys.stderr)
        return 2
    results = [g.result for g in graded if g.result is not None]
    for item in graded:
        if item.result is None:
            print(f"{item.source}: not graded: {'; '.join(item.problems)}", file=sys.stderr)
    if results:
        print(format_table(results), end="")
        total, best = sum(r.total for r in results), sum(r.max_total for r in results)
        print(f"all modules: {total:g} of {best:g} points")
    if args.gradebook:
        write_gradebook(results, Path(args.gradebook))
        print(f"gradebook: {args.gradebook}")
    return 0 if all(g.result is not None for g in graded) else 1


def cmd_student_status(args) -> int:
    from tito.teaching.learner import status_table

    print(status_table(_student_root("module status")))
    return 0


def cmd_complete(args) -> int:
    from tito.teaching.learner import LearnerError, after_completing, before_completing

    root = _student_root("module complete")
    key = module_key(root, args.module)
    try:
        plan = before_completing(root, key)
    except LearnerError as error:
        print(f"tito module complete: {error}", file=sys.stderr)
        return 1
    doit(root, "--reporter", "executed-only", *plan.tasks)  # what ran and what failed; no up-to-date lines
    complete, message = after_completing(root, plan)
    print(f"\n{message}")
    return 0 if complete else 1


def cmd_reset(args) -> int:
    from tito.teaching.student import StudentError, reset_module

    root = _student_root("module reset")
    key = module_key(root, args.module)
    try:
        count, backup = reset_module(root, key)
    except StudentError as error:
        print(f"tito module reset: {error}", file=sys.stderr)
        return 2
    if not count:
        print(f"{key}: every solution cell already holds its stub; nothing changed.")
        return 0
    print(f"{key}: {count} solution cell(s) back to their stubs; your file was copied to {backup} first.")
    subprocess.run(doit_command(root, f"export:{key}"), cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    print("Next: `tito module status`; `git diff` shows what was reset.")
    return 0


def cmd_notebook(args) -> int:
    from tito.teaching.learner import LearnerError, pair_notebook

    root = _student_root("module notebook")
    key = module_key(root, args.module)
    try:
        notebook = pair_notebook(root, key)
    except LearnerError as error:
        print(f"tito module notebook: {error}", file=sys.stderr)
        return 2
    print(f"{notebook} is paired with {notebook.with_suffix('.py')} (jupytext). Open it in Jupyter and work there; "
          "`doit` and `tito` bring its edits into the dev file before they build, and Jupyter with jupytext "
          "installed saves both at once.")
    return 0


def cmd_milestones(args) -> int:
    from tito.teaching.learner import milestones_table

    print(milestones_table(_student_root("milestones")))
    return 0


def cmd_milestone_run(args) -> int:
    from tito.teaching.learner import LearnerError, run_milestone

    root = _student_root("milestone run")
    exported = subprocess.run(doit_command(root, "export"), cwd=root, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    if exported.returncode != 0:
        print(exported.stdout, file=sys.stderr)
        print("tito milestone run: `doit export` failed (above), so your package is not current.", file=sys.stderr)
        return 1
    try:
        code, message = run_milestone(root, args.name, anyway=args.anyway)
    except LearnerError as error:
        print(f"tito milestone run: {error}", file=sys.stderr)
        return 1
    print(message)
    return code


# --- the command tree -------------------------------------------------------------------------------


def _command(commands, name: str, run, help: str, examples: list[str], alias: bool = False) -> argparse.ArgumentParser:
    """A sub-command whose --help ends with examples; an alias says what it is an alias of."""
    epilog = "examples:\n" + "\n".join(f"  {example}" for example in examples)
    if alias:
        help = f"the same as `tito module {name}`"
    parser = commands.add_parser(name, help=help, description=help, epilog=epilog,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.set_defaults(run=run)
    return parser


MODULES_HELP = "modules by key, number or name (04_layers, 04, layers); all when none is named"


def _add_export(commands, alias: bool = False) -> None:
    parser = _command(commands, "export", cmd_export, "export dev files to tinytorch/core/ (doit export:NN)",
                      ["tito module export 04_layers", "tito module export            # every module",
                       "tito module export 04 --discard-edits"], alias)
    parser.add_argument("modules", nargs="*", help=MODULES_HELP)
    parser.add_argument("--discard-edits", action="store_true",
                        help="throw away hand edits of the generated files (a copy goes to .tito/discarded/)")


def _add_test(commands, alias: bool = False) -> None:
    parser = _command(commands, "test", cmd_test, "export and test modules (doit test:NN [integrate:NN])",
                      ["tito module test 04_layers", "tito module test 04 --integrate",
                       "tito module test --all        # every module and integration test"], alias)
    parser.add_argument("modules", nargs="*", help="modules by key, number or name (04_layers, 04, layers)")
    parser.add_argument("--integrate", action="store_true", help="also run their progressive tests")
    parser.add_argument("--all", action="store_true", help="every module's tests and every integration test")


def _add_check(commands, alias: bool = False) -> None:
    parser = _command(commands, "check", cmd_check, "validate dev files: metadata, directives, imports (doit check:NN)",
                      ["tito module check 04_layers", "tito module check             # every module"], alias)
    parser.add_argument("modules", nargs="*", help=MODULES_HELP)


def _add_release(commands, alias: bool = False) -> None:
    parser = _command(commands, "release", cmd_release, "write student notebooks to modules/release/ (doit release:NN)",
                      ["tito module release 04_layers", "tito module release 04 --discard-edits"], alias)
    parser.add_argument("modules", nargs="*", help=MODULES_HELP)
    parser.add_argument("--discard-edits", action="store_true",
                        help="throw away hand edits of release notebooks (a copy goes to .tito/discarded/)")


def _add_learner_commands(commands, module_commands) -> None:
    """`tito student ...`, `tito module complete|reset|notebook`, `tito milestones`, `tito milestone run`."""
    student = _command(commands, "student", None, "student repositories: make one, update it, grade it",
                       ["tito student new ../my-tinytorch", "tito student update --from ../tinytorch"])
    student_commands = student.add_subparsers(dest="student_command", required=True)
    new = _command(student_commands, "new", cmd_student_new,
                   "write a student repository: the course with stubs instead of solutions, one git commit",
                   ["tito student new ../my-tinytorch", "tito student new /tmp/short --modules 01,02,03,04"])
    new.add_argument("dir", help="the folder to create (it must not exist, or be empty)")
    new.add_argument("--modules", help="only these modules (and what they need), e.g. 01,02,03,04")
    new.add_argument("--course", help="the course checkout (default: the one tito runs in)")
    update = _command(student_commands, "update", cmd_student_update,
                      "bring a newer course into this student repository, keeping your code",
                      ["tito student update --from ../tinytorch"])
    update.add_argument("--from", dest="course", required=True, help="the course checkout to update from")
    grade = _command(student_commands, "grade", cmd_student_grade,
                     "grade student repositories (or dev files) against the course's own test cells",
                     ["tito student grade ../alice ../bob", "tito student grade ../alice --modules 01,04",
                      "tito student grade layers_dev.py"])
    grade.add_argument("paths", nargs="+", help="student repositories (folders) or NAME_dev.py files")
    grade.add_argument("--modules", help="only these modules, e.g. 01,04 (default: every module)")
    grade.add_argument("--course", help="the course checkout (default: the one tito runs in)")
    grade.add_argument("--jobs", type=int, default=1, help="modules graded at once (default 1)")
    grade.add_argument("--timeout", type=float, default=120, help="seconds one module may run (default 120)")
    grade.add_argument("--memory-mb", type=int, default=1024, help="memory limit per module (default 1024)")
    grade.add_argument("--gradebook", help="also write a CSV gradebook here")

    complete = _command(module_commands, "complete", cmd_complete,
                        "in a student repository: export, test and integrate a module, then say what it unlocked",
                        ["tito module complete 04_layers"])
    complete.add_argument("module", help="the module, e.g. 04_layers, 04 or layers")
    reset = _command(module_commands, "reset", cmd_reset,
                     "in a student repository: put a module's stubs back (your file goes to .tito/backups/)",
                     ["tito module reset 04_layers"])
    reset.add_argument("module", help="the module, e.g. 04_layers")
    notebook = _command(module_commands, "notebook", cmd_notebook,
                        "in a student repository: pair a dev file with a Jupyter notebook (jupytext)",
                        ["tito module notebook 04_layers"])
    notebook.add_argument("module", help="the module, e.g. 04_layers")

    _command(commands, "milestones", cmd_milestones, "in a student repository: which examples your code unlocks",
             ["tito milestones"])
    milestone = _command(commands, "milestone", None, "run a milestone on your own tinytorch",
                         ["tito milestone run xor_network"])
    milestone_commands = milestone.add_subparsers(dest="milestone_command", required=True)
    run = _command(milestone_commands, "run", cmd_milestone_run, "train one example on your own tinytorch",
                   ["tito milestone run xor_network", "tito milestone run digits_mlp --anyway"])
    run.add_argument("name", help="the example's name, e.g. xor_network")
    run.add_argument("--anyway", action="store_true", help="run it even while it is locked")


COMMANDS = "{module,student,milestones,milestone,grade,package,test,check,release}"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tito", description="TinyTorch's short commands over the doit graph.",
        epilog="examples:\n  tito module export 04_layers\n  tito module test 04_layers --integrate\n"
               "  tito module status\n  tito grade submissions/*.ipynb --module 04_layers --jobs 2",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, metavar=COMMANDS)

    module = _command(commands, "module", None, "work on modules: export, test, check, release, status, new",
                      ["tito module export 04_layers", "tito module status"])
    module_commands = module.add_subparsers(dest="module_command", required=True)
    _add_export(module_commands)
    _add_test(module_commands)
    _add_check(module_commands)
    _add_release(module_commands)
    _command(module_commands, "status", cmd_status, "a table of every module's export, last test and own peak memory",
             ["tito module status"])
    new = _command(module_commands, "new", cmd_new, "create a module skeleton that checks and builds at once",
                   ["tito module new 17_serving"])
    new.add_argument("name", help="NN_name, e.g. 17_serving")

    grade = _command(commands, "grade", cmd_grade, "autograde completed student notebooks of one module",
                     ["tito grade submissions/*.ipynb --module 04_layers",
                      "tito grade a.ipynb b.ipynb --module 04 --jobs 2 --json",
                      "tito grade submitted/*/ps4/*.ipynb --module 04 --feedback feedback/ "
                      "--deadline 2026-03-01T23:59 --late-policy 10%",
                      "tito grade submitted/*/ps4/*.ipynb --module 04 --cluster local:4",
                      "tito grade submitted/*/ps4/*.ipynb --module 04 --scheduler tcp://10.0.0.5:8786",
                      "tito grade ../alice ../bob --module 01,04   # student repositories"])
    grade.add_argument("notebooks", nargs="+", help="completed .ipynb files, or student repositories / their "
                       "*_dev.py files (every module of theirs is graded, or those named with --module)")
    grade.add_argument("--module", help="the notebooks' module, e.g. 04_layers (for student repositories: "
                       "a comma-separated selection, default every module)")
    grade.add_argument("--jobs", type=int, default=1, help="notebooks graded at once on this machine (default 1)")
    grade.add_argument("--timeout", type=float, default=60, help="seconds one notebook may run (default 60)")
    grade.add_argument("--memory-mb", type=int, default=1024, help="memory limit per notebook (default 1024)")
    grade.add_argument("--sandbox", choices=("auto", "bwrap", "guard"), default="auto",
                       help="bwrap: an operating-system sandbox (Linux, bubblewrap); guard: the in-process guard; "
                            "auto (default): bwrap where it works, else the guard, saying why")
    grade.add_argument("--feedback", metavar="DIR", help="write one HTML feedback page per notebook into DIR")
    grade.add_argument("--deadline", help="submission deadline, ISO 8601 (2026-03-01T23:59, or with +01:00)")
    grade.add_argument("--late-policy", metavar="POLICY",
                       help="none (default), zero, or a percentage off per started day late, e.g. 10%%")
    grade.add_argument("--scheduler", metavar="ADDRESS",
                       help="grade on an existing dask.distributed cluster (needs `pip install -e .[grading]`)")
    grade.add_argument("--cluster", metavar="local:N", help="grade on a local Dask cluster of N worker processes")
    grade.add_argument("--json", action="store_true", help="print the results as JSON")
    grade.add_argument("--gradebook", help="CSV gradebook path (default gradebook-<module>.csv)")

    _command(commands, "package", cmd_package, "build the tinytorch wheel and import it from a fresh venv",
             ["tito package"])
    _add_learner_commands(commands, module_commands)

    # Older spellings, kept as aliases of `tito module ...`.
    _add_test(commands, alias=True)
    _add_check(commands, alias=True)
    _add_release(commands, alias=True)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.run is None:  # `tito module` alone
        parser.parse_args([*(argv if argv is not None else sys.argv[1:]), "--help"])
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
