"""FHIR R4 Bundles as patient input (eligibility/fhir.py).

Three kinds of bundle: small hand-made ones, one a behaviour; bundles from two generators no
one here wrote, carebundle (generated in the test run, seeded) and tietai-synthea (two
committed, trimmed by tests/fixtures/fhir/make_fixtures.py, and one full bundle generated in
the run); and examples/fhir-bundle.json through the command line. The generators' bundles are
screened against compiled lab criteria, and each verdict is checked against the test's own
reading of the bundle's JSON (its own LOINC codes, units and thresholds), not the engine's.
No network: both generators work offline.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import eligibility
from eligibility import PatientRecordError, load_patient, patient_from_fhir
from eligibility.cli import main

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures" / "fhir"
EXAMPLE = REPO / "examples" / "fhir-bundle.json"
AS_OF = dt.date(2026, 1, 15)
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
UCUM = "http://unitsofmeasure.org"


# ---------------------------------------------------------------- building bundles by hand
def bundle(*resources: dict[str, Any], patient: dict[str, Any] | None = None) -> dict[str, Any]:
    patient = patient or {"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1961-03-02"}
    return {"resourceType": "Bundle", "type": "collection",
            "entry": [{"fullUrl": "urn:uuid:p1", "resource": patient}, *({"resource": r} for r in resources)]}


def coded(system: str, code: str, display: str | None = None, text: str | None = None) -> dict[str, Any]:
    coding = {"system": system, "code": code, **({"display": display} if display else {})}
    return {"coding": [coding], **({"text": text} if text else {})}


def observation(code: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    return {"resourceType": "Observation", "status": "final", "subject": {"reference": "urn:uuid:p1"},
            "code": code or coded(LOINC, "2160-0", "Creatinine [Mass/volume] in Serum or Plasma"),
            "effectiveDateTime": "2026-01-10", **fields}


def quantity(value: Any, unit: str = "mg/dL", code: str | None = "mg/dL") -> dict[str, Any]:
    return {"value": value, "unit": unit, **({"system": UCUM, "code": code} if code else {})}


def status(kind: str, code: str) -> dict[str, Any]:
    return {"coding": [{"system": f"http://terminology.hl7.org/CodeSystem/{kind}", "code": code}]}


def read(*resources: dict[str, Any], **kwargs: Any) -> eligibility.Patient:
    return patient_from_fhir(bundle(*resources, **kwargs))


def error_of(data: Any) -> PatientRecordError:
    with pytest.raises(PatientRecordError) as caught:
        patient_from_fhir(data, source="b.json")
    return caught.value


# ---------------------------------------------------------------- Patient
def test_patient_demographics() -> None:
    patient = read()
    assert (patient.id, patient.sex, patient.birth_date) == ("p1", "female", dt.date(1961, 3, 2))
    assert patient.observations == patient.conditions == patient.medications == patient.procedures == ()


@pytest.mark.parametrize("gender", ["other", "unknown", None])
def test_gender_other_or_unknown_is_an_error_naming_the_field(gender: str | None) -> None:
    patient = {"resourceType": "Patient", "id": "p1", "birthDate": "1961-03-02", **({"gender": gender} if gender else {})}
    error = error_of(bundle(patient=patient))
    assert error.path == "$.entry[0].resource.gender"
    assert "male or female" in error.message and "b.json" in str(error)


def test_us_core_birth_sex_decides_when_gender_does_not() -> None:
    patient = {"resourceType": "Patient", "id": "p1", "birthDate": "1961-03-02", "gender": "other", "extension": [
        {"url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex", "valueCode": "M"}]}
    assert read(patient=patient).sex == "male"


@pytest.mark.parametrize("birth_date, problem", [("1961", "not a full date"), ("1961-02-30", "not a valid date"),
                                                 (None, "no birthDate"), (19610302, "expected a date")])
def test_birth_date_must_be_a_full_date(birth_date: Any, problem: str) -> None:
    patient = {"resourceType": "Patient", "id": "p1", "gender": "male", **({"birthDate": birth_date} if birth_date else {})}
    error = error_of(bundle(patient=patient))
    assert error.path == "$.entry[0].resource.birthDate" and problem in error.message


def test_lone_patient_resource_is_a_record_without_entries() -> None:
    patient = patient_from_fhir({"resourceType": "Patient", "id": "solo", "gender": "male", "birthDate": "1970-01-01"})
    assert (patient.id, patient.sex) == ("solo", "male")


def test_repeated_patient_resource_of_the_same_person_is_one_patient() -> None:
    """An interface replay repeats the Patient with a new id: same identifier, birth date and gender."""
    first = {"resourceType": "Patient", "id": "a", "gender": "male", "birthDate": "1970-01-01",
             "identifier": [{"system": "urn:mrn", "value": "42"}]}
    data = bundle(observation(valueQuantity=quantity(1.0), subject={"reference": "Patient/b"}),
                  {**first, "id": "b"}, patient=first)
    patient = patient_from_fhir(data)
    assert patient.id == "a" and len(patient.observations) == 1


# ---------------------------------------------------------------- Observation
def test_value_quantity_with_ucum_code_date_and_reference_range() -> None:
    [found] = read(observation(valueQuantity=quantity(1.1), effectiveDateTime="2026-01-10T23:30:00-05:00",
                               referenceRange=[{"low": quantity(0.6), "high": quantity(1.2)}])).observations
    assert (found.name, found.value, found.unit) == ("Creatinine [Mass/volume] in Serum or Plasma", 1.1, "mg/dL")
    assert found.date == dt.date(2026, 1, 10)  # the date as written, in its own time zone
    assert (found.reference_range.low, found.reference_range.high) == (0.6, 1.2)
    assert (found.code.system, found.code.code) == (LOINC, "2160-0")


def test_decimals_become_floats() -> None:
    text = json.dumps(bundle(observation(valueQuantity=quantity(1.10), referenceRange=[{"high": quantity(1.2)}])))
    [found] = patient_from_fhir(json.loads(text, parse_float=Decimal)).observations
    assert type(found.value) is float and found.value == 1.1
    assert type(found.reference_range.high) is float


@pytest.mark.parametrize("fields, value, unit", [
    ({"valueInteger": 38}, 38, None),
    ({"valueString": "clinically probable"}, "clinically probable", None),
    ({"valueCodeableConcept": {"text": "clinically definite"}}, "clinically definite", None),
    ({"valueCodeableConcept": coded(SNOMED, "260385009", "Negative (qualifier value)")}, "Negative", None),
    ({"valueQuantity": {"value": 0.2, "comparator": "<", "unit": "mg/dL"}}, "<0.2", "mg/dL"),  # a bound, not a value
    ({"valueQuantity": {"value": 72, "unit": "beats/minute", "system": UCUM, "code": "/min"}}, 72, "/min"),
    ({"valueQuantity": {"value": 72, "unit": "% predicted"}}, 72, "% predicted"),
])
def test_value_kinds(fields: dict[str, Any], value: Any, unit: str | None) -> None:
    [found] = read(observation(**fields)).observations
    assert (found.value, found.unit) == (value, unit)


def test_observations_without_a_usable_value_are_skipped() -> None:
    patient = read(observation(dataAbsentReason={"text": "not performed"}),
                   observation(valueRange={"low": quantity(1), "high": quantity(2)}),
                   observation(valueQuantity={"unit": "mg/dL"}))
    assert patient.observations == ()


@pytest.mark.parametrize("dates, expected", [
    ({"effectivePeriod": {"start": "2025-12-01T08:00:00Z", "end": "2025-12-02"}}, dt.date(2025, 12, 1)),
    ({"effectiveInstant": "2025-11-30T10:00:00.123+01:00"}, dt.date(2025, 11, 30)),
    ({"issued": "2025-11-29T10:00:00Z"}, dt.date(2025, 11, 29)),
    ({"effectiveDateTime": "2025-11"}, None),  # a month is not a day: unknown, not the 1st
])
def test_observation_dates(dates: dict[str, Any], expected: dt.date | None) -> None:
    resource = observation(valueQuantity=quantity(1.0))
    del resource["effectiveDateTime"]
    [found] = read({**resource, **dates}).observations
    assert found.date == expected


def test_entered_in_error_and_cancelled_observations_are_ignored() -> None:
    patient = read(observation(valueQuantity=quantity(2.4), status="entered-in-error"),
                   observation(valueQuantity=quantity(2.5), status="cancelled"),
                   observation(valueQuantity=quantity(0.9), status="preliminary"))
    assert [o.value for o in patient.observations] == [0.9]


def test_components_are_observations_of_their_own() -> None:
    panel = observation(coded(LOINC, "85354-9", "Blood pressure panel with all children optional"), component=[
        {"code": coded(LOINC, "8480-6", "Systolic blood pressure"), "valueQuantity": quantity(146, "mmHg", "mm[Hg]")},
        {"code": coded(LOINC, "8462-4", "Diastolic blood pressure"), "valueQuantity": quantity(91, "mmHg", "mm[Hg]")}])
    patient = read(panel)
    assert [(o.name, o.value, o.unit, o.date) for o in patient.observations] == [
        ("Systolic blood pressure", 146, "mm[Hg]", dt.date(2026, 1, 10)),
        ("Diastolic blood pressure", 91, "mm[Hg]", dt.date(2026, 1, 10))]
    trial = eligibility.compile_trial("Exclusion Criteria:\n* Systolic blood pressure > 140 mmHg")
    assert eligibility.screen(trial, patient, as_of=AS_OF).criteria[0].verdict == "fail"


def test_the_coding_the_vocabulary_knows_is_kept_and_its_name_preferred() -> None:
    local = {"system": "urn:oid:1.2.3", "code": "CREA", "display": "CREA"}
    code = {"coding": [local, {"system": LOINC, "code": "2160-0", "display": "Creatinine [Mass/volume] in Serum or Plasma"}],
            "text": "Creatinine"}
    [found] = read(observation(code, valueQuantity=quantity(1.0))).observations
    assert (found.code.system, found.code.code, found.name) == (LOINC, "2160-0", "Creatinine")
    [uncoded] = read(observation({"coding": [local], "text": "serum creatinine"}, valueQuantity=quantity(1.0))).observations
    assert (uncoded.name, uncoded.code.code) == ("serum creatinine", "CREA")


def test_reference_range_in_another_unit_is_not_used() -> None:
    [found] = read(observation(valueQuantity=quantity(1.1), referenceRange=[
        {"low": quantity(53, "umol/L", "umol/L"), "high": quantity(106, "umol/L", "umol/L")}])).observations
    assert found.reference_range is None


# ---------------------------------------------------------------- Condition, AllergyIntolerance
def condition(code: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"resourceType": "Condition", "code": code, "subject": {"reference": "urn:uuid:p1"},
            "clinicalStatus": status("condition-clinical", "active"),
            "verificationStatus": status("condition-ver-status", "confirmed"), **fields}


ALS = coded(SNOMED, "86044005", "Amyotrophic lateral sclerosis (disorder)")


def test_condition_dates_and_status() -> None:
    patient = read(
        condition(ALS, onsetDateTime="2024-09-01T00:00:00Z", recordedDate="2025-06-01"),
        condition(coded(SNOMED, "84757009", "Epilepsy (disorder)"),
                  verificationStatus=status("condition-ver-status", "refuted")),
        condition(coded(SNOMED, "22298006", "Myocardial infarction (disorder)"),
                  verificationStatus=status("condition-ver-status", "entered-in-error")),
        condition(coded(SNOMED, "195662009", "Acute viral pharyngitis (disorder)"), onsetPeriod={"start": "2020-01-01"},
                  abatementDateTime="2020-01-10", clinicalStatus=status("condition-clinical", "resolved")))
    als, epilepsy, pharyngitis = patient.conditions
    assert (als.name, als.onset, als.diagnosed, als.end, als.present) == (
        "Amyotrophic lateral sclerosis", dt.date(2024, 9, 1), dt.date(2025, 6, 1), None, True)  # tag dropped: a known name
    assert epilepsy.present is False
    assert (pharyngitis.onset, pharyngitis.end) == (dt.date(2020, 1, 1), dt.date(2020, 1, 10))
    trial = eligibility.compile_trial("Inclusion Criteria:\n* Amyotrophic lateral sclerosis\nExclusion Criteria:\n"
                                      "* Epilepsy\n* Myocardial infarction")
    assert [c.verdict for c in eligibility.screen(trial, patient, as_of=AS_OF).criteria] == ["pass", "pass", "unknown"]


def test_a_resolved_condition_without_a_date_is_not_current() -> None:
    resolved = status("condition-clinical", "resolved")
    patient = read(condition(coded(SNOMED, "77386006", "Pregnancy"), clinicalStatus=resolved,
                             onsetDateTime="2025-01-01", meta={"lastUpdated": "2025-10-02T08:00:00Z"}),
                   condition(coded(SNOMED, "84757009", "Epilepsy"), clinicalStatus=resolved, recordedDate="2019-05-05"))
    assert [c.end for c in patient.conditions] == [dt.date(2025, 10, 2), dt.date(2019, 5, 5)]
    trial = eligibility.compile_trial("Exclusion Criteria:\n* Pregnancy")
    assert eligibility.screen(trial, patient, as_of=AS_OF).criteria[0].verdict == "pass"


def allergy(code: dict[str, Any], verification: str = "confirmed") -> dict[str, Any]:
    return {"resourceType": "AllergyIntolerance", "code": code, "patient": {"reference": "Patient/p1"},
            "clinicalStatus": status("allergyintolerance-clinical", "active"),
            "verificationStatus": status("allergyintolerance-verification", verification), "recordedDate": "2020-02-02"}


def test_allergies_are_conditions_named_for_their_substance() -> None:
    patient = read(allergy(coded(SNOMED, "764146007", "Penicillin (substance)")),
                   allergy(coded(RXNORM, "6809", "metformin")),
                   allergy({"text": "Streptomycin"}, "refuted"))
    penicillin, metformin, streptomycin = patient.conditions
    assert (penicillin.name, penicillin.code, penicillin.diagnosed) == ("allergy to Penicillin", None, dt.date(2020, 2, 2))
    assert (metformin.name, metformin.code) == ("allergy to metformin", None)  # never the drug itself
    assert (streptomycin.name, streptomycin.present) == ("allergy to Streptomycin", False)
    assert patient.medications == ()
    trial = eligibility.compile_trial("Exclusion Criteria:\n* Penicillin allergy\n* Streptomycin allergy\n* Metformin")
    assert [c.verdict for c in eligibility.screen(trial, patient, as_of=AS_OF).criteria] == ["fail", "pass", "unknown"]


def test_an_allergy_coded_as_an_allergy_matches_by_code() -> None:
    [found] = read(allergy(coded(SNOMED, "91936005", "Allergy to penicillin (finding)"), "refuted")).conditions
    assert (found.code.code, found.present) == ("91936005", False)


# ---------------------------------------------------------------- medications and procedures
def medication_statement(**fields: Any) -> dict[str, Any]:
    return {"resourceType": "MedicationStatement", "status": "active", "subject": {"reference": "urn:uuid:p1"}, **fields}


METFORMIN_TABLET = coded(RXNORM, "861007", "metformin hydrochloride 500 MG Oral Tablet")


def test_medication_kinds_dates_and_status() -> None:
    patient = read(
        medication_statement(medicationCodeableConcept={"text": "riluzole 50 mg tablet"},
                             effectivePeriod={"start": "2025-07-01"}),
        medication_statement(medicationCodeableConcept={"text": "edaravone"}, status="not-taken"),
        medication_statement(medicationCodeableConcept={"text": "aspirin"}, status="entered-in-error"),
        {"resourceType": "MedicationRequest", "status": "active", "intent": "order",
         "medicationCodeableConcept": METFORMIN_TABLET, "authoredOn": "2025-03-03T09:00:00Z"},
        {"resourceType": "MedicationRequest", "status": "cancelled", "intent": "order",
         "medicationCodeableConcept": {"text": "warfarin"}, "authoredOn": "2025-03-03"},
        {"resourceType": "MedicationRequest", "status": "stopped", "intent": "order",
         "medicationCodeableConcept": {"text": "clopidogrel"}, "authoredOn": "2015-03-03"},
        {"resourceType": "MedicationAdministration", "status": "completed",
         "medicationCodeableConcept": {"text": "edaravone 60 mg infusion"}, "effectiveDateTime": "2025-12-20T10:00:00Z"})
    assert [(m.name, m.present, m.start, m.end) for m in patient.medications] == [
        ("riluzole", True, dt.date(2025, 7, 1), None),
        ("edaravone", False, None, None),
        ("metformin hydrochloride", True, dt.date(2025, 3, 3), None),  # RxNorm drug name without strength and form
        ("clopidogrel", True, dt.date(2015, 3, 3), dt.date(2015, 3, 3)),  # stopped, date unknown: not current
        ("edaravone", True, dt.date(2025, 12, 20), dt.date(2025, 12, 20))]
    assert patient.medications[2].code.code == "861007"
    trial = eligibility.compile_trial("Exclusion Criteria:\n* Metformin\n* Clopidogrel")
    assert [c.verdict for c in eligibility.screen(trial, patient, as_of=AS_OF).criteria] == ["fail", "pass"]


def test_medication_from_a_contained_or_referenced_medication_resource() -> None:
    contained = {"resourceType": "MedicationRequest", "status": "active", "intent": "order", "authoredOn": "2025-01-01",
                 "contained": [{"resourceType": "Medication", "id": "m1", "code": coded(RXNORM, "6809", "metformin")}],
                 "medicationReference": {"reference": "#m1"}}
    referenced = {"resourceType": "MedicationStatement", "status": "active", "effectiveDateTime": "2025-02-02",
                  "medicationReference": {"reference": "Medication/m2"}}
    unresolved = {"resourceType": "MedicationStatement", "status": "active",
                  "medicationReference": {"reference": "Medication/elsewhere", "display": "warfarin"}}
    data = bundle(contained, referenced, unresolved)
    data["entry"].append({"fullUrl": "http://example.org/fhir/Medication/m2", "resource": {
        "resourceType": "Medication", "id": "m2", "code": coded(RXNORM, "1191", "aspirin")}})
    found = patient_from_fhir(data).medications
    assert [(m.name, m.code.code if m.code else None) for m in found] == [
        ("metformin", "6809"), ("aspirin", "1191"), ("warfarin", None)]


def test_procedures() -> None:
    gastrostomy = {"resourceType": "Procedure", "status": "completed", "code": {"text": "Percutaneous endoscopic gastrostomy"},
                   "performedDateTime": "2025-12-01T10:00:00Z"}
    ventilation = {"resourceType": "Procedure", "status": "in-progress", "code": {"text": "non-invasive ventilation"},
                   "performedPeriod": {"start": "2025-11-01"}}
    planned = {"resourceType": "Procedure", "status": "not-done", "code": {"text": "tracheostomy"}}
    patient = read(gastrostomy, ventilation, planned)
    assert [(p.name, p.date, p.end) for p in patient.procedures] == [
        ("Percutaneous endoscopic gastrostomy", dt.date(2025, 12, 1), dt.date(2025, 12, 1)),
        ("non-invasive ventilation", dt.date(2025, 11, 1), None)]


# ---------------------------------------------------------------- errors: a JSON path into the bundle
def _with(path: list[Any], value: Any) -> dict[str, Any]:
    data = bundle(observation(valueQuantity=quantity(1.1)))
    node: Any = data
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return data


@pytest.mark.parametrize("data, path, problem", [
    (_with(["entry", 1, "resource", "valueQuantity", "value"], "1.1"), "$.entry[1].resource.valueQuantity.value",
     "expected a number, not the string '1.1'"),
    (_with(["entry", 1, "resource", "valueQuantity", "value"], True), "$.entry[1].resource.valueQuantity.value",
     "expected a number"),
    (_with(["entry", 1, "resource", "effectiveDateTime"], "2026-13-01"), "$.entry[1].resource.effectiveDateTime",
     "not a valid date"),
    (_with(["entry", 1, "resource", "effectiveDateTime"], "10/01/2026"), "$.entry[1].resource.effectiveDateTime",
     "not a FHIR date"),
    (_with(["entry", 1], "Observation"), "$.entry[1]", "expected a JSON object"),
    (_with(["entry"], {}), "$.entry", "expected a JSON array"),
    (_with(["entry", 1, "resource", "code"], {"coding": []}), "$.entry[1].resource.code", "neither a coded coding nor a text"),
    (_with(["entry", 1, "resource", "code", "coding", 0, "code"], 2160), "$.entry[1].resource.code.coding[0].code",
     "expected a string"),
    (_with(["entry", 1, "resource", "subject"], {"reference": "Patient/p2"}), "$.entry[1].resource.subject.reference",
     "refers to Patient 'p2'"),
    (_with(["entry", 1, "resource", "referenceRange"], [{"high": {"value": "1.2"}}]),
     "$.entry[1].resource.referenceRange[0].high.value", "expected a number"),
    (_with(["entry", 0, "resource", "resourceType"], "Practitioner"), "$.entry", "no Patient resource"),
    (_with(["resourceType"], "Observation"), "$.resourceType", "not a patient record"),
])
def test_errors_name_the_json_path(data: dict[str, Any], path: str, problem: str) -> None:
    error = error_of(data)
    assert (error.path, error.source) == (path, "b.json")
    assert problem in error.message, error.message


def test_two_different_patients_are_an_error() -> None:
    other = {"resourceType": "Patient", "id": "p2", "gender": "male", "birthDate": "1950-01-01"}
    error = error_of(bundle(other))
    assert error.path == "$.entry[1].resource" and "different patients" in error.message


def test_entries_that_name_nothing_are_skipped() -> None:
    """A Condition or Procedure without a code (allowed by FHIR), a transaction-response entry without a
    resource, and resource types the engine does not read (Encounter, Claim) are left out."""
    data = bundle({"resourceType": "Condition", "subject": {"reference": "urn:uuid:p1"}, "onsetDateTime": "2020-01-01"},
                  {"resourceType": "Procedure", "status": "completed", "performedDateTime": "2020-01-01"},
                  {"resourceType": "Encounter", "status": "finished"}, {"resourceType": "Claim", "total": "a lot"})
    data["entry"].append({"response": {"status": "201 Created"}})
    patient = patient_from_fhir(data)
    assert patient.conditions == patient.procedures == ()


def test_a_missing_observation_code_is_an_error() -> None:
    resource = observation(valueQuantity=quantity(1.0))
    del resource["code"]
    assert error_of(bundle(resource)).path == "$.entry[1].resource.code"


# ---------------------------------------------------------------- files and the command line
def test_load_patient_tells_a_bundle_by_content(tmp_path: Path) -> None:
    path = tmp_path / "record.data"
    path.write_text(json.dumps(bundle(observation(valueQuantity=quantity(1.1)))), encoding="utf-8")
    patient = load_patient(path)
    assert patient.id == "p1" and patient.observations[0].value == 1.1


def test_cli_screens_the_example_bundle(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["screen", str(REPO / "rules" / "NCT04745299.yaml"), str(EXAMPLE), "--as-of", "2026-01-15",
                 "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    verdicts = {c["id"]: c["verdict"] for c in report["criteria"]}
    assert report["patient"] == "fhir-als-001" and report["overall"] == "needs_review"
    # decided from the bundle: ALSFRS-R 38 (I5), FVC 78 % predicted (E3), epilepsy refuted (E6), creatinine 0.8
    # mg/dL, not the 2.4 entered in error (E7), liver labs against their own ranges (E8), allergies refuted (E11)
    assert {k: verdicts[k] for k in ("I1", "I3", "I4", "I5", "E3", "E6", "E7", "E8", "E9", "E11", "E13")} == dict.fromkeys(
        ("I1", "I3", "I4", "I5", "E3", "E6", "E7", "E8", "E9", "E11", "E13"), "pass")
    # a bundle cannot say "no gastrostomy": unknown in an open world
    assert verdicts["E1"] == verdicts["E2"] == "unknown"


def test_the_example_bundle_and_the_native_example_are_the_same_record() -> None:
    """examples/fhir-bundle.json holds examples/eligible.json's patient: in a closed world, the same verdicts."""
    trial = eligibility.load_trial(REPO / "rules" / "NCT04745299.yaml")
    screener = eligibility.TrialScreener(trial)
    fhir = screener.screen(load_patient(EXAMPLE), AS_OF, closed_world=True)
    native = screener.screen(load_patient(REPO / "examples" / "eligible.json"), AS_OF, closed_world=True)
    assert fhir.overall == native.overall == "eligible"
    assert [c.verdict for c in fhir.criteria] == [c.verdict for c in native.criteria]


def test_cli_reports_a_bad_bundle_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(_with(["entry", 1, "resource", "valueQuantity", "value"], "high")), encoding="utf-8")
    assert main(["screen", str(REPO / "rules" / "NCT04745299.yaml"), str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "$.entry[1].resource.valueQuantity.value" in err and "bad.json" in err


# ---------------------------------------------------------------- generated patients: the test's own reading
LAB_CRITERIA = ("Inclusion Criteria:\n* Serum creatinine < 2.0 mg/dL\n* eGFR >= 60 mL/min/1.73 m2\n* HbA1c < 8%\n"
                "* Hemoglobin >= 10 g/dL\n* Platelets >= 100,000/mm3")
# criterion id -> LOINC codes, factor from each UCUM unit to the criterion's unit, comparison, threshold
LABS: dict[str, tuple[set[str], dict[str, float], str, float]] = {
    "I1": ({"2160-0", "38483-4"}, {"mg/dL": 1.0, "umol/L": 1 / 88.42}, "<", 2.0),
    "I2": ({"98979-8", "33914-3"}, {"mL/min/{1.73_m2}": 1.0}, ">=", 60.0),
    "I3": ({"4548-4"}, {"%": 1.0}, "<", 8.0),
    "I4": ({"718-7"}, {"g/dL": 1.0, "g/L": 0.1}, ">=", 10.0),
    "I5": ({"777-3"}, {"10*3/uL": 1000.0, "10*9/L": 1000.0}, ">=", 100_000.0),  # per mm3
}


@pytest.fixture(scope="module")
def lab_trial() -> eligibility.Trial:
    trial = eligibility.compile_trial(LAB_CRITERIA)
    assert [(c.id, c.compiled, c.predicate.variable) for c in trial.criteria] == [  # type: ignore[union-attr]
        ("I1", True, "creatinine"), ("I2", True, "egfr"), ("I3", True, "hba1c"), ("I4", True, "hemoglobin"),
        ("I5", True, "platelets")]
    return trial


def expected_lab_verdict(data: dict[str, Any], criterion: str, as_of: dt.date) -> str:
    """The verdict the bundle's own values imply: the latest result on or before ``as_of``."""
    codes, factors, op, threshold = LABS[criterion]
    results: list[tuple[dt.date, float | None]] = []
    for entry in data["entry"]:
        resource = entry.get("resource", {})
        if resource.get("resourceType") != "Observation" or resource.get("status") in ("entered-in-error", "cancelled"):
            continue
        if not any(c.get("system") == LOINC and c.get("code") in codes for c in resource.get("code", {}).get("coding", [])):
            continue
        when = dt.date.fromisoformat(resource["effectiveDateTime"][:10])
        if when > as_of:
            continue
        value_quantity = resource.get("valueQuantity")
        if value_quantity is None:
            results.append((when, None))  # a result written as text ("QNS"): no value
        else:
            results.append((when, float(value_quantity["value"]) * factors[value_quantity["code"]]))
    if not results:
        return "unknown"
    latest = max(when for when, _ in results)
    values = {value for when, value in results if when == latest}
    if len(values) != 1 or None in values:
        return "unknown"
    [value] = values
    holds = value < threshold if op == "<" else value >= threshold
    return "pass" if holds else "fail"


def check_lab_verdicts(data: dict[str, Any], trial: eligibility.Trial, as_of: dt.date = AS_OF) -> list[str]:
    report = eligibility.screen(trial, patient_from_fhir(data), as_of=as_of)
    verdicts = [c.verdict for c in report.criteria]
    assert verdicts == [expected_lab_verdict(data, c.id, as_of) for c in report.criteria], [c.reason for c in report.criteria]
    return verdicts


CAREBUNDLE_CASES = [(profile, seed, sex) for profile in ("healthy", "type2_diabetes", "hypertension", "ckd_stage3", "anaemia")
                    for seed, sex in ((1, "F"), (2, "M"), (3, "F"), (4, "M"))]


def carebundle_json(profile: str, seed: int, sex: str) -> dict[str, Any]:
    carebundle = pytest.importorskip("carebundle")
    return json.loads(carebundle.to_json(carebundle.generate_bundle(profile=profile, seed=seed, sex=sex)))


@pytest.fixture(scope="module")
def carebundle_verdicts(lab_trial: eligibility.Trial) -> dict[tuple[str, int, str], list[str]]:
    return {case: check_lab_verdicts(carebundle_json(*case), lab_trial) for case in CAREBUNDLE_CASES}


def test_carebundle_labs_decide_the_lab_criteria(carebundle_verdicts: dict[tuple[str, int, str], list[str]]) -> None:
    """Every carebundle profile, both sexes: each verdict is the one the bundle's values imply (checked in the
    fixture); the coded labs decide every criterion, and the profiles' abnormal values fail some."""
    assert all("unknown" not in verdicts for verdicts in carebundle_verdicts.values())
    by_criterion = list(zip(*carebundle_verdicts.values()))
    assert all("pass" in verdicts for verdicts in by_criterion)
    assert any("fail" in verdicts for verdicts in by_criterion)
    assert all(carebundle_verdicts[("ckd_stage3", seed, sex)][1] == "fail" for _, seed, sex in CAREBUNDLE_CASES[:4])


# ICD-10-CM code prefixes the profiles' diagnoses start with -> the exclusion they decide (the test's own table)
CONDITION_CRITERIA = "Exclusion Criteria:\n* Diabetes mellitus\n* Hypertension\n* Chronic kidney disease\n* Anemia"
CONDITION_PREFIXES = {"E1": ("E11.",), "E2": ("I10",), "E3": ("N18.3",), "E4": ("D50.", "D63.", "D64.")}


@pytest.mark.parametrize("profile", ["healthy", "type2_diabetes", "hypertension", "ckd_stage3", "anaemia"])
def test_carebundle_diagnoses_decide_the_exclusions(profile: str) -> None:
    trial = eligibility.compile_trial(CONDITION_CRITERIA)
    for seed in (1, 2):
        data = carebundle_json(profile, seed, "F")
        codes = [c["code"] for e in data["entry"] if e["resource"]["resourceType"] == "Condition"
                 for c in e["resource"]["code"]["coding"]]
        report = eligibility.screen(trial, patient_from_fhir(data), as_of=AS_OF)
        expected = ["fail" if any(code.startswith(CONDITION_PREFIXES[c.id]) for code in codes) else "unknown"
                    for c in report.criteria]
        assert [c.verdict for c in report.criteria] == expected
        if profile != "healthy":
            assert "fail" in expected


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_carebundle_with_real_world_defects(seed: int, lab_trial: eligibility.Trial) -> None:
    """carebundle's imperfect FHIR (results as text, site-local code systems, dropped fields, replayed and
    post-dated entries) loads without error; verdicts still follow the bundle's values."""
    carebundle = pytest.importorskip("carebundle")
    clean = carebundle_json("type2_diabetes", seed, "M")
    rates = dict.fromkeys(carebundle.imperfection.DEFECT_KINDS, 0.3)
    dirty, defects = carebundle.inject_defects(clean, carebundle.Imperfection(**rates), seed=seed)
    assert {d.kind for d in defects} == set(carebundle.imperfection.DEFECT_KINDS)
    check_lab_verdicts(dirty, lab_trial)


def synthea_fixture(index: int) -> dict[str, Any]:
    return json.loads((FIXTURES / f"synthea-{index}.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("index", [1, 2])
@pytest.mark.parametrize("as_of", [dt.date(2019, 1, 1), dt.date(2021, 1, 1), AS_OF])
def test_synthea_labs_decide_the_lab_criteria(index: int, as_of: dt.date, lab_trial: eligibility.Trial) -> None:
    """Synthea's lifetime records, screened on three dates: the latest result before each decides."""
    verdicts = check_lab_verdicts(synthea_fixture(index), lab_trial, as_of)
    assert verdicts.count("unknown") <= 1  # Synthea records no eGFR for these two


def test_synthea_conditions_medications_and_allergies() -> None:
    patient = patient_from_fhir(synthea_fixture(1))
    assert patient.sex == "female" and len(patient.conditions) > 20 and len(patient.medications) > 20
    # "Allergy to Lisinopril": a condition, never a lisinopril prescription
    assert any(c.name == "allergy to Lisinopril" for c in patient.conditions)
    trial = eligibility.compile_trial("Exclusion Criteria:\n* Anemia\n* Current pregnancy\n* History of myocardial infarction")
    report = eligibility.screen(trial, patient, as_of=AS_OF)
    anemia, pregnancy, infarction = report.criteria
    assert anemia.verdict == "fail"  # Synthea codes "Anemia (disorder)" 271737000
    assert pregnancy.verdict == "pass" and "not now" in pregnancy.reason  # pregnancies long resolved
    assert infarction.verdict == "unknown"


@pytest.fixture(scope="module")
def synthea_full_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One full Synthea patient (about 2,000 resources), generated in the test run, seeded, offline."""
    pytest.importorskip("synthea")
    out = tmp_path_factory.mktemp("synthea")
    subprocess.run([sys.executable, "-c", "from synthea.cli import cli; cli()", "-p", "1", "-s", "7",
                    "-a", "55-70", "-r", "20260101", "-o", str(out)], check=True, capture_output=True, timeout=600)
    [path] = sorted((out / "fhir").glob("*.json"))
    return path


def test_a_full_synthea_bundle_screens(synthea_full_bundle: Path, lab_trial: eligibility.Trial,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    data = json.loads(synthea_full_bundle.read_text(encoding="utf-8"))
    assert len(data["entry"]) > 1000
    patient = load_patient(synthea_full_bundle)
    assert len(patient.observations) > 500
    check_lab_verdicts(data, lab_trial)
    assert main(["screen", str(REPO / "rules" / "NCT04745299.yaml"), str(synthea_full_bundle), "--as-of", "2026-01-15",
                 "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["overall"] in ("ineligible", "needs_review")
