"""The graph's promises, measured by running doit for real on a fixture tree: which tasks run."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from treebuilder import ALL_TASKS  # noqa: E402


def test_full_build_runs_everything_then_a_second_run_runs_nothing(tree):
    first = tree.doit()
    assert first.code == 0, first.output
    assert ALL_TASKS <= first.executed
    assert set(tree.generated()) == {f"tinytorch/core/{n}.py" for n in ("base", "mid", "top", "side")}

    second = tree.doit()
    assert second.code == 0, second.output
    assert second.executed == set(), second.output


def test_editing_exported_code_reruns_exactly_its_downstream_chain(built):
    built.replace(built.dev("02_mid"), "return base_value() + 1", "return base_value() + 2")
    result = built.doit()
    assert result.code == 0, result.output
    assert result.executed == {
        "check:02_mid", "export:02_mid", "test:02_mid", "integrate:02_mid",  # itself
        "release:02_mid", "check:public-names",
        "test:03_top", "integrate:03_top",  # what stands on it
        "example:uses_mid",  # the example that reaches it
        "report",  # the memory report gathers the new profiles (made by the test and example runs)
    }


def test_editing_prose_stops_at_the_export_early_cutoff(built):
    before = built.generated()
    built.replace(built.dev("02_mid"), "# A fixture module.", "# A fixture module, now better explained.")
    result = built.doit()
    assert result.code == 0, result.output
    # The module's own checks and tests (with its profile) run again (they read the dev file); nothing downstream.
    assert result.executed == {"check:02_mid", "export:02_mid", "test:02_mid", "report",
                               "release:02_mid", "check:public-names"}
    assert built.generated() == before


def test_editing_a_test_cell_stops_at_the_export(built):
    built.replace(built.dev("01_base"), "assert base_value() > 0", "assert base_value() >= 1")
    result = built.doit()
    assert result.code == 0, result.output
    assert result.executed == {"check:01_base", "export:01_base", "test:01_base", "report",
                               "release:01_base", "check:public-names"}


def test_editing_a_module_test_file_reruns_only_that_modules_tests(built):
    built.replace("modules/source/04_side/test_side_core.py", "> 0", ">= 10")
    result = built.doit()
    assert result.code == 0, result.output
    # check reads test files too (UTF-8, imports); the test task's one run of the dev file remakes its profile
    assert result.executed == {"check:04_side", "test:04_side", "report"}


def test_a_support_helper_is_an_input_of_the_tests_that_import_it(built):
    # Progressive tests import lower modules' contract checks from tests/support/ by name.
    built.write("tests/conftest.py", "import sys, pathlib\n"
                "sys.path.insert(0, str(pathlib.Path(__file__).parent / 'support'))\n")
    built.write("tests/support/contract_side.py", "from tinytorch.core.side import side_value\n\n\n"
                "def side_contract():\n    assert side_value() == 10\n")
    built.replace("tests/module_03/test_progressive_integration.py", "from tinytorch.core.top import top_value",
                  "from tinytorch.core.top import top_value\nfrom contract_side import side_contract")
    built.write("tests/module_03/test_progressive_integration.py",
                built.read("tests/module_03/test_progressive_integration.py")
                + "\n\ndef test_side_contract():\n    side_contract()\n")
    assert built.doit().executed == {"check:03_top", "integrate:03_top"}
    # The helper is an input, and so is the module it imports (03_top does not import 04_side itself).
    built.replace("tests/support/contract_side.py", "== 10", ">= 10")
    assert built.doit().executed == {"check:03_top", "integrate:03_top"}
    built.replace(built.dev("04_side"), "return base_value() * 10", "return base_value() * 20")
    result = built.doit()
    assert result.code == 0, result.output
    assert "integrate:03_top" in result.executed and "test:03_top" not in result.executed


def test_a_deleted_generated_file_is_rebuilt(built):
    before = built.generated()
    (built.root / "tinytorch/core/top.py").unlink()
    result = built.doit()
    assert result.code == 0, result.output
    assert "export:03_top" in result.executed
    assert built.generated() == before


def test_a_single_task_builds_what_it_needs(tree):
    result = tree.doit("test:03_top")
    assert result.code == 0, result.output
    assert result.executed == {"export:01_base", "export:02_mid", "export:03_top", "test:03_top"}


def test_doit_list_shows_every_family_for_every_module(tree):
    result = tree.doit("list", "--all")
    assert result.code == 0, result.output
    for task in ALL_TASKS:
        assert task in result.output
    assert "integrate " in result.output


if __name__ == "__main__":
    import sys

    import pytest

    sys.exit(pytest.main([__file__, "-q"]))
