"""Coverage-guided fuzzing of eligibility's input paths with atheris (libFuzzer), outside CI.

Usage (see fuzz/README.md):

    .venv/bin/pip install atheris                      # or: pip install -e '.[fuzz]'
    .venv/bin/python fuzz/fuzz_eligibility.py TARGET [libFuzzer options] [CORPUS_DIR ...]
    .venv/bin/python fuzz/fuzz_eligibility.py --seed DIR   # write a starting corpus per target under DIR

TARGET is one of:
    text       bytes -> UTF-8 text -> split_items / compile_trial: count in == count out, rule-file round trip
    file       bytes -> a trial file (criteria text, registry record or rule file) -> load_trial -> screen
    record     bytes -> a patient record file -> load_patient -> screen against every seed rule file
    rule       bytes -> rule-file text -> load_rule_text -> screen
    plausible  bytes -> an implausible measurement and a threshold criterion -> never "pass"

Any exception that is not an ``EligibilityError`` is a finding (libFuzzer writes the input to
crash-*); so is a failed property (AssertionError) and an input slower than -timeout.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import sys
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path

import atheris

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

with atheris.instrument_imports(include=["eligibility"]):
    import eligibility
    from eligibility import EligibilityError, Patient, Trial, compile_trial, screen, split_items
    from eligibility.errors import CriteriaTextError
    from eligibility.predicates import Comparison, Range
    from eligibility.trial import Criterion, load_rule_text
    from eligibility.vocabulary import vocabulary

AS_OF = dt.date(2026, 1, 15)
TRIALS = [eligibility.load_trial(path) for path in sorted((REPO / "rules").glob("NCT*.yaml"))]
GOOD_PATIENT = eligibility.load_patient(REPO / "tests" / "bad_input" / "patient.json")
VOCAB = vocabulary()
MEASURED = sorted(v.id for v in VOCAB.variables.values() if v.is_measured and v.plausible is not None and v.unit)
SCRATCH = Path(tempfile.mkdtemp(prefix="eligibility-fuzz-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None))


def check_report(trial: Trial, patient: Patient) -> None:
    report = screen(trial, patient, AS_OF)
    assert len(report.criteria) == len(trial.criteria), "a criterion was lost in screening"
    assert all(c.verdict in ("pass", "fail", "unknown") for c in report.criteria)


def fuzz_text(data: bytes) -> None:
    text = atheris.FuzzedDataProvider(data).ConsumeUnicodeNoSurrogates(len(data))
    try:
        items = split_items(text)
        trial = compile_trial(text)  # headings without criteria are an error too
    except CriteriaTextError:
        return
    assert [c.text for c in trial.criteria] == [i.text for i in items], "count in != count out"
    if trial.criteria:
        assert load_rule_text(trial.to_rule_file("json"), "fuzz.json") == trial, "JSON rule file round trip"
        assert load_rule_text(trial.to_rule_file("yaml"), "fuzz.yaml") == trial, "YAML rule file round trip"


def fuzz_file(data: bytes) -> None:
    path = SCRATCH / "trial"
    path.write_bytes(data)
    try:
        trial = eligibility.load_trial(path)
    except EligibilityError:
        return
    check_report(trial, GOOD_PATIENT)


def fuzz_record(data: bytes) -> None:
    path = SCRATCH / "patient.json"
    path.write_bytes(data)
    try:
        patient = eligibility.load_patient(path)
    except EligibilityError:
        return
    for trial in TRIALS:
        check_report(trial, patient)


def fuzz_rule(data: bytes) -> None:
    try:
        text = data.decode("utf-8")
        trial = load_rule_text(text, "fuzz.yaml")
    except (UnicodeDecodeError, EligibilityError):
        return
    check_report(trial, GOOD_PATIENT)


def fuzz_plausible(data: bytes) -> None:
    provider = atheris.FuzzedDataProvider(data)
    variable = VOCAB[MEASURED[provider.ConsumeIntInRange(0, len(MEASURED) - 1)]]
    bounds = variable.plausible
    assert bounds is not None and bounds.low is not None and bounds.high is not None
    outside = abs(provider.ConsumeRegularFloat()) or 1e-3
    value = bounds.low - outside if provider.ConsumeBool() else bounds.high + outside
    threshold, other = provider.ConsumeRegularFloat(), provider.ConsumeRegularFloat()
    unit = str(variable.unit)
    if provider.ConsumeBool():
        predicate: Comparison | Range = Comparison(variable=variable.id, op=provider.PickValueInList(["lt", "le", "gt", "ge", "eq"]),
                                                   value=threshold, unit=unit)
    else:
        predicate = Range(variable=variable.id, low=min(threshold, other), high=max(threshold, other), unit=unit)
    kind = provider.PickValueInList(["inclusion", "exclusion"])
    trial = Trial(trial="F", criteria=(Criterion(id="C1", kind=kind, text="-", compiled=True, predicate=predicate),))
    try:
        patient = Patient.model_validate({"id": "P", "age": 50, "sex": "male", "observations": [
            {"name": variable.label, "value": value, "unit": unit, "date": "2026-01-10"}]})
    except Exception:  # a value pydantic refuses (inf) is not the property under test
        return
    verdict = screen(trial, patient, AS_OF).criteria[0].verdict
    assert verdict == "unknown", f"implausible {variable.id} {value} {unit}: {verdict}"


TARGETS: dict[str, Callable[[bytes], None]] = {
    "text": fuzz_text, "file": fuzz_file, "record": fuzz_record, "rule": fuzz_rule, "plausible": fuzz_plausible,
}


# Bugs already reported (strict xfails in tests/), skipped so that a run goes on to find new ones;
# FUZZ_STRICT=1 stops on them too. (function in the traceback, exception type)
KNOWN_BUGS: list[tuple[str, str]] = [
    # none open: the registry-record type errors this harness met first were fixed in compiler.py
    # (commit c0584d1); an entry looks like ("compile_registry_record", "AttributeError")
]
known_seen: dict[tuple[str, str], int] = {}


def known_bug(error: BaseException) -> tuple[str, str] | None:
    functions = {frame.name for frame in traceback.extract_tb(error.__traceback__)}
    for function, kind in KNOWN_BUGS:
        if function in functions and type(error).__name__ == kind:
            return function, kind
    return None


def guarded(target: Callable[[bytes], None]) -> Callable[[bytes], None]:
    """Our own errors are the expected outcome of bad input; anything else propagates to libFuzzer."""
    strict = os.environ.get("FUZZ_STRICT") == "1"

    def run(data: bytes) -> None:
        try:
            target(data)
        except EligibilityError:
            pass
        except Exception as error:
            signature = None if strict else known_bug(error)
            if signature is None:
                raise
            if signature not in known_seen:
                print(f"known bug, skipped: {signature[1]} in {signature[0]} (FUZZ_STRICT=1 stops on it)", file=sys.stderr)
            known_seen[signature] = known_seen.get(signature, 0) + 1

    return run


def write_seed_corpus(root: Path) -> None:
    """Starting inputs per target: the seed rule files, example records, catalogue cases and seed pages."""
    catalogue = REPO / "tests" / "bad_input"
    seeds = REPO.parent / "shared" / "seeds"
    sources = {
        "text": [*catalogue.glob("trial/*.txt"), *(seeds.glob("*.txt") if seeds.is_dir() else [])],
        "file": [*catalogue.glob("trial/*"), *catalogue.glob("rule/*"), *(REPO / "rules").glob("NCT*.yaml"),
                 *(seeds.glob("*.txt") if seeds.is_dir() else [])],
        "record": [*catalogue.glob("patient/*.json"), *(REPO / "examples").glob("*.json")],
        "rule": [*catalogue.glob("rule/*"), *(REPO / "rules").glob("*.yaml")],
        "plausible": [],
    }
    for target, paths in sources.items():
        folder = root / target
        folder.mkdir(parents=True, exist_ok=True)
        for path in paths:
            if path.stat().st_size < 200_000:
                shutil.copy(path, folder / f"{path.parent.name}-{path.name}")
        if target == "plausible":
            for index in range(8):
                (folder / f"seed-{index}").write_bytes(bytes(range(index, index + 64)))
    print(f"wrote seed corpora under {root}: {', '.join(sorted(sources))}")


def main() -> None:
    if len(sys.argv) >= 3 and sys.argv[1] == "--seed":
        write_seed_corpus(Path(sys.argv[2]))
        return
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        sys.exit(f"usage: {sys.argv[0]} {{{','.join(TARGETS)}}} [libFuzzer options] [CORPUS_DIR ...]  |  --seed DIR")
    target = TARGETS[sys.argv.pop(1)]
    atheris.Setup(sys.argv, guarded(target))
    atheris.Fuzz()


if __name__ == "__main__":
    main()
