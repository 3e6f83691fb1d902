"""Imports the graph cannot follow are named by `check`, and what runs them depends on every export.

The policy: a file that loads tinytorch through importlib.import_module, `__import__` or exec may load
any export, so the tasks that run it take every export as an input. That is safe (they never run
against a stale export); the cost is that they rerun after any module changes, and the note from
`check` says how to get exact dependencies back (a static import). Failing the build instead would
reject working code for a bookkeeping reason.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from treebuilder import REPO  # noqa: E402

EXAMPLE = "examples/uses_mid/train.py"
NOTE = "may import tinytorch code that the build cannot see"


def test_a_dynamic_import_in_an_example_is_named_and_the_example_depends_on_every_export(built):
    built.write(EXAMPLE, "import importlib\n\n"
                         "mid = importlib.import_module(\"tinytorch.core.mid\")\n"
                         "assert mid.mid_value() >= 2\nprint('target reached')\n")
    result = built.doit()
    assert result.code == 0, result.output
    assert f"{EXAMPLE}:3: note: importlib.import_module(...) {NOTE}" in result.output
    assert "so example:uses_mid depends on every export" in result.output

    # The module it loads changes: the example runs again (the graph could not see that it uses mid).
    built.replace(built.dev("02_mid"), "return base_value() + 1", "return base_value() + 2")
    again = built.doit()
    assert again.code == 0, again.output
    assert "example:uses_mid" in again.executed
    # So does any other module: every export is an input.
    built.replace(built.dev("04_side"), "return base_value() * 10", "return base_value() * 11")
    assert "example:uses_mid" in built.doit().executed
    assert built.doit().executed == set()


def test_an_import_inside_exec_in_a_test_file_is_named_with_its_line(built):
    test_file = "modules/source/04_side/test_side_core.py"
    built.write(test_file, "def test_side_through_exec():\n"
                           "    names = {}\n"
                           "    exec(\"from tinytorch.core.side import side_value\", names)\n"
                           "    assert names['side_value']() > 0\n")
    result = built.doit()
    assert result.code == 0, result.output
    assert f"{test_file}:3: note: exec(...) {NOTE}" in result.output
    assert "so test:04_side depends on every export" in result.output
    built.replace(built.dev("02_mid"), "return base_value() + 1", "return base_value() + 2")
    assert "test:04_side" in built.doit().executed  # 04_side does not stand on 02_mid: only the rule reran it


def test_a_dynamic_import_in_a_dev_file_makes_its_tests_depend_on_every_export(built):
    built.replace(built.dev("04_side"), "def test_unit_side():",
                  "def test_unit_side():\n    __import__(\"tinytorch.core.base\")")
    result = built.doit()
    assert result.code == 0, result.output
    assert "note: __import__(...)" in result.output and "so test:04_side depends on every export" in result.output
    built.replace(built.dev("03_top"), "return mid_value() + 1", "return mid_value() + 3")
    assert "test:04_side" in built.doit().executed


def test_the_scan_finds_dynamic_imports_and_ignores_look_alikes():
    sys.path.insert(0, str(REPO))
    from tito.model.scan import scan_dynamic_imports_in

    text = "\n".join([
        "from tinytorch.core.base import base_value",        # 1 static: the graph follows it
        'layers = importlib.import_module("tinytorch.core.layers")',  # 2
        'torch = importlib.import_module("torch")',           # 3 a literal that is not tinytorch
        "module = import_module(name)",                       # 4 a name built elsewhere
        'm = __import__(f"tinytorch.core.{name}")',           # 5
        'exec("from tinytorch.core.x import y")',             # 6
        "model.eval()",                                       # 7 a method, not the builtin
        "def eval(self):",                                    # 8 a definition
        "# importlib.import_module(tinytorch)",               # 9 a comment
        'total = eval("1 + 2")',                              # 10 arithmetic
        "def test_train_and_eval():",                         # 11
    ])
    assert [(d.call, d.line) for d in scan_dynamic_imports_in(text)] == [
        ("importlib.import_module", 2), ("import_module", 4), ("__import__", 5), ("exec", 6)]
    assert scan_dynamic_imports_in("import importlib\nimportlib.import_module(name)\n") == ()  # no tinytorch


if __name__ == "__main__":
    import pytest

    sys.exit(pytest.main([__file__, "-q"]))
