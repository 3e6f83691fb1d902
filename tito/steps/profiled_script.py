"""Run a script under memray for its memory profile: reserve native buffers, then run it as `python` would.

    python -m tito.steps.profiled_script --capture capture.bin modules/source/04_layers/layers_dev.py

It starts memray's Tracker itself rather than going through `memray run`, whose command-line interface
imports far more than the tracker (0.27 s against 0.08 s per run, measured by benchmarks/startup.py);
the capture is the same (Python frames, every allocation). Without `--capture` the script runs untracked.

Why the first step: OpenBLAS takes a work buffer of about 32 MiB the first time a process multiplies two
matrices, and keeps it until the process ends. Profiled as is, that buffer showed up as the "largest
site at the peak" of most modules, at their first matmul: true of the process, but not of the learner's
code. Here one small matrix product of each float type runs first, on the line of
`reserve_native_buffers` below, so every buffer a native library takes once is taken there. The report
(tito.steps.memory) finds that function on an allocation's stack and counts the allocation as the
native library's reserve, apart from the module's own memory.

Then the script runs as `python script.py` would run it: as `__main__`, with its own folder first on
sys.path and its name in sys.argv[0].

What is not tracked: the interpreter's start-up, NumPy's import, and the import of every third-party
library that the script names in an import statement (scikit-learn for the digits examples). They
are imported before the Tracker starts. Tracking them cost more than the script: scikit-learn's import
makes 270,000 allocations (SciPy dedents its docstrings), 40 times what digits_mlp's training makes,
and every allocation memray sees costs it about 2.5 microseconds. They are the same for every run and
none of them is the module's own memory. The project's own modules (tinytorch, tests/support, the
script's folder) are never imported early: their code runs tracked, as the script runs it.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import runpy
import sys

IMPORT_RE = re.compile(r"^[ \t]*(?:from[ \t]+([\w.]+)[ \t]+import\b|import[ \t]+([\w.]+))", re.MULTILINE)

RESERVE_FUNCTION = "reserve_native_buffers"  # tito.steps.memory looks for this name on allocation stacks


def reserve_native_buffers() -> None:
    """Make NumPy's BLAS take its one-time work buffers now (a 64x64 product of each float type).
    NumPy is imported before this function runs, so what its import allocates is not counted here."""
    import numpy as np

    for dtype in (np.float32, np.float64):
        block = np.ones((64, 64), dtype=dtype)
        block @ block


def import_libraries_of(script: str) -> list[str]:
    """Import the third-party libraries that `script` imports anywhere in its text; their names.

    A library counts when its top-level package is not in the standard library and is found outside the
    current folder (the project root: the build runs every script from there), or in the virtualenv.
    One that fails to import is left to the script, which will say so itself."""
    project = os.path.realpath(os.getcwd()) + os.sep
    environment = os.path.realpath(sys.prefix) + os.sep  # a virtualenv inside the project is not its code
    with open(script, encoding="utf-8") as file:
        text = file.read()
    imported = []
    for match in IMPORT_RE.finditer(text):
        name = match.group(1) or match.group(2)
        top = name.split(".")[0]
        if name.startswith(".") or top in sys.stdlib_module_names or top in ("tinytorch", "__main__"):
            continue  # the standard library imports fast, and some of it acts on import (`import this`)
        try:
            spec = importlib.util.find_spec(name.split(".")[0])
            origin = spec.origin if spec else None
            where = os.path.realpath(origin) if origin else ""
            if not where or (where.startswith(project) and not where.startswith(environment)):
                continue  # not found, a namespace package, or this project's own code
            importlib.import_module(name)
        except Exception:  # noqa: BLE001  (an optional import the script guards itself)
            continue
        imported.append(name)
    return imported


def run_script(argv: list[str]) -> None:
    """Reserve the native buffers, then run argv[0] as `__main__` with argv[1:] as its arguments."""
    script = os.path.abspath(argv[0])  # `python script.py` gives __main__ an absolute __file__ too
    reserve_native_buffers()
    sys.argv = list(argv)
    sys.path[0] = os.path.dirname(os.path.realpath(script))  # as `python script.py` does
    runpy.run_path(script, run_name="__main__")


def main(argv: list[str]) -> None:
    capture = None
    if argv[:1] == ["--capture"] and len(argv) > 1:
        capture, argv = argv[1], argv[2:]
    if not argv:
        raise SystemExit("usage: python -m tito.steps.profiled_script [--capture FILE] SCRIPT [ARGS...]")
    if capture is None:
        run_script(argv)
        return
    import memray
    import numpy  # noqa: F401  (untracked, like the libraries below: see the top of this file)

    import_libraries_of(argv[0])
    with memray.Tracker(destination=memray.FileDestination(capture, overwrite=True)):
        run_script(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
