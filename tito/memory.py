"""Memory profiles: run a dev file or an example under memray and write its report folder.

`profile:NN_name` and `profile:example:<name>` each write, atomically:

    reports/<label>/capture.bin      the memray capture (open it with any `memray` reporter)
    reports/<label>/flamegraph.html  memray's flame graph, built with --no-web so it opens offline
    reports/<label>/stats.json       peak memory, total allocations, wall time, top allocation sites

memray runs on Linux and macOS only; elsewhere the task says so, writes a stats.json saying why, and
the build goes on.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sys
import time
from pathlib import Path

from tito.files import write_atomic
from tito.graph import example_scripts
from tito.modules import REPORTS_DIR, discover
from tito.runner import run, tail

PROFILE_TIMEOUT = 1800
TOP_SITES = 10
REPORT_FILES = ("capture.bin", "flamegraph.html", "stats.json")


def memray_available() -> bool:
    """True when memray can be imported here (checked without importing it: graph loading stays fast)."""
    return importlib.util.find_spec("memray") is not None


def profile_script(root: str, script: str, out_dir: str, label: str):
    """doit action: run `script` under memray and write capture.bin, flamegraph.html and stats.json."""
    from doit.exceptions import TaskFailed

    root_path, out = Path(root), Path(root) / out_dir
    out.mkdir(parents=True, exist_ok=True)
    if not memray_available():
        reason = f"memray is not installed for {sys.executable} (it runs on Linux and macOS only)"
        print(f"{label}: skipped: {reason}")
        write_json(out / "stats.json", {"label": label, "script": script, "available": False, "reason": reason})
        return None

    capture = out / ".capture.bin.partial"  # renamed into place only when complete
    command = [sys.executable, "-m", "memray", "run", "--quiet", "-f", "-o", str(capture), script]
    code, output, seconds = run(root_path, command, PROFILE_TIMEOUT)
    if code != 0:
        capture.unlink(missing_ok=True)
        return TaskFailed(f"{script} failed under memray ({label}):\n{tail(output)}\n\n"
                          f"Next: run `python {script}` to see the error, then `doit profile:{label}`.")
    page = out / ".flamegraph.html.partial"
    command = [sys.executable, "-m", "memray", "flamegraph", "--no-web", "-f", "-o", str(page), str(capture)]
    code, output, _ = run(root_path, command, PROFILE_TIMEOUT)
    if code != 0:
        return TaskFailed(f"memray flamegraph failed for {label}:\n{tail(output)}")
    stats = capture_stats(capture, root_path)
    stats.update({"label": label, "script": script, "available": True, "wall_time_seconds": round(seconds, 3)})
    os.replace(capture, out / "capture.bin")
    os.replace(page, out / "flamegraph.html")
    write_json(out / "stats.json", stats)
    print(f"{label}: peak {stats['peak_memory_bytes'] / 2**20:.1f} MiB, "
          f"{stats['total_allocations']} allocations, {seconds:.1f} s")
    return None


def capture_stats(capture: Path, root: Path) -> dict:
    """Peak memory, allocation count and the biggest allocation sites alive at the peak."""
    import memray

    reader = memray.FileReader(str(capture))
    sites: dict[tuple, dict] = {}
    for record in reader.get_high_watermark_allocation_records(merge_threads=True):
        function, filename, line = _interesting_frame(record.stack_trace(), root)
        site = sites.setdefault((function, filename, line), {
            "function": function, "file": filename, "line": line, "bytes": 0, "allocations": 0})
        site["bytes"] += record.size
        site["allocations"] += record.n_allocations
    top = sorted(sites.values(), key=lambda s: (-s["bytes"], s["file"], s["line"]))[:TOP_SITES]
    return {
        "peak_memory_bytes": reader.metadata.peak_memory,
        "total_allocations": reader.metadata.total_allocations,
        "top_allocation_sites": top,
    }


def _interesting_frame(frames, root: Path) -> tuple[str, str, int]:
    """The innermost frame in this project's files (else the innermost frame), path made relative."""
    if not frames:
        return ("<unknown>", "<unknown>", 0)
    root_text = str(root)
    for function, filename, line in frames:
        if filename.startswith(root_text) and "/.venv/" not in filename:
            return (function, os.path.relpath(filename, root), line)
    function, filename, line = frames[0]
    return (function, filename, line)


def write_json(path: Path, data) -> None:
    write_atomic(path, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode("utf-8"))


def read_json(path: Path, default=None):
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return default


def now() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S")


# --- orphans ------------------------------------------------------------------------------------------


def orphan_reports(root: str) -> list[Path]:
    """Report folders (ours: they hold a stats.json) of modules or examples that no longer exist."""
    reports = Path(root) / REPORTS_DIR
    wanted = {m.report_dir for m in discover(Path(root))}
    wanted |= {reports / "examples" / s.parent.name for s in example_scripts(Path(root))}
    found = [p.parent for p in reports.glob("*/stats.json")] + [p.parent for p in reports.glob("examples/*/stats.json")]
    return sorted(folder for folder in found if folder not in wanted)


def no_orphan_reports(root: str) -> bool:
    return not orphan_reports(root)


def remove_orphan_reports(root: str) -> None:
    for folder in orphan_reports(root):
        shutil.rmtree(folder)
        print(f"removed {folder.relative_to(root)}: its module or example no longer exists")
