"""Bad input stops the build with the dev file's own path and line, and leaves old exports untouched."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

MID = "modules/source/02_mid/mid_dev.py"
MID_EXPORT = "tinytorch/core/mid.py"


def line_of(tree, rel, needle):
    for number, line in enumerate(tree.read(rel).splitlines(), start=1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in {rel}")


def assert_export_fails(tree, before, *fragments):
    result = tree.doit("export:02_mid")
    assert result.code == 1, result.output
    for fragment in fragments:
        assert fragment in result.output, result.output
    assert "left untouched" in result.output
    assert (tree.root / MID_EXPORT).read_bytes() == before  # the previous export survives
    return result


def test_invalid_json_in_cell_metadata_names_file_and_line(built):
    before = (built.root / MID_EXPORT).read_bytes()
    built.replace(MID, '"locked": false, "schema_version": 3, "solution": true', '"locked": false "schema_version": 3')
    line = line_of(built, MID, '"locked": false "schema_version": 3')
    assert_export_fails(built, before, f"{MID}:{line}: cell metadata is not valid JSON")


def test_missing_default_exp_is_reported(built):
    before = (built.root / MID_EXPORT).read_bytes()
    built.replace(MID, "#| default_exp core.mid\n", "")
    assert_export_fails(built, before, f"{MID}:1: missing `#| default_exp core.mid`")


def test_syntax_error_in_an_exported_cell_points_at_its_line(built):
    before = (built.root / MID_EXPORT).read_bytes()
    built.replace(MID, "return base_value() + 1", "return base_value( + 1")
    line = line_of(built, MID, "return base_value( + 1")
    assert_export_fails(built, before, f"{MID}:{line}: syntax error in an exported cell")


def test_import_of_a_higher_numbered_module_is_rejected(built):
    before = (built.root / MID_EXPORT).read_bytes()
    built.replace(MID, "from tinytorch.core.base import base_value",
                  "from tinytorch.core.base import base_value\nfrom tinytorch.core.top import top_value")
    line = line_of(built, MID, "from tinytorch.core.top import top_value")
    assert_export_fails(built, before, f"{MID}:{line}: module 02_mid imports tinytorch.core.top from module 03_top",
                        "only from lower-numbered modules")


def test_an_import_cycle_is_reported(built):
    base = "modules/source/01_base/base_dev.py"
    before = (built.root / "tinytorch/core/base.py").read_bytes()
    built.replace(base, "#| export\n\n", "#| export\nfrom tinytorch.core.mid import mid_value\n")
    result = built.doit("export")
    assert result.code == 1
    assert f"{base}:1: import cycle: 01_base -> 02_mid -> 01_base" in result.output, result.output
    assert (built.root / "tinytorch/core/base.py").read_bytes() == before


def test_import_of_an_unknown_module_is_rejected(built):
    before = (built.root / MID_EXPORT).read_bytes()
    built.replace(MID, "from tinytorch.core.base import base_value", "from tinytorch.core.nope import base_value")
    assert_export_fails(built, before, f"{MID}:", "imports tinytorch.core.nope, which no module exports")


@pytest.mark.parametrize("bad, message", [
    ("#| exprot", "unknown directive `#| exprot`"),
    ("#| default_exp core.other", "`#| default_exp core.other` does not match the module folder 02_mid"),
])
def test_directive_typos_are_reported(built, bad, message):
    before = (built.root / MID_EXPORT).read_bytes()
    built.replace(MID, "#| default_exp core.mid", bad)
    assert_export_fails(built, before, message)


def test_a_failing_inline_test_fails_the_test_task_with_what_to_run(built):
    built.replace(MID, "def test_unit_mid():\n    assert mid_value() > 0", "def test_unit_mid():\n    assert mid_value() < 0")
    result = built.doit("test:02_mid")
    assert result.code == 1
    assert "inline tests of modules/source/02_mid/mid_dev.py failed" in result.output
    assert "AssertionError" in result.output
    assert "python modules/source/02_mid/mid_dev.py" in result.output


def test_a_broken_lower_module_fails_the_progressive_tests_above_it(built):
    built.replace("modules/source/01_base/base_dev.py", "return 1", "return -5")
    result = built.doit("--continue")
    assert result.code != 0  # doit says 2 when --continue leaves group tasks with failed dependencies
    assert "tests/module_02/test_progressive_integration.py failed" in result.output
    assert "tests/module_04/test_progressive_integration.py failed" in result.output


if __name__ == "__main__":
    import sys

    import pytest

    sys.exit(pytest.main([__file__, "-q"]))
