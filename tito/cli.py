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

from tito.model.layout import discover, find_module
from tito.steps.runner import doit_command


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
    from tito.steps.status import module_status_table

    print(module_status_table(project_root()))
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


def cmd_package(args) -> int:
    return doit(project_root(), "package")


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tito", description="TinyTorch's short commands over the doit graph.",
        epilog="examples:\n  tito module export 04_layers\n  tito module test 04_layers --integrate\n"
               "  tito module status\n  tito grade submissions/*.ipynb --module 04_layers --jobs 2",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, metavar="{module,grade,package,test,check,release}")

    module = _command(commands, "module", None, "work on modules: export, test, check, release, status, new",
                      ["tito module export 04_layers", "tito module status"])
    module_commands = module.add_subparsers(dest="module_command", required=True)
    _add_export(module_commands)
    _add_test(module_commands)
    _add_check(module_commands)
    _add_release(module_commands)
    _command(module_commands, "status", cmd_status, "a table of every module's export, last test and peak memory",
             ["tito module status"])
    new = _command(module_commands, "new", cmd_new, "create a module skeleton that checks and builds at once",
                   ["tito module new 17_serving"])
    new.add_argument("name", help="NN_name, e.g. 17_serving")

    grade = _command(commands, "grade", cmd_grade, "autograde completed student notebooks of one module",
                     ["tito grade submissions/*.ipynb --module 04_layers",
                      "tito grade a.ipynb b.ipynb --module 04 --jobs 2 --json"])
    grade.add_argument("notebooks", nargs="+", help="completed .ipynb files")
    grade.add_argument("--module", required=True, help="the module they belong to, e.g. 04_layers")
    grade.add_argument("--jobs", type=int, default=1, help="notebooks graded at once (default 1)")
    grade.add_argument("--timeout", type=float, default=60, help="seconds one notebook may run (default 60)")
    grade.add_argument("--memory-mb", type=int, default=1024, help="memory limit per notebook (default 1024)")
    grade.add_argument("--json", action="store_true", help="print the results as JSON")
    grade.add_argument("--gradebook", help="CSV gradebook path (default gradebook-<module>.csv)")

    _command(commands, "package", cmd_package, "build the tinytorch wheel and import it from a fresh venv",
             ["tito package"])

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
