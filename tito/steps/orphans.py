"""`orphans`: generated files whose module or example is gone (exports, notebooks, report folders).

Each kind says where its files live and which ones the current tree expects (tito.steps.generated.
Family); a file is an orphan when it records a hash of its kind (so the build wrote it) and nothing
expects it any more. Hand-written files record no hash and are never touched. The temporary files of a
killed build (named after a process that is gone) are removed here too.
"""

from __future__ import annotations

from pathlib import Path

from tito.steps.export import export_family
from tito.steps.generated import Family, orphans, remove_orphans, remove_temporaries, stale_temporaries
from tito.steps.memory import report_families
from tito.steps.notebooks import release_family


def families() -> list[Family]:
    return [export_family(), release_family(), *report_families()]


def orphan_files(root: str) -> list[Path]:
    return orphans(Path(root), families())


def no_orphans(root: str) -> bool:
    """doit `uptodate` for `orphans`: a no-op build stays a no-op."""
    return not orphan_files(root) and not stale_temporaries(Path(root))


def remove_orphan_files(root: str) -> None:
    """doit action for `orphans`."""
    remove_orphans(Path(root), orphan_files(root))
    remove_temporaries(Path(root), stale_temporaries(Path(root)))
