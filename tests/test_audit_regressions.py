"""Wrong predicates found by reading every compiled corpus criterion (precision audits), kept fixed.

Each case is the real corpus line. A criterion that describes the operation a patient is
enrolled for ("Emergency surgery" under exclusions of a surgical trial) is not a past event on
record; a pregnancy complication is current, as pregnancy is; an exclusion written as "no X"
is an inclusion listed under the wrong heading, and reading it literally would exclude every
patient without X.
"""

from __future__ import annotations

import datetime as dt

import pytest

from eligibility import Patient, compile_criterion, compile_trial, screen


@pytest.mark.parametrize(("text", "kind"), [
    ("Emergency surgery", "exclusion"),
    ("Emergency surgeries", "exclusion"),
    ("Transplant surgery", "exclusion"),
    ("General anesthesia", "inclusion"),
    ("Elective surgery", "inclusion"),
])
def test_the_operation_a_trial_enrols_for_is_not_compiled_as_a_past_event(text: str, kind: str) -> None:
    predicate, note = compile_criterion(text, kind)  # type: ignore[arg-type]
    assert predicate is None and note


def test_preeclampsia_means_now() -> None:
    trial = compile_trial("Inclusion Criteria:\n- preeclampsia\n")
    past = Patient.model_validate({"id": "P", "sex": "female", "birth_date": "1990-01-01",
                                   "conditions": [{"name": "preeclampsia", "onset": "2015-03-01", "end": "2015-06-01"}]})
    assert screen(trial, past, as_of=dt.date(2026, 1, 15)).criteria[0].verdict == "fail"


@pytest.mark.parametrize("text", ["no food allergies", "No evidence of acute infection", "no informed consent"])
def test_a_negative_exclusion_never_excludes_on_its_own(text: str) -> None:
    """Read literally, "no food allergies" under exclusions excludes everyone without food allergies."""
    trial = compile_trial(f"Exclusion Criteria:\n- {text}\n")
    criterion = trial.criteria[0]
    assert criterion.compiled and criterion.note and "negative exclusion" in criterion.note
    nobody = Patient.model_validate({"id": "P", "sex": "female", "birth_date": "1990-01-01"})
    assert screen(trial, nobody, as_of=dt.date(2026, 1, 15)).criteria[0].verdict == "unknown"
