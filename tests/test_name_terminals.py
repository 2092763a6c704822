"""The vocabulary's names as grammar terminals: each name is read whole, in every run."""

from __future__ import annotations

import re
import subprocess
import sys

from eligibility.grammar import _alternation
from eligibility.vocabulary import vocabulary


def test_every_vocabulary_name_is_matched_whole() -> None:
    """A name never loses to a shorter name sharing its start ("ALSFRS-R total score" is not "ALSFRS-R")."""
    names = [n for n in vocabulary().names() if len(n) >= 2 and not n.isdigit()]
    pattern = re.compile(r"(?<![\w])(?:" + _alternation(names) + r")(?![\w])", re.IGNORECASE)
    cut = [name for name in names if (m := pattern.match(name)) is None or m.end() != len(name)]
    assert cut == []


def test_the_name_pattern_is_the_same_whatever_the_hash_seed() -> None:
    """Set order must not reach the grammar: compiled results would change from run to run."""
    script = ("from eligibility.grammar import _alternation; from eligibility.vocabulary import vocabulary; "
              "import hashlib; print(hashlib.sha256(_alternation(vocabulary().names()).encode()).hexdigest())")
    digests = {
        subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                       env={"PYTHONHASHSEED": seed, "PATH": ""}).stdout
        for seed in ("0", "1", "4")
    }
    assert len(digests) == 1
