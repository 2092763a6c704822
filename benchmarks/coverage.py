"""Coverage of real registry text: how much of ../shared/corpus/trials.jsonl the grammar compiles.

Usage: python benchmarks/coverage.py [--top 30] [--sample N]

Prints: share of all criteria compiled, share of criteria with a numeric threshold compiled,
items kept by the splitter (count in == count out on the raw text), criteria per second, and
the most frequent reasons criteria were left uncompiled. The corpus is not part of this
repository: it is read from ../shared/corpus/ beside the checkout.
"""

from __future__ import annotations

import argparse
import collections
import json
import random
import re
import sys
import time
from pathlib import Path

import eligibility
from eligibility.errors import CriteriaTextError

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "trials.jsonl"
# A criterion "has a numeric threshold" when a number stands next to a comparator, a range
# sign or a unit: the kind of criterion a screening engine must not leave to a person.
NUMERIC = re.compile(
    r"(≥|≤|>|<|=<|=>|≧|≦|\b(greater|more|less|fewer|lower|higher|at least|at most|up to|over|under|above|below|between|exceed\w*|minimum|maximum)\b)"
    r"[^.;]{0,40}?\d|\d\s*(-|–|~|to)\s*\d|\d\s*(%|mg|g/|mmol|µmol|umol|x\s*10|/mm|/µl|/ul|u/l|iu|x\s*uln|years?|months?|weeks?|days?)",
    re.IGNORECASE,
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--top", type=int, default=25, help="how many uncompiled phrasings to list")
    parser.add_argument("--sample", type=int, default=0, help="print N random compiled numeric criteria to review")
    args = parser.parse_args()
    if not CORPUS.exists():
        print(f"corpus not found at {CORPUS}: this benchmark needs ../shared/corpus/ beside the checkout")
        return 1
    trials = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]
    criteria = [(text, kind) for t in trials for kind in ("inclusion", "exclusion") for text in (t.get(kind) or [])]

    eligibility.compile_criterion("age 18 years or older", "inclusion")  # build the grammar once
    started = time.perf_counter()
    results = [(text, kind, *eligibility.compile_criterion(text, kind)) for text, kind in criteria]
    elapsed = time.perf_counter() - started

    compiled = sum(p is not None for _, _, p, _ in results)
    numeric = [(t, k, p, n) for t, k, p, n in results if NUMERIC.search(t)]
    numeric_compiled = sum(p is not None for _, _, p, _ in numeric)

    kept = split_ok = raw_total = 0
    for trial in trials:
        raw = trial.get("criteria_raw")
        if not raw:
            continue
        raw_total += 1
        try:
            items = eligibility.split_items(raw)
        except CriteriaTextError:
            continue
        split_ok += 1
        compiled_trial = eligibility.compile_trial(raw)
        kept += len(compiled_trial.criteria) == len(items)

    notes = collections.Counter(re.sub(r"'[^']*'", "'…'", n or "") for _, _, p, n in results if p is None)
    words = collections.Counter(
        m.group(1).lower() for _, _, p, n in numeric if p is None and n and (m := re.search(r"'([^']*)'", n))
    )
    print(f"corpus: {CORPUS} ({len(trials)} trials, {len(criteria)} criteria)")
    print(f"{'criteria compiled':<44} {compiled:>6}/{len(criteria):<6} {compiled / len(criteria):7.1%}")
    print(f"{'criteria with a numeric threshold compiled':<44} {numeric_compiled:>6}/{len(numeric):<6} {numeric_compiled / len(numeric):7.1%}")
    print(f"{'raw texts split (headings found)':<44} {split_ok:>6}/{raw_total:<6} {split_ok / max(raw_total, 1):7.1%}")
    print(f"{'trials with count in == count out':<44} {kept:>6}/{split_ok:<6} {kept / max(split_ok, 1):7.1%}")
    print(f"{'criteria compiled per second':<44} {len(criteria) / elapsed:>13,.0f}")
    print(f"\nmost frequent reasons left uncompiled:")
    for note, count in notes.most_common(8):
        print(f"  {count:>6}  {note}")
    print(f"\nwords that stopped numeric criteria most often:")
    for word, count in words.most_common(args.top):
        print(f"  {count:>6}  {word}")
    if args.sample:
        print(f"\n{args.sample} compiled numeric criteria to review (seeded):")
        chosen = random.Random(7).sample([r for r in numeric if r[2] is not None], args.sample)
        for text, kind, predicate, _ in chosen:
            print(f"- [{kind}] {text}\n    {eligibility.PredicateAdapter.dump_json(predicate, exclude_none=True).decode()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
