"""Late submissions: deadlines, the none / zero / N%-per-day policies, timestamp.txt or the file's time,
and what the gradebook, the JSON and the `tito grade` command show."""

import csv
import json
import os
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import jupytext
import nbformat
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_grade import ADD, make_project, make_student, release_of  # noqa: E402
from treebuilder import REPO  # noqa: E402

from tito.cli import main as tito  # noqa: E402
from tito.teaching.grade import grade  # noqa: E402
from tito.teaching.late import LateError, LatePolicy, parse_time, submission_time  # noqa: E402

UTC = timezone.utc
DEADLINE = "2026-03-01T23:59:00+00:00"


def at(text):
    return parse_time(text, UTC)


@pytest.mark.parametrize("text, expected", [
    ("2026-03-01T23:59", datetime(2026, 3, 1, 23, 59, tzinfo=UTC)),
    ("2026-03-01 23:59:07.123456 UTC", datetime(2026, 3, 1, 23, 59, 7, 123456, tzinfo=UTC)),
    ("2026-03-01T23:59:00Z", datetime(2026, 3, 1, 23, 59, tzinfo=UTC)),
    ("2026-03-02T00:59:00+01:00", datetime(2026, 3, 1, 23, 59, tzinfo=UTC)),
    ("2026-03-01 18:59:00 America/New_York", datetime(2026, 3, 1, 23, 59, tzinfo=UTC)),
])
def test_times_in_every_form_nbgrader_and_iso_write(text, expected):
    assert at(text) == expected


def test_bad_times_and_policies_say_what_is_expected():
    with pytest.raises(LateError, match="ISO 8601"):
        parse_time("next tuesday")
    with pytest.raises(LateError, match="unknown time zone"):
        parse_time("2026-03-01 10:00 Mars/Olympus")
    with pytest.raises(LateError, match="none, zero, or a percentage"):
        LatePolicy.parse(DEADLINE, "lenient")
    with pytest.raises(LateError, match="between 0 and 100"):
        LatePolicy.parse(DEADLINE, "150%")


@pytest.mark.parametrize("policy, submitted, days, penalty", [
    ("none", "2026-03-05T12:00:00+00:00", 4, 0),
    ("zero", "2026-03-01T23:59:00+00:00", 0, 0),  # exactly on the deadline is on time
    ("zero", "2026-03-02T00:00:01+00:00", 1, 40),
    ("10%", "2026-03-02T00:00:01+00:00", 1, 4),  # a started day counts as a day
    ("10%/day", "2026-03-03T23:59:00+00:00", 2, 8),
    ("10% per day", "2026-03-03T23:59:01+00:00", 3, 12),
    ("25%", "2026-03-20T00:00:00+00:00", 19, 40),  # never below zero
    ("10%", "2026-02-20T00:00:00+00:00", 0, 0),
])
def test_policies(policy, submitted, days, penalty):
    info = LatePolicy.parse(DEADLINE, policy).apply(40, at(submitted), "timestamp.txt")
    assert (info.days_late, info.penalty) == (days, penalty)


def test_submission_time_comes_from_timestamp_txt_else_the_file(tmp_path):
    notebook = tmp_path / "alice" / "ps1" / "calc.ipynb"
    notebook.parent.mkdir(parents=True)
    notebook.write_text("{}")
    moment = datetime(2026, 3, 2, 12, 0, tzinfo=UTC).timestamp()
    os.utime(notebook, (moment, moment))
    assert submission_time(notebook) == (datetime(2026, 3, 2, 12, 0, tzinfo=UTC), "file modification time")
    (notebook.parent / "timestamp.txt").write_text("2026-03-01 10:00:00.5 UTC\n")
    assert submission_time(notebook) == (datetime(2026, 3, 1, 10, 0, 0, 500000, tzinfo=UTC), "timestamp.txt")
    (notebook.parent / "timestamp.txt").write_text("garbage")
    when, source = submission_time(notebook)
    assert when == datetime(2026, 3, 2, 12, 0, tzinfo=UTC) and "timestamp.txt unreadable" in source


def test_the_gradebook_shows_raw_penalty_and_final(tmp_path):
    project = make_project(tmp_path / "project")
    release = release_of(project)
    on_time = make_student(release, tmp_path / "sub" / "ann", "calc")
    late = make_student(release, tmp_path / "sub" / "ben", "calc", add=ADD.replace("a + b", "a - b"))
    (on_time.parent / "timestamp.txt").write_text("2026-03-01 12:00:00 UTC")
    (late.parent / "timestamp.txt").write_text("2026-03-02 12:00:00 UTC")
    gradebook = tmp_path / "gradebook.csv"
    results = grade(project, "02_calc", [on_time, late], jobs=2, timeout=60, gradebook=gradebook,
                    late=LatePolicy.parse(DEADLINE, "50%"), log=lambda message: None)
    assert [(r.total, r.penalty, r.final) for r in results] == [(6, 0, 6), (3, 1.5, 1.5)]
    totals = [r for r in csv.DictReader(gradebook.open()) if r["grade_id"] == "TOTAL"]
    assert [(r["points"], r["days_late"], r["penalty"], r["final"]) for r in totals] == \
        [("6", "0", "0", "6"), ("3", "1", "1.5", "1.5")]
    assert totals[1]["submitted"] == "2026-03-02T12:00:00+00:00"


def test_tito_grade_with_deadline_feedback_and_json(tmp_path, capsys):
    module = REPO / "modules" / "source" / "01_tensor" / "tensor_dev.py"
    notebook = tmp_path / "sub" / "tensor.ipynb"
    notebook.parent.mkdir()
    nbformat.write(jupytext.read(module), notebook)
    week_ago = (datetime.now(UTC) - timedelta(days=7)).isoformat(timespec="minutes")
    code = tito(["grade", str(notebook), "--module", "01", "--json", "--gradebook", str(tmp_path / "book.csv"),
                 "--feedback", str(tmp_path / "pages"), "--deadline", week_ago, "--late-policy", "zero"])
    assert code == 0
    [data] = json.loads(capsys.readouterr().out)
    assert data["total"] == data["max_total"] > 0 and data["final"] == 0 and data["late"]["days_late"] >= 7
    assert (tmp_path / "pages" / "tensor.html").is_file()
    with pytest.raises(SystemExit, match="--late-policy needs --deadline"):
        tito(["grade", str(notebook), "--module", "01", "--late-policy", "zero"])


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
