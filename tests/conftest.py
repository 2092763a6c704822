"""Shared test set-up: hypothesis profiles and the paths the tests read.

Hypothesis profiles: "ci" (the default: 50 examples, derandomized, so a run is repeatable)
and "long" (2000 examples), chosen with ``HYPOTHESIS_PROFILE=long``.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import settings

settings.register_profile("ci", max_examples=50, deadline=None, derandomize=True, print_blob=True)
settings.register_profile("long", parent=settings.get_profile("ci"), max_examples=2000, derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# The tests, and the CLI processes they start, keep the parser and trial caches in a directory of
# their own: never the user's ~/.cache/eligibility, and a clean clone's first run starts empty.
_TEST_CACHE = tempfile.mkdtemp(prefix="eligibility-test-cache-")
os.environ["XDG_CACHE_HOME"] = _TEST_CACHE
atexit.register(shutil.rmtree, _TEST_CACHE, ignore_errors=True)

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(__file__).resolve().parents[2] / "shared"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository checkout (holds eligibility/, rules/, grammars/)."""
    return REPO


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """/work/shared beside the repository (seeds, corpus, contract check); skip without it."""
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} is not present: the shared seeds/corpus/checks live beside the repository")
    return SHARED
