"""Builds killed at random moments (SIGKILL or Ctrl-C) are followed by a build that ends exactly where a
clean build ends, and then by a no-op. See stress_kills.py for the procedure; the default suite runs 3
kills, `TITO_STRESS_KILLS=20` (or `python tests/tito/stress_kills.py`) the full 20."""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from stress_kills import DEFAULT_SEED, run  # noqa: E402


def test_builds_killed_at_random_moments_are_followed_by_a_clean_result(tmp_path):
    kills = int(os.environ.get("TITO_STRESS_KILLS", "3"))
    seed = int(os.environ.get("TITO_STRESS_SEED", str(DEFAULT_SEED)))
    run(tmp_path, seed, kills, log=lambda *_: None)


if __name__ == "__main__":
    import pytest

    sys.exit(pytest.main([__file__, "-q"]))
