"""eligibility.testing's strategies, and the engine's properties checked with them.

Each property test states its property in the first line of its docstring. Profiles: tests/conftest.py
("ci" by default; HYPOTHESIS_PROFILE=long for more examples).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

import eligibility
from eligibility import (
    Comparison,
    Criterion,
    Patient,
    PredicateAdapter,
    Range,
    Report,
    Trial,
    TrialScreener,
    compile_trial,
    screen,
)
from eligibility.facts import FactsBuilder
from eligibility.predicates import PredicateNode, variables_of
from eligibility.testing import (
    CriterionText,
    ImpossibleOutcome,
    _comparison,
    _Plan,
    criterion_texts,
    patients,
    patients_for,
    predicates,
)
from eligibility.trial import load_rule_text, trial_from_rule_data
from eligibility.vocabulary import vocabulary

REPO = Path(__file__).resolve().parents[1]
AS_OF = dt.date(2026, 1, 15)
VERDICT_OF = {"inclusion": {True: "pass", False: "fail", None: "unknown"},
              "exclusion": {True: "fail", False: "pass", None: "unknown"}}
INVERSE = {"pass": "fail", "fail": "pass", "unknown": "unknown"}
SLOW = [HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large]


def examples(n: int) -> int:
    """``n`` examples under the "ci" profile (50 a test), scaled with the profile loaded (HYPOTHESIS_PROFILE=long)."""
    return max(1, n * settings.default.max_examples // 50)


def rule_files() -> list[Path]:
    """The seed trials' rule files (rules/ also holds the vocabulary, units and layout)."""
    found = []
    for path in sorted((REPO / "rules").glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        if isinstance(data, dict) and "criteria" in data and "trial" in data:
            found.append(path)
    return found


SEED_TRIALS = {path.stem: eligibility.load_trial(path) for path in rule_files()}
ELIGIBLE_POSSIBLE = {"NCT04745299"}  # the other seeds keep a criterion for review or decide one by a manual part


def one_criterion(predicate: PredicateNode, kind: str = "inclusion") -> Trial:
    return Trial(trial="T", criteria=(Criterion(id="C1", kind=kind, text="-", compiled=True, predicate=predicate),))  # type: ignore[arg-type]


def verdicts(trial: Trial, patient: Patient, as_of: dt.date = AS_OF) -> dict[str, str]:
    return {c.id: c.verdict for c in screen(trial, patient, as_of=as_of).criteria}


# --- patients() ------------------------------------------------------------------------------------------


@settings(max_examples=examples(30))
@given(patients(as_of=AS_OF))
def test_patients_are_valid_records_the_engine_reads_entirely(patient: Patient) -> None:
    """A drawn record survives a JSON round trip, and every entry names a known variable with a usable value."""
    assert Patient.model_validate_json(patient.model_dump_json()) == patient
    facts = FactsBuilder().build(patient)
    assert facts.unmatched == []
    for variable_id, measurements in facts.measurements.items():
        for measurement in measurements:
            assert measurement.value is not None, (variable_id, measurement)  # a convertible unit, a plausible value
    assert patient.birth_date is not None or patient.age is not None


def test_patients_use_many_units_and_names() -> None:
    """Across records, a variable is written in several units and under several names."""
    units_seen: dict[str, set[str | None]] = {}
    names_seen: set[str] = set()

    @settings(max_examples=examples(40), database=None)
    @given(patients(as_of=AS_OF, max_entries=20))
    def collect(patient: Patient) -> None:
        for observation in patient.observations:
            variable = vocabulary().by_name(observation.name)
            if variable is not None and variable.is_measured:
                units_seen.setdefault(variable.id, set()).add(observation.unit)
                names_seen.add(observation.name.casefold())

    collect()
    assert any(len(seen) > 1 for seen in units_seen.values())
    assert len(names_seen) > 20


# --- patients_for: records built for an outcome ------------------------------------------------------------

SEED_CASES = [pytest.param(name, outcome, id=f"{name}-{outcome}")
              for name in SEED_TRIALS for outcome in ("eligible", "ineligible", "needs_review")
              if outcome != "eligible" or name in ELIGIBLE_POSSIBLE]


@pytest.mark.parametrize(("name", "outcome"), SEED_CASES)
def test_patients_for_a_seed_trial_get_the_outcome_they_were_built_for(name: str, outcome: str) -> None:
    """A record patients_for builds for a seed trial and an outcome is screened to exactly that outcome."""
    trial = SEED_TRIALS[name]
    screener = TrialScreener(trial)

    @settings(max_examples=examples(8), suppress_health_check=SLOW)
    @given(patients_for(trial, outcome, as_of=AS_OF))  # type: ignore[arg-type]
    def check(patient: Patient) -> None:
        report = screener.screen(patient, AS_OF)
        assert report.overall == outcome, [(c.id, c.verdict, c.reason) for c in report.criteria]

    check()


@pytest.mark.parametrize("name", [name for name in SEED_TRIALS if name not in ELIGIBLE_POSSIBLE])
def test_no_record_is_eligible_for_a_seed_trial_with_an_undecidable_criterion(name: str) -> None:
    """patients_for refuses "eligible" when a criterion is kept for review or a manual part decides it."""
    with pytest.raises(ImpossibleOutcome) as raised:
        patients_for(SEED_TRIALS[name], "eligible", as_of=AS_OF)
    assert raised.value.criterion in {c.id for c in SEED_TRIALS[name].criteria}


@pytest.mark.parametrize("name", list(SEED_TRIALS))
def test_every_criterion_gets_the_verdict_the_record_was_built_for(name: str) -> None:
    """Every criterion of a seed trial, not only those asked for, gets the verdict the builder's model gives it."""
    trial = SEED_TRIALS[name]
    screener = TrialScreener(trial)
    plans = [_Plan(trial, outcome, AS_OF) for outcome in ("ineligible", "needs_review")]

    @settings(max_examples=examples(10), suppress_health_check=SLOW)
    @given(st.sampled_from(plans), st.randoms(use_true_random=False))
    def check(plan: _Plan, rnd: random.Random) -> None:
        built = plan.draw(rnd)
        assume(built is not None)
        assert built is not None
        patient, truths = built
        report = screener.screen(patient, AS_OF)
        for result in report.criteria:
            if result.id in truths:
                assert result.verdict == VERDICT_OF[result.kind][truths[result.id]], (result.id, result.reason)

    check()


@st.composite
def trials_and_verdicts(draw: st.DrawFn) -> tuple[Trial, dict[str, str]]:
    """A trial of 1 to 3 criteria of any form the grammar writes, and a verdict asked of each."""
    cases = draw(st.lists(criterion_texts(), min_size=1, max_size=3))
    criteria = tuple(Criterion(id=f"{'I' if c.kind == 'inclusion' else 'E'}{n}", kind=c.kind, text=c.text, compiled=True,
                               predicate=c.predicate) for n, c in enumerate(cases, start=1))
    asked = {c.id: draw(st.sampled_from(["pass", "fail", "unknown"])) for c in criteria}
    return Trial(trial="T", criteria=criteria), asked


@settings(max_examples=examples(40), suppress_health_check=SLOW)
@given(trials_and_verdicts(), st.data())
def test_patients_for_gets_each_asked_verdict(case: tuple[Trial, dict[str, str]], data: Any) -> None:
    """A record built for per-criterion verdicts gets exactly those verdicts, for criteria of every form."""
    trial, asked = case
    try:
        strategy = patients_for(trial, asked, as_of=AS_OF)  # type: ignore[arg-type]
    except ImpossibleOutcome:
        assume(False)
    patient = data.draw(strategy)
    assert verdicts(trial, patient) == asked


@settings(max_examples=examples(25), suppress_health_check=SLOW)
@given(predicates(max_leaves=5, manual=True), st.sampled_from(["pass", "fail", "unknown"]), st.data())
def test_patients_for_any_predicate_tree(predicate: PredicateNode, verdict: str, data: Any) -> None:
    """For any predicate tree, a record built for a verdict gets it (when some record can)."""
    trial = one_criterion(predicate)
    try:
        strategy = patients_for(trial, {"C1": verdict}, as_of=AS_OF)  # type: ignore[dict-item]
    except ImpossibleOutcome:
        assume(False)
    assert verdicts(trial, data.draw(strategy)) == {"C1": verdict}


def test_impossible_outcomes_are_refused_with_the_criterion() -> None:
    trial = compile_trial("Inclusion Criteria:\n* ALSFRS-R ≥ 49\n* Something no grammar reads\nExclusion Criteria:\n* pregnancy")
    with pytest.raises(ImpossibleOutcome, match="I2") as raised:
        patients_for(trial, "eligible", as_of=AS_OF)
    assert isinstance(raised.value, InvalidArgument)
    with pytest.raises(ImpossibleOutcome, match="I1 .* never be pass"):
        patients_for(trial, {"I1": "pass"}, as_of=AS_OF)
    with pytest.raises(ImpossibleOutcome, match="I2 is not compiled"):
        patients_for(trial, {"I2": "fail"}, as_of=AS_OF)
    contradictory = compile_trial("Inclusion Criteria:\n* ALSFRS-R ≥ 40\n* ALSFRS-R ≤ 30")
    with pytest.raises(ImpossibleOutcome, match="cannot all be"):
        patients_for(contradictory, "eligible", as_of=AS_OF)
    manual = Trial(trial="M", criteria=(Criterion(id="I1", kind="inclusion", text="-", compiled=True,
                                                  predicate=eligibility.Manual(text="judgement")),))
    with pytest.raises(ImpossibleOutcome):
        patients_for(manual, "ineligible", as_of=AS_OF)
    patients_for(manual, "needs_review", as_of=AS_OF)  # a manual part is always unknown


def test_bad_arguments_are_invalid() -> None:
    trial = compile_trial("Inclusion Criteria:\n* ALSFRS-R ≥ 30")
    for outcome in ("maybe", {"I9": "pass"}, {"I1": "ok"}):
        with pytest.raises(InvalidArgument):
            patients_for(trial, outcome, as_of=AS_OF)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        patients_for("rules/NCT04745299.yaml", "eligible", as_of=AS_OF)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        patients_for(trial, "eligible", as_of="2026-01-15")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        patients(max_entries=-1)


# --- properties of the engine --------------------------------------------------------------------------


def loosened(predicate: Comparison, step: float) -> Comparison | None:
    if predicate.op in ("ge", "gt"):
        return predicate.model_copy(update={"value": predicate.value - step})
    if predicate.op in ("le", "lt"):
        return predicate.model_copy(update={"value": predicate.value + step})
    return None


@settings(max_examples=examples(40), suppress_health_check=SLOW)
@given(_comparison(), st.sampled_from(["pass", "fail", "unknown"]), st.floats(0.01, 100), st.data())
def test_threshold_monotonicity(predicate: Comparison, verdict: str, step: float, data: Any) -> None:
    """Loosening a threshold never loses a pass, and unknown does not depend on the threshold."""
    strict = loosened(predicate, step)
    assume(strict is not None)
    try:
        patient = data.draw(patients_for(one_criterion(predicate), {"C1": verdict}, as_of=AS_OF))  # type: ignore[dict-item]
    except ImpossibleOutcome:
        assume(False)
    assert strict is not None
    looser = verdicts(one_criterion(strict), patient)["C1"]
    if verdict == "pass":
        assert looser == "pass"
    assert (looser == "unknown") == (verdict == "unknown")


@settings(max_examples=examples(40), suppress_health_check=SLOW)
@given(predicates(max_leaves=5, manual=True), st.sampled_from(["pass", "fail", "unknown"]), st.data())
def test_exclusion_inversion(predicate: PredicateNode, verdict: str, data: Any) -> None:
    """The same predicate as an exclusion gets the opposite verdict of it as an inclusion (unknown stays unknown)."""
    try:
        patient = data.draw(patients_for(one_criterion(predicate), {"C1": verdict}, as_of=AS_OF))  # type: ignore[dict-item]
    except ImpossibleOutcome:
        assume(False)
    assert verdicts(one_criterion(predicate, "exclusion"), patient)["C1"] == INVERSE[verdict]


@st.composite
def seed_patients(draw: st.DrawFn) -> tuple[Trial, Patient]:
    """A seed trial and a record built for one of its possible outcomes."""
    name = draw(st.sampled_from(sorted(SEED_TRIALS)))
    outcomes = ["ineligible", "needs_review"] + (["eligible"] if name in ELIGIBLE_POSSIBLE else [])
    trial = SEED_TRIALS[name]
    return trial, draw(patients_for(trial, draw(st.sampled_from(outcomes)), as_of=AS_OF))  # type: ignore[arg-type]


@settings(max_examples=examples(12), suppress_health_check=SLOW)
@given(seed_patients(), st.data())
def test_observations_after_the_screening_date_never_change_a_verdict(case: tuple[Trial, Patient], data: Any) -> None:
    """Adding observations dated after the screening date, of any variable the trial reads, changes no verdict."""
    trial, patient = case
    read = sorted({v for c in trial.criteria if c.predicate is not None for v in variables_of(c.predicate)} & set(vocabulary().variables))
    later = data.draw(patients(as_of=AS_OF + dt.timedelta(days=400), max_entries=12))
    extra = [o for o in later.observations if o.date is not None and o.date > AS_OF]
    for variable_id in data.draw(st.lists(st.sampled_from(read), max_size=6)) if read else []:
        variable = vocabulary()[variable_id]
        if variable.is_measured and variable.unit:
            low, high = (variable.plausible.low or 0.0, variable.plausible.high or 100.0) if variable.plausible else (0.0, 100.0)
            extra.append(eligibility.Observation(name=variable.label, value=data.draw(st.floats(low, high)), unit=variable.unit,
                                                 date=AS_OF + dt.timedelta(days=data.draw(st.integers(1, 300)))))
    assume(extra)
    changed = patient.model_copy(update={"observations": (*patient.observations, *extra)})
    assert verdicts(trial, Patient.model_validate(changed.model_dump())) == verdicts(trial, patient)


@settings(max_examples=examples(20), suppress_health_check=SLOW)
@given(seed_patients(), st.randoms(use_true_random=False))
def test_the_order_of_a_records_entries_does_not_matter(case: tuple[Trial, Patient], rnd: random.Random) -> None:
    """Shuffling a record's observations, conditions, medications and procedures gives the same report."""
    trial, patient = case
    data = patient.model_dump(mode="json")
    for field in ("observations", "conditions", "medications", "procedures"):
        rnd.shuffle(data[field])
    shuffled = Patient.model_validate(data)
    first, second = screen(trial, patient, as_of=AS_OF), screen(trial, shuffled, as_of=AS_OF)
    assert [(c.id, c.verdict) for c in second.criteria] == [(c.id, c.verdict) for c in first.criteria]
    assert second.overall == first.overall


@settings(max_examples=examples(10), suppress_health_check=SLOW)
@given(seed_patients())
def test_screening_is_deterministic(case: tuple[Trial, Patient]) -> None:
    """The same trial, record and date give the same report JSON, from screen, a screener or a fresh copy of both."""
    trial, patient = case
    reports = [screen(trial, patient, as_of=AS_OF).to_json(),
               TrialScreener(trial).screen(Patient.model_validate_json(patient.model_dump_json()), AS_OF).to_json(),
               screen(Trial.model_validate_json(trial.model_dump_json()), patient, as_of=AS_OF).to_json()]
    assert reports[0] == reports[1] == reports[2]


def test_compiling_and_screening_do_not_depend_on_the_hash_seed() -> None:
    """Compiled predicates and reports are the same in processes with different hash seeds."""
    texts: list[tuple[str, str]] = []

    @settings(max_examples=examples(30), database=None)
    @given(criterion_texts())
    def collect(case: CriterionText) -> None:
        texts.append((case.text, case.kind))

    collect()
    code = ("import json, sys, datetime, eligibility\n"
            "texts = json.load(sys.stdin)\n"
            "out = [eligibility.compile_criterion(t, k)[0] for t, k in texts]\n"
            "print(json.dumps([p.model_dump(mode='json') if p else None for p in out]))\n")
    here = [eligibility.compile_criterion(t, k)[0] for t, k in texts]  # type: ignore[arg-type]
    seed = str(1 + hash("a string") % 1000)  # another hash seed than this process's
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONHASHSEED": seed}
    result = subprocess.run([sys.executable, "-c", code], input=json.dumps(texts), capture_output=True, text=True,
                            cwd=REPO, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [p.model_dump(mode="json") if p else None for p in here]


# --- JSON round trips ------------------------------------------------------------------------------------


@given(predicates(manual=True))
def test_predicates_round_trip_through_json(predicate: PredicateNode) -> None:
    """Any predicate tree over the vocabulary, dumped to JSON and read back, is the same tree."""
    assert PredicateAdapter.validate_json(PredicateAdapter.dump_json(predicate)) == predicate


@st.composite
def trials(draw: st.DrawFn) -> Trial:
    """Trials of compiled criteria (with their texts) and criteria kept for review."""
    cases = draw(st.lists(criterion_texts(), min_size=1, max_size=4))
    criteria = [Criterion(id=f"I{n}", kind="inclusion", text=c.text, compiled=True, predicate=c.predicate)
                if c.kind == "inclusion" else
                Criterion(id=f"E{n}", kind="exclusion", text=c.text, compiled=True, predicate=c.predicate)
                for n, c in enumerate(cases, start=1)]
    if draw(st.booleans()):
        criteria.append(Criterion(id="I99", kind="inclusion", text=draw(st.text(max_size=40)), compiled=False,
                                  note="not compiled: kept for review"))
    return Trial(trial=draw(st.sampled_from(["NCT01234567", "local-study"])), condition=draw(st.sampled_from([None, "als"])),
                 criteria=tuple(criteria))


@settings(max_examples=examples(30))
@given(trials())
def test_rule_files_round_trip(trial: Trial) -> None:
    """A trial written as a JSON or YAML rule file reads back as the same trial (trial_from_rule_data, load_trial)."""
    as_json = trial.to_rule_file("json")
    assert trial_from_rule_data(json.loads(as_json)) == trial
    assert load_rule_text(trial.to_rule_file("yaml"), "rules.yaml") == trial


def test_rule_files_load_from_disk(tmp_path: Path) -> None:
    """eligibility.load_trial reads a written rule file back as the same trial, in either format."""
    @settings(max_examples=examples(10), database=None)
    @given(trials(), st.sampled_from(["json", "yaml"]))
    def check(trial: Trial, fmt: str) -> None:
        path = tmp_path / f"trial.{fmt}"
        path.write_text(trial.to_rule_file(fmt), encoding="utf-8")  # type: ignore[arg-type]
        assert eligibility.load_trial(path) == trial

    check()


@settings(max_examples=examples(10), suppress_health_check=SLOW)
@given(seed_patients())
def test_reports_round_trip_through_json(case: tuple[Trial, Patient]) -> None:
    """A report's JSON reads back as a report with the same JSON."""
    trial, patient = case
    report = screen(trial, patient, as_of=AS_OF)
    again = Report.model_validate_json(report.model_dump_json())
    assert again.model_dump_json() == report.model_dump_json()
    assert json.loads(again.to_json()) == json.loads(report.to_json())


# --- criterion_texts and predicates ----------------------------------------------------------------------


@settings(max_examples=examples(30))
@given(criterion_texts(kind="exclusion"))
def test_criterion_texts_of_a_kind(case: CriterionText) -> None:
    """criterion_texts(kind=...) draws criteria of that kind, and the text means the predicate."""
    assert case.kind == "exclusion"
    assert eligibility.compile_criterion(case.text, case.kind, case.condition)[0] == case.predicate


@settings(max_examples=examples(30))
@given(predicates())
def test_predicates_use_the_vocabulary(predicate: PredicateNode) -> None:
    """Every variable a drawn predicate reads is in the vocabulary (or is sex)."""
    assert set(variables_of(predicate)) <= set(vocabulary().variables) | {"sex"}


# --- the module ------------------------------------------------------------------------------------------


def test_importing_eligibility_does_not_import_hypothesis() -> None:
    """hypothesis stays out of the engine's import path (python -X importtime -c "import eligibility")."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-X", "importtime", "-c", "import eligibility"], capture_output=True,
                            text=True, cwd=REPO, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    imported = {line.split("|")[-1].strip().split(".")[0] for line in result.stderr.splitlines() if "|" in line}
    assert "eligibility" in imported
    assert "hypothesis" not in imported
    assert not any(re.search(r"\beligibility\.(testing|render)\b", line) for line in result.stderr.splitlines())


def test_the_public_strategies_are_documented() -> None:
    import eligibility.testing as testing

    for name in testing.__all__:
        assert getattr(testing, name).__doc__, name


# --- the README example (README.md, "Testing your app with eligibility", quotes this block) ---------------

# README example start
import datetime

import eligibility
from hypothesis import given
from eligibility.testing import criterion_texts, patients_for

TRIAL = eligibility.compile_trial("""
Inclusion Criteria:
* Age 18 to 65 years
* ALSFRS-R between 31 and 46
Exclusion Criteria:
* Serum creatinine not less than 2.0 mg/dL
* History of epilepsy
""")
AS_OF = datetime.date(2026, 1, 15)


def my_app_offers_trial(patient):  # your application's decision, here the engine's own
    return eligibility.screen(TRIAL, patient, as_of=AS_OF).overall == "eligible"


@given(patients_for(TRIAL, "eligible", as_of=AS_OF))
def test_my_app_offers_the_trial_to_eligible_patients(patient):
    assert my_app_offers_trial(patient)


@given(patients_for(TRIAL, {"E1": "fail"}, as_of=AS_OF))  # creatinine >= 2.0 mg/dL, in any unit
def test_my_app_turns_away_high_creatinine(patient):
    assert not my_app_offers_trial(patient)


@given(criterion_texts())
def test_criteria_compile_to_what_they_mean(case):
    assert eligibility.compile_criterion(case.text, case.kind, case.condition)[0] == case.predicate
# README example end


def test_the_readme_quotes_the_example() -> None:
    source = Path(__file__).read_text(encoding="utf-8")
    example = source.split("# README example start\n")[1].split("# README example end")[0]
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    if "## Testing your app with eligibility" not in readme:
        pytest.skip("the README section is not written yet")
    assert example.strip() in readme
