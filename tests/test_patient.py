"""The patient record (eligibility/patient.py): contract section 2, and errors that say where."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from eligibility import EligibilityError, InputError, Patient, PatientRecordError, load_patient
from eligibility import patient as patient_module

CONTRACT_EXAMPLE = {
    "id": "P001",
    "birth_date": "1961-03-02",
    "sex": "female",
    "observations": [
        {"name": "serum creatinine", "value": 1.1, "unit": "mg/dL", "date": "2026-01-10", "reference_range": {"low": 0.6, "high": 1.2}},
        {"name": "ALSFRS-R", "value": 38, "date": "2026-01-12"},
        {"name": "FVC", "value": 72, "unit": "% predicted", "date": "2026-01-12"},
        {"name": "El Escorial category", "value": "clinically probable", "date": "2025-11-02"},
    ],
    "conditions": [
        {"name": "amyotrophic lateral sclerosis", "onset": "2024-09-01", "diagnosed": "2025-06-01"},
        {"name": "epilepsy", "present": False},
    ],
    "medications": [{"name": "riluzole", "start": "2025-07-01", "end": None}],
    "procedures": [{"name": "gastrostomy", "date": "2025-12-01"}],
}


def write(tmp_path: Path, content: str | bytes, name: str = "patient.json") -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def load_error(tmp_path: Path, content: str | bytes | dict[str, Any]) -> PatientRecordError:
    text = json.dumps(content) if isinstance(content, dict) else content
    with pytest.raises(PatientRecordError) as caught:
        load_patient(write(tmp_path, text))
    return caught.value


def with_(**changes: Any) -> dict[str, Any]:
    return {**CONTRACT_EXAMPLE, **changes}


def test_the_contract_example_loads(tmp_path: Path) -> None:
    patient = load_patient(write(tmp_path, json.dumps(CONTRACT_EXAMPLE)))
    assert (patient.id, patient.sex, str(patient.birth_date)) == ("P001", "female", "1961-03-02")
    assert [o.value for o in patient.observations] == [1.1, 38, 72, "clinically probable"]
    assert patient.conditions[1].present is False and patient.conditions[0].present is True
    assert patient.medications[0].end is None


def test_age_instead_of_birth_date() -> None:
    patient = Patient.model_validate({"id": "P2", "age": 61, "sex": "male"})
    assert patient.age == 61 and patient.birth_date is None


def test_codes_on_entries() -> None:
    patient = Patient.model_validate({"id": "P3", "age": 50, "sex": "male",
                                      "conditions": [{"name": "ALS", "code": {"system": "icd10", "code": "G12.21"}}]})
    assert patient.conditions[0].code is not None and patient.conditions[0].code.code == "G12.21"


def test_records_are_frozen() -> None:
    patient = Patient.model_validate({"id": "P2", "age": 61, "sex": "male"})
    with pytest.raises(Exception):
        patient.sex = "female"  # type: ignore[misc]


# --- invalid records: the error names the JSON path ----------------------------------------------


@pytest.mark.parametrize(
    ("record", "path", "words"),
    [
        (with_(observations=[{"name": "ALSFRS-R", "value": [38]}]), "$.observations[0].value", "valid"),
        (with_(observations=[{"name": "ALSFRS-R", "value": True}]), "$.observations[0].value", "valid"),
        (with_(observations=[{"name": "ALSFRS-R", "value": 38, "date": "2026-13-01"}]), "$.observations[0].date", "date"),
        (with_(procedures=[{"name": "gastrostomy", "date": "yesterday"}]), "$.procedures[0].date", "date"),
        (with_(birth_date="1990-02-30"), "$.birth_date", "date"),
        (with_(sex="M"), "$.sex", "'male' or 'female'"),
        (with_(age=-1, birth_date=None), "$.age", "greater than or equal to 0"),
        (with_(extra_field=1), "$.extra_field", "Extra inputs"),
        (with_(conditions=[{"name": "epilepsy", "severity": "mild"}]), "$.conditions[0].severity", "Extra inputs"),
        (with_(observations=[{"name": "creatinine", "value": 1, "reference_range": {"high": "high"}}]),
         "$.observations[0].reference_range.high", "number"),
        (with_(medications=[{"value": 1}]), "$.medications[0].name", "required"),
        ({"sex": "female", "age": 50}, "$.id", "required"),
        ({"id": "P1", "sex": "female"}, "$", "birth_date or age"),
    ],
)
def test_invalid_record_error_has_the_json_path(tmp_path: Path, record: dict[str, Any], path: str, words: str) -> None:
    error = load_error(tmp_path, record)
    assert error.path == path
    assert words in error.message
    assert path in str(error) and "patient.json" in str(error)


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_not_a_finite_number(tmp_path: Path, literal: str) -> None:
    text = json.dumps(with_(observations=[{"name": "creatinine", "value": 0, "unit": "mg/dL"}])).replace('"value": 0', f'"value": {literal}')
    error = load_error(tmp_path, text)
    assert error.path == "$.observations[0].value" and "finite" in error.message


def test_a_union_failure_is_one_problem(tmp_path: Path) -> None:
    error = load_error(tmp_path, with_(observations=[{"name": "ALSFRS-R", "value": [38]}]))
    assert "more problem" not in error.message


def test_several_problems_are_counted(tmp_path: Path) -> None:
    error = load_error(tmp_path, with_(sex="M", extra_field=1))
    assert "(and 1 more problem)" in error.message


def test_not_an_object(tmp_path: Path) -> None:
    error = load_error(tmp_path, "[1, 2]")
    assert error.path == "$" and "JSON object" in error.message


# --- invalid files ---------------------------------------------------------------------------------


def test_invalid_json_gives_line_and_column(tmp_path: Path) -> None:
    error = load_error(tmp_path, '{"id": "P1",\n  "age": 50,,\n  "sex": "male"}')
    assert (error.line, error.column) == (2, 13)
    assert "invalid JSON" in error.message and "patient.json:2:13" in str(error)


def test_a_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    patient = load_patient(write(tmp_path, b"\xef\xbb\xbf" + json.dumps(CONTRACT_EXAMPLE).encode("utf-8")))
    assert patient.id == "P001"


@pytest.mark.parametrize("content", [b"", b"  \n\t\n"])
def test_an_empty_file_is_an_error(tmp_path: Path, content: bytes) -> None:
    assert "empty" in load_error(tmp_path, content).message


def test_not_utf8(tmp_path: Path) -> None:
    assert "UTF-8" in load_error(tmp_path, b'{"id": "P\xff"}').message


def test_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(PatientRecordError) as caught:
        load_patient(tmp_path / "nope.json")
    assert "nope.json" in str(caught.value)


def test_an_oversized_file_is_refused_before_reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(patient_module, "MAX_RECORD_BYTES", 10)
    assert "larger than" in load_error(tmp_path, json.dumps(CONTRACT_EXAMPLE)).message


def test_errors_belong_to_the_package_hierarchy(tmp_path: Path) -> None:
    error = load_error(tmp_path, "{")
    assert isinstance(error, InputError) and isinstance(error, EligibilityError) and isinstance(error, ValueError)
