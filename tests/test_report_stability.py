"""Screening reports stay the same, word for word, while the evaluator and report are tuned.

Every seed rule file screens the three example patients and the varied ones in
``tests/fixtures/reports/patients.json`` (edge cases written by hand, then records made by the
benchmark's generator) on two screening dates (and closed world for the hand-made ones), and
each report's JSON is compared with the golden file ``tests/fixtures/reports/<trial>.json``.
The goldens leave out each criterion's ``text`` and ``note``, which are checked against the
trial instead (they are the trial's, not the screening's; repeating them would triple the
files). One ``TrialScreener`` per trial serves every patient and date, so state kept across
screenings would show here.

A deliberate change of wording or evidence: regenerate the goldens with
``ELIGIBILITY_REGENERATE_GOLDENS=1 .venv/bin/python -m pytest tests/test_report_stability.py``
and review the diff.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import pickle
from pathlib import Path
from typing import Any

import pytest

from eligibility import CriterionResult, Patient, Trial, TrialScreener, load_trial

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "reports"
EXAMPLES = ("eligible.json", "ineligible.json", "needs-review.json")
TRIALS = ("NCT02116634", "NCT03828123", "NCT04745299", "TCA-ALS-phase1")
SCREENINGS = ((dt.date(2026, 1, 15), False), (dt.date(2025, 3, 1), False))
CLOSED_WORLD = (dt.date(2026, 1, 15), True)  # for the examples and hand-made edge cases
HAND_MADE = len(EXAMPLES) + 7  # the examples, then the edge cases at the head of patients.json
REGENERATE = os.environ.get("ELIGIBILITY_REGENERATE_GOLDENS") == "1"


def patient_records() -> list[dict[str, Any]]:
    examples = [json.loads((REPO / "examples" / name).read_text(encoding="utf-8")) for name in EXAMPLES]
    return examples + json.loads((FIXTURES / "patients.json").read_text(encoding="utf-8"))


def screened(trial: Trial) -> dict[str, Any]:
    """Every patient x screening of one trial: {"<patient> <as_of>[ closed]": report JSON}.

    Each criterion's text and note are checked against the trial here and left out.
    """
    screener = TrialScreener(trial)
    reports: dict[str, Any] = {}
    for index, record in enumerate(patient_records()):
        patient = Patient.model_validate(record)  # facts built once, reused on every date
        for as_of, closed_world in (*SCREENINGS, CLOSED_WORLD) if index < HAND_MADE else SCREENINGS:
            report = json.loads(screener.screen(patient, as_of, closed_world=closed_world).model_dump_json())
            for result, criterion in zip(report["criteria"], trial.criteria, strict=True):
                assert (result.pop("text"), result.pop("note")) == (criterion.text, criterion.note)
            reports[f"{patient.id} {as_of}{' closed' if closed_world else ''}"] = report
    return reports


@pytest.mark.parametrize("trial_id", TRIALS)
def test_reports_match_goldens(trial_id: str) -> None:
    golden = FIXTURES / f"{trial_id}.json"
    reports = screened(load_trial(REPO / "rules" / f"{trial_id}.yaml"))
    if REGENERATE:
        golden.write_text(json.dumps(reports, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    expected = json.loads(golden.read_text(encoding="utf-8"))
    assert list(reports) == list(expected)
    for key, report in reports.items():
        assert report["criteria"] == expected[key]["criteria"], key  # per-criterion diff on failure
        assert report == expected[key], key


def test_to_json_is_the_report_without_nulls() -> None:
    """``to_json`` (the CLI's --format json) is the same report, absent fields left out."""
    trial = load_trial(REPO / "rules" / "NCT04745299.yaml")
    patient = Patient.model_validate(patient_records()[0])
    report = TrialScreener(trial).screen(patient, dt.date(2026, 1, 15))
    full = json.loads(report.model_dump_json())
    slim = json.loads(report.to_json())
    assert slim["criteria"] == [{k: v for k, v in c.items() if v is not None} for c in full["criteria"]]
    assert {k: v for k, v in full.items() if k != "criteria" and v is not None} == {k: v for k, v in slim.items() if k != "criteria"}


def test_reports_are_the_models_model_construct_makes() -> None:
    """The screener fills pydantic's slots itself (``report._trusted_constructor``): its
    objects must behave as ``model_construct``'s do, in every way pydantic offers."""
    trial = load_trial(REPO / "rules" / "NCT04745299.yaml")
    report = TrialScreener(trial).screen(Patient.model_validate(patient_records()[2]), dt.date(2026, 1, 15))
    models = [*report.criteria, report]
    for model in models:
        built = type(model).model_construct(**dict(model.__dict__))
        assert model == built and repr(model) == repr(built)
        assert model.model_fields_set == built.model_fields_set
        assert (model.__pydantic_extra__, model.__pydantic_private__) == (built.__pydantic_extra__, built.__pydantic_private__)
        assert model.model_dump_json() == built.model_dump_json()
        assert pickle.loads(pickle.dumps(model)) == model
    first = report.criteria[0]
    changed = first.model_copy(update={"reason": "changed"})
    assert changed.reason == "changed" and first.reason != "changed"
    assert first.model_fields_set == report.criteria[1].model_fields_set == set(CriterionResult.model_fields)


def test_reports_share_no_mutable_parts() -> None:
    """Every screening builds its own evidence and lists: nothing is reused across reports
    (one report changed by a caller must not change another)."""
    screener = TrialScreener(load_trial(REPO / "rules" / "NCT04745299.yaml"))
    patient = Patient.model_validate(patient_records()[2])
    first, second = (screener.screen(patient, dt.date(2026, 1, 15)) for _ in range(2))
    assert first == second and first.criteria is not second.criteria
    for one, other in zip(first.criteria, second.criteria, strict=True):
        assert one is not other and one.evidence is not other.evidence and one.missing is not other.missing
        for mine, theirs in zip(one.evidence, other.evidence, strict=True):
            assert mine is not theirs
            assert all(value is not theirs[key] for key, value in mine.items() if isinstance(value, (dict, list)))
