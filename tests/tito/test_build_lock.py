"""One build at a time per checkout: a second build waits for the first, then finds its work done.

Editors run `doit test:NN` on save, the root conftest runs `doit export`, a learner runs `tito module
complete` during a full build: without the lock both builds ran the same tasks and then broke each
other's temporary files. These tests start real doit processes on a fixture tree.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from treebuilder import EXECUTED_RE, REPO  # noqa: E402

WAITING = "tito: waiting for the build already running in this checkout"


def _executed(output: str) -> set[str]:
    return set(EXECUTED_RE.findall(output))


def _wait_for_line(process, needle: str, seconds: float = 120) -> str:
    deadline = time.time() + seconds
    seen = ""
    while time.time() < deadline:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            break
        seen += line
        if needle in line:
            return seen
    raise AssertionError(f"{needle!r} never appeared:\n{seen}")


def _slow_top_tests(tree, seconds: int) -> None:
    tree.replace("modules/source/03_top/test_top_core.py", "def test_top_positive():",
                 f"import time\n\n\ndef test_top_positive():\n    time.sleep({seconds})")


def _stop(process) -> None:
    """Kill a background build and everything it started (its own process group)."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.communicate()


def test_two_builds_started_together_run_each_task_once(built):
    built.replace(built.dev("02_mid"), "return base_value() + 1", "return base_value() + 2")
    first = built.popen_doit()
    time.sleep(0.5)  # two terminals, half a second apart
    second = built.popen_doit()
    out_first, _ = first.communicate(timeout=300)
    out_second, _ = second.communicate(timeout=300)

    assert first.returncode == 0, out_first
    assert second.returncode == 0, out_second
    ran_first, ran_second = _executed(out_first), _executed(out_second)
    assert ran_first & ran_second == set(), f"tasks ran twice: {sorted(ran_first & ran_second)}"
    assert {"export:02_mid", "test:02_mid", "test:03_top", "report"} <= ran_first | ran_second
    # Exactly one of them waited, said so once, and named the other one's PID.
    waited = [(out, other) for out, other in ((out_first, second), (out_second, first)) if WAITING in out]
    assert len(waited) == 1, (out_first, out_second)
    out, other = waited[0]
    assert out.count(WAITING) == 1 and f"PID {other.pid} (`doit`" in out, out
    assert built.doit().executed == set()


def test_a_bounded_wait_gives_up_with_a_message_and_read_only_commands_do_not_wait(built):
    _slow_top_tests(built, 60)
    holder = built.popen_doit("test:03_top", new_session=True)
    try:
        _wait_for_line(holder, "test:03_top")  # the holder has loaded the graph, so it holds the lock

        start = time.monotonic()
        bounded = built.doit("export", TITO_LOCK_TIMEOUT="1")
        assert bounded.code == 75, bounded.output
        assert time.monotonic() - start < 15
        assert f"PID {holder.pid}" in bounded.output and "`doit test:03_top`" in bounded.output
        assert "gave up after 1 s" in bounded.output and "nothing ran" in bounded.output
        assert bounded.executed == set() and "Traceback" not in bounded.output

        at_once = built.doit("export", TITO_LOCK_TIMEOUT="0")
        assert at_once.code == 75 and "another build is running in this checkout" in at_once.output

        # tito runs doit, so it waits (or gives up) the same way and passes the exit code through.
        tito = subprocess.run([sys.executable, "-m", "tito.cli", "module", "export", "01_base"], cwd=built.root,
                              env=built.env(TITO_LOCK_TIMEOUT="0"), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=60)
        assert tito.returncode == 75, tito.stdout

        # Read-only commands neither wait nor fail (a wait would hit the 30 s timeout).
        listing = built.doit("list", timeout=30)
        assert listing.code == 0 and "export" in listing.output, listing.output
        status = subprocess.run([sys.executable, "-m", "tito.cli", "module", "status"], cwd=built.root,
                                env=built.env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                timeout=30)
        assert status.returncode == 0 and "03_top" in status.stdout, status.stdout
        assert holder.poll() is None  # all of this happened while the holder was still running
    finally:
        _stop(holder)


def test_a_killed_build_leaves_no_stale_lock(built):
    _slow_top_tests(built, 60)
    holder = built.popen_doit("test:03_top", new_session=True)
    try:
        _wait_for_line(holder, "test:03_top")
        holder.send_signal(signal.SIGKILL)  # doit alone: its pytest child lives on, orphaned
        holder.wait(timeout=30)
        built.replace("modules/source/03_top/test_top_core.py", "time.sleep(60)", "time.sleep(0)")

        start = time.monotonic()
        after = built.doit(TITO_LOCK_TIMEOUT="0")  # no waiting allowed: the lock must be free
        assert after.code == 0, after.output
        assert WAITING not in after.output and "another build is running" not in after.output
        assert "test:03_top" in after.executed
        assert time.monotonic() - start < 60  # did not wait for the orphaned 60 s test
    finally:
        _stop(holder)


def test_parallel_workers_do_not_wait_for_their_own_build(built):
    # doit -n 2 starts workers while the main process holds the lock; they must not take it again.
    built.replace(built.dev("01_base"), "return 1", "return 2")
    done = built.doit("-n", "2", TITO_LOCK_TIMEOUT="0", timeout=300)
    assert done.code == 0, done.output
    assert "another build is running" not in done.output
    assert built.doit().executed == set()


def test_which_doit_commands_take_the_lock():
    sys.path.insert(0, str(REPO))
    from tito.steps.lock import doit_command_name, is_read_only

    assert doit_command_name([]) == "run"
    assert doit_command_name(["-f", "/x/dodo.py", "export", "orphans"]) == "run"
    assert doit_command_name(["-n", "2"]) == "run"
    assert doit_command_name(["list", "--all"]) == "list"
    assert doit_command_name(["-f", "dodo.py", "info", "export:01_base"]) == "info"
    assert doit_command_name(["--file=dodo.py", "-k", "dumpdb"]) == "dumpdb"
    assert doit_command_name(["x=1", "forget", "export"]) == "forget"
    assert is_read_only(["list"]) and is_read_only(["help", "run"]) and is_read_only(["info", "x"])
    for command in ([], ["export"], ["clean"], ["forget"], ["ignore", "x"], ["reset-dep"], ["strace", "x"]):
        assert not is_read_only(command), command


if __name__ == "__main__":
    import pytest

    sys.exit(pytest.main([__file__, "-q"]))
