"""Feedback students can read: one self-contained HTML page per graded notebook.

Each page shows every graded cell with its points, status, the reason it lost points and what it
printed (capped), then the total, any late penalty and the final score, and the notes. It loads
nothing: the style is inline and a Content-Security-Policy forbids every external load (and every
script), so it opens offline and from an e-mail attachment alike. Everything the notebook produced is
escaped: a student's output can never become markup.
"""

from __future__ import annotations

import html
import os
import re
from datetime import datetime, timezone
from pathlib import Path

from tito.steps.generated import write_atomic

STYLE = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 60rem;
       color: #1d1d1f; padding: 0 1rem; }
h1 { font-size: 1.4rem; margin-bottom: .2rem; }
.meta { color: #555; margin-top: 0; }
.total { font-size: 1.25rem; margin: 1rem 0; }
table { border-collapse: collapse; width: 100%; margin: 1rem 0; }
th, td { text-align: left; vertical-align: top; padding: .45rem .6rem; border-bottom: 1px solid #ddd; }
th { background: #f4f4f6; }
.passed { color: #0a7a2f; font-weight: 600; }
.failed, .error, .timeout, .memory, .missing { color: #b3261e; font-weight: 600; }
pre { background: #f7f7f9; border: 1px solid #e3e3e8; padding: .5rem; white-space: pre-wrap;
      word-break: break-word; max-height: 24rem; overflow: auto; margin: .3rem 0 0; font-size: 13px; }
.late { color: #8a5300; }
ul.notes li { margin-bottom: .3rem; }
"""
CSP = "default-src 'none'; style-src 'unsafe-inline'"
OUTPUT_SHOWN = 10_000  # characters of a cell's output on the page
NAME_RE = re.compile(r"[^A-Za-z0-9._-]+")


def page_names(notebooks: list[Path]) -> list[str]:
    """A distinct file name per notebook: its path below the folder they share, with `__` for `/`
    (nbgrader's submitted/<student>/<assignment>/<notebook>.ipynb gives <student>__<assignment>__...)."""
    if not notebooks:
        return []
    resolved = [Path(os.path.abspath(n)) for n in notebooks]
    common = Path(os.path.commonpath([str(p.parent) for p in resolved]))
    names, seen = [], set()
    for path in resolved:
        relative = path.relative_to(common).with_suffix("")
        name = NAME_RE.sub("_", "__".join(relative.parts)) or "notebook"
        candidate, counter = name, 2
        while candidate in seen:
            candidate, counter = f"{name}-{counter}", counter + 1
        seen.add(candidate)
        names.append(candidate + ".html")
    return names


def _points(value: float) -> str:
    return f"{round(value, 2):g}"


def render(result, module_key: str) -> str:
    """The page for one NotebookResult."""
    e = html.escape
    rows = []
    for cell in result.cells:
        reason = f"<div>{e(cell.reason)}</div>" if cell.reason else ""
        shown = cell.output[:OUTPUT_SHOWN]
        if len(cell.output) > OUTPUT_SHOWN:
            shown += f"\n... [{len(cell.output) - OUTPUT_SHOWN:,} more characters not shown]"
        output = f"<pre>{e(shown)}</pre>" if cell.output else ""
        rows.append(f"<tr><td><code>{e(cell.grade_id)}</code></td>"
                    f"<td>{_points(cell.points)} / {_points(cell.max_points)}</td>"
                    f"<td class=\"{e(cell.status)}\">{e(cell.status)}</td><td>{reason}{output}</td></tr>")
    late = ""
    if result.late is not None and result.late.days_late:
        late = f"<p class=\"late\">Late: {e(result.late.describe())}</p>"
    elif result.late is not None:
        late = (f"<p class=\"late\">Deadline {e(result.late.deadline.isoformat(timespec='minutes'))}: "
                f"{e(result.late.describe())}</p>")
    final = ""
    if result.penalty:
        final = (f"<p class=\"total\">Late penalty: -{_points(result.penalty)} &middot; "
                 f"<strong>Final score: {_points(result.final)} / {_points(result.max_total)}</strong></p>")
    notes = ""
    if result.notes:
        notes = "<h2>Notes</h2><ul class=\"notes\">" + "".join(f"<li>{e(note)}</li>" for note in result.notes) + "</ul>"
    generated = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Feedback: {e(result.notebook.name)} ({e(module_key)})</title>
<style>{STYLE}</style>
</head>
<body>
<h1>Feedback for {e(result.notebook.name)}</h1>
<p class="meta">Module {e(module_key)} &middot; graded {e(generated)} &middot; {len(result.cells)} graded cells</p>
<p class="total">Total: <strong>{_points(result.total)} / {_points(result.max_total)}</strong> points</p>
{late}{final}
<table>
<thead><tr><th>graded cell</th><th>points</th><th>status</th><th>reason and output</th></tr></thead>
<tbody>
{chr(10).join(rows)}
</tbody>
</table>
{notes}
</body>
</html>
"""


def write_feedback(results, folder: Path, module_key: str) -> list[Path]:
    """One page per result in `folder` (created); returns the pages, in the order of `results`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    pages = []
    for result, name in zip(results, page_names([r.notebook for r in results])):
        path = folder / name
        write_atomic(path, render(result, module_key).encode("utf-8"))
        pages.append(path)
    return pages
