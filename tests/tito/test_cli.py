"""`tito` is a thin front over the same doit tasks."""

import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from treebuilder import EXECUTED_RE, Result  # noqa: E402


def tito(tree, *args, **env) -> Result:
    done = subprocess.run([sys.executable, "-m", "tito.cli", *args], cwd=tree.root, env=tree.env(**env),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)
    return Result(done.returncode, done.stdout)


def test_tito_module_export_runs_the_doit_export_task(tree):
    via_tito = tito(tree, "module", "export", "02_mid")
    assert via_tito.code == 0, via_tito.output
    assert via_tito.executed == {"export:02_mid"}
    exported = (tree.root / "tinytorch/core/mid.py").read_bytes()
    # The same task, now up to date, whichever front asks for it.
    assert tree.doit("export:02_mid").executed == set()
    assert tito(tree, "module", "export", "mid").executed == set()
    assert (tree.root / "tinytorch/core/mid.py").read_bytes() == exported


def test_tito_discard_edits_flag_regenerates_a_hand_edited_export(built):
    path = built.root / "tinytorch/core/mid.py"
    original = path.read_text()
    path.write_text(original + "# mine\n")
    refused = tito(built, "module", "export", "02_mid")
    assert refused.code == 1 and "edited by hand" in refused.output
    accepted = tito(built, "module", "export", "02_mid", "--discard-edits")
    assert accepted.code == 0, accepted.output
    assert path.read_text() == original


def test_tito_module_test_runs_export_and_test(tree):
    result = tito(tree, "module", "test", "03_top")
    assert result.code == 0, result.output
    assert result.executed == {"export:01_base", "export:02_mid", "export:03_top", "test:03_top"}


def test_tito_module_status_reports_exports_and_tests(built):
    (built.root / "tinytorch/core/side.py").unlink()
    built.replace(built.dev("02_mid"), "return base_value() + 1", "return base_value() + 3")
    result = tito(built, "module", "status")
    assert result.code == 0, result.output
    rows = {line.split()[0]: line for line in result.output.splitlines()[2:]}
    assert "current" in rows["01_base"] and "passed" in rows["01_base"] and "MiB" in rows["01_base"]
    assert "stale" in rows["02_mid"]
    assert "missing" in rows["04_side"]


def test_tito_module_new_creates_a_module_that_checks_and_builds(built):
    result = tito(built, "module", "new", "05_extra")
    assert result.code == 0, result.output
    assert {"check:05_extra", "export:05_extra", "test:05_extra", "integrate:05_extra"} <= result.executed
    assert (built.root / "modules/source/05_extra/extra_dev.py").is_file()
    assert (built.root / "tests/module_05/test_progressive_integration.py").is_file()
    full = built.doit()
    assert full.code == 0, full.output
    assert "release:05_extra" in full.executed

    again = tito(built, "module", "new", "05_extra")
    assert again.code == 2 and "already exists" in again.output
    bad = tito(built, "module", "new", "Extra")
    assert bad.code == 2 and "is not a module name" in bad.output


def test_unknown_module_names_are_reported_with_the_known_ones(tree):
    result = tito(tree, "module", "export", "99_nothing")
    assert result.code != 0
    assert "no module '99_nothing'" in result.output and "01_base" in result.output
    assert not EXECUTED_RE.findall(result.output)


def _every_command(parser, prefix=()):
    """(words, parser) for every command of the tito tree, sub-commands included."""
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*prefix, name), sub
                yield from _every_command(sub, (*prefix, name))


def test_every_command_has_an_example_in_its_help():
    from tito.cli import build_parser

    commands = dict(_every_command(build_parser()))
    assert {("module", "export"), ("module", "test"), ("module", "status"), ("grade",), ("test",)} <= set(commands)
    for words, parser in commands.items():
        assert "examples:\n  tito " in parser.format_help(), " ".join(words)


def test_old_spellings_are_aliases_of_the_module_commands():
    from tito.cli import build_parser, cmd_check, cmd_release, cmd_test

    parser = build_parser()
    assert parser.parse_args(["test", "04"]).run is parser.parse_args(["module", "test", "04"]).run is cmd_test
    assert parser.parse_args(["check"]).run is cmd_check
    assert parser.parse_args(["release", "--discard-edits"]).run is cmd_release

if __name__ == "__main__":
    import sys

    import pytest

    sys.exit(pytest.main([__file__, "-q"]))
