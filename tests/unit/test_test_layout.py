"""The test tree itself: pytest's default import mode needs every test module basename unique."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent


def test_no_two_test_modules_share_a_basename() -> None:
    names = Counter(p.name for p in TESTS.rglob("*.py") if p.name != "__init__.py"
                    and p.name != "conftest.py")
    assert names and not [n for n, k in names.items() if k > 1]
