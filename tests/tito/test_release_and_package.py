"""The real modules' student notebooks, the wheel, and the build without memray."""

import json
import shutil
import sys
from pathlib import Path

import nbformat
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from treebuilder import REPO  # noqa: E402

from tito.model.devfile import DevFile  # noqa: E402
from tito.model.layout import discover  # noqa: E402
from tito.steps.notebooks import release_notebook  # noqa: E402

MODULES = discover(REPO)


def solution_blocks(dev_file: Path) -> list[str]:
    """Each multi-line solution of a dev file, as its stripped lines joined by newlines."""
    blocks, current = [], None
    for cell in DevFile.read(dev_file).cells:
        for line in cell.source.splitlines():
            stripped = line.strip()
            if stripped == "### BEGIN SOLUTION":
                current = []
            elif stripped == "### END SOLUTION":
                kept = [text for text in current if text]
                if len(kept) >= 2:  # a one-line solution may well equal a line of provided code
                    blocks.append("\n".join(kept))
                current = None
            elif current is not None:
                current.append(stripped)
    return blocks


@pytest.mark.parametrize("module", MODULES, ids=[m.key for m in MODULES])
def test_release_notebook_is_valid_and_holds_no_solution(module):
    data = release_notebook(DevFile.read(module.dev_file))
    notebook = nbformat.reads(data.decode("utf-8"), as_version=4)
    nbformat.validate(notebook)
    text = "\n".join(cell.source for cell in notebook.cells)
    assert "BEGIN SOLUTION" not in text and "END SOLUTION" not in text
    flat = "\n".join(line.strip() for line in text.splitlines() if line.strip())
    blocks = solution_blocks(module.dev_file)
    assert blocks, "a module with no multi-line solution teaches nothing to write"
    leaked = [block for block in blocks if block in flat]
    assert not leaked, f"solutions left in the student notebook: {leaked[:2]}"
    assert "NotImplementedError" in text
    assert release_notebook(DevFile.read(module.dev_file)) == data  # deterministic: byte-identical when nothing changed
    graded = [c for c in notebook.cells if c.metadata.get("nbgrader", {}).get("grade")]
    assert graded and all("points" in c.metadata["nbgrader"] for c in graded)


@pytest.mark.parametrize("module", MODULES, ids=[m.key for m in MODULES])
def test_nbgrader_itself_accepts_the_release_notebook(module):
    pytest.importorskip("nbgrader")  # optional: nbgrader pulls a Jupyter server; not a dependency
    from nbgrader.nbgraderformat.v3 import MetadataValidatorV3

    notebook = nbformat.reads(release_notebook(DevFile.read(module.dev_file)).decode("utf-8"), as_version=4)
    MetadataValidatorV3().validate_nb(notebook)


def test_the_wheel_installs_into_a_fresh_venv_and_imports_every_public_name(tmp_path):
    from tito.steps.package import build_and_check, wheel_path

    if not list((REPO / "tinytorch" / "core").glob("[!_]*.py")):
        pytest.fail("nothing exported: the root conftest runs `doit export` before the tests")
    root = tmp_path / "project"
    shutil.copytree(REPO / "tinytorch", root / "tinytorch", ignore=shutil.ignore_patterns("__pycache__"))
    result = build_and_check(str(root))
    assert result is None, getattr(result, "message", result)
    assert wheel_path(root).is_file()


def test_without_memray_the_script_still_runs_and_its_report_says_why_there_is_no_profile(tmp_path, monkeypatch,
                                                                                          capsys):
    import tito.steps.memory

    monkeypatch.setattr(tito.steps.memory, "memray_available", lambda: False)
    (tmp_path / "script.py").write_text("print('hi')\n")
    code, output, _ = tito.steps.memory.run_profiled(tmp_path, "script.py", "reports/x", "x", timeout=60)
    assert code == 0 and output.strip() == "hi"        # the verdict comes
    stats = json.loads((tmp_path / "reports/x/stats.json").read_text())
    assert stats["available"] is False and "memray is not installed" in stats["reason"]
    assert "no memory profile: memray is not installed" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "reports/x").iterdir()) == ["stats.json"]


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
