"""`tito`: the learner's short commands, a thin front over the doit graph.

Every build step is a doit task; tito only translates `tito module export 04_layers` into
`doit export:04_layers` and runs it in the project root. It never re-implements a task.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from tito.modules import discover, find_module


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
    command = [sys.executable, "-m", "doit", "-f", str(root / "dodo.py"), *args]
    return subprocess.call(command, cwd=root, env={**os.environ, **(env or {})})


def module_key(root: Path, name: str) -> str:
    try:
        return find_module(root, name).key
    except LookupError as error:
        raise SystemExit(f"tito: {error}") from None


# --- commands ---------------------------------------------------------------------------------------


def cmd_module_export(args) -> int:
    root = project_root()
    keys = [module_key(root, name) for name in args.modules] or [m.key for m in discover(root)]
    env = {"TITO_DISCARD_EDITS": "1"} if args.discard_edits else None
    return doit(root, *[f"export:{key}" for key in keys], env=env)


def cmd_module_test(args) -> int:
    root = project_root()
    keys = [module_key(root, name) for name in args.modules]
    tasks = [f"test:{key}" for key in keys]
    if args.integrate:
        tasks += [f"integrate:{key}" for key in keys]
    return doit(root, *tasks)


def cmd_module_status(args) -> int:
    from tito.status import module_status_table

    print(module_status_table(project_root()))
    return 0


def cmd_test(args) -> int:
    root = project_root()
    if not args.all and not args.modules:
        raise SystemExit("tito test: name modules (`tito test 04_layers`) or use --all")
    if args.all:
        return doit(root, "test", "integrate")
    return doit(root, *[f"test:{module_key(root, name)}" for name in args.modules])


def cmd_release(args) -> int:
    root = project_root()
    tasks = [f"release:{module_key(root, name)}" for name in args.modules] or ["release"]
    return doit(root, *tasks, env={"TITO_DISCARD_EDITS": "1"} if args.discard_edits else None)


def cmd_check(args) -> int:
    root = project_root()
    tasks = [f"check:{module_key(root, name)}" for name in args.modules] or ["check"]
    return doit(root, *tasks)


def cmd_grade(args) -> int:
    from tito.grade import GradingError, format_table, grade, to_json

    root = project_root()
    key = module_key(root, args.module)
    gradebook = Path(args.gradebook or f"gradebook-{key}.csv")
    try:
        results = grade(root, key, [Path(p) for p in args.notebooks], jobs=args.jobs, timeout=args.timeout,
                        memory_mb=args.memory_mb, gradebook=gradebook)
    except GradingError as error:
        print(f"tito grade: {error}", file=sys.stderr)
        return 2
    print(to_json(results) if args.json else format_table(results), end="")
    if not args.json:
        print(f"gradebook: {gradebook}")
    return 1 if any(note.startswith("WARNING") for r in results for note in r.notes) else 0


def cmd_module_new(args) -> int:
    from tito.scaffold import ScaffoldError, create_module

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


def cmd_package(args) -> int:
    return doit(project_root(), "package")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tito", description="TinyTorch's short commands over the doit graph.")
    commands = parser.add_subparsers(dest="command", required=True)

    module = commands.add_parser("module", help="work on one module")
    module_commands = module.add_subparsers(dest="module_command", required=True)
    export = module_commands.add_parser("export", help="export modules (all when none is named)")
    export.add_argument("modules", nargs="*", help="e.g. 04_layers, 04 or layers")
    export.add_argument("--discard-edits", action="store_true",
                        help="throw away hand edits of the generated files (a copy goes to .tito/discarded/)")
    export.set_defaults(run=cmd_module_export)
    test = module_commands.add_parser("test", help="export and test modules")
    test.add_argument("modules", nargs="+")
    test.add_argument("--integrate", action="store_true", help="also run their progressive tests")
    test.set_defaults(run=cmd_module_test)
    status = module_commands.add_parser("status", help="a table of every module's state")
    status.set_defaults(run=cmd_module_status)
    new = module_commands.add_parser("new", help="create a module skeleton that checks and builds at once")
    new.add_argument("name", help="NN_name, e.g. 12_compression")
    new.set_defaults(run=cmd_module_new)

    test_all = commands.add_parser("test", help="run module tests (--all: every module and integration test)")
    test_all.add_argument("modules", nargs="*")
    test_all.add_argument("--all", action="store_true")
    test_all.set_defaults(run=cmd_test)

    check = commands.add_parser("check", help="validate dev files (all when none is named)")
    check.add_argument("modules", nargs="*")
    check.set_defaults(run=cmd_check)

    release = commands.add_parser("release", help="build student notebooks (all when none is named)")
    release.add_argument("modules", nargs="*")
    release.add_argument("--discard-edits", action="store_true",
                         help="throw away hand edits of release notebooks (a copy goes to .tito/discarded/)")
    release.set_defaults(run=cmd_release)

    grade = commands.add_parser("grade", help="autograde completed student notebooks")
    grade.add_argument("notebooks", nargs="+", help="completed .ipynb files")
    grade.add_argument("--module", required=True, help="the module they belong to, e.g. 04_layers")
    grade.add_argument("--jobs", type=int, default=1, help="notebooks graded at once (default 1)")
    grade.add_argument("--timeout", type=float, default=60, help="seconds one notebook may run (default 60)")
    grade.add_argument("--memory-mb", type=int, default=1024, help="memory limit per notebook (default 1024)")
    grade.add_argument("--json", action="store_true", help="print the results as JSON")
    grade.add_argument("--gradebook", help="CSV gradebook path (default gradebook-<module>.csv)")
    grade.set_defaults(run=cmd_grade)

    package = commands.add_parser("package", help="build the tinytorch wheel and test it in a fresh venv")
    package.set_defaults(run=cmd_package)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
