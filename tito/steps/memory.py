"""Memory profiles: each dev file and each example runs once, under memray, for its verdict and its profile.

`test:NN_name` runs the dev file and `example:<name>` runs the example through `run_profiled`, which runs
the script once (under memray when it is installed) and writes, atomically:

    reports/<label>/capture.bin      the memray capture (open it with any `memray` reporter)
    reports/<label>/flamegraph.html  memray's flame graph, built with --no-web so it opens offline
    reports/<label>/stats.json       peaks (the module's own, native libraries' reserve, total), allocations,
                                     wall time, the largest allocation sites of the module's own code

So a profile is as current as the verdict beside it: both come from the same run. A run that fails writes
a stats.json that says so (and no profile); where memray is missing, the script runs plainly and
stats.json says why there is no profile. Either way the verdict comes.

The module's own memory: the script runs through tito.steps.profiled_script, which first makes native
libraries take their one-time buffers (OpenBLAS's ~32 MiB work buffer) on one known line. At the peak,
an allocation is counted as
  * the native libraries' reserve when that line is on its stack,
  * the module's own when a frame of the script or of this project's code (tinytorch, modules/) is,
  * the runtime's otherwise.
NumPy and the third-party libraries the script imports are imported before tracking starts (see
tito.steps.profiled_script): the same on every run, and not the module's.
The headline peak is the module's own; the report shows the other two beside it.

The folder is one generated unit (tito.steps.generated): stats.json records the hash of every file in
it and of itself, the new folder is built beside the old one and swapped in, a hand edit stops the
build, and folders of removed modules or examples are orphans. memray runs on Linux and macOS only.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import shutil
import sys
import time
from pathlib import Path

from tito.model.layout import REPORTS_DIR, discover, example_scripts
from tito.model.scan import sha256_bytes, sha256_file
from tito.steps.generated import DISK_FULL_ERRNOS, DiskFull, Family, Kind, guard, write_atomic
from tito.steps.process import disk_full_note, run, tail
from tito.steps.profiled_script import RESERVE_FUNCTION

TOP_SITES = 10
REPORT_FILES = ("capture.bin", "flamegraph.html", "stats.json")
WRAPPER = "tito.steps.profiled_script"
WRAPPER_FILE = Path(__file__).with_name("profiled_script.py")


class ReportError(Exception):
    """The script ran, but its memory report could not be made; the message says why."""


def memray_available() -> bool:
    """True when memray can be imported here (checked without importing it: graph loading stays fast)."""
    return importlib.util.find_spec("memray") is not None


def report_targets(folder: Path) -> list[Path]:
    """The files a run leaves in its report folder: doit re-runs the task when one is missing."""
    return [Path(folder) / name for name in (REPORT_FILES if memray_available() else ("stats.json",))]


def run_profiled(root: Path, script: str, out_dir: str, label: str, timeout: int,
                 capture: bool = True) -> tuple[int, str, float]:
    """Run `script` (relative to root) once and write its report folder `out_dir`.

    Returns the run's (exit code, output, seconds) for the caller's verdict; output is '' when
    capture=False (it went to the terminal). Raises ReportError (or HandEdited) when the script passed
    but its report could not be written, DiskFull when space ran out.
    """
    root = Path(root)
    out = root / out_dir
    partial = _fresh_partial_folder(root, out)
    try:
        profiling = memray_available()
        capture_file = partial / "capture.bin"
        if profiling:
            command = [sys.executable, "-m", WRAPPER, "--capture", str(capture_file), script]
        else:
            command = [sys.executable, script]
        code, output, seconds = run(root, command, timeout, capture=capture)
        stats = {"label": label, "script": script, "available": False}
        if code != 0:
            capture_file.unlink(missing_ok=True)
            stats["reason"] = (f"the last run of {script} failed ({'timed out' if code == -1 else f'exit code {code}'}): "
                               f"its profile comes with the next run that passes")
        elif not profiling:
            stats["reason"] = f"memray is not installed for {sys.executable} (it runs on Linux and macOS only)"
        else:
            write_flamegraph(root, capture_file, partial / "flamegraph.html", label)
            stats.update(capture_stats(capture_file, root, root / script))
            stats.update({"available": True, "wall_time_seconds": round(seconds, 3)})
        write_stats(partial, stats)
        install_report(root, out, partial, label, script)
    except DiskFull as error:
        raise DiskFull(out, error.error) from None  # name the report folder, not the private one
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    if stats["available"]:
        print(f"{label}: own peak {mib_text(stats['own_peak_bytes'])} (native libraries' reserve "
              f"{mib_text(stats['native_reserve_bytes'])}, process peak {mib_text(stats['peak_memory_bytes'])}), "
              f"{stats['total_allocations']} allocations, {stats['wall_time_seconds']:.1f} s", flush=True)
    elif code == 0:
        print(f"{label}: no memory profile: {stats['reason']}", flush=True)
    return code, output, seconds


def mib_text(value: int) -> str:
    return f"{value / 2**20:.1f} MiB"


def _fresh_partial_folder(root: Path, out: Path) -> Path:
    """A private folder to build the report in; swapped in whole, so a killed build leaves the old or the new."""
    partial = root / REPORTS_DIR / ".partial" / f"{out.name}-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    try:
        partial.mkdir(parents=True)
    except OSError as error:
        if error.errno in DISK_FULL_ERRNOS:
            raise DiskFull(partial, error) from None
        raise
    return partial


def write_flamegraph(root: Path, capture: Path, page: Path, label: str) -> None:
    """memray's flame graph of the allocations alive at the peak, with its scripts inlined (--no-web).

    Drawn in this process with memray's own command class: a `memray flamegraph` subprocess per report
    would add an interpreter start-up and memray's import (about half a second) to every task."""
    try:
        from memray.commands.flamegraph import FlamegraphCommand

        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            FlamegraphCommand().write_report(capture, page, show_memory_leaks=False, temporary_allocation_threshold=-1,
                                             merge_threads=True, no_web=True)
        return
    except (ImportError, AttributeError, TypeError):
        pass  # another memray version: its command line does the same
    except OSError as error:
        if error.errno in DISK_FULL_ERRNOS:
            raise DiskFull(page, error) from None
        raise
    command = [sys.executable, "-m", "memray", "flamegraph", "--no-web", "-f", "-o", str(page), str(capture)]
    code, output, _ = run(root, command, 600)
    if code != 0:
        raise ReportError(f"memray flamegraph failed for {label}:\n{tail(output)}\n{disk_full_note(output)}")


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


# A module's report is written by `test:NN_name`, an example's by `example:<name>`.
REPORT = Kind("memory report folder", "test", "TITO_DISCARD_EDITS=1 doit test:{key}", _report_hashes)
EXAMPLE_REPORT = Kind("memory report folder", "example", "TITO_DISCARD_EDITS=1 doit example:{key}", _report_hashes)


def install_report(root: Path, out: Path, finished: Path, label: str, script: str) -> None:
    """Swap the finished folder in for `out`, unless `out` was edited by hand (HandEdited)."""
    if label.startswith("example:"):
        guard(root, out, None, EXAMPLE_REPORT, label.split(":", 1)[1], root / script)
    else:
        guard(root, out, None, REPORT, label, root / script)
    out.parent.mkdir(parents=True, exist_ok=True)
    old = finished.with_name(finished.name + ".old")
    if out.exists():
        os.replace(out, old)
    os.replace(finished, out)
    shutil.rmtree(old, ignore_errors=True)


def capture_stats(capture: Path, root: Path, script: Path) -> dict:
    """Peaks (total, the module's own, the native libraries' reserve, the runtime's), the allocation count,
    and the biggest sites of the module's own allocations alive at the peak."""
    import memray

    reader = memray.FileReader(str(capture))
    sites: dict[tuple, dict] = {}
    kinds = {"own": 0, "native_reserve": 0, "runtime": 0}
    for record in reader.get_high_watermark_allocation_records(merge_threads=True):
        frames = record.stack_trace()
        kind = allocation_kind(frames, root, script)
        kinds[kind] += record.size
        if kind != "own":
            continue
        function, filename, line = _interesting_frame(frames, root)
        site = sites.setdefault((function, filename, line), {
            "function": function, "file": filename, "line": line, "bytes": 0, "allocations": 0})
        site["bytes"] += record.size
        site["allocations"] += record.n_allocations
    top = sorted(sites.values(), key=lambda s: (-s["bytes"], s["file"], s["line"]))[:TOP_SITES]
    return {
        "own_peak_bytes": kinds["own"],
        "native_reserve_bytes": kinds["native_reserve"],
        "runtime_bytes": kinds["runtime"],
        "peak_memory_bytes": reader.metadata.peak_memory,
        "total_allocations": reader.metadata.total_allocations,
        "top_allocation_sites": top,
        "how": "At the peak, allocations made under tito.steps.profiled_script's reserve_native_buffers (NumPy's "
               "BLAS work buffers, taken before the script ran) are the native libraries' reserve; those with a "
               "frame of the script or of this project's code on their stack are the module's own; the rest are "
               "the runtime's. Tracking starts after NumPy and the third-party libraries the script imports "
               "are loaded.",
    }


def allocation_kind(frames, root: Path, script: Path) -> str:
    """'native_reserve', 'own' or 'runtime' for one allocation's stack (innermost frame first)."""
    wrapper, script_text = str(WRAPPER_FILE), str(script)
    if any(function == RESERVE_FUNCTION and filename == wrapper for function, filename, _ in frames):
        return "native_reserve"
    if any(filename == script_text or _is_project_code(filename, root) for _, filename, _ in frames):
        return "own"
    return "runtime"


def _is_project_code(filename: str, root: Path) -> bool:
    """A file of this project that a module's or an example's code lives in (not tito, not a virtualenv)."""
    try:
        relative = Path(filename).relative_to(root)
    except ValueError:
        return False
    return relative.parts[:1] in (("tinytorch",), ("modules",), ("examples",), ("tests",))


def _interesting_frame(frames, root: Path) -> tuple[str, str, int]:
    """The innermost frame in this project's files (else the innermost frame), path made relative."""
    if not frames:
        return ("<unknown>", "<unknown>", 0)
    for function, filename, line in frames:
        if _is_project_code(filename, root):
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


def example_report_dir(root: Path, script: Path) -> Path:
    """reports/examples/<name>/ for examples/<name>/train.py."""
    return Path(root) / REPORTS_DIR / "examples" / Path(script).parent.name


def report_folders(root: Path, modules) -> list[Path]:
    """Every memory report folder: one per dev file (written by test:NN), one per example (by example:)."""
    return [*(m.report_dir for m in modules), *(example_report_dir(root, s) for s in example_scripts(Path(root)))]


def expected_report_stats(root: Path) -> set[Path]:
    return {folder / "stats.json" for folder in report_folders(root, discover(Path(root)))}


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


REPORT_STATS = Kind("memory report", "test", REPORT.discard_command, _stats_file_hashes)
