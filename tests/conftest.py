import sys
from pathlib import Path

# the tests share helpers (common.py, reference.py) by plain import
_TESTS = str(Path(__file__).resolve().parent)
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)
