"""Late submissions: a deadline, a policy, and when each notebook was handed in.

The time a notebook was submitted comes from `timestamp.txt` in the same folder (nbgrader's
convention: `nbgrader collect` writes one per submission, e.g. `2026-03-01 23:59:07.123456 UTC`) or,
without one, from the notebook file's modification time. Policies:

    none       late submissions are marked late, without penalty
    zero       a late submission scores 0
    N%         N percent of the raw score off per day late, each started day counting as one
               (`10%` or `10%/day`); never below 0

The gradebook keeps the raw score and shows the penalty and the final score beside it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

TIMESTAMP_FILE = "timestamp.txt"
_PERCENT_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%?\s*(?:/\s*day|per\s+day)?\s*$", re.IGNORECASE)
_UTC_NAMES = {"UTC", "GMT", "Z"}


class LateError(ValueError):
    """A deadline or policy that cannot be understood; says what is expected."""


def parse_time(text: str, default_tz=None) -> datetime:
    """A timezone-aware time from ISO 8601 (`2026-03-01T23:59`, `2026-03-01 23:59:07+01:00`) or nbgrader's
    `2026-03-01 23:59:07.123456 UTC` / `... America/New_York`. A time without a zone is in `default_tz`
    (the grader's local zone when None)."""
    raw = text.strip()
    zone = None
    parts = raw.rsplit(" ", 1)
    if len(parts) == 2 and re.search(r"\d", parts[0]) and not re.search(r"\d", parts[1]):
        raw, name = parts
        if name.upper() in _UTC_NAMES:
            zone = timezone.utc
        else:
            try:
                from zoneinfo import ZoneInfo

                zone = ZoneInfo(name)
            except Exception:
                raise LateError(f"unknown time zone {name!r} in {text.strip()!r}") from None
    if raw.endswith(("Z", "z")):
        raw, zone = raw[:-1], timezone.utc
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise LateError(f"cannot read the time {text.strip()!r}: use ISO 8601, e.g. 2026-03-01T23:59 or "
                        "2026-03-01 23:59:00+01:00") from None
    if moment.tzinfo is None:
        if zone is not None:
            moment = moment.replace(tzinfo=zone)
        elif default_tz is not None:
            moment = moment.replace(tzinfo=default_tz)
        else:
            moment = moment.astimezone()  # the grader's local zone
    return moment


def submission_time(notebook: Path) -> tuple[datetime | None, str]:
    """(when the notebook was submitted, where that came from): timestamp.txt beside it, else the file's
    modification time; (None, why) when neither can be read."""
    stamp = Path(notebook).parent / TIMESTAMP_FILE
    if stamp.is_file():
        try:
            return parse_time(stamp.read_text(encoding="utf-8", errors="replace")[:200], timezone.utc), TIMESTAMP_FILE
        except LateError as error:
            problem = f"{TIMESTAMP_FILE} unreadable ({error})"
        except OSError as error:
            problem = f"{TIMESTAMP_FILE} unreadable ({error})"
    else:
        problem = ""
    try:
        mtime = Path(notebook).stat().st_mtime
    except OSError:
        return None, problem or "no timestamp.txt and the file cannot be read"
    source = "file modification time" + (f"; {problem}" if problem else "")
    return datetime.fromtimestamp(mtime, tz=timezone.utc), source


@dataclass(frozen=True)
class LateInfo:
    """What a deadline did to one notebook's score."""

    submitted: datetime | None
    source: str  # "timestamp.txt" or "file modification time"
    deadline: datetime
    days_late: int
    penalty: float
    policy: str

    @property
    def submitted_text(self) -> str:
        return self.submitted.isoformat(timespec="seconds") if self.submitted else ""

    def describe(self) -> str:
        if self.submitted is None:
            return f"submission time unknown ({self.source}): no penalty"
        if not self.days_late:
            return f"on time (submitted {self.submitted_text}, from {self.source})"
        return (f"submitted {self.submitted_text} (from {self.source}), {self.days_late} day(s) after the "
                f"deadline {self.deadline.isoformat(timespec='minutes')}; policy {self.policy}: "
                f"-{self.penalty:g} points")

    def as_dict(self) -> dict:
        return {"submitted": self.submitted_text, "source": self.source,
                "deadline": self.deadline.isoformat(timespec="seconds"), "days_late": self.days_late,
                "penalty": self.penalty, "policy": self.policy}


@dataclass(frozen=True)
class LatePolicy:
    deadline: datetime
    kind: str  # "none", "zero" or "percent"
    percent_per_day: float = 0.0

    @classmethod
    def parse(cls, deadline: str, policy: str = "none") -> LatePolicy:
        """From the command line: `--deadline 2026-03-01T23:59 --late-policy 10%`."""
        moment = parse_time(deadline)
        text = policy.strip().lower()
        if text in ("none", "zero"):
            return cls(moment, text)
        match = _PERCENT_RE.match(text)
        if not match:
            raise LateError(f"unknown late policy {policy!r}: use none, zero, or a percentage per day such as 10%")
        percent = float(match.group(1))
        if not 0 <= percent <= 100:
            raise LateError(f"late policy {policy!r}: the percentage must be between 0 and 100")
        return cls(moment, "percent", percent)

    def __str__(self) -> str:
        return f"{self.percent_per_day:g}% per day" if self.kind == "percent" else self.kind

    def days_late(self, submitted: datetime) -> int:
        """Started days after the deadline (0 when on time)."""
        late = submitted - self.deadline
        if late <= timedelta(0):
            return 0
        return math.ceil(late / timedelta(days=1))

    def apply(self, raw: float, submitted: datetime | None, source: str = "") -> LateInfo:
        if submitted is None:
            return LateInfo(None, source, self.deadline, 0, 0.0, str(self))
        days = self.days_late(submitted)
        if not days or self.kind == "none":
            penalty = 0.0
        elif self.kind == "zero":
            penalty = float(raw)
        else:
            penalty = round(min(float(raw), raw * self.percent_per_day * days / 100), 4)
        return LateInfo(submitted, source, self.deadline, days, penalty, str(self))
