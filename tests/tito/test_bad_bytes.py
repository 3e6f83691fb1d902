"""A file that is not UTF-8 fails its own module's (or example's) tasks with file, line and byte; the graph
still loads and everything else builds."""

import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

MID = "modules/source/02_mid/mid_dev.py"
SIDE_TEST = "modules/source/04_side/test_side_core.py"
EXAMPLE = "examples/uses_mid/train.py"
FAILED_RE = re.compile(r"^TaskFailed - taskid:(\S+)$", re.MULTILINE)
RESAVE = "Re-save it as UTF-8"


def _latin1(tree, rel: str, old: bytes, new: bytes) -> int:
    """Replace `old` by Latin-1 bytes `new` in a file; returns the line they are on."""
    path = tree.root / rel
    data = path.read_bytes()
    assert old in data
    data = data.replace(old, new, 1)
    path.write_bytes(data)
    return data[: data.index(new)].count(b"\n") + 1


def _tasks_of(*keys: str) -> set[str]:
    return {f"{family}:{key}" for family in ("check", "export", "test", "integrate", "release")
            for key in keys}


def test_a_dev_file_that_is_not_utf8_fails_its_module_and_nothing_else(tree):
    line = _latin1(tree, MID, b"A fixture module.", b"A fixture module, caf\xe9.")  # a markdown cell

    listing = tree.doit("list")
    assert listing.code == 0 and "Traceback" not in listing.output, listing.output

    result = tree.doit("--continue")
    assert result.code != 0
    assert "Traceback" not in result.output and "UnicodeDecodeError" not in result.output, result.output
    assert f"{MID}:{line}: byte 0xe9 at offset" in result.output and RESAVE in result.output
    failed = set(FAILED_RE.findall(result.output))
    # Every task that reads the dev file fails with the message; none runs it as if nothing were wrong.
    assert {"check:02_mid", "export:02_mid", "release:02_mid"} <= failed, failed
    assert "test:02_mid" not in result.executed - failed
    # The modules that do not stand on 02_mid build completely.
    assert _tasks_of("01_base", "04_side") <= result.executed - failed
    assert failed <= {"check:02_mid", "export:02_mid", "release:02_mid", "test:02_mid", "check:public-names"}


def test_a_test_file_that_is_not_utf8_fails_its_modules_check_and_test(built):
    (built.root / SIDE_TEST).write_bytes((built.root / SIDE_TEST).read_bytes() + b"\n# r\xe9sum\xe9\n")
    line = (built.root / SIDE_TEST).read_bytes().count(b"\n")

    result = built.doit("--continue")
    assert result.code != 0
    assert f"{SIDE_TEST}:{line}: byte 0xe9 at offset" in result.output and RESAVE in result.output
    assert set(FAILED_RE.findall(result.output)) == {"check:04_side", "test:04_side"}, result.output
    assert "Traceback" not in result.output


def test_an_example_that_is_not_utf8_fails_its_check_and_its_runs(built):
    line = _latin1(built, EXAMPLE, b"print('target reached')", b"print('target reached \xe0 100%')")
    built.replace(built.dev("04_side"), "return base_value() * 10", "return base_value() * 11")

    result = built.doit("--continue")
    assert result.code != 0
    assert f"{EXAMPLE}:{line}: byte 0xe0 at offset" in result.output and RESAVE in result.output
    failed = set(FAILED_RE.findall(result.output))
    assert failed == {"check:example:uses_mid", "example:uses_mid"}, result.output
    assert {"export:04_side", "test:04_side"} <= result.executed - failed
    assert "Traceback" not in result.output

    fixed = built.root / EXAMPLE
    fixed.write_bytes(fixed.read_bytes().replace(b"\xe0", "\u00e0".encode()))  # re-saved as UTF-8
    again = built.doit()
    assert again.code == 0, again.output
    assert built.doit().executed == set()


if __name__ == "__main__":
    import pytest

    sys.exit(pytest.main([__file__, "-q"]))
