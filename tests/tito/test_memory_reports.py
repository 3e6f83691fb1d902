"""Memory profiles, the report page, and memory budgets, on the fixture tree.

A dev file runs once per build, in its `test:` task, under memray: the same run gives the verdict and the
profile; so does an example in its `example:` task.
"""

import json
import re
import sys
from collections import Counter
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from treebuilder import MODULES, meta  # noqa: E402

pytest.importorskip("memray")  # memray runs on Linux and macOS only

PROFILES = ["01_base", "02_mid", "03_top", "04_side", "examples/uses_mid"]


def test_every_module_and_example_gets_a_report_that_opens_offline(built):
    reports = built.root / "reports"
    index = (reports / "index.html").read_text()
    for label in PROFILES:
        folder = reports / label
        for name in ("capture.bin", "flamegraph.html", "stats.json"):
            assert (folder / name).is_file(), f"missing {folder / name}"
        stats = json.loads((folder / "stats.json").read_text())
        assert stats["peak_memory_bytes"] > 0 and stats["total_allocations"] > 0
        assert 0 <= stats["own_peak_bytes"] <= stats["peak_memory_bytes"]
        assert stats["own_peak_bytes"] + stats["native_reserve_bytes"] + stats["runtime_bytes"] == stats["peak_memory_bytes"]
        assert "native libraries' reserve" in stats["how"]
        assert stats["wall_time_seconds"] > 0
        for site in stats["top_allocation_sites"]:   # the module's own sites (these tiny modules may have none)
            assert {"function", "file", "line", "bytes"} <= set(site)
        assert f'href="{label}/flamegraph.html"' in index
        page = (folder / "flamegraph.html").read_text()
        assert not re.search(r'<script[^>]+src="(https?:)?//', page), "flame graph loads a script from the network"
        assert not re.search(r'<link[^>]+href="(https?:)?//', page), "flame graph loads a stylesheet from the network"
    assert "<svg" in index and "first build" in index
    summary = json.loads((reports / "summary.json").read_text())
    assert {e["label"] for e in summary["entries"]} == {"01_base", "02_mid", "03_top", "04_side", "example:uses_mid"}


def test_a_peak_that_grows_over_10_percent_is_flagged_after_the_next_build(built):
    # 03_top's exported code now holds 50 MB alive while its inline test runs.
    built.replace(built.dev("03_top"), "def top_value():\n    return mid_value() + 1",
                  "KEEP = []\n\ndef top_value():\n    KEEP.append(bytearray(50_000_000))\n    return mid_value() + 1")
    result = built.doit()
    assert result.code == 0, result.output
    assert {"test:03_top", "report"} <= result.executed
    assert "test:01_base" not in result.executed and "test:04_side" not in result.executed
    summary = json.loads((built.root / "reports/summary.json").read_text())
    assert summary["flagged"] == ["03_top"]
    entry = next(e for e in summary["entries"] if e["label"] == "03_top")
    assert entry["own_peak_bytes"] > 50_000_000 and entry["previous_own_peak_bytes"] < 2**20
    assert 'class="flagged"' in (built.root / "reports/index.html").read_text()
    history = json.loads((built.root / "reports/history.json").read_text())
    assert len(history) == 2


def test_a_memory_budget_below_real_use_fails_the_test_task_with_memrays_message(built):
    pytest.importorskip("pytest_memray")
    built.write("modules/source/04_side/test_side_memory.py",
                "import pytest\n\n\n@pytest.mark.limit_memory('1 MB')\n"
                "def test_side_stays_small():\n    block = bytearray(20_000_000)\n    assert len(block) == 20_000_000\n")
    result = built.doit("test:04_side")
    assert result.code == 1
    assert "Test was limited to 1.0MiB but allocated" in result.output, result.output
    assert "tests of 04_side failed" in result.output

    built.replace("modules/source/04_side/test_side_memory.py", "'1 MB'", "'64 MB'")
    assert built.doit("test:04_side").code == 0


def _count_runs(tree) -> Path:
    """Make every dev file, module test file, progressive test and example append its path to runs.log
    each time it runs; return the log's path."""
    log = tree.root / "runs.log"
    line = "open({log!r}, 'a').write({name!r} + '\\n')\n"
    for key in MODULES:
        dev = tree.dev(key)
        tree.write(dev, tree.read(dev) + f"\n# %% {meta(key + '-count')}\n" + line.format(log=str(log), name=dev))
        for rel in (f"modules/source/{key}/test_{key.split('_', 1)[1]}_core.py",
                    f"tests/module_{key[:2]}/test_progressive_integration.py"):
            tree.write(rel, line.format(log=str(log), name=rel) + tree.read(rel))
    tree.write("examples/uses_mid/train.py",
               line.format(log=str(log), name="examples/uses_mid/train.py") + tree.read("examples/uses_mid/train.py"))
    return log


def test_no_script_runs_twice_in_a_build_and_every_one_has_a_current_report(tree):
    log = _count_runs(tree)
    result = tree.doit()
    assert result.code == 0, result.output
    runs = Counter(log.read_text().split())
    scripts = [tree.dev(k) for k in MODULES] + ["examples/uses_mid/train.py"]
    test_files = [f"modules/source/{k}/test_{k.split('_', 1)[1]}_core.py" for k in MODULES]
    test_files += [f"tests/module_{k[:2]}/test_progressive_integration.py" for k in MODULES]
    assert runs == Counter(scripts + test_files), runs   # each exactly once
    for label in PROFILES:
        assert (tree.root / "reports" / label / "capture.bin").is_file(), label

    # After an edit to 02_mid's exported code, what stands on it runs once more: again once each.
    log.unlink()
    tree.replace(tree.dev("02_mid"), "return base_value() + 1", "return base_value() + 2")
    result = tree.doit()
    assert result.code == 0, result.output
    again = Counter(log.read_text().split())
    assert again == Counter([tree.dev("02_mid"), tree.dev("03_top"), "examples/uses_mid/train.py",
                             "modules/source/02_mid/test_mid_core.py", "modules/source/03_top/test_top_core.py",
                             "tests/module_02/test_progressive_integration.py",
                             "tests/module_03/test_progressive_integration.py"]), again
    stats = json.loads((tree.root / "reports/02_mid/stats.json").read_text())
    assert stats["available"] and stats["script"] == tree.dev("02_mid")


def test_native_library_buffers_are_not_counted_as_the_modules_own(built):
    numpy = pytest.importorskip("numpy")
    if "openblas" not in json.dumps(numpy.show_config(mode="dicts")).lower():
        pytest.skip("NumPy here does not use OpenBLAS, whose one-time work buffer this test looks for")
    # 04_side's inline test now multiplies two small matrices: the first BLAS call of the process. Without the
    # separation, OpenBLAS's work buffer (about 32 MiB) was the largest site at the peak, on this line.
    built.replace(built.dev("04_side"), "def test_unit_side():",
                  "import numpy as np\n\nPRODUCT = np.ones((64, 64)) @ np.ones((64, 64))\n\n\ndef test_unit_side():")
    result = built.doit()
    assert result.code == 0, result.output
    stats = json.loads((built.root / "reports/04_side/stats.json").read_text())
    assert stats["native_reserve_bytes"] >= 4 * 2**20, stats
    assert stats["own_peak_bytes"] < 2**20, stats            # the module's own: a few small arrays
    assert all(site["bytes"] < 2**20 for site in stats["top_allocation_sites"]), stats["top_allocation_sites"]
    assert all(site["file"] != "tito/steps/profiled_script.py" for site in stats["top_allocation_sites"])
    index = (built.root / "reports/index.html").read_text()
    assert "native reserve" in index and "own peak" in index
    assert "own_peak_bytes" in json.loads((built.root / "reports/summary.json").read_text())["entries"][0]


def test_a_failing_dev_file_fails_its_test_and_its_report_says_there_is_no_profile(built):
    built.replace(built.dev("04_side"), "assert side_value() > 0", "assert side_value() < 0")
    result = built.doit("test:04_side")
    assert result.code == 1
    assert "inline tests of modules/source/04_side/side_dev.py failed" in result.output
    folder = built.root / "reports/04_side"
    stats = json.loads((folder / "stats.json").read_text())
    assert stats["available"] is False and "failed" in stats["reason"], stats
    assert not (folder / "capture.bin").exists()          # no profile of code that no longer passes

    built.replace(built.dev("04_side"), "assert side_value() < 0", "assert side_value() > 0")
    assert built.doit().code == 0
    assert json.loads((folder / "stats.json").read_text())["available"] is True


def test_only_third_party_libraries_are_imported_before_tracking_starts(tmp_path, monkeypatch):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from tito.steps.profiled_script import import_libraries_of

    (tmp_path / "helper_of_the_project.py").write_text("raise RuntimeError('project code ran before tracking')\n")
    (tmp_path / "script.py").write_text("import json\nimport numpy as np\n\ndef load():\n    import this\n"
                                        "    import helper_of_the_project\n    from tinytorch.core import x\n"
                                        "    from . import y\n    import not_installed_anywhere\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    # numpy only: not the standard library (json; `this` would print), the project's own code, tinytorch,
    # a relative import, or a module that is not there.
    assert import_libraries_of("script.py") == ["numpy"]


if __name__ == "__main__":
    import sys

    import pytest

    sys.exit(pytest.main([__file__, "-q"]))
