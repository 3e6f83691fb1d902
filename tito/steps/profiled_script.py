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
sys.path and its name in sys.argv[0]. Only the standard library and NumPy are imported here.
"""

from __future__ import annotations

import os
import runpy
import sys

RESERVE_FUNCTION = "reserve_native_buffers"  # tito.steps.memory looks for this name on allocation stacks


def reserve_native_buffers() -> None:
    """Make NumPy's BLAS take its one-time work buffers now (a 64x64 product of each float type).
    NumPy is imported before this function runs, so what its import allocates is not counted here."""
    import numpy as np

    for dtype in (np.float32, np.float64):
        block = np.ones((64, 64), dtype=dtype)
        block @ block


def run_script(argv: list[str]) -> None:
    """Reserve the native buffers, then run argv[0] as `__main__` with argv[1:] as its arguments."""
    script = os.path.abspath(argv[0])  # `python script.py` gives __main__ an absolute __file__ too
    import numpy  # noqa: F401  (the runtime's, like the interpreter: imported outside the reserve function)

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

    with memray.Tracker(destination=memray.FileDestination(capture, overwrite=True)):
        run_script(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
