"""Hand edits, orphans, interrupted builds, parallel builds, and a light graph load."""

import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from treebuilder import ALL_TASKS, REPO  # noqa: E402


def test_a_hand_edited_export_stops_the_build_and_is_never_overwritten(built):
    path = built.root / "tinytorch/core/mid.py"
    edited = path.read_text().replace("return base_value() + 1", "return base_value() + 100")
    path.write_text(edited)

    result = built.doit()
    assert result.code == 1
    assert "tinytorch/core/mid.py was edited by hand" in result.output
    assert "+    return base_value() + 100" in result.output  # shows the edit
    assert "To keep the edit: copy it into modules/source/02_mid/mid_dev.py" in result.output
    assert "tito module export 02_mid --discard-edits" in result.output
    assert path.read_text() == edited
    assert "test:03_top" not in result.executed  # nothing downstream ran on the edited file

    again = built.doit()  # still refused: the guard does not forget
    assert again.code == 1 and path.read_text() == edited


def test_discarding_a_hand_edit_keeps_a_copy_and_regenerates(built):
    path = built.root / "tinytorch/core/mid.py"
    original = path.read_text()
    path.write_text(original + "\n# scribble\n")
    result = built.doit("export:02_mid", TITO_DISCARD_EDITS="1")
    assert result.code == 0, result.output
    assert path.read_text() == original
    copies = list((built.root / ".tito/discarded").glob("mid.*.py"))
    assert len(copies) == 1 and "# scribble" in copies[0].read_text()
    assert built.doit().code == 0


def test_a_hand_edited_release_notebook_stops_the_build_until_discarded(built):
    import json

    path = built.root / "modules/release/02_mid/mid.ipynb"
    notebook = json.loads(path.read_text())
    notebook["cells"][0]["source"] += "\nAn instructor's note."
    path.write_text(json.dumps(notebook))
    edited = path.read_text()

    result = built.doit()
    assert result.code == 1
    assert "modules/release/02_mid/mid.ipynb was edited by hand" in result.output
    assert "tito release 02_mid --discard-edits" in result.output
    assert path.read_text() == edited

    discarded = built.doit("release:02_mid", TITO_DISCARD_EDITS="1")
    assert discarded.code == 0, discarded.output
    assert "An instructor's note." not in path.read_text()
    assert len(list((built.root / ".tito/discarded").glob("mid.*.ipynb"))) == 1
    assert built.doit().executed == set()


def test_the_generated_header_names_the_source_and_how_to_regenerate(built):
    head = (built.root / "tinytorch/core/mid.py").read_text().splitlines()[:4]
    assert "modules/source/02_mid/mid_dev.py" in head[0] and "DO NOT EDIT" in head[0]
    assert "doit export:02_mid" in head[1]
    assert head[3].startswith("# body-sha256: ")


def test_solution_markers_are_dropped_and_solutions_kept(built):
    text = (built.root / "tinytorch/core/mid.py").read_text()
    assert "BEGIN SOLUTION" not in text and "END SOLUTION" not in text
    assert "return base_value() + 1" in text
    assert "test_unit_mid" not in text  # only #| export cells


def test_generated_files_of_a_removed_module_are_removed(built):
    import shutil

    shutil.rmtree(built.root / "modules/source/04_side")
    shutil.rmtree(built.root / "tests/module_04")
    result = built.doit()
    assert result.code == 0, result.output
    assert "orphans" in result.executed
    assert not (built.root / "tinytorch/core/side.py").exists()
    assert not (built.root / "modules/release/04_side").exists()
    if (built.root / "reports/01_base/stats.json").exists():  # memray is there to write reports
        assert not (built.root / "reports/04_side").exists()
    assert (built.root / "tinytorch/core/__init__.py").exists()  # hand-written files are not ours
    assert built.doit().executed == set()


def test_a_misnamed_module_folder_is_reported_not_silently_skipped(built):
    (built.root / "modules/source/5_extra").mkdir()
    result = built.doit()
    assert result.code == 1
    assert "modules/source/5_extra: not a module folder, so the build skips it" in result.output
    (built.root / "modules/source/5_extra").rmdir()
    assert built.doit().executed == set()


def _wait_for(process, needle, seconds=60):
    deadline = time.time() + seconds
    seen = ""
    while time.time() < deadline:
        line = process.stdout.readline()
        seen += line
        if needle in line:
            return seen
    raise AssertionError(f"{needle!r} never appeared:\n{seen}")


def _make_top_tests_slow(tree):
    tree.replace("modules/source/03_top/test_top_core.py", "def test_top_positive():",
                 "import time\n\n\ndef test_top_positive():\n    time.sleep(30)")


def test_a_killed_build_is_followed_by_a_good_one(tree):
    _make_top_tests_slow(tree)
    process = tree.popen_doit()
    _wait_for(process, "test:03_top")
    time.sleep(1.0)
    process.send_signal(signal.SIGKILL)
    process.wait()
    tree.replace("modules/source/03_top/test_top_core.py", "time.sleep(30)", "time.sleep(0)")

    result = tree.doit()
    assert result.code == 0, result.output
    assert "test:03_top" in result.executed
    assert tree.doit().executed == set()
    assert not list((tree.root / "tinytorch/core").glob(".*tmp*"))  # no half-written leftovers


def test_an_interrupted_build_saves_what_finished(tree):
    _make_top_tests_slow(tree)
    process = tree.popen_doit()
    _wait_for(process, "test:03_top")
    time.sleep(1.0)
    process.send_signal(signal.SIGINT)
    process.wait(timeout=60)
    tree.replace("modules/source/03_top/test_top_core.py", "time.sleep(30)", "time.sleep(0)")

    result = tree.doit()
    assert result.code == 0, result.output
    assert "export:01_base" not in result.executed  # finished before the interrupt, and remembered
    assert "test:03_top" in result.executed


def test_an_input_edited_while_its_task_runs_is_not_recorded_as_done(tree):
    # doit records file_dep state after a task finishes (doit issue #119); tito snapshots inputs before.
    # The test writes a marker when it starts, so the edit below lands while the task runs for certain: after
    # the task's first action snapshotted its inputs (waiting for doit's title line alone raced that action).
    started = tree.root / "started"
    tree.replace("modules/source/03_top/test_top_core.py", "def test_top_positive():",
                 f"import pathlib\nimport time\n\n\ndef test_top_positive():\n    pathlib.Path({str(started)!r}).touch()\n"
                 "    time.sleep(3)")
    process = tree.popen_doit("test:03_top")
    deadline = time.time() + 120
    while not started.exists() and time.time() < deadline and process.poll() is None:
        time.sleep(0.02)
    assert started.exists(), process.communicate()[0]
    tree.replace("modules/source/03_top/test_top_core.py", "time.sleep(3)", "time.sleep(0)  # edited mid-run")
    process.communicate(timeout=120)
    assert process.returncode == 0
    again = tree.doit("test:03_top")
    assert again.code == 0, again.output
    assert "test:03_top" in again.executed  # the edit made during the run is tested now
    assert tree.doit("test:03_top").executed == set()


def test_parallel_build_matches_serial_build_under_spawn(tmp_path):
    from treebuilder import Tree

    serial, parallel = Tree.create(tmp_path / "serial"), Tree.create(tmp_path / "parallel")
    assert serial.doit().code == 0
    # Force the spawn start method (the default on macOS and from Python 3.14), which pickles every task.
    code = ("import multiprocessing, sys; multiprocessing.set_start_method('spawn');"
            "from doit.doit_cmd import DoitMain; sys.exit(DoitMain().run(sys.argv[1:]))")
    done = subprocess.run([sys.executable, "-c", code, "-n", "2"], cwd=parallel.root, env=parallel.env(),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)
    assert done.returncode == 0, done.stdout
    assert parallel.generated() == serial.generated()
    again = parallel.doit("-n", "2")
    assert again.code == 0 and again.executed == set(), again.output


def test_loading_the_graph_imports_nothing_heavy(built):
    probe = ("import sys, runpy; runpy.run_path('dodo.py');"
             "heavy = {'numpy', 'jupytext', 'nbformat', 'memray', 'pytest'} & set(sys.modules);"
             "print(sorted(heavy)); sys.exit(1 if heavy else 0)")
    done = subprocess.run([sys.executable, "-c", probe], cwd=built.root, env=built.env(),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert done.returncode == 0, done.stdout


def test_export_up_to_date_check_notices_a_source_it_did_not_export(built):
    # doit records file_dep state after the action: an edit made while an export runs could be recorded
    # as current. The export records the hash of what it read; the uptodate check compares with it.
    from tito.steps.export import export_is_current

    dev = built.root / "modules/source/02_mid/mid_dev.py"
    out = built.root / "tinytorch/core/mid.py"
    from tito.model.scan import sha256_file
    assert export_is_current(None, {"source_sha256": sha256_file(dev)}, str(dev), str(out))
    assert not export_is_current(None, {"source_sha256": "0" * 64}, str(dev), str(out))
    assert not export_is_current(None, {}, str(dev), str(out))
    assert REPO.is_dir() and ALL_TASKS


if __name__ == "__main__":
    import sys

    import pytest

    sys.exit(pytest.main([__file__, "-q"]))
