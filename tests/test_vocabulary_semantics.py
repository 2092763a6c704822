"""What the vocabulary's concepts and default timings mean when screening (precision audit, issue 3).

Each case is a corpus criterion the audit found compiled to a wrong predicate, screened with
``eligibility.screen`` against the small record its probe used (and the record that must still
decide it): a merged concept or a lost "now" gave a wrong pass or fail.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

import eligibility
from eligibility import Patient

AS_OF = dt.date(2026, 1, 15)
REPO = Path(__file__).resolve().parents[1]
EX_SMOKER = {"conditions": [{"name": "smoker", "onset": "1990-01-01", "end": "2005-01-01"}]}
SMOKER = {"conditions": [{"name": "smoker", "onset": "1990-01-01"}]}


def verdict(kind: str, text: str, record: dict[str, Any]) -> str:
    heading = "Inclusion Criteria:" if kind == "inclusion" else "Exclusion Criteria:"
    trial = eligibility.compile_trial(f"{heading}\n* {text}")
    assert trial.criteria[0].compiled, trial.criteria[0].note
    patient = Patient.model_validate({"id": "P", "age": 50, "sex": "female", **record})
    return eligibility.screen(trial, patient, as_of=AS_OF).criteria[0].verdict


@pytest.mark.parametrize(("kind", "text", "record", "expected"), [
    # 1a: smoking is now; "history of smoking" is ever
    ("exclusion", "Smoking", EX_SMOKER, "pass"),
    ("exclusion", "6. Active smoker", EX_SMOKER, "pass"),
    ("exclusion", "Smoking", SMOKER, "fail"),
    ("exclusion", "History of smoking", EX_SMOKER, "fail"),
    # 1d: an acute state is now
    ("inclusion", "Fever", {"conditions": [{"name": "fever", "onset": "2015-01-01", "end": "2015-01-05"}]}, "fail"),
    ("inclusion", "Fever", {"conditions": [{"name": "fever", "onset": "2026-01-14"}]}, "pass"),
    ("exclusion", "Infections", {"conditions": [{"name": "urinary tract infection", "onset": "2019-03-01", "end": "2019-03-10"}]}, "pass"),
    ("exclusion", "Acute renal failure", {"conditions": [{"name": "acute kidney injury", "onset": "2019-03-01", "end": "2019-04-01"}]}, "pass"),
])
def test_timing(kind: str, text: str, record: dict[str, Any], expected: str) -> None:
    """A state the criterion means now is decided by the record's end date; a history marker reads ever."""
    assert verdict(kind, text, record) == expected


def _has(kind: str, name: str, **dates: str) -> dict[str, Any]:
    field = {"conditions": "onset", "procedures": "date", "medications": "start"}[kind]
    return {kind: [{"name": name, field: dates.get("on", "2020-01-01")}]}


@pytest.mark.parametrize(("kind", "text", "unrelated", "related"), [
    # 2a psychosis is not any psychiatric disorder; schizophrenia is a psychotic disorder
    ("exclusion", "Psychotic disorder", _has("conditions", "depression"), _has("conditions", "schizophrenia")),
    ("exclusion", "Patients with psychosis", _has("conditions", "bipolar disorder"), _has("conditions", "psychosis")),
    # 2b solid organ vs haematopoietic stem cell transplant vs cell therapy
    ("exclusion", "1. Prior solid organ transplantation", _has("procedures", "bone marrow transplant"), _has("procedures", "kidney transplant")),
    ("exclusion", "2. Have received hematopoietic stem cell transplantation or bone marrow transplantation;",
     _has("procedures", "kidney transplant"), _has("procedures", "bone marrow transplantation")),
    ("exclusion", "Prior stem cell transplantation", _has("procedures", "cell therapy"), _has("procedures", "HSCT")),
    # 2c cerebrovascular disease includes a TIA
    ("exclusion", "Cerebrovascular disease", _has("conditions", "migraine"), _has("conditions", "transient ischemic attack")),
    # 2d ESRD is not a resolved acute kidney injury
    ("exclusion", "Patients with End Stage Renal Disease (ESRD).", _has("conditions", "acute kidney injury"), _has("conditions", "ESRD")),
    ("exclusion", "Acute renal failure", _has("conditions", "end-stage renal disease"), _has("conditions", "AKI", on="2026-01-10")),
    # 2f, 2g, 2i, 2j: one concept is not its sibling
    ("inclusion", "Alzheimer's Disease", _has("conditions", "frontotemporal dementia"), _has("conditions", "Alzheimer's disease")),
    ("inclusion", "stable angina", _has("conditions", "unstable angina"), _has("conditions", "stable angina")),
    ("exclusion", "History of suicide attempt within the past 3 years", _has("conditions", "suicidal ideation", on="2025-06-01"),
     _has("conditions", "suicide attempt", on="2025-06-01")),
    ("inclusion", "3. intrauterine device (IUD)", _has("medications", "oral contraceptives"), _has("medications", "IUD")),
    # 3a Parkinson's disease dementia needs both, not either
    ("inclusion", "Parkinson's Disease Dementia", _has("conditions", "Parkinson's disease"), _has("conditions", "Parkinson's disease dementia")),
    # CPAP is not BiPAP
    ("exclusion", "1. Receiving mechanical ventilation or continuous positive airway pressure (CPAP).",
     {"procedures": [{"name": "BiPAP", "date": "2025-06-01"}, {"name": "mechanical ventilation", "present": False}]},
     _has("procedures", "CPAP")),
])
def test_a_concept_is_decided_by_its_own_records(kind: str, text: str, unrelated: dict[str, Any], related: dict[str, Any]) -> None:
    """A record of a neighbouring concept never decides the criterion; a record of the concept (or a narrower one) does."""
    decided = "fail" if kind == "exclusion" else "pass"
    assert verdict(kind, text, unrelated) != decided
    assert verdict(kind, text, related) == decided


def test_immunosuppression_is_a_state_not_a_therapy() -> None:
    """2k: no immunosuppressants on record does not clear "severe immunosuppression" (HIV is one cause)."""
    record = {"conditions": [{"name": "HIV", "onset": "2015-01-01"}], "medications": [{"name": "immunosuppressants", "present": False}]}
    assert verdict("exclusion", "Severe immunosuppression", record) != "pass"


def test_cpap_still_counts_as_the_seed_trials_non_invasive_ventilation() -> None:
    """NCT04745299 E1 (reviewed) reads NIV as positive pressure ventilation, CPAP for sleep apnea
    included: a CPAP record screens as a non-invasive ventilation record did before CPAP had a variable."""
    trial = eligibility.load_trial(REPO / "rules" / "NCT04745299.yaml")
    verdicts = []
    for name in ("CPAP", "non-invasive ventilation"):
        for apnea in (True, False):
            record = {"id": "P", "age": 50, "sex": "female", "procedures": [{"name": name, "date": "2025-06-01"}],
                      "conditions": [{"name": "sleep apnea", "present": apnea, "onset": "2024-01-01"} if apnea else
                                     {"name": "sleep apnea", "present": False}]}
            report = eligibility.screen(trial, Patient.model_validate(record), as_of=AS_OF)
            verdicts.append(next(c.verdict for c in report.criteria if c.id == "E1"))
    assert verdicts[:2] == verdicts[2:] == ["unknown", "fail"]
