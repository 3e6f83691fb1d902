"""Memory profiles, the report page, and memory budgets, on the fixture tree."""

import json
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

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
        assert stats["wall_time_seconds"] > 0
        site = stats["top_allocation_sites"][0]
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
    assert {"profile:03_top", "report"} <= result.executed
    assert "profile:01_base" not in result.executed and "profile:04_side" not in result.executed
    summary = json.loads((built.root / "reports/summary.json").read_text())
    assert summary["flagged"] == ["03_top"]
    entry = next(e for e in summary["entries"] if e["label"] == "03_top")
    assert entry["peak_change_percent"] > 10
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


if __name__ == "__main__":
    import sys

    import pytest

    sys.exit(pytest.main([__file__, "-q"]))
