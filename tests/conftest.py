import os
import sys
from pathlib import Path

from hypothesis import HealthCheck, settings

# the tests share helpers (common.py, reference.py) by plain import
_TESTS = str(Path(__file__).resolve().parent)
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)

# Property tests: the same examples on every run by default (derandomized, no
# example database), so CI is reproducible. REGIONGEOM_FUZZ=1 selects a long
# randomised run that keeps its failures in .hypothesis/ for replay.
_COMMON = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True)
settings.register_profile("ci", max_examples=40, derandomize=True, database=None, **_COMMON)
settings.register_profile("fuzz", max_examples=2000, derandomize=False, **_COMMON)
settings.load_profile("fuzz" if os.environ.get("REGIONGEOM_FUZZ", "") not in ("", "0") else "ci")
