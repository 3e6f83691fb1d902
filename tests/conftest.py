"""Progressive tests import the lower modules' contract checks from tests/support/ by name.

The build graph follows those imports too (tito.model.scan.scan_support_imports): a contract file is an
input of every integrate task that uses it, and the modules it imports are reached through it.
"""

import sys
from pathlib import Path

SUPPORT = Path(__file__).resolve().parent / "support"
if str(SUPPORT) not in sys.path:
    sys.path.insert(0, str(SUPPORT))
