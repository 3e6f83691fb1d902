"""tito: the build tooling of TinyTorch.

The package `tinytorch` never imports it. `dodo.py` exposes `tito.tasks` to doit; `tito.cli` is the
`tito` command. Modules here import only the standard library at import time; heavy tools (jupytext,
nbformat, memray) are imported inside the functions that need them, so loading the task graph stays fast.
"""
