"""Memory profiles: run a dev file or an example under memray and write its report folder.

`profile:NN_name` and `profile:example:<name>` each write, atomically:

    reports/<label>/capture.bin      the memray capture (open it with any `memray` reporter)
    reports/<label>/flamegraph.html  memray's flame graph, built with --no-web so it opens offline
    reports/<label>/stats.json       peak memory, total allocations, wall time, top allocation sites

The folder is one generated unit (tito.steps.generated): stats.json records the hash of every file in
it and of itself, the new folder is built beside the old one and swapped in, a hand edit stops the
build, and folders of removed modules or examples are orphans. memray runs on Linux and macOS only;
elsewhere the task says so, writes a stats.json saying why, and the build goes on.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sys
import time
from pathlib import Path

from tito.model.layout import REPORTS_DIR, discover, example_scripts
from tito.model.scan import sha256_bytes, sha256_file
from tito.steps.generated import (
    DISK_FULL_ERRNOS,
    DiskFull,
    Family,
    HandEdited,
    Kind,
    guard,
    reports_disk_full,
    write_atomic,
)
from tito.steps.runner import disk_full_note, not_utf8, run, tail

PROFILE_TIMEOUT = 1800
TOP_SITES = 10
REPORT_FILES = ("capture.bin", "flamegraph.html", "stats.json")


def memray_available() -> bool:
    """True when memray can be imported here (checked without importing it: graph loading stays fast)."""
    return importlib.util.find_spec("memray") is not None


@reports_disk_full
def profile_script(root: str, script: str, out_dir: str, label: str):
    """doit action: run `script` under memray and write capture.bin, flamegraph.html and stats.json."""
    from doit.exceptions import TaskFailed

    root_path, out = Path(root), Path(root) / out_dir
    bad = not_utf8(root_path, [Path(script)], f"profile:{label}")
    if bad:
        return bad
    # Built in a private folder, then swapped in whole: a killed build leaves the old report or the new.
    partial = Path(root) / REPORTS_DIR / ".partial" / f"{out.name}-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    try:
        partial.mkdir(parents=True)
    except OSError as error:
        if error.errno in DISK_FULL_ERRNOS:
            raise DiskFull(partial, error) from None
        raise
    try:
        if not memray_available():
            reason = f"memray is not installed for {sys.executable} (it runs on Linux and macOS only)"
            print(f"{label}: skipped: {reason}")
            stats = {"label": label, "script": script, "available": False, "reason": reason}
        else:
            stats = _profile_into(root_path, partial, script, label)
            if isinstance(stats, str):
                return TaskFailed(stats)
        write_stats(partial, stats)
        try:
            install_report(root_path, out, partial, label, script)
        except HandEdited as error:
            return TaskFailed(str(error))
    except DiskFull as error:
        raise DiskFull(out, error.error) from None  # name the report folder, not the private one
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    if stats["available"]:
        print(f"{label}: peak {stats['peak_memory_bytes'] / 2**20:.1f} MiB, "
              f"{stats['total_allocations']} allocations, {stats['wall_time_seconds']:.1f} s")
    return None


def _profile_into(root: Path, folder: Path, script: str, label: str) -> dict | str:
    """Run the script under memray, writing capture.bin and flamegraph.html into `folder`; its stats,
    or the failure message."""
    capture = folder / "capture.bin"
    command = [sys.executable, "-m", "memray", "run", "--quiet", "-f", "-o", str(capture), script]
    code, output, seconds = run(root, command, PROFILE_TIMEOUT)
    if code != 0:
        return (f"{script} failed under memray ({label}):\n{tail(output)}\n\n{disk_full_note(output)}"
                f"Next: run `python {script}` to see the error, then `doit profile:{label}`.")
    page = folder / "flamegraph.html"
    command = [sys.executable, "-m", "memray", "flamegraph", "--no-web", "-f", "-o", str(page), str(capture)]
    code, output, _ = run(root, command, PROFILE_TIMEOUT)
    if code != 0:
        return f"memray flamegraph failed for {label}:\n{tail(output)}\n{disk_full_note(output)}"
    stats = capture_stats(capture, root)
    stats.update({"label": label, "script": script, "available": True, "wall_time_seconds": round(seconds, 3)})
    return stats


# --- the report folder as one generated unit --------------------------------------------------------

STATS_HASH_KEY = "content_sha256"


def write_stats(folder: Path, stats: dict) -> None:
    """stats.json, recording the hash of every other file in the folder and of the whole."""
    stats = dict(stats)
    stats["files"] = {p.name: sha256_file(p) for p in sorted(folder.iterdir()) if p.name != "stats.json"}
    stats[STATS_HASH_KEY] = _folder_digest(stats, stats["files"])
    write_json(folder / "stats.json", stats)


def _folder_digest(stats: dict, file_hashes: dict) -> str:
    body = {key: value for key, value in stats.items() if key not in (STATS_HASH_KEY, "files")}
    return sha256_bytes(json.dumps({"stats": body, "files": file_hashes}, sort_keys=True).encode("utf-8"))


def _report_hashes(folder: Path) -> tuple[str | None, str]:
    stats = read_json(Path(folder) / "stats.json")
    if stats is None:
        raise FileNotFoundError(folder)
    if STATS_HASH_KEY not in stats and "label" in stats:
        return "unguarded", "unguarded"  # written before reports recorded hashes: replace it freely
    listed = stats.get("files") or {}
    now = {name: sha256_file(Path(folder) / name) for name in listed}
    extra = {p.name for p in Path(folder).iterdir()} - set(listed) - {"stats.json"}
    now.update({name: "unexpected" for name in extra})
    return stats.get(STATS_HASH_KEY), _folder_digest(stats, now)


REPORT = Kind("memory report folder", "profile", "TITO_DISCARD_EDITS=1 doit profile:{key}", _report_hashes)


def install_report(root: Path, out: Path, finished: Path, label: str, script: str) -> None:
    """Swap the finished folder in for `out`, unless `out` was edited by hand (HandEdited)."""
    guard(root, out, None, REPORT, label, root / script)
    out.parent.mkdir(parents=True, exist_ok=True)
    old = finished.with_name(finished.name + ".old")
    if out.exists():
        os.replace(out, old)
    os.replace(finished, out)
    shutil.rmtree(old, ignore_errors=True)


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
    except (FileNotFoundError, ValueError):  # missing, not JSON, or not UTF-8
        return default


def now() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S")


# --- orphans ------------------------------------------------------------------------------------------


def expected_report_stats(root: Path) -> set[Path]:
    reports = Path(root) / REPORTS_DIR
    wanted = {m.report_dir for m in discover(Path(root))}
    wanted |= {reports / "examples" / s.parent.name for s in example_scripts(Path(root))}
    return {folder / "stats.json" for folder in wanted}


def report_families() -> list[Family]:
    """Report folders of modules (reports/NN_name/) and examples (reports/examples/<name>/)."""
    pattern = f"{REPORTS_DIR.as_posix()}"
    return [Family(REPORT_STATS, f"{pattern}/[!.]*/stats.json", expected_report_stats, lambda p: p.parent),
            Family(REPORT_STATS, f"{pattern}/examples/[!.]*/stats.json", expected_report_stats, lambda p: p.parent)]


def _stats_file_hashes(path: Path) -> tuple[str | None, str]:
    """For orphan search: a stats.json is ours when it records a content hash."""
    stats = read_json(path)
    if stats is None:
        raise FileNotFoundError(path)
    recorded = stats.get(STATS_HASH_KEY) or ("unguarded" if "label" in stats else None)
    return recorded, recorded or ""


REPORT_STATS = Kind("memory report", "profile", REPORT.discard_command, _stats_file_hashes)
