"""Trials and rule files (eligibility/trial.py, compiler.py): round trips, validation, registry records.

The ClinicalTrials.gov records are read from /work/shared/corpus/ctgov_v2 beside the repository
(never copied into it); those tests skip with a message when it is absent.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from eligibility import (
    Comparison,
    Criterion,
    Patient,
    RuleFileError,
    Trial,
    compile_registry_record,
    compile_trial,
    load_trial,
    screen,
)
from eligibility.resources import data_file
from eligibility.trial import load_rule_text, trial_from_rule_data

AS_OF = dt.date(2026, 1, 15)

TRIAL_TEXT = """[Inclusion Criteria]
  1. For subjects who are under Riluzole treatment, those who have received stable dose of Riluzole for more than 28 days before screening visit.
  2. Subjects with duration of disease of no more than 2 years from the first diagnosis date.
  3. Subjects whose ALSFRS-R scores are in the range of 31~46 at the time of screening (P-V0).
[Exclusion Criteria]
  1. Subjects who received gastrotomy at the time of screening (P-V0).
  2. Subjects with severe renal disorder (serum creatinine: not less than 2.0 mg/dL).
  3. Subjects with severe hepatic disorder (ALT, AST, or bilirubin: over 2.0 times of the normal upper limit).
  4. Subjects with hypersensitivity to antibiotics (penicillin or streptomycin).
"""


@pytest.fixture(scope="module")
def trial() -> Trial:
    return compile_trial(TRIAL_TEXT, trial_id="NCT04745299", condition="als")


def registry_record(**eligibility: Any) -> dict[str, Any]:
    module = {"eligibilityCriteria": "Inclusion Criteria:\n\n* ALSFRS-R ≥ 24\n\nExclusion Criteria:\n\n* Pregnancy\n",
              "sex": "ALL", "minimumAge": "18 Years", "maximumAge": "64 Years", "healthyVolunteers": False}
    module.update(eligibility)
    return {"protocolSection": {"identificationModule": {"nctId": "NCT00000001", "briefTitle": "A test record"},
                                "conditionsModule": {"conditions": ["Amyotrophic Lateral Sclerosis"]},
                                "eligibilityModule": {k: v for k, v in module.items() if v is not None}}}


def person(birth_date: str, sex: str = "female") -> Patient:
    return Patient.model_validate({"id": "P1", "birth_date": birth_date, "sex": sex})


# --- compiling text ------------------------------------------------------------------------------


def test_every_item_becomes_a_criterion_in_order(trial: Trial) -> None:
    assert trial.trial == "NCT04745299" and trial.condition == "als"
    assert [c.id for c in trial.criteria] == ["I1", "I2", "I3", "E1", "E2", "E3", "E4"]
    assert [c.kind for c in trial.criteria] == ["inclusion"] * 3 + ["exclusion"] * 4
    assert trial.criteria[2].text.startswith("Subjects whose ALSFRS-R scores")


def test_criteria_not_compiled_keep_their_text_and_a_note(trial: Trial) -> None:
    kept = [c for c in trial.criteria if not c.compiled]
    assert [c.id for c in kept] == ["E4"]
    assert kept[0].predicate is None and kept[0].note and "penicillin" in kept[0].text
    assert all(c.predicate is not None for c in trial.criteria if c.compiled)
    assert trial.summary() == "6/7 criteria compiled"


def test_an_unknown_trial_condition_is_an_input_error() -> None:
    with pytest.raises(ValueError, match="not in rules/vocabulary.yaml"):
        compile_trial(TRIAL_TEXT, condition="no_such_disease")


# --- rule files ------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_rule_file_round_trip(trial: Trial, fmt: str) -> None:
    text = trial.to_rule_file(fmt)  # type: ignore[arg-type]
    assert load_rule_text(text, f"trial.{fmt}") == trial
    if fmt == "json":
        data = json.loads(text)
        assert [c["id"] for c in data["criteria"]] == [c.id for c in trial.criteria]
        assert all({"id", "kind", "text", "compiled"} <= set(c) for c in data["criteria"])


@pytest.mark.parametrize(("fmt", "name"), [("yaml", "trial.yaml"), ("json", "trial.json"), ("yaml", "trial.txt")])
def test_load_trial_tells_a_rule_file_by_content(trial: Trial, tmp_path: Path, fmt: str, name: str) -> None:
    path = tmp_path / name
    path.write_text(trial.to_rule_file(fmt), encoding="utf-8")  # type: ignore[arg-type]
    assert load_trial(path) == trial


def test_a_rule_file_may_start_with_a_comment(trial: Trial, tmp_path: Path) -> None:
    path = tmp_path / "reviewed.yaml"
    path.write_text("# reviewed 2026-01-10\n---\n" + trial.to_rule_file("yaml"), encoding="utf-8")
    assert load_trial(path) == trial


def test_a_hand_edited_predicate_is_screened_as_written(trial: Trial) -> None:
    data = json.loads(trial.to_rule_file("json"))
    e2 = next(c for c in data["criteria"] if c["id"] == "E2")
    e2["predicate"] = {"type": "comparison", "variable": "creatinine", "op": "ge", "value": 1.5, "unit": "mg/dL"}
    e2["reviewed"] = True
    edited = trial_from_rule_data(data)
    assert edited.criteria[4].predicate == Comparison(variable="creatinine", op="ge", value=1.5, unit="mg/dL")
    patient = Patient.model_validate({"id": "P", "age": 60, "sex": "male", "observations": [
        {"name": "creatinine", "value": 1.7, "unit": "mg/dL", "date": "2026-01-10"}]})
    assert screen(trial, patient, as_of=AS_OF).criteria[4].verdict == "pass"
    assert screen(edited, patient, as_of=AS_OF).criteria[4].verdict == "fail"


@pytest.mark.parametrize("path", sorted(data_file("rules", "units.yaml").parent.glob("NCT*.yaml")), ids=lambda p: p.name)
def test_the_shipped_rule_files_load_and_round_trip(path: Path) -> None:
    trial = load_trial(path)
    assert trial.trial == path.stem
    assert load_rule_text(trial.to_rule_file("yaml"), path.name) == trial
    ids = [c.id for c in trial.criteria]
    assert len(ids) == len(set(ids))


# --- validation ---------------------------------------------------------------------------------


def test_compiled_means_there_is_a_predicate() -> None:
    with pytest.raises(ValidationError, match="exactly when there is a predicate"):
        Criterion(id="I1", kind="inclusion", text="x", compiled=True)
    with pytest.raises(ValidationError, match="exactly when there is a predicate"):
        Criterion(id="I1", kind="inclusion", text="x", compiled=False,
                  predicate=Comparison(variable="creatinine", op="lt", value=2, unit="mg/dL"))


def rule_file(*criteria: dict[str, Any]) -> str:
    return json.dumps({"trial": "T", "criteria": list(criteria)})


GOOD = {"id": "I1", "kind": "inclusion", "text": "serum creatinine < 2.0 mg/dL", "compiled": True,
        "predicate": {"type": "comparison", "variable": "creatinine", "op": "lt", "value": 2.0, "unit": "mg/dL"}}


@pytest.mark.parametrize(
    ("text", "path", "words"),
    [
        (rule_file({**GOOD, "compiled": False}), "$.criteria[0]", "exactly when there is a predicate"),
        (rule_file(GOOD, {**GOOD, "text": "again"}), "$", "ids repeat: I1"),
        (rule_file({**GOOD, "kind": "maybe"}), "$.criteria[0].kind", "inclusion"),
        (rule_file({**GOOD, "predicate": {**GOOD["predicate"], "value": "high"}}), "$.criteria[0].predicate.value", "number"),
        (rule_file({**GOOD, "predicate": {"type": "comparison", "variable": "creatinine", "op": "lt", "unit": "mg/dL"}}),
         "$.criteria[0].predicate.value", "required"),
        (rule_file({**GOOD, "predicate": {"type": "all", "items": [{"type": "sex", "sex": "other"}]}}),
         "$.criteria[0].predicate.items[0].sex", "'female' or 'male'"),
        (rule_file({**GOOD, "predicate": {"type": "frobnicate"}}), "$.criteria[0].predicate", "frobnicate"),
        (rule_file({**GOOD, "predicate": {**GOOD["predicate"], "op": "approximately"}}), "$.criteria[0].predicate.op", "'lt'"),
        (json.dumps([GOOD]), "$", "mapping"),
    ],
)
def test_invalid_rule_files_name_the_json_path(text: str, path: str, words: str) -> None:
    with pytest.raises(RuleFileError) as caught:
        load_rule_text(text, "rules.json")
    assert caught.value.path == path
    assert words in caught.value.message


def test_invalid_yaml_gives_line_and_column() -> None:
    with pytest.raises(RuleFileError) as caught:
        load_rule_text("trial: T\ncriteria: [unclosed\n", "rules.yaml")
    assert caught.value.line is not None and caught.value.line >= 2


def test_duplicate_ids_are_rejected() -> None:
    criterion = Criterion(id="I1", kind="inclusion", text="x", compiled=False)
    with pytest.raises(ValidationError, match="ids repeat: I1"):
        Trial(trial="T", criteria=(criterion, criterion))


# --- registry records: structured age and sex first -------------------------------------------------


def test_registry_age_and_sex_come_first() -> None:
    trial = compile_registry_record(registry_record())
    assert [c.id for c in trial.criteria] == ["age", "sex", "I1", "E1"]
    assert trial.trial == "NCT00000001" and trial.title == "A test record"
    assert trial.condition == "als" and trial.healthy_volunteers is False
    assert all(c.kind == "inclusion" and c.compiled for c in trial.criteria[:2])


@pytest.mark.parametrize(
    ("birth_date", "expected"),
    [("2008-01-15", "pass"),  # 18 on the screening date: the registry minimum is inclusive
     ("2008-01-16", "fail"),  # 18 tomorrow
     ("1961-01-16", "pass"),  # 64, one day before the 65th birthday: the maximum is inclusive
     ("1961-01-15", "fail")],  # 65 today
)
def test_registry_age_bounds_are_inclusive_in_completed_years(birth_date: str, expected: str) -> None:
    report = screen(compile_registry_record(registry_record()), person(birth_date), as_of=AS_OF)
    assert report.criteria[0].id == "age" and report.criteria[0].verdict == expected


def test_registry_ages_in_different_units() -> None:
    trial = compile_registry_record(registry_record(minimumAge="6 Months", maximumAge="17 Years"))
    verdicts = {born: screen(trial, person(born), as_of=AS_OF).criteria[0].verdict
                for born in ("2025-07-15", "2025-07-16", "2008-01-16", "2008-01-15")}
    assert verdicts == {"2025-07-15": "pass", "2025-07-16": "fail", "2008-01-16": "pass", "2008-01-15": "fail"}


def test_registry_without_ages_has_only_sex() -> None:
    trial = compile_registry_record(registry_record(minimumAge=None, maximumAge="N/A"))
    assert [c.id for c in trial.criteria][:2] == ["sex", "I1"]


@pytest.mark.parametrize(("sex", "female", "male"), [("ALL", "pass", "pass"), ("FEMALE", "pass", "fail"), ("MALE", "fail", "pass")])
def test_registry_sex(sex: str, female: str, male: str) -> None:
    trial = compile_registry_record(registry_record(sex=sex))
    got = [screen(trial, person("1980-01-01", s), as_of=AS_OF).criteria[1].verdict for s in ("female", "male")]
    assert got == [female, male]


@pytest.mark.parametrize(("field", "value"), [("minimumAge", "eighteen"), ("sex", "BOTH")])
def test_registry_values_that_cannot_be_read(field: str, value: str) -> None:
    with pytest.raises(RuleFileError) as caught:
        compile_registry_record(registry_record(**{field: value}), "record.json")
    assert caught.value.path == f"$.protocolSection.eligibilityModule.{field}"


def test_a_record_without_an_eligibility_module_is_refused() -> None:
    with pytest.raises(RuleFileError, match="eligibilityModule"):
        compile_registry_record({"protocolSection": {"identificationModule": {"nctId": "NCT00000002"}}})


def test_load_trial_tells_a_registry_record_by_content(tmp_path: Path) -> None:
    path = tmp_path / "record.txt"
    path.write_text(json.dumps(registry_record()), encoding="utf-8")
    assert load_trial(path).criteria[0].id == "age"


# --- the ClinicalTrials.gov corpus --------------------------------------------------------------------


def test_corpus_records_compile_and_screen(shared_dir: Path) -> None:
    paths = sorted((shared_dir / "corpus" / "ctgov_v2").glob("*.json"))
    if not paths:
        pytest.skip(f"no ClinicalTrials.gov records in {shared_dir / 'corpus' / 'ctgov_v2'}")
    patients = [person("1990-06-01", "female"), Patient.model_validate({"id": "P2", "age": 70, "sex": "male"})]
    screened = 0
    for path in paths:
        record = json.loads(path.read_text(encoding="utf-8"))
        if "eligibilityModule" not in record.get("protocolSection", {}):
            with pytest.raises(RuleFileError, match="eligibilityModule"):  # nothing to screen: said so, not guessed
                load_trial(path)
            continue
        trial = load_trial(path)
        module = record["protocolSection"]["eligibilityModule"]
        assert trial.trial == record["protocolSection"]["identificationModule"]["nctId"]
        assert [c.id for c in trial.criteria][: 1 + ("minimumAge" in module or "maximumAge" in module)][-1] in ("age", "sex")
        assert "sex" in [c.id for c in trial.criteria[:2]]
        assert load_rule_text(trial.to_rule_file("json"), path.name) == trial
        for patient in patients:
            report = screen(trial, patient, as_of=AS_OF)
            assert [c.id for c in report.criteria] == [c.id for c in trial.criteria]
            assert report.overall in ("eligible", "ineligible", "needs_review")
        screened += 1
    assert screened >= 1
