"""Progress while grading many notebooks: a rich progress bar on a terminal, plain lines otherwise.

`reporter(total)` is a context manager giving a callable `progress(done, total, result)` (what
`tito.teaching.grade.grade` calls as each notebook finishes) with a `log(message)` method for messages
that must not tear the bar (the sandbox warning, Dask's cluster address). Piped output (CI, a file)
gets one line per notebook on standard error; the results table still goes to standard output.
"""

from __future__ import annotations

import contextlib
import sys


class _Plain:
    def __init__(self, total: int, stream):
        self.total, self.stream = total, stream

    def __call__(self, done: int, total: int, result) -> None:
        if total > 1:
            print(f"[{done}/{total}] {result.notebook.name}: {result.total:g}/{result.max_total:g}",
                  file=self.stream, flush=True)

    def log(self, message: str) -> None:
        print(message, file=self.stream, flush=True)


class _Rich:
    def __init__(self, progress, task):
        self.progress, self.task = progress, task

    def __call__(self, done: int, total: int, result) -> None:
        self.progress.update(self.task, completed=done, description=f"grading ({result.notebook.name})")

    def log(self, message: str) -> None:
        self.progress.console.print(message, markup=False, highlight=False)


@contextlib.contextmanager
def reporter(total: int, stream=None):
    stream = stream if stream is not None else sys.stderr
    interactive = hasattr(stream, "isatty") and stream.isatty() and total > 1
    if interactive:
        try:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
        except ImportError:
            interactive = False
    if not interactive:
        yield _Plain(total, stream)
        return
    console = Console(file=stream)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("grading", total=total)
        yield _Rich(progress, task)
