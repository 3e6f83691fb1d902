"""`tito module status`: one line per module: its export, its last test result, its peak memory."""

from __future__ import annotations

import json
import time
from pathlib import Path

from tito.model.devfile import DevFile, DevFileError
from tito.model.graph import Graph
from tito.steps.export import ExportError, build_export, generated_state
from tito.steps.generated import write_atomic

STATUS_DIR = Path(".tito") / "status"


def record_test_result(root: Path, key: str, passed: bool, summary: str) -> None:
    """Remember the last `test:<key>` outcome for the status table (informational, not a build input)."""
    record = {"passed": passed, "summary": summary.strip()[-200:], "when": time.strftime("%Y-%m-%d %H:%M")}
    write_atomic(Path(root) / STATUS_DIR / f"test-{key}.json", json.dumps(record).encode("utf-8"))


def export_status(module, graph: Graph) -> str:
    state = generated_state(module.export_file)
    if state != "current":
        return state
    try:
        expected = build_export(DevFile.of(module), graph)
    except (DevFileError, ExportError):
        return "dev file has errors"
    return "current" if module.export_file.read_text(encoding="utf-8") == expected else "stale"


def last_test(root: Path, key: str) -> str:
    path = Path(root) / STATUS_DIR / f"test-{key}.json"
    if not path.is_file():
        return "never run"
    record = json.loads(path.read_text())
    return f"{'passed' if record['passed'] else 'FAILED'} ({record['when']})"


def peak_memory(module) -> str:
    """The module's own peak in its last memory report (native libraries' buffers not counted)."""
    stats = module.report_dir / "stats.json"
    if not stats.is_file():
        return "-"
    peak = json.loads(stats.read_text()).get("own_peak_bytes")
    return "-" if peak is None else f"{peak / 2**20:.1f} MiB"


def module_status_table(root: Path) -> str:
    graph = Graph.load(root)
    rows = [("module", "export", "last test", "own peak memory")]
    for module in graph.modules:
        rows.append((module.key, export_status(module, graph), last_test(root, module.key), peak_memory(module)))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)
