"""Run every module's tests and print one table: module, passed / failed / skipped, time.

    python tests/run_all_modules.py               # every modules/source/NN_name/
    python tests/run_all_modules.py 08 09_optimizers training   # a selection (number, key or name)
    python tests/run_all_modules.py --no-export   # skip bringing the exports up to date first

It discovers the modules on disk (whatever exists now), runs each module's `test_*.py` files with pytest
in a subprocess (the project root first on PYTHONPATH, TITO_BUILD=1 so the root conftest does not start
a nested doit), reads the counts from pytest's JUnit XML report, and exits non-zero if any test failed
or errored, or a module's test run crashed. Modules without test files are listed as such.

Before the tests it runs `doit export orphans`, as the root conftest does, so no module is tested
against a stale export; inside a doit task (TITO_BUILD set) or with --no-export it skips that.

Importable too: `run_all(root, selected)` returns the rows, `main(argv)` is the command line.
It is not a pytest file (its name does not start with `test_`), so pytest never collects it.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tito, also when this file runs as a script from a checkout without an install

from tito.model.layout import MODULE_DIR_RE, module_folders  # noqa: E402
from tito.steps.process import doit_command, subprocess_env  # noqa: E402

TIMEOUT = 900  # seconds per module


@dataclass
class Row:
    module: str
    files: int
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    seconds: float = 0.0
    note: str = ""
    output: str = ""

    @property
    def ok(self) -> bool:
        return self.failed == 0 and not self.note.startswith(("crashed", "timed out"))


def discover(root: Path = ROOT) -> list[tuple[str, Path]]:
    """(key, folder) of every modules/source/NN_name/ folder, in curriculum order (tito's own discovery)."""
    return [(folder.name, folder) for folder, _ in module_folders(root)]


def _selected(key: str, wanted: list[str] | None) -> bool:
    if not wanted:
        return True
    number, name = MODULE_DIR_RE.match(key).groups()
    return any(w in (key, number, name) for w in wanted)


def _counts(junit_xml: Path) -> tuple[int, int, int]:
    """(passed, failed, skipped) from pytest's JUnit XML; errors count as failures."""
    tree = ET.parse(junit_xml)
    suites = [tree.getroot()] if tree.getroot().tag == "testsuite" else list(tree.getroot())
    tests = failures = errors = skipped = 0
    for suite in suites:
        tests += int(suite.get("tests", 0))
        failures += int(suite.get("failures", 0))
        errors += int(suite.get("errors", 0))
        skipped += int(suite.get("skipped", 0))
    return tests - failures - errors - skipped, failures + errors, skipped


def run_module(root: Path, key: str, folder: Path) -> Row:
    """Run one module's test files in a pytest subprocess and count the outcomes."""
    files = sorted(folder.glob("test_*.py"))
    row = Row(key, len(files))
    if not files:
        row.note = "no test files"
        return row
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "junit.xml"
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={report}",
                   *[str(f.relative_to(root)) for f in files]]
        start = time.perf_counter()
        try:
            done = subprocess.run(command, cwd=root, env=subprocess_env(root), stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True, timeout=TIMEOUT)
            row.output, code = done.stdout, done.returncode
        except subprocess.TimeoutExpired:
            row.seconds, row.note = time.perf_counter() - start, f"timed out after {TIMEOUT} s"
            return row
        row.seconds = time.perf_counter() - start
        if report.is_file():
            row.passed, row.failed, row.skipped = _counts(report)
    if code == 5:                                   # pytest: no tests collected
        row.note = "no tests collected"
    elif code != 0 and row.failed == 0:             # interrupted, internal error, bad usage...
        row.note = f"crashed (pytest exit code {code})"
    return row


def export_all(root: Path) -> tuple[bool, str]:
    """Bring every export up to date (`doit export orphans`), as the root conftest does."""
    done = subprocess.run(doit_command(root, "export", "orphans"), cwd=root, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
    return done.returncode == 0, done.stdout


def run_all(root: Path = ROOT, selected: list[str] | None = None, progress=None) -> list[Row]:
    """Run the selected modules' tests (all by default); `progress(row)` is called after each."""
    rows = []
    for key, folder in discover(root):
        if _selected(key, selected):
            row = run_module(Path(root), key, folder)
            rows.append(row)
            if progress:
                progress(row)
    return rows


def format_table(rows: list[Row]) -> str:
    lines = [f"{'module':<20} {'files':>5} {'passed':>7} {'failed':>7} {'skipped':>8} {'time (s)':>9}  note",
             "-" * 72]
    for r in rows:
        lines.append(f"{r.module:<20} {r.files:>5} {r.passed:>7} {r.failed:>7} {r.skipped:>8} {r.seconds:>9.1f}  "
                     f"{r.note}")
    lines.append("-" * 72)
    total = [sum(getattr(r, k) for r in rows) for k in ("files", "passed", "failed", "skipped", "seconds")]
    lines.append(f"{'total':<20} {total[0]:>5} {total[1]:>7} {total[2]:>7} {total[3]:>8} {total[4]:>9.1f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("modules", nargs="*", help="modules to run (number, NN_name or name); default all")
    parser.add_argument("--no-export", action="store_true", help="do not run `doit export` first")
    parser.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    root = args.root.resolve()

    known = [key for key, _ in discover(root)]
    unknown = [w for w in args.modules if not any(_selected(k, [w]) for k in known)]
    if unknown:
        print(f"unknown module(s) {unknown}; known: {', '.join(known) or 'none'}", file=sys.stderr)
        return 2

    exported = True
    if not (args.no_export or os.environ.get("TITO_BUILD")):
        print("bringing exports up to date (doit export orphans) ...", flush=True)
        exported, output = export_all(root)
        if not exported:
            print(f"`doit export` failed; the tests below may run against stale exports:\n{output}", flush=True)

    rows = run_all(root, args.modules, progress=lambda r: print(
        f"  {r.module}: {r.passed} passed, {r.failed} failed, {r.skipped} skipped ({r.seconds:.1f} s) {r.note}",
        flush=True))
    for row in rows:
        if not row.ok:
            print(f"\n===== {row.module} =====\n{row.output.rstrip()}")
    print()
    print(format_table(rows))
    bad = [r.module for r in rows if not r.ok]
    if bad:
        print(f"\nFAILED: {', '.join(bad)}. Debug one with `python -m pytest modules/source/<NN_name> -x`.")
    elif not exported:
        print("\nall tests passed, but the export step failed (see above)")
    return 1 if bad or not exported else 0


if __name__ == "__main__":
    sys.exit(main())
