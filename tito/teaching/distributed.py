"""Grading at class scale on Dask: one task per notebook on a `dask.distributed` cluster.

    tito grade submitted/*/ps4/*.ipynb --module 04_layers --scheduler tcp://10.0.0.5:8786
    tito grade submitted/*/ps4/*.ipynb --module 04_layers --cluster local:8

The client (the machine `tito grade` runs on) reads the dev file and the lower modules' exports once
into a `Reference` (no path into the repository: workers need not have the course checkout), reads
every notebook (capped at 20 MB), and sends them; each worker runs
`tito.teaching.grade.grade_submission` exactly as `--jobs` does on one machine: a sandbox per
notebook (bubblewrap where the worker can run it), the same limits. Workers therefore need the same
Python with tinytorch and tito installed (`pip install -e ".[grading]"` in the same environment) and,
for the operating-system sandbox, bubblewrap; nothing else.

Only the client writes the gradebook and the feedback pages. A worker that dies mid-grade loses
nothing: the scheduler runs its tasks again on another worker (up to its `allowed-failures`, after
which that notebook is reported as not graded, with the reason), and results are keyed by
notebook, so every notebook appears exactly once, in the order given.

Dask is optional (`pip install -e ".[grading]"`); local grading never imports it.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import secrets
from collections.abc import Callable
from pathlib import Path

INSTALL_HINT = 'Dask grading needs dask.distributed: `pip install -e ".[grading]"` (on the client and every worker)'


class DaskError(Exception):
    """Dask grading cannot start: Dask missing, a bad --cluster, an unreachable scheduler."""


def parse_cluster(spec: str) -> int:
    """Workers of `--cluster local:N` (`local` alone: one per CPU)."""
    kind, _, count = spec.partition(":")
    if kind != "local":
        raise DaskError(f"--cluster {spec!r}: only local:N is understood here; for an existing cluster "
                           "(Slurm, Kubernetes, SSH) start its scheduler and pass --scheduler ADDRESS")
    if not count:
        return os.cpu_count() or 1
    if not count.isdigit() or int(count) < 1:
        raise DaskError(f"--cluster {spec!r}: N must be a positive number of workers")
    return int(count)


def grade_on_dask(reference, paths: list[Path], options, task: Callable, read: Callable, not_graded: Callable,
                  scheduler: str | None = None, cluster: str | None = None, progress: Callable | None = None,
                  log: Callable[[str], None] | None = None) -> list:
    """Grade `paths` on a Dask cluster: an existing one (`scheduler` address) or `cluster="local:N"`.

    `task(reference, name, data, options, problem)` grades one notebook on a worker (it must be
    importable there: tito.teaching.grade.grade_submission); `read(path)` reads a notebook on the
    client as (data, problem); `not_graded(reason)` is the result of a notebook whose task failed.
    """
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise DaskError(INSTALL_HINT) from None
    log = log or (lambda message: None)
    workers = parse_cluster(cluster) if cluster else 0
    submissions = [read(path) for path in paths]
    payload = dataclasses.replace(reference, root=None)  # the workers need no path of ours

    local = None
    if cluster:
        import dask

        # Grading tasks wait on a sandboxed child, which has its own memory limit: the workers' statistical
        # profiler (a stack sample every 10 ms) and memory monitor would only take CPU from the children.
        with dask.config.set({"distributed.worker.profile.enabled": False,
                              "distributed.admin.system-monitor.interval": "2s"}):
            local = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                                 dashboard_address=None, silence_logs=logging.ERROR, memory_limit=0)
        client = Client(local)
        log(f"tito grade: a local Dask cluster of {workers} worker processes at {local.scheduler_address}")
    else:
        try:
            client = Client(scheduler, timeout="30s")
        except OSError as error:
            raise DaskError(f"cannot reach the Dask scheduler at {scheduler}: {error}") from None
    results: list = [None] * len(paths)
    try:
        shared = client.scatter(payload, broadcast=True, hash=False)
        run = secrets.token_hex(4)
        futures = {}
        for index, (path, (data, problem)) in enumerate(zip(paths, submissions)):
            future = client.submit(task, shared, path.name, data, options, problem,
                                   key=f"tito-grade-{run}-{index}", pure=False)
            futures[future] = index
        done = 0
        for future in as_completed(futures):
            index = futures[future]
            if results[index] is not None:  # never twice, whatever the scheduler does
                continue
            try:
                result = future.result()
            except Exception as error:  # KilledWorker after repeated worker deaths, a worker's own failure
                result = not_graded(f"the Dask worker grading it failed: {type(error).__name__}: {error}")
            result.notebook = paths[index]
            results[index] = result
            done += 1
            if progress is not None:
                progress(done, len(paths), result)
    finally:
        client.close()
        if local is not None:
            local.close()
    return results  # type: ignore[return-value]
