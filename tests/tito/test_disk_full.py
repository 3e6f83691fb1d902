"""A build that runs out of space says so, leaves no half-written file, and the next build (with space
back) ends exactly where a clean build ends.

Two ways to run out: a small tmpfs filled up (needs root and a kernel that allows the mount; skipped
with the reason otherwise), and a file-size limit (RLIMIT_FSIZE, `ulimit -f`) on the doit process,
which works everywhere: writes past the limit fail with EFBIG, as they fail with ENOSPC on a full disk.
"""

import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from treebuilder import MODULES, Result, Tree  # noqa: E402

OUT_OF_SPACE = "out of space"


def _edit_every_module(tree) -> None:
    """A change to the exported code of every module: every export and notebook must be rewritten."""
    for key in MODULES:
        name = key.split("_", 1)[1]
        tree.replace(tree.dev(key), f"def {name}_value():", f"# edited while the disk was full\ndef {name}_value():")


def _clean_build(tmp_path, *args: str) -> Tree:
    clean = Tree.create(tmp_path / "clean")
    _edit_every_module(clean)
    result = clean.doit(*args)
    assert result.code == 0, result.output
    return clean


def _tool_traceback(output: str) -> list[str]:
    """Frames of a traceback from doit or tito themselves (a failing program's own output may hold one:
    memray's, say, shown as the tail of its output, which is fine)."""
    return [line for line in output.splitlines()
            if line.strip().startswith('File "') and ("/doit/" in line or "/tito/" in line)]


def _assert_nothing_half_written(tree, old: dict, new: dict) -> None:
    for path, data in tree.outputs().items():
        assert data in (old.get(path), new.get(path)), f"{path} is neither the old file nor the new one"
    assert tree.leftovers() == []


@pytest.fixture
def small_disk(tmp_path):
    """A 48 MB tmpfs (a fixture build with its memory reports takes about 30 MB)."""
    folder = tmp_path / "disk"
    folder.mkdir()
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a tmpfs needs root; test_a_file_size_limit_* covers the same ground")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(folder)],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stdout.strip()}); test_a_file_size_limit_* covers it")
    yield folder
    subprocess.run(["umount", "-l", str(folder)], check=False)


def _fill(folder: Path, leave: int) -> Path:
    """Fill the file system of `folder` up, then free `leave` bytes; returns the filler file."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        for chunk in (2**20, 2**12, 1):
            block = b"\0" * chunk
            try:
                while True:
                    os.write(fd, block)
            except OSError:
                pass
    finally:
        os.close(fd)
    if leave:
        os.truncate(filler, filler.stat().st_size - leave)
    return filler


@pytest.mark.parametrize("room", [0, 256 * 1024], ids=["no-room", "room-for-a-few-files"])
def test_a_full_disk_fails_clearly_and_the_next_build_is_a_clean_one(tmp_path, small_disk, room):
    tree = Tree.create(small_disk / "project")
    assert tree.doit().code == 0
    old = tree.outputs()
    clean = _clean_build(tmp_path)
    _edit_every_module(tree)

    filler = _fill(small_disk, room)
    full = tree.doit("--continue")
    assert full.code != 0
    assert OUT_OF_SPACE in full.output.lower(), full.output
    assert _tool_traceback(full.output) == [], full.output
    _assert_nothing_half_written(tree, old, clean.outputs())

    filler.unlink()  # space comes back
    again = tree.doit()
    assert again.code == 0, again.output
    assert tree.outputs() == clean.outputs()
    assert tree.report_view() == clean.report_view()
    assert tree.leftovers() == []
    assert tree.doit().executed == set()


def _doit_with_file_size_limit(tree, limit: int, *args: str) -> Result:
    def limit_file_size():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    done = subprocess.run([sys.executable, "-m", "doit", *args], cwd=tree.root, env=tree.env(),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300,
                          preexec_fn=limit_file_size)
    return Result(done.returncode, done.stdout)


def test_a_file_size_limit_fails_clearly_and_the_next_build_is_a_clean_one(tmp_path, tree):
    # Exports (about 400 bytes) fit under 1000 bytes; release notebooks (about 2.3 KB) and the database do not.
    assert tree.doit("export", "release").code == 0
    old = tree.outputs()
    clean = _clean_build(tmp_path, "export", "release")
    _edit_every_module(tree)

    limited = _doit_with_file_size_limit(tree, 1000, "--continue", "export", "release")
    assert limited.code != 0
    assert OUT_OF_SPACE in limited.output.lower() and "could not be written" in limited.output, limited.output
    assert "modules/release/01_base/base.ipynb could not be written" in limited.output
    assert _tool_traceback(limited.output) == [], limited.output
    _assert_nothing_half_written(tree, old, clean.outputs())

    again = tree.doit("export", "release")
    assert again.code == 0, again.output
    assert tree.outputs() == clean.outputs()
    assert tree.doit("export", "release").executed == set()


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
