"""TinyTorch: a deep-learning framework built from scratch on NumPy, one module at a time.

The framework lives in `tinytorch.core`, one generated file per curriculum module (for example
`from tinytorch.core.layers import Dense`). Those files are produced by `doit export` from
`modules/source/NN_name/name_dev.py`; this file is hand-written and imports none of them, so the
package imports even before anything is exported.
"""

__version__ = "0.1.0"
