"""The shortcuts screening takes for speed (eligibility/report.py, facts.py) change nothing a caller sees.

Reports are built without pydantic's validation (tests/test_report_stability.py compares them
with ``model_construct``'s and checks they share nothing), facts are kept as plain tuples so
that the garbage collector stops tracking them, and conversions and events are memoised
across records: each test states what must stay as it would be without the shortcut.
"""

from __future__ import annotations

import datetime as dt
import gc
import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from eligibility import CriterionResult, Patient, Report, TrialScreener, load_trial
from eligibility.facts import FactsBuilder, Measurement, facts_of
from eligibility.units import round_significant, significant_digits

REPO = Path(__file__).resolve().parents[1]
AS_OF = dt.date(2026, 1, 15)
RECORD: dict[str, Any] = {
    "id": "P7", "birth_date": "1961-03-02", "sex": "female",
    "observations": [
        {"name": "serum creatinine", "value": 176.8, "unit": "µmol/L", "date": "2026-01-10"},
        {"name": "creatinine", "value": 1.1, "unit": "mg/dL", "date": "2025-12-01", "reference_range": {"high": 1.2}},
        {"name": "ALT", "value": 95, "unit": "U/L", "date": "2026-01-05"},
        {"name": "ALSFRS-R", "value": 38, "date": "2026-01-12"},
        {"name": "ALSFRS-R", "value": 39, "date": "2026-01-12"},
        {"name": "El Escorial category", "value": "clinically probable", "date": "2025-11-02"},
        {"name": "shoe size", "value": 38},
    ],
    "conditions": [{"name": "ALS", "onset": "2024-09-01", "diagnosed": "2025-06-01"}, {"name": "epilepsy", "present": False}],
    "medications": [{"name": "riluzole", "start": "2025-07-01"}],
    "procedures": [{"name": "gastrostomy", "present": False}],
}


def _report() -> Report:
    return TrialScreener(load_trial(REPO / "rules" / "NCT04745299.yaml")).screen(Patient.model_validate(RECORD), AS_OF)


def test_a_report_is_the_model_pydantic_would_validate() -> None:
    """Attributes, equality, fields set, dumps and JSON of a screened report equal those of the same report validated."""
    report = _report()
    validated = Report.model_validate(report.model_dump())
    assert report == validated and validated == report
    assert report.model_fields_set == validated.model_fields_set
    assert report.model_dump() == validated.model_dump()
    assert report.model_dump_json(indent=2, exclude_none=True) == validated.model_dump_json(indent=2, exclude_none=True)
    assert report.model_dump_json(exclude_unset=True) == validated.model_dump_json(exclude_unset=True)
    assert report.model_dump(exclude_defaults=True) == validated.model_dump(exclude_defaults=True)
    assert repr(report) == repr(validated)
    assert Report.model_validate_json(report.to_json()) == report
    for mine, theirs in zip(report.criteria, validated.criteria, strict=True):
        assert type(mine) is CriterionResult
        assert mine.__pydantic_extra__ is None and mine.__pydantic_private__ is None
        assert {name: getattr(mine, name) for name in CriterionResult.model_fields} == dict(theirs)
        assert mine.model_fields_set == theirs.model_fields_set
        assert hash(mine.id) == hash(theirs.id)


def test_a_report_nests_in_another_model_and_copies_alone() -> None:
    """Nested in a caller's model a report serialises and validates as a validated one does."""

    class Batch(BaseModel):
        reports: list[Report]

    report = _report()
    validated = Report.model_validate(report.model_dump())
    assert Batch(reports=[report]).model_dump_json() == Batch(reports=[validated]).model_dump_json()
    assert Batch.model_validate({"reports": [report]}) == Batch(reports=[validated])
    assert Report.model_json_schema()["required"] == ["trial", "patient", "as_of", "overall", "criteria"]


def test_facts_are_plain_tuples_the_collector_stops_tracking() -> None:
    """After a collection, a patient's facts leave no tracked object but the Facts record and its dicts."""
    facts = FactsBuilder().build(Patient.model_validate(RECORD))
    gc.collect()
    gc.collect()  # a tuple is untracked once its items are: rows promoted earlier are met after their group
    for group in (*facts.measurement_rows.values(), *facts.findings.values(), *facts.events.values()):
        assert type(group) is tuple and not gc.is_tracked(group), group
        for entry in group:
            assert type(entry) is tuple and not gc.is_tracked(entry), entry
    assert facts.unmatched == ["shoe size"]


def test_measurements_by_name_are_the_rows() -> None:
    """``Facts.measurements`` names the fields of each row; conflicting values on one date are both flagged."""
    facts = FactsBuilder().build(Patient.model_validate(RECORD))
    named = facts.measurements
    assert set(named) == set(facts.measurement_rows)
    for variable_id, rows in facts.measurement_rows.items():
        assert [tuple(m) for m in named[variable_id]] == list(rows)
        assert all(isinstance(m, Measurement) for m in named[variable_id])
    creatinine = named["creatinine"]
    assert [m.date_text for m in creatinine] == ["2026-01-10", "2025-12-01"]  # newest first
    assert creatinine[0].value == 2.0 and creatinine[0].value_text == "2" and creatinine[0].conversion_note
    assert creatinine[1].uln is not None and creatinine[1].uln_assumption is None  # the record's own range
    alt = named["alt"][0]
    assert alt.uln_assumption is not None and alt.uln_shown is not None and alt.uln_shown.endswith(" x ULN")
    assert [m.conflicting for m in named["alsfrs_r"]] == [True, True]


def test_memoised_conversions_and_events_give_what_a_fresh_builder_gives() -> None:
    """A builder that has read many records builds the same facts as a fresh one (memos change nothing)."""
    used = FactsBuilder()
    for value in (176.8, 88.4, 176.8, 53.0):
        used.build(Patient.model_validate({**RECORD, "observations": [
            {"name": "creatinine", "value": value, "unit": "umol/L", "date": "2026-01-01"}]}))
    patient = Patient.model_validate(RECORD)
    again, fresh = used.build(patient), FactsBuilder().build(patient)
    assert again == fresh
    row = used.build(Patient.model_validate({**RECORD, "observations": [
        {"name": "creatinine", "value": 176.8, "unit": "umol/L", "date": "2026-01-01"}]})).measurement_rows["creatinine"][0]
    factor = used.reading(used.vocab["creatinine"], "umol/L").factor
    assert row[5] == round_significant(176.8 * factor, significant_digits(176.8))


def test_facts_cached_on_the_patient_are_reused() -> None:
    """The facts are built once per patient, and a report's JSON does not depend on which screening built them."""
    patient = Patient.model_validate(RECORD)
    assert facts_of(patient) is facts_of(patient)
    assert json.loads(_report().to_json()) == json.loads(_report().to_json())
