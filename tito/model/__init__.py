"""The model: what a TinyTorch checkout holds. Reads files, never writes them.

`layout` finds the modules, `scan` is the fast static scan used while the graph loads, `devfile`
reads one dev file into cells, and `graph` derives the module dependency graph from the imports.
The model imports neither the build steps (tito.steps) nor teaching (tito.teaching).
"""
