"""`report`: reports/index.html and reports/summary.json from every profile's stats.json.

The page has a table of every module and example (its own peak memory, the native libraries' reserve and
the process peak beside it, allocations, time, a link to each flame graph), an inline SVG chart of the
own peak per module, and the change against the previous build: an own peak that grew by more than 10%
(and by at least 1 MiB) is flagged. reports/history.json keeps every build's own peaks. tito.steps.memory
says how the module's own memory is told apart from what native libraries reserve.
"""

from __future__ import annotations

import html
from pathlib import Path

from tito.steps.generated import reports_disk_full, write_atomic
from tito.steps.memory import now, read_json, write_json

GROWTH_FLAG = 0.10  # flag an own peak that grew by more than 10% since the previous build
GROWTH_FLOOR = 2**20  # ... and by at least 1 MiB: a tiny profile's few-kilobyte jitter is not a regression
HISTORY_LIMIT = 100


@reports_disk_full
def build_report(root: str, stats_files: list[str]):
    """doit action for `report`."""
    reports = Path(root) / "reports"
    previous = {e["label"]: e for e in read_json(reports / "summary.json", {}).get("entries", [])}
    entries = [summarize(Path(root) / path, reports, previous.get(label_of(path))) for path in stats_files]
    flagged = [e["label"] for e in entries if e.get("grew_over_10_percent")]
    summary = {"generated": now(), "growth_flag_percent": GROWTH_FLAG * 100, "entries": entries, "flagged": flagged}
    write_json(reports / "summary.json", summary)
    history = read_json(reports / "history.json", [])
    history.append({"time": summary["generated"], "peaks": {e["label"]: e.get("own_peak_bytes") for e in entries}})
    write_json(reports / "history.json", history[-HISTORY_LIMIT:])
    write_atomic(reports / "index.html", render_page(summary).encode("utf-8"))
    print(f"reports/index.html: {len(entries)} profiles, {len(flagged)} flagged"
          + (f" ({', '.join(flagged)})" if flagged else ""))


def label_of(stats_path: str) -> str:
    parts = Path(stats_path).parts  # reports/04_layers/stats.json or reports/examples/x/stats.json
    return f"example:{parts[-2]}" if parts[-3] == "examples" else parts[-2]


def summarize(stats_path: Path, reports: Path, before: dict | None) -> dict:
    stats = read_json(stats_path, {})
    label = label_of(str(stats_path))
    entry = {
        "label": label,
        "kind": "example" if label.startswith("example:") else "module",
        "available": stats.get("available", False),
        "reason": stats.get("reason", ""),
        "flamegraph": str((stats_path.parent / "flamegraph.html").relative_to(reports)),
    }
    for key in ("own_peak_bytes", "native_reserve_bytes", "runtime_bytes", "peak_memory_bytes", "total_allocations",
                "wall_time_seconds"):
        entry[key] = stats.get(key)
    sites = stats.get("top_allocation_sites") or []
    entry["top_site"] = sites[0] if sites else None
    old_peak, new_peak = (before or {}).get("own_peak_bytes"), entry["own_peak_bytes"]
    entry["previous_own_peak_bytes"] = old_peak
    if old_peak is not None and new_peak is not None:
        entry["peak_change_percent"] = round(100 * (new_peak / old_peak - 1), 1) if old_peak else None
        entry["grew_over_10_percent"] = new_peak > old_peak * (1 + GROWTH_FLAG) and new_peak - old_peak >= GROWTH_FLOOR
    else:
        entry["peak_change_percent"] = None
        entry["grew_over_10_percent"] = False
    return entry


# --- the page ---------------------------------------------------------------------------------------


def mib(value) -> str:
    return "-" if value is None else f"{value / 2**20:.1f}"


def render_page(summary: dict) -> str:
    rows = "\n".join(render_row(e) for e in summary["entries"])
    flagged = summary["flagged"]
    banner = (f'<p class="flag">Own peak memory grew by more than 10% (and 1 MiB) since the previous build: '
              f'{html.escape(", ".join(flagged))}</p>' if flagged else
              "<p>No own peak grew by more than 10% (and 1 MiB) since the previous build.</p>")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>TinyTorch memory reports</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; }} td, th {{ padding: .3em .8em; border-bottom: 1px solid #ddd; text-align: right; }}
td:first-child, th:first-child, td.site {{ text-align: left; }}
tr.flagged td {{ background: #fde2e2; }} .flag {{ color: #a00; font-weight: bold; }}
</style></head><body>
<h1>TinyTorch memory reports</h1>
<p>Built {html.escape(summary["generated"])} by <code>doit report</code>. Each module's dev file (its inline tests and
Systems Analysis) ran under memray in its <code>test:</code> task, and each example in its <code>example:</code> task:
the run that gave the verdict gave the profile. At the moment the process held the most memory:
<b>own peak</b> is what the module's code had allocated (an allocation with a frame of the script, of
<code>tinytorch</code> or of <code>modules/</code> on its stack); <b>native reserve</b> is what native libraries took
once for themselves (OpenBLAS's work buffer: the build makes NumPy multiply two small matrices before the
script starts, and counts what that line allocated); <b>process peak</b> adds those and the rest memray saw
(tracking starts after NumPy and the third-party libraries the script imports are loaded).
<b>Allocations</b> counts every allocation made; <b>time</b> is wall time under memray (a little slower than
without it). The flame graph shows where all the memory alive at the
peak was allocated, the reserve included (under <code>reserve_native_buffers</code>).</p>
{banner}
<h2>Own peak memory per module</h2>
{render_chart([e for e in summary["entries"] if e["kind"] == "module"])}
<h2>Every profile</h2>
<table>
<tr><th>profile</th><th>own peak (MiB)</th><th>change vs previous</th><th>native reserve (MiB)</th>
<th>process peak (MiB)</th><th>allocations</th><th>time (s)</th><th>largest own site at peak</th><th>flame graph</th></tr>
{rows}
</table>
</body></html>
"""


def render_row(entry: dict) -> str:
    label = html.escape(entry["label"])
    if not entry["available"]:
        return f'<tr><td>{label}</td><td colspan="8">{html.escape(entry["reason"] or "no data")}</td></tr>'
    change, before = entry["peak_change_percent"], entry.get("previous_own_peak_bytes")
    change_text = ("first build" if before is None else f"{change:+.1f}%" if change is not None else
                   f"+{mib(entry['own_peak_bytes'])} MiB (from 0)")
    site = entry["top_site"]
    site_text = (f'{html.escape(site["function"])} ({html.escape(site["file"])}:{site["line"]}), '
                 f'{mib(site["bytes"])} MiB' if site else "-")
    css = ' class="flagged"' if entry["grew_over_10_percent"] else ""
    return (f'<tr{css}><td>{label}</td><td>{mib(entry["own_peak_bytes"])}</td><td>{change_text}</td>'
            f'<td>{mib(entry["native_reserve_bytes"])}</td><td>{mib(entry["peak_memory_bytes"])}</td>'
            f'<td>{entry["total_allocations"]:,}</td><td>{entry["wall_time_seconds"]:.1f}</td>'
            f'<td class="site">{site_text}</td>'
            f'<td><a href="{html.escape(entry["flamegraph"])}">flame graph</a></td></tr>')


def render_chart(entries: list[dict]) -> str:
    """A horizontal bar chart as inline SVG: no scripts, no network."""
    entries = [e for e in entries if e["available"] and e["own_peak_bytes"] is not None]
    if not entries:
        return "<p>No module profiles yet.</p>"
    biggest = max(1, *(e["own_peak_bytes"] for e in entries))
    bar_height, label_width, width = 22, 150, 450
    parts = []
    for row, entry in enumerate(entries):
        y = row * bar_height
        length = max(1, int(width * entry["own_peak_bytes"] / biggest))
        color = "#d9534f" if entry["grew_over_10_percent"] else "#4a7ebb"
        parts.append(f'<text x="0" y="{y + 15}" font-size="13">{html.escape(entry["label"])}</text>'
                     f'<rect x="{label_width}" y="{y + 3}" width="{length}" height="{bar_height - 6}" fill="{color}"/>'
                     f'<text x="{label_width + length + 5}" y="{y + 15}" font-size="12">'
                     f'{mib(entry["own_peak_bytes"])} MiB</text>')
    height = bar_height * len(entries)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{label_width + width + 90}" height="{height}" '
            f'role="img" aria-label="own peak memory per module">{"".join(parts)}</svg>')
