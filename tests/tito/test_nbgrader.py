"""tito.nbgrader: every validation rule on a small dev file (message and line), solution clearing,
hidden-test removal and the cross-module public-name check.

Each dev file is written to a temporary folder and read with tito.model.devfile.DevFile, exactly as the
build reads a real one. Line numbers in the assertions count from the file's first line; `problems`
separates cells with a blank line, so a two-line cell is followed by the next marker three lines further down.
"""

import json
import shutil
import textwrap
from pathlib import Path

import pytest

from tito.model.devfile import DevFile
from tito.steps.check import module_public_names
from tito.steps.nbgrader import (
    clear_solutions,
    duplicate_public_names,
    remove_hidden_tests,
    validate,
)

FIXTURES = Path(__file__).resolve().parent / "fixtures"
SHOWN = Path("modules/source/09_x/x_dev.py")  # the path as the messages print it


def meta(grade_id="cell", *, grade=False, solution=False, locked=None, points=None, **extra) -> str:
    fields = {"grade": grade, "grade_id": grade_id, "locked": grade if locked is None else locked,
              "schema_version": 3, "solution": solution}
    if points is not None:
        fields["points"] = points
    fields.update(extra)
    return "nbgrader=" + json.dumps({k: v for k, v in fields.items() if v is not ...})


def problems(tmp_path, *cells: str) -> list[str]:
    """validate() on a dev file made of `cells` (each starting with its `# %%` marker line)."""
    path = tmp_path / "x_dev.py"
    path.write_text("\n".join(textwrap.dedent(c).strip("\n") + "\n" for c in cells))
    return validate(DevFile.read(path, shown_as=SHOWN))


def code(marker_meta: str, body: str = "x = 1") -> str:
    return f"# %% {marker_meta}\n{body}"


def only(found: list[str], line: int, *words: str) -> None:
    """Exactly one problem, on `line`, whose message contains every one of `words`."""
    assert len(found) == 1, found
    assert found[0].startswith(f"{SHOWN}:{line}: "), found
    for word in words:
        assert word in found[0], (word, found[0])


# --- metadata rules: each points at the cell's marker line --------------------------------------------


def test_a_valid_file_has_no_problem(tmp_path):
    assert problems(tmp_path, "# %% [markdown]\n# prose", code(meta("a")),
                    code(meta("a-sol", solution=True), "def f():\n    ### BEGIN SOLUTION\n    return 1\n"
                                                        "    ### END SOLUTION"),
                    code(meta("t", grade=True, points=2), "assert f() == 1")) == []


def test_the_fixture_module_is_valid():
    path = FIXTURES / "calc_dev.py"
    assert validate(DevFile.read(path)) == []


def test_code_cell_without_metadata_is_a_house_rule_violation(tmp_path):
    only(problems(tmp_path, code(meta("a")), "# %%\ny = 2"), 4, "without nbgrader metadata", "house rule",
         "docs/module-format.md")


def test_markdown_cell_needs_no_metadata(tmp_path):
    assert problems(tmp_path, code(meta("a")), "# %% [markdown]\n# text") == []


def test_invalid_json_is_reported_once(tmp_path):
    found = problems(tmp_path, code(meta("a")), '# %% nbgrader={"grade": false,}\ny = 2')
    only(found, 4, "not valid JSON")


def test_missing_required_keys(tmp_path):
    only(problems(tmp_path, code('nbgrader={"grade_id": "a", "grade": false, "schema_version": 3}')), 1,
         "missing", "'locked'", "'solution'")


@pytest.mark.parametrize("version", [2, "3", True])
def test_schema_version_must_be_3(tmp_path, version):
    only(problems(tmp_path, code(meta("a", schema_version=version))), 1, '"schema_version"', "must be 3")


@pytest.mark.parametrize("key", ["grade", "locked", "solution"])
def test_flags_must_be_booleans(tmp_path, key):
    marker = json.loads(meta("a")[len("nbgrader="):])
    marker[key] = "false"
    only(problems(tmp_path, code("nbgrader=" + json.dumps(marker))), 1, f'"{key}"', "true or false")


def test_unknown_key_is_rejected(tmp_path):
    only(problems(tmp_path, code(meta("a", grade_idd="b"))), 1, "unknown nbgrader key 'grade_idd'", "allowed:")


def test_all_allowed_optional_keys_are_accepted(tmp_path):
    assert problems(tmp_path, code(meta("a", grade=True, points=1, checksum="abc", cell_type="code"))) == []


@pytest.mark.parametrize("grade_id, words", [
    ("has space", ("contains ' '", "letters, digits")),
    ("dense.forward", ("contains '.'",)),
    ("", ("non-empty",)),
    (7, ("non-empty string",)),
])
def test_grade_id_pattern(tmp_path, grade_id, words):
    only(problems(tmp_path, code(meta(grade_id))), 1, '"grade_id"', *words)


def test_grade_id_is_required(tmp_path):
    only(problems(tmp_path, code(meta(...))), 1, 'no "grade_id"')


def test_duplicate_grade_ids_among_graded_solution_locked(tmp_path):
    found = problems(tmp_path, code(meta("same", solution=True)), code(meta("same", grade=True, points=1)))
    only(found, 4, "duplicate", "'same'", "line 1 already uses it")


def test_duplicate_grade_ids_of_plain_cells_are_nbgraders_business_not_ours(tmp_path):
    # nbgrader's uniqueness rule covers graded, solution and locked cells only.
    assert problems(tmp_path, code(meta("same")), code(meta("same"))) == []


def test_graded_cell_needs_points(tmp_path):
    only(problems(tmp_path, code(meta("t", grade=True))), 1, "graded cell", 'needs "points"')


@pytest.mark.parametrize("points", [-1, "5", True])
def test_points_must_be_a_number_at_least_zero(tmp_path, points):
    only(problems(tmp_path, code(meta("t", grade=True, points=points))), 1, '"points"', "number >= 0")


def test_points_only_on_graded_cells_stricter_than_nbgrader(tmp_path):
    only(problems(tmp_path, code(meta("a", points=3))), 1, "not graded", "nbgrader accepts this",
         "TinyTorch is stricter")


def test_task_cell_must_be_markdown(tmp_path):
    only(problems(tmp_path, code(meta("a", task=True))), 1, '"task": true on a code cell', "markdown")
    assert problems(tmp_path, f"# %% [markdown] {meta('a', task=True)}\n# describe the task") == []


def test_markdown_graded_and_solution_together(tmp_path):
    found = problems(tmp_path, "# %% [markdown]\n# intro",
                     f"# %% [markdown] {meta('answer', grade=True, points=2)}\n# Explain.")
    only(found, 4, "graded and solution together")
    assert problems(tmp_path, f"# %% [markdown] {meta('answer', grade=True, solution=True, points=2)}\n"
                              "# Explain.") == []


# --- marker rules: each points at the marker's own line ------------------------------------------------


SOLUTION_CELL = meta("sol", solution=True)


def test_begin_without_end(tmp_path):
    only(problems(tmp_path, code(SOLUTION_CELL, "def f():\n    ### BEGIN SOLUTION\n    return 1")), 3,
         "`### BEGIN SOLUTION` is never closed")


def test_end_without_begin(tmp_path):
    only(problems(tmp_path, code(SOLUTION_CELL, "def f():\n    return 1\n    ### END SOLUTION")), 4,
         "`### END SOLUTION` without")


def test_nested_begin(tmp_path):
    body = "def f():\n    ### BEGIN SOLUTION\n    x = 1\n    ### BEGIN SOLUTION\n    ### END SOLUTION"
    only(problems(tmp_path, code(SOLUTION_CELL, body)), 5, "inside the block opened at line 3", "cannot nest")


def test_solution_marker_in_a_cell_that_is_not_a_solution(tmp_path):
    body = "def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION"
    found = problems(tmp_path, "# %% [markdown]\n# intro", code(meta("a"), body))
    assert [f.split(": ")[0] for f in found] == [f"{SHOWN}:6", f"{SHOWN}:8"], found
    assert all('"solution": true' in f for f in found), found


def test_marker_spelling_must_be_exact(tmp_path):
    only(problems(tmp_path, code(SOLUTION_CELL, "def f():\n    # BEGIN SOLUTION\n    return 1\n"
                                                "    ### END SOLUTION")), 3, "exactly as `### BEGIN SOLUTION`")


def test_prose_may_mention_the_markers(tmp_path):
    assert problems(tmp_path, "# %% [markdown]\n# Solutions sit between\n# ### BEGIN SOLUTION\n# and the end.",
                    code(meta("a"))) == []


def test_hidden_tests_only_in_graded_cells(tmp_path):
    body = "x = 1\n### BEGIN HIDDEN TESTS\nassert x\n### END HIDDEN TESTS"
    found = problems(tmp_path, code(meta("a"), body))
    assert [f.split(": ")[0] for f in found] == [f"{SHOWN}:3", f"{SHOWN}:5"], found
    assert "graded cells" in found[0]
    assert problems(tmp_path, code(meta("t", grade=True, points=1), body)) == []


def test_hidden_tests_balanced(tmp_path):
    graded = meta("t", grade=True, points=1)
    only(problems(tmp_path, code(graded, "x = 1\n### BEGIN HIDDEN TESTS\nassert x")), 3,
         "`### BEGIN HIDDEN TESTS` is never closed")
    only(problems(tmp_path, code(graded, "x = 1\n### END HIDDEN TESTS")), 3, "`### END HIDDEN TESTS` without")


def test_problems_are_sorted_by_line(tmp_path):
    found = problems(tmp_path, code(meta("a", points=1)), "# %%\nx = 2", code(meta("b d")))
    assert [int(f.split(":")[1]) for f in found] == [1, 4, 7]


# --- clearing solutions ---------------------------------------------------------------------------


def test_clear_solutions_names_the_method_and_keeps_indentation():
    source = textwrap.dedent('''\
        #| export
        class Dense(Module):
            def forward(self, x):
                """y = x W + b."""
                ### BEGIN SOLUTION
                return x @ self.weights + self.bias
                ### END SOLUTION

            def extra_repr(self):
                ### BEGIN SOLUTION
                return "dense"
                ### END SOLUTION
        ''')
    cleared = clear_solutions(source, "dense")
    assert cleared == textwrap.dedent('''\
        #| export
        class Dense(Module):
            def forward(self, x):
                """y = x W + b."""
                raise NotImplementedError("Implement Dense.forward (see the docstring above)")

            def extra_repr(self):
                raise NotImplementedError("Implement Dense.extra_repr (see the instructions above)")
        ''')
    compile(cleared, "cleared", "exec")


def test_clear_solutions_inside_nested_blocks_and_empty_solution():
    source = ("def f(x):\n    if x:\n        ### BEGIN SOLUTION\n        return 1\n        ### END SOLUTION\n"
              "    y = x\n    ### BEGIN SOLUTION\n    ### END SOLUTION\n")
    stub = 'raise NotImplementedError("Implement f (see the instructions above)")'
    assert clear_solutions(source, "cell") == f"def f(x):\n    if x:\n        {stub}\n    y = x\n    {stub}\n"


def test_clear_solutions_at_top_level_names_the_cell():
    source = "### BEGIN SOLUTION\nTABLE = {1: 2}\n### END SOLUTION\nprint(TABLE)"
    assert clear_solutions(source, "lookup-table") == \
        "raise NotImplementedError(\"Implement the code of cell 'lookup-table' (see the instructions above)\")\n" \
        "print(TABLE)"


@pytest.mark.parametrize("source", ["### BEGIN SOLUTION\nx = 1", "x = 1\n### END SOLUTION",
                                    "### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION"])
def test_clear_solutions_refuses_unbalanced_markers(source):
    with pytest.raises(ValueError):
        clear_solutions(source, "cell")


def test_remove_hidden_tests():
    source = "def test():\n    assert 1\n    ### BEGIN HIDDEN TESTS\n    assert secret()\n" \
             "    ### END HIDDEN TESTS\n    assert 2\n"
    assert remove_hidden_tests(source) == "def test():\n    assert 1\n    assert 2\n"


# --- across modules -------------------------------------------------------------------------------


def test_duplicate_public_names_names_both_modules():
    found = duplicate_public_names({"04_layers": ["Module", "Dense"], "05_networks": ["Sequential", "Dense"],
                                    "03_activations": ["ReLU"]})
    assert len(found) == 1
    assert "'Dense'" in found[0] and "04_layers" in found[0] and "05_networks" in found[0]


def test_no_duplicate_public_names():
    assert duplicate_public_names({"01_tensor": ["Tensor"], "02_autograd": ["Variable", "no_grad"]}) == []


def test_module_public_names_ignores_imports_and_private_names():
    assert module_public_names(DevFile.read(FIXTURES / "calc_dev.py")) == ["add", "Scaler"]


# --- agreement with nbgrader itself, where it is installed ------------------------------------------


def test_nbgrader_agrees_on_the_fixtures(tmp_path):
    """nbgrader's own validator accepts our valid fixture and rejects cells we reject."""
    pytest.importorskip("nbgrader")
    import nbformat
    from nbgrader.nbgraderformat.v3 import MetadataValidatorV3

    from tito.steps.notebooks import release_notebook

    folder = tmp_path / "modules" / "source" / "02_calc"
    folder.mkdir(parents=True)
    shutil.copy(FIXTURES / "calc_dev.py", folder / "calc_dev.py")
    validator = MetadataValidatorV3()
    validator.validate_nb(nbformat.reads(release_notebook(DevFile.read(folder / "calc_dev.py")).decode(), as_version=4))

    bad_cells = {
        "unknown key": code(meta("a", grade_idd="b")),
        "graded without points": code(meta("t", grade=True)),
        "task on code": code(meta("a", task=True)),
        "bad grade id": code(meta("has space")),
    }
    for what, text in bad_cells.items():
        assert problems(tmp_path, text), what
        cell = DevFile.read(tmp_path / "x_dev.py").cells[0]
        nb_cell = nbformat.v4.new_code_cell("x = 1", metadata={"nbgrader": cell.nbgrader})
        with pytest.raises(Exception):  # noqa: B017 (nbgrader's own ValidationError, or jsonschema's)
            validator.validate_cell(nb_cell)


if __name__ == "__main__":
    import sys

    import pytest

    sys.exit(pytest.main([__file__, "-q"]))
