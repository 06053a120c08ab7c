"""Fixtures for the estimator tests."""

from __future__ import annotations

import sys
from pathlib import Path

# The tests import the plain reference of Algorithm 1 (``_estimators_reference``)
# from this folder whatever pytest's import mode.
if str(Path(__file__).parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).parent))
