"""TinyTorch's build graph. The task creators live in tito/tasks.py; `doit list` shows them."""

from tito.tasks import *  # noqa: F401,F403  (task_* functions and DOIT_CONFIG)
