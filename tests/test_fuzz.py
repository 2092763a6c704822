"""Fuzzing, bounded for CI: the text pipeline, the record loader and the rule-file loader.

Properties checked on every generated input:
- only our own errors escape (``EligibilityError`` subclasses), never a bare exception;
- nothing is lost: as many criteria come out of a compile as items went in, in order, with
  their text; a rule file holds as many criteria as it lists;
- an implausible value never passes a criterion.

Hypothesis profiles (tests/conftest.py): "ci" by default; ``HYPOTHESIS_PROFILE=long`` runs 40x
more examples of each. The longer-running coverage-guided harness is fuzz/ (atheris).
The seed lines (/work/shared/seeds) and the corpus (/work/shared/corpus) are read when present;
the tests that need them skip otherwise.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import eligibility
from eligibility import (
    Comparison,
    CriteriaTextError,
    Criterion,
    EligibilityError,
    Patient,
    PatientRecordError,
    Range,
    RuleFileError,
    Trial,
    compile_criterion,
    compile_trial,
    screen,
    split_items,
)
from eligibility.patient import parse_json_text, patient_from_data
from eligibility.predicates import PredicateNode
from eligibility.trial import load_rule_text
from eligibility.vocabulary import vocabulary

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
AS_OF = dt.date(2026, 1, 15)
VOCAB = vocabulary()
SCALE = max(settings().max_examples // 50, 1)  # 1 in the "ci" profile, 40 in "long"


def examples(count: int, shrink: bool = True) -> settings:
    """``count`` examples in the CI profile, scaled up with the long profile (no shrinking for a known failure)."""
    phases = tuple(Phase) if shrink else (Phase.explicit, Phase.reuse, Phase.generate)
    return settings(max_examples=count * SCALE, phases=phases,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# --- generators -------------------------------------------------------------------------------------

HEADINGS = ["Inclusion Criteria:", "Exclusion Criteria:", "INCLUSION CRITERIA", "exclusion criteria", "[Inclusion Criteria]",
            "Inclusion and exclusion criteria", "Key Inclusion Criteria:", "Exclusion Criteria -", "Eligibility Criteria:"]
MARKERS = ["* ", "- ", "• ", "1. ", "2) ", "(3) ", "a. ", "ii) ", "  * ", "    - ", "\\- ", "10. "]
WORDS = ["serum creatinine", "creatinine", "ALT", "AST", "bilirubin", "x ULN", "times the upper limit of normal", "ALSFRS-R",
         "FVC", "% predicted", "age", "years", "months", "BMI", "kg/m2", "mg/dL", "µmol/L", "10^9/L", "pregnancy", "riluzole",
         "stroke", "within", "the past", "3 months", "not", "no", "except", "unless", "history of", "between", "and", "or",
         "to", "<", "<=", ">", ">=", "≥", "≤", "=", "~", "-", "(", ")", "[", "]", ":", ";", ",", ".", "2.0", "18", "75", "1.5",
         "0", "31", "46", "\\>=", "=\\<", "at least", "no more than", "greater than", "ECOG", "El Escorial", "probable"]
ODD = ["\x00", "\x07", "\x0b", "\x0c", "\x1b[31m", "\x7f", "\x85", "\u00a0", "\u200b", "\u2028", "\ufeff", "\r", "\t", "\ud800",
       "é", "²", "µ", "μ", "×", "−", "–", "'", '"', "\\", "/", "%", "{", "}", "*", "٣", "１", "Ⅳ", "🙂"]
TOKEN = st.one_of(st.sampled_from(WORDS), st.sampled_from(ODD), st.sampled_from(MARKERS), st.just(" "), st.just("\n"),
                  st.text(max_size=6))
CRITERION_TEXT = st.one_of(st.text(max_size=200), st.lists(TOKEN, max_size=25).map(" ".join),
                           st.lists(TOKEN, max_size=25).map("".join))
LINE = st.one_of(st.sampled_from(HEADINGS), st.tuples(st.sampled_from(MARKERS + [""]), CRITERION_TEXT).map("".join),
                 st.just(""), st.text(max_size=40))
CRITERIA_TEXT = st.one_of(st.text(max_size=300), st.lists(LINE, max_size=15).map("\n".join),
                          st.tuples(st.sampled_from(HEADINGS), st.lists(LINE, max_size=12)).map(lambda t: "\n".join([t[0], *t[1]])))


def seed_lines() -> list[str]:
    seeds = SHARED / "seeds"
    if not seeds.is_dir():
        return []
    return [line for path in sorted(seeds.glob("*.txt")) for line in path.read_text(encoding="utf-8").splitlines()
            if sum(char.isalpha() for char in line) >= 5]


SEED_LINES = seed_lines()
needs_seeds = pytest.mark.skipif(not SEED_LINES, reason=f"{SHARED / 'seeds'} is not present: the seed pages live beside the repository")


@st.composite
def mutated(draw: st.DrawFn, text: str, max_edits: int = 6) -> str:
    """``text`` after a few random edits: inserted, deleted, replaced or repeated characters and words."""
    for _ in range(draw(st.integers(0, max_edits))):
        position = draw(st.integers(0, len(text)))
        edit = draw(st.sampled_from(["insert", "delete", "replace", "repeat", "case", "digits"]))
        if edit == "insert":
            text = text[:position] + draw(TOKEN) + text[position:]
        elif edit == "delete":
            text = text[:position] + text[position + draw(st.integers(1, 8)):]
        elif edit == "replace" and position < len(text):
            text = text[:position] + draw(st.characters(exclude_categories=("Cs",))) + text[position + 1:]
        elif edit == "repeat":
            end = min(len(text), position + draw(st.integers(1, 20)))
            text = text[:end] + text[position:end] * draw(st.integers(1, 3)) + text[end:]
        elif edit == "case":
            text = text.swapcase()
        else:  # a number changed, at most 6 digits (longer ones: test_huge_numbers_in_text_...)
            text = text[:position] + draw(st.from_regex(r"\A[0-9]{1,6}(\.[0-9]{1,3})?\Z")) + text[position:]
    return text


# --- the text pipeline ------------------------------------------------------------------------------


def check_compiled(text: str) -> None:
    """split_items and compile_trial agree item for item (count in == count out), or both refuse the text."""
    try:
        items = split_items(text, source="fuzz.txt")
    except CriteriaTextError as error:
        assert error.source == "fuzz.txt" and error.line is not None and error.line >= 1
        with pytest.raises(CriteriaTextError):
            compile_trial(text, source="fuzz.txt")
        return
    if not items:  # headings and nothing under them: an error, never a trial that screens "eligible"
        with pytest.raises(CriteriaTextError, match="no criteria"):
            compile_trial(text, source="fuzz.txt")
        return
    for kind in ("inclusion", "exclusion"):
        numbers = [item.number for item in items if item.kind == kind]
        assert numbers == list(range(1, len(numbers) + 1))
    for item in items:
        assert item.text and item.text == item.text.strip() and "\n" not in item.text
        assert 1 <= item.line <= max(len(text.splitlines()), 1)
    trial = compile_trial(text, source="fuzz.txt")
    assert [(c.id, c.kind, c.text) for c in trial.criteria] == [
        (f"{'I' if i.kind == 'inclusion' else 'E'}{i.number}", i.kind, i.text) for i in items]
    for criterion in trial.criteria:
        assert criterion.compiled == (criterion.predicate is not None)
        assert criterion.compiled or (criterion.note or "").startswith("not compiled")
    if trial.criteria and encodable(text):  # the rule file gives the same trial back
        assert load_rule_text(trial.to_rule_file("json"), "fuzz.json") == trial
        assert load_rule_text(trial.to_rule_file("yaml"), "fuzz.yaml") == trial


def encodable(text: str) -> bool:
    """Text a file can hold: a lone surrogate ("\\ud800") exists only in a Python string."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@examples(100)
@given(CRITERIA_TEXT)
def test_any_criteria_text_compiles_without_loss(text: str) -> None:
    check_compiled(text)


@examples(150)
@given(CRITERION_TEXT, st.sampled_from(["inclusion", "exclusion"]))
def test_any_criterion_text_compiles_or_is_kept_with_a_note(text: str, kind: str) -> None:
    predicate, note = compile_criterion(text, kind)  # type: ignore[arg-type]
    assert predicate is not None or (note or "").startswith("not compiled")


@needs_seeds
@examples(120)
@given(st.data())
def test_mutated_seed_lines(data: st.DataObject) -> None:
    line = data.draw(mutated(data.draw(st.sampled_from(SEED_LINES))))
    predicate, note = compile_criterion(line, data.draw(st.sampled_from(["inclusion", "exclusion"])))
    assert predicate is not None or note
    check_compiled(data.draw(st.sampled_from(HEADINGS)) + "\n" + data.draw(st.sampled_from(MARKERS)) + line)


@needs_seeds
@examples(30)
@given(st.data())
def test_mutated_seed_pages(data: st.DataObject) -> None:
    pages = sorted((SHARED / "seeds").glob("*.txt"))
    lines = data.draw(st.sampled_from(pages)).read_text(encoding="utf-8").splitlines()
    for _ in range(data.draw(st.integers(0, 6))):
        if not lines:
            break
        index = data.draw(st.integers(0, len(lines) - 1))
        edit = data.draw(st.sampled_from(["drop", "repeat", "swap", "indent", "unmark", "mutate"]))
        if edit == "drop":
            del lines[index]
        elif edit == "repeat":
            lines.insert(index, lines[index])
        elif edit == "swap" and index + 1 < len(lines):
            lines[index], lines[index + 1] = lines[index + 1], lines[index]
        elif edit == "indent":
            lines[index] = " " * data.draw(st.integers(1, 8)) + lines[index]
        elif edit == "unmark":
            lines[index] = lines[index].lstrip(" *-•0123456789.)(")
        else:
            lines[index] = data.draw(mutated(lines[index], 3))
    check_compiled("\n".join(lines))


@pytest.mark.parametrize("text", ["Serum creatinine < " + "9" * 400 + " mg/dL",
                                  "history of stroke within the past " + "9" * 20 + " months"])
def test_huge_numbers_in_text_are_kept_for_review_or_screen(text: str) -> None:
    trial = compile_trial("Exclusion Criteria:\n* " + text)
    assert load_rule_text(trial.to_rule_file("json"), "huge.json") == trial
    patient = Patient.model_validate({"id": "P", "age": 50, "sex": "male", "conditions": [{"name": "stroke", "onset": "2020-01-01"}],
                                      "observations": [{"name": "creatinine", "value": 1.0, "unit": "mg/dL", "date": "2026-01-10"}]})
    screen(trial, patient, AS_OF)


# --- the record loader ------------------------------------------------------------------------------

JSON_SCALAR = st.one_of(st.none(), st.booleans(), st.integers(), st.integers(min_value=-(10 ** 400), max_value=10 ** 400),
                        st.floats(), st.text(max_size=20), st.sampled_from(["2026-01-10", "1970-02-30", "0", "", " ", "NaN"]))
JSON_VALUE = st.recursive(JSON_SCALAR, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
                          max_leaves=15)
GOOD_RECORD: dict[str, Any] = json.loads((REPO / "examples" / "eligible.json").read_text(encoding="utf-8"))
SCREENING_TRIALS = [eligibility.load_trial(path) for path in sorted((REPO / "rules").glob("NCT*.yaml"))] + [
    eligibility.load_trial(REPO / "tests" / "bad_input" / "trial.yaml")]
VERDICTS = {"pass", "fail", "unknown"}


def paths_of(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found += paths_of(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += paths_of(child, (*prefix, index))
    return found


@st.composite
def damaged_records(draw: st.DrawFn) -> Any:
    """The example record with a few fields replaced by any JSON value, removed, or added."""
    record = json.loads(json.dumps(GOOD_RECORD))
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(paths_of(record)))
        if not path:
            continue
        parent = record
        for step in path[:-1]:
            parent = parent[step]
        edit = draw(st.sampled_from(["replace", "remove", "add"]))
        if edit == "replace":
            parent[path[-1]] = draw(JSON_VALUE)
        elif edit == "remove":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.text(max_size=10))] = draw(JSON_VALUE)
        else:
            parent.append(draw(JSON_VALUE))
    return record


def check_record(data: Any) -> None:
    """Refused with our error and a JSON path, or read and screened against every trial."""
    try:
        patient = patient_from_data(data, "fuzz.json")
    except PatientRecordError as error:
        assert error.source == "fuzz.json" and error.path is not None and error.path.startswith("$")
        return
    for trial in SCREENING_TRIALS:
        report = screen(trial, patient, AS_OF)
        assert len(report.criteria) == len(trial.criteria)
        assert {c.verdict for c in report.criteria} <= VERDICTS


@examples(100)
@given(JSON_VALUE)
def test_any_json_value_as_a_record(data: Any) -> None:
    check_record(data)


@examples(100)
@given(damaged_records())
def test_damaged_records(data: Any) -> None:
    check_record(data)


@examples(100)
@given(st.one_of(st.binary(max_size=200), st.text(max_size=200).map(str.encode),
                 mutated(json.dumps(GOOD_RECORD), 4).map(lambda text: text.encode("utf-8", "surrogatepass"))))
def test_any_bytes_as_a_record_file(raw: bytes) -> None:
    try:
        data = parse_json_text(raw, "fuzz.json")
    except PatientRecordError as error:
        assert error.source == "fuzz.json"
        return
    check_record(data)


# --- an implausible value never passes ------------------------------------------------------------

MEASURED = sorted(v.id for v in VOCAB.variables.values() if v.is_measured and v.plausible is not None and v.unit)


@st.composite
def implausible_observation(draw: st.DrawFn) -> tuple[str, float]:
    variable = VOCAB[draw(st.sampled_from(MEASURED))]
    bounds = variable.plausible
    assert bounds is not None and bounds.low is not None and bounds.high is not None
    outside = draw(st.floats(min_value=1e-3, max_value=1e6, allow_nan=False))
    value = bounds.low - outside if draw(st.booleans()) else bounds.high + outside
    return variable.id, value


def measured_predicate(draw: st.DrawFn, variable_id: str, unit: str) -> PredicateNode:
    number = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)
    if draw(st.booleans()):
        return Comparison(variable=variable_id, op=draw(st.sampled_from(["lt", "le", "gt", "ge", "eq"])), value=draw(number), unit=unit)
    low, high = sorted((draw(number), draw(number)))
    return Range(variable=variable_id, low=low, high=high, unit=unit)


@examples(150)
@given(st.data())
def test_an_implausible_value_never_passes(data: st.DataObject) -> None:
    variable_id, value = data.draw(implausible_observation())
    variable = VOCAB[variable_id]
    predicate = measured_predicate(data.draw, variable_id, str(variable.unit))
    kind = data.draw(st.sampled_from(["inclusion", "exclusion"]))
    trial = Trial(trial="T", criteria=(Criterion(id="C1", kind=kind, text="-", compiled=True, predicate=predicate),))
    patient = Patient.model_validate({"id": "P", "age": 50, "sex": "male", "observations": [
        {"name": variable.label, "value": value, "unit": variable.unit, "date": "2026-01-10"}]})
    result = screen(trial, patient, AS_OF).criteria[0]
    assert result.verdict == "unknown", result


@examples(50, shrink=False)
@given(st.data())
def test_an_implausible_value_never_passes_an_x_uln_criterion(data: st.DataObject) -> None:
    variable_id, value = data.draw(implausible_observation())
    variable = VOCAB[variable_id]
    predicate = measured_predicate(data.draw, variable_id, "x ULN")
    kind = data.draw(st.sampled_from(["inclusion", "exclusion"]))
    trial = Trial(trial="T", criteria=(Criterion(id="C1", kind=kind, text="-", compiled=True, predicate=predicate),))
    patient = Patient.model_validate({"id": "P", "age": 50, "sex": "male", "observations": [
        {"name": variable.label, "value": value, "unit": variable.unit, "date": "2026-01-10",
         "reference_range": {"low": 1, "high": 100}}]})
    assert screen(trial, patient, AS_OF).criteria[0].verdict == "unknown"


# --- the rule-file loader -----------------------------------------------------------------------------

VARIABLE_IDS = st.one_of(st.sampled_from(sorted(VOCAB.variables)), st.text(max_size=12))
UNITS = st.one_of(st.sampled_from(sorted({str(v.unit) for v in VOCAB.variables.values() if v.unit} | {"x ULN", "year", "month"})),
                  st.text(max_size=8))
NUMBERS = st.floats(width=64)
PERIODS = st.fixed_dictionaries({"amount": NUMBERS, "unit": st.sampled_from(["day", "week", "month", "year", "decade"])})
LEAF = st.one_of(
    st.fixed_dictionaries({"type": st.just("comparison"), "variable": VARIABLE_IDS, "op": st.sampled_from(["lt", "le", "gt", "ge", "eq", "<"]),
                           "value": NUMBERS, "unit": UNITS}, optional={"within": PERIODS}),
    st.fixed_dictionaries({"type": st.just("range"), "variable": VARIABLE_IDS, "low": NUMBERS, "high": NUMBERS, "unit": UNITS}),
    st.fixed_dictionaries({"type": st.just("presence"), "variable": VARIABLE_IDS}, optional={"current": st.booleans(), "within": PERIODS}),
    st.fixed_dictionaries({"type": st.just("category"), "variable": VARIABLE_IDS, "values": st.lists(st.text(max_size=20), max_size=2)}),
    st.fixed_dictionaries({"type": st.just("sex"), "sex": st.sampled_from(["female", "male", "other"])}),
    st.fixed_dictionaries({"type": st.sampled_from(["manual", "threshold"]), "text": st.text(max_size=10)}),
    JSON_SCALAR,
)
PREDICATE_DATA = st.recursive(LEAF, lambda inner: st.one_of(
    st.fixed_dictionaries({"type": st.sampled_from(["all", "any"]), "items": st.lists(inner, max_size=3)}),
    st.fixed_dictionaries({"type": st.just("not"), "item": inner}),
    st.fixed_dictionaries({"type": st.just("implies"), "condition": inner, "then": inner})), max_leaves=6)
CRITERION_DATA = st.fixed_dictionaries(
    {"id": st.sampled_from(["I1", "E1", "", "age"]), "kind": st.sampled_from(["inclusion", "exclusion", "other"]),
     "text": st.text(max_size=30), "compiled": st.booleans()},
    optional={"predicate": PREDICATE_DATA, "note": st.text(max_size=10), "reviewed": st.booleans()})


def check_rule_text(text: str, listed: int | None) -> None:
    """Refused with a RuleFileError, or loaded with every listed criterion and screened."""
    try:
        trial = load_rule_text(text, "fuzz.yaml")
    except RuleFileError as error:
        assert error.source == "fuzz.yaml"
        return
    if listed is not None:
        assert len(trial.criteria) == listed
    report = screen(trial, Patient.model_validate(GOOD_RECORD), AS_OF)
    assert len(report.criteria) == len(trial.criteria) and {c.verdict for c in report.criteria} <= VERDICTS


@examples(120)
@given(st.lists(CRITERION_DATA, min_size=1, max_size=3), st.sampled_from(["json", "yaml"]))
def test_any_rule_file_data(criteria: list[dict[str, Any]], fmt: str) -> None:
    data = {"trial": "FUZZ", "criteria": criteria}
    text = json.dumps(data) if fmt == "json" else yaml.safe_dump(data, allow_unicode=True)
    check_rule_text(text, len(criteria))
    try:
        trial = load_rule_text(text, "fuzz.yaml")
    except RuleFileError:
        return
    assert load_rule_text(trial.to_rule_file("yaml"), "again.yaml") == trial  # what loads, round-trips


@examples(100)
@given(st.data())
def test_mutated_rule_files(data: st.DataObject) -> None:
    path = data.draw(st.sampled_from(sorted((REPO / "rules").glob("NCT*.yaml"))))
    check_rule_text(data.draw(mutated(path.read_text(encoding="utf-8"), 4)), None)


@examples(50)
@given(st.text(max_size=200))
def test_any_text_as_a_rule_file(text: str) -> None:
    check_rule_text("trial: T\ncriteria:\n" + text, None)
    check_rule_text(text, None)


# --- nothing lost: the whole corpus -------------------------------------------------------------------


def corpus_text(trial: dict[str, Any]) -> tuple[str, dict[str, int] | None]:
    """The trial's raw text, or its inclusion and exclusion lists under headings (with their counts)."""
    if isinstance(trial.get("criteria_raw"), str):
        return trial["criteria_raw"], None
    lists = {kind: [item for item in trial.get(kind) or [] if item.strip()] for kind in ("inclusion", "exclusion")}
    text = "".join(f"{kind.capitalize()} Criteria:\n" + "".join(f"* {item}\n" for item in items)
                   for kind, items in lists.items() if items)
    return text, {kind: len(items) for kind, items in lists.items()}


def test_every_corpus_trial_compiles_with_nothing_lost() -> None:
    corpus = SHARED / "corpus" / "trials.jsonl"
    if not corpus.is_file():
        pytest.skip(f"{corpus} is not present: the corpus lives beside the repository")
    problems: list[str] = []
    compiled = 0
    for line in corpus.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        record = json.loads(line)
        name = str(record.get("nct_id"))
        text, listed = corpus_text(record)
        try:
            items = split_items(text, source=name)
        except CriteriaTextError:
            if listed is not None or record.get("sections") != "no_headers":
                problems.append(f"{name}: no criteria heading found")
            continue
        try:
            trial = compile_trial(text, source=name)
        except EligibilityError as error:
            problems.append(f"{name}: {error}")
            continue
        compiled += 1
        if len(trial.criteria) != len(items) or [c.text for c in trial.criteria] != [i.text for i in items]:
            problems.append(f"{name}: {len(items)} items in, {len(trial.criteria)} criteria out")
        if listed is not None and listed != {kind: sum(c.kind == kind for c in trial.criteria) for kind in listed}:
            problems.append(f"{name}: listed {listed}, compiled {[c.id for c in trial.criteria]}")
        if trial.criteria and load_rule_text(trial.to_rule_file("json"), name) != trial:
            problems.append(f"{name}: the rule file does not give the same trial back")
    assert compiled > 1000
    assert not problems, "\n".join(problems[:20])


def test_every_corpus_registry_record_loads_with_nothing_lost() -> None:
    folder = SHARED / "corpus" / "ctgov_v2"
    if not folder.is_dir():
        pytest.skip(f"{folder} is not present: the corpus lives beside the repository")
    for path in sorted(folder.glob("*.json")):
        record = json.loads(path.read_text(encoding="utf-8"))
        if "eligibilityModule" not in record["protocolSection"]:  # real records without one: a clear error
            with pytest.raises(RuleFileError, match="no eligibilityModule") as raised:
                eligibility.load_trial(path)
            assert raised.value.path == "$.protocolSection"
            continue
        trial = eligibility.load_trial(path)
        text = record["protocolSection"]["eligibilityModule"].get("eligibilityCriteria") or ""
        items = split_items(text) if text.strip() else []
        structured = [c for c in trial.criteria if c.id in ("age", "sex")]
        assert [c.text for c in trial.criteria[len(structured):]] == [i.text for i in items], path.name
