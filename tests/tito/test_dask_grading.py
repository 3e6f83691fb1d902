"""Grading on Dask: `--cluster local:2` gives the same results as `--jobs 2`, even when a worker is killed
in the middle; every notebook appears exactly once, and only the client writes the gradebook."""

import csv
import os
import signal
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("distributed", reason='Dask is an optional extra: pip install -e ".[grading]"')

sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_grade import ADD, SCALER, make_project, make_student, release_of  # noqa: E402

from tito.teaching.grade import GradingError, grade  # noqa: E402

QUIET = {"log": lambda message: None}
SLOW = ""  # each notebook takes about half a second in its sandbox: a killed worker is mid-grade


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return make_project(tmp_path_factory.mktemp("dask") / "project")


@pytest.fixture(scope="module")
def notebooks(project, tmp_path_factory):
    release = release_of(project)
    folder = tmp_path_factory.mktemp("submissions")
    made = []
    for index in range(50):
        kind = index % 5
        add = ADD.replace("a + b", "a - b") if kind == 1 else ADD
        scaler = SCALER.replace("* self.factor", "") if kind == 2 else SCALER
        analysis = SLOW + ("raise ValueError('analysis failed')\n" if kind == 3 else "")
        made.append(make_student(release, folder / f"s{index:02d}", f"student{index:02d}", add=add, scaler=scaler,
                                 calc_analysis=analysis, drop=("test-add-arrays",) if kind == 4 else ()))
    return made


def summary(results):
    return [(str(r.notebook), r.total, r.max_total, [(c.grade_id, c.points, c.status, c.reason) for c in r.cells],
             r.notes) for r in results]


def children(of: int) -> list[int]:
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                stat = Path(f"/proc/{pid}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == of:
                found.append(int(pid))
    return found


def child_workers() -> list[int]:
    """Dask worker processes started by this process (LocalCluster's nannies spawn them)."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == os.getpid() and b"spawn_main" in command:  # not the resource tracker
            found.append(int(pid))
    return found


def test_local_cluster_matches_jobs_even_when_a_worker_dies(project, notebooks, tmp_path):
    expected = grade(project, "02_calc", notebooks, jobs=2, timeout=60, **QUIET)
    killed = []

    def kill_one_worker(done, total, result):
        if done == 10 and not killed:
            deadline = time.time() + 10
            while time.time() < deadline:  # a worker that is grading right now: it has a sandbox child
                busy = [pid for pid in child_workers() if children(pid)]
                if busy:
                    os.kill(busy[0], signal.SIGKILL)
                    killed.append(busy[0])
                    return
                time.sleep(0.01)

    gradebook = tmp_path / "gradebook.csv"
    start = time.perf_counter()
    results = grade(project, "02_calc", notebooks, cluster="local:2", timeout=60, gradebook=gradebook,
                    progress=kill_one_worker, **QUIET)
    assert killed, "the worker was never killed"
    assert time.perf_counter() - start < 120
    assert summary(results) == summary(expected)
    assert [r.notebook for r in results] == notebooks
    assert sorted({r.total for r in results}) == [3, 5, 6]
    rows = list(csv.DictReader(gradebook.open()))
    totals = [r["notebook"] for r in rows if r["grade_id"] == "TOTAL"]
    assert totals == [str(n) for n in notebooks]  # each notebook exactly once, in order


def test_a_scheduler_address_and_bad_specs(project, notebooks):
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        results = grade(project, "02_calc", notebooks[:3], scheduler=cluster.scheduler_address, timeout=60, **QUIET)
    assert [r.total for r in results] == [6, 3, 3]
    with pytest.raises(GradingError, match="only local:N"):
        grade(project, "02_calc", notebooks[:1], cluster="slurm:4", **QUIET)


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
