"""A dependency database that cannot be read is moved aside; the build starts afresh and is correct."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

DB = ".doit.sqlite3"
MOVED = "could not be read"


def _damage(tree, how: str) -> bytes:
    db = tree.root / DB
    data = db.read_bytes()
    if how == "cut short":
        damaged = data[: len(data) // 2]
    elif how == "not a database":
        damaged = b"this is not an SQLite file" * 100
    else:  # a page in the middle overwritten
        damaged = data[:4096] + b"\xff" * 4096 + data[8192:]
    db.write_bytes(damaged)
    return damaged


@pytest.mark.parametrize("how", ["cut short", "not a database", "overwritten page"])
def test_a_damaged_database_is_moved_aside_and_the_build_ends_as_a_clean_one(built, how):
    before = built.outputs()
    damaged = _damage(built, how)

    result = built.doit()
    assert result.code == 0, result.output
    assert "Traceback" not in result.output and "DatabaseException" not in result.output
    said = [line for line in result.output.splitlines() if MOVED in line]
    assert len(said) == 1, result.output  # one line says what happened
    backups = sorted(built.root.glob(f"{DB}.damaged-*"))
    assert len(backups) == 1 and backups[0].name in said[0]
    assert backups[0].read_bytes() == damaged  # kept as it was, for whoever wants to look at it
    assert built.outputs() == before  # outputs are checked by content: same bytes as before
    assert built.doit().executed == set()


def test_read_only_commands_work_with_a_damaged_database(built):
    _damage(built, "cut short")
    listing = built.doit("list")
    assert listing.code == 0, listing.output
    assert "export" in listing.output and "Traceback" not in listing.output
    info = built.doit("info", "export:01_base")  # exit 1 means "not up to date": the record was moved aside
    assert info.code in (0, 1) and "status" in info.output and "Traceback" not in info.output, info.output


def test_a_healthy_database_is_left_alone(built):
    db = built.root / DB
    inode = db.stat().st_ino
    result = built.doit()
    assert result.executed == set() and MOVED not in result.output
    assert not list(built.root.glob(f"{DB}.damaged-*"))
    assert db.stat().st_ino == inode  # the same file, not a new one


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
