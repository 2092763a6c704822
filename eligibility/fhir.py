"""FHIR R4 Bundle -> the native patient record (contract section 2), read from plain dicts.

A hospital or a trial-matching app holds patients as FHIR: a Bundle with one ``Patient`` and
its ``Observation``, ``Condition``, ``MedicationStatement`` / ``MedicationRequest`` /
``MedicationAdministration``, ``Procedure`` and ``AllergyIntolerance`` resources.
:func:`patient_from_fhir` turns such a Bundle into the same :class:`~eligibility.patient.Patient`
as the native JSON, so screening does not know which one it was given. Other resource types
(Encounter, Claim, DiagnosticReport, ...) are ignored.

Why a hand-written reader and not ``fhir.resources``: importing its R4B models and
validating a bundle costs seconds (about 0.3 s to import, 0.3 s more the first time each
resource type is met, then about 1 ms a resource), against a command-line budget of half a
second; this reader walks the dicts once, checking only the fields it uses, and reports a
bad one with its JSON path into the bundle (``$.entry[3].resource.valueQuantity.value``).

What is read, and how (every choice below is about not inventing data):

- **Codes**: of a CodeableConcept's codings, the one the vocabulary knows (for the right kind
  of entry) is kept as the entry's ``code``; else the preferred system's (LOINC for
  observations, SNOMED CT / ICD-10 for conditions and procedures, RxNorm for drugs). The
  name is the concept's ``text`` or a coding's ``display`` (SNOMED CT's "(disorder)" tags
  dropped), the first one that names a vocabulary variable when one does. For a drug, an
  RxNorm clinical drug name ("metformin hydrochloride 500 MG Oral Tablet") is also tried
  without its strength and form ("metformin hydrochloride").
- **Values**: ``valueQuantity`` (unit: the UCUM ``code``, else the
  ``unit`` text; a ``comparator`` such as ``<`` keeps the value as text, so it is never
  compared as exact), ``valueInteger``, ``valueString``, ``valueCodeableConcept`` (its text or
  display). Decimals become floats. An observation without one of these values (a panel, a
  ``dataAbsentReason``) carries nothing to screen and is skipped; so is one whose status is
  ``entered-in-error`` or ``cancelled``. Components (systolic and diastolic blood pressure)
  become observations of their own, dated as their parent.
- **Dates**: a dateTime becomes its calendar date as written (its own time zone). A partial
  date ("2024-09") is not a day: it is left out (unknown), except a partial ``birthDate``,
  which is an error since age cannot be computed from it.
- **Missing parts**: an Observation without a ``code`` and a medication resource without its
  medication are errors (FHIR requires them); a Condition, AllergyIntolerance or Procedure
  without a ``code`` names nothing a criterion can ask about and is skipped.
- **Status**: a refuted condition is recorded as absent (``present: false``), a
  ``not-taken`` MedicationStatement too; ``entered-in-error`` entries, cancelled or draft
  requests, and procedures or administrations ``not-done`` are skipped. A condition that is
  ``inactive``/``resolved``/``remission`` (or a drug ``stopped``/``completed``) without an end
  date is ended on the last date the resource gives (``meta.lastUpdated``, else its own
  latest date), so that it does not count as current.
- **Sex**: ``gender`` male or female; otherwise the US Core birth-sex extension (``M``/``F``);
  otherwise an error, since sex criteria cannot be screened.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from decimal import Decimal
from typing import Any, TypeVar

from pydantic import ValidationError

from .errors import PatientRecordError
from .patient import Code, Condition, Medication, Observation, Patient, Procedure, ReferenceRange
from .vocabulary import Vocabulary, vocabulary

Path = str | tuple[str, str]
_Model = TypeVar("_Model", Observation, Condition, Medication, Procedure, ReferenceRange)

__all__ = ["patient_from_fhir"]

_LOINC = "http://loinc.org"
_SNOMED = "http://snomed.info/sct"
_RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
_ICD10 = ("http://hl7.org/fhir/sid/icd-10-cm", "http://hl7.org/fhir/sid/icd-10")
_UCUM = "http://unitsofmeasure.org"
_BIRTH_SEX = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex"

# Preferred code systems per kind of entry, most preferred first.
_PREFERRED = {
    "observation": (_LOINC, _SNOMED),
    "condition": (_SNOMED, *_ICD10),
    "allergy": (_SNOMED, *_ICD10),
    "medication": (_RXNORM, _SNOMED),
    "procedure": (_SNOMED, *_ICD10),
}
# The vocabulary kinds an entry of each kind may be matched to.
_KINDS = {
    "observation": frozenset({"lab", "score", "vital", "category"}),
    "condition": frozenset({"condition"}),
    "allergy": frozenset({"condition"}),
    "medication": frozenset({"medication"}),
    "procedure": frozenset({"procedure"}),
}

_SEMANTIC_TAG = re.compile(
    r"\s*\((?:disorder|finding|procedure|situation|regime/therapy|morphologic abnormality|observable entity|"
    r"substance|product|medicinal product|clinical drug|physical object|event|person|qualifier value)\)\s*$",
    re.IGNORECASE)
_DRUG_STRENGTH = re.compile(r"\s\d|\s/\s")  # where an RxNorm drug name's strength or second ingredient begins
_FHIR_DATE = re.compile(
    r"(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?)?)?")

_CONCEPTS: dict[Any, tuple[str, Code | None]] = {}  # (kind, text, codings as written) -> (name, code)
_CONCEPTS_VOCABULARY: list[Vocabulary | None] = [None]  # the vocabulary those answers come from

_SKIPPED_OBSERVATION = frozenset({"entered-in-error", "cancelled"})
_ENDED_CONDITION = frozenset({"inactive", "resolved", "remission"})
_SKIPPED_MEDICATION = frozenset({"entered-in-error", "cancelled", "draft", "not-done", "intended"})
_ENDED_MEDICATION = frozenset({"completed", "stopped"})
_SKIPPED_PROCEDURE = frozenset({"entered-in-error", "not-done", "preparation"})

_CLINICAL = ("Observation", "Condition", "MedicationStatement", "MedicationRequest", "MedicationAdministration",
             "Procedure", "AllergyIntolerance")


def patient_from_fhir(bundle: dict[str, Any], source: str = "<bundle>") -> Patient:
    """The patient record a FHIR R4 Bundle holds (one Patient resource and its clinical resources).

    Raises :class:`~eligibility.errors.PatientRecordError` with a JSON path into the bundle.

    >>> bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
    ...     {"resource": {"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1961-03-02"}},
    ...     {"resource": {"resourceType": "Observation", "status": "final",
    ...      "code": {"coding": [{"system": "http://loinc.org", "code": "2160-0"}], "text": "Creatinine"},
    ...      "valueQuantity": {"value": 1.1, "unit": "mg/dL", "system": "http://unitsofmeasure.org", "code": "mg/dL"},
    ...      "effectiveDateTime": "2026-01-10T08:30:00+01:00"}}]}
    >>> patient = patient_from_fhir(bundle)
    >>> patient.sex, patient.observations[0].value, patient.observations[0].date.isoformat()
    ('female', 1.1, '2026-01-10')
    """
    return _Reader(source, vocabulary()).read(bundle)


class _Reader:
    """One bundle's reading: the checks raise with the path of what they check."""

    def __init__(self, source: str, vocab: Vocabulary):
        self.source = source
        self.vocab = vocab
        self.observations: list[Observation] = []
        self.conditions: list[Condition] = []
        self.medications: list[Medication] = []
        self.procedures: list[Procedure] = []
        self.medication_index: dict[str, tuple[dict[str, Any], str]] = {}

    # -- errors and typed access ---------------------------------------------------------
    # A path is built only for an error: ``(base, field)`` stands for ``f"{base}.{field}"``.
    def fail(self, path: Path, message: str) -> PatientRecordError:
        return PatientRecordError(message, source=self.source, path=_joined(path))

    def obj(self, value: Any, path: Path) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(path, f"expected a JSON object, not {_kind(value)}")
        return value

    def array(self, value: Any, path: Path) -> list[Any]:
        if not isinstance(value, list):
            raise self.fail(path, f"expected a JSON array, not {_kind(value)}")
        return value

    def text(self, value: Any, path: Path) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str):
            raise self.fail(path, f"expected a string, not {_kind(value)}")
        return value.strip() or None

    def number(self, value: Any, path: Path) -> int | float:
        if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
            raise self.fail(path, f"expected a number, not {_kind(value)}")
        if isinstance(value, int):
            try:
                float(value)
            except OverflowError:
                raise self.fail(path, "number too large") from None
            return value
        number = float(value)  # a Decimal (json.loads(parse_float=Decimal), fhir.resources) becomes a float
        if not math.isfinite(number):
            raise self.fail(path, f"expected a finite number, not {value}")
        return number

    def date(self, value: Any, path: Path, *, required_day: bool = False) -> dt.date | None:
        """A FHIR date, dateTime or instant as a calendar date; None for a partial date."""
        if value is None:
            return None
        if isinstance(value, dt.datetime):
            return value.date()
        if isinstance(value, dt.date):
            return value
        if not isinstance(value, str):
            raise self.fail(path, f"expected a date such as '2026-01-15', not {_kind(value)}")
        match = _FHIR_DATE.fullmatch(value.strip())
        if match is None:
            raise self.fail(path, f"{value!r} is not a FHIR date or dateTime (such as 2026-01-15 or 2026-01-15T09:30:00Z)")
        year, month, day = match.group(1, 2, 3)
        if day is None:
            if required_day:
                raise self.fail(path, f"{value!r} is not a full date (YYYY-MM-DD): an age cannot be computed from it")
            try:
                dt.date(int(year), int(month or 1), 1)
            except ValueError:
                raise self.fail(path, f"{value!r} is not a valid date") from None
            return None
        try:
            return dt.date(int(year), int(month), int(day))
        except ValueError:
            raise self.fail(path, f"{value!r} is not a valid date") from None

    def build(self, model: type[_Model], path: str, **fields: Any) -> _Model:
        """A native entry; the fields were checked on the way, this is a safety net with the resource's path."""
        try:
            return model(**fields)
        except ValidationError as error:
            problem = error.errors()[0]
            raise self.fail(path, f"{'.'.join(map(str, problem['loc']))}: {problem['msg']}") from None

    def code_of(self, concept: Any, path: Path) -> str | None:
        """The ``code`` of a status CodeableConcept (clinicalStatus, verificationStatus)."""
        if concept is None:
            return None
        path = _joined(path)
        concept = self.obj(concept, path)
        for index, coding in enumerate(self.array(concept.get("coding", []), (path, "coding"))):
            code = self.text(self.obj(coding, f"{path}.coding[{index}]").get("code"), f"{path}.coding[{index}].code")
            if code:
                return code.casefold()
        text = self.text(concept.get("text"), (path, "text"))
        return text.casefold() if text else None

    # -- the bundle ------------------------------------------------------------------------
    def read(self, bundle: Any) -> Patient:
        bundle = self.obj(bundle, "$")
        kind = bundle.get("resourceType")
        if kind == "Patient":  # a lone Patient resource: a bundle of one
            bundle = {"resourceType": "Bundle", "entry": [{"resource": bundle}]}
            entries_path = None
        elif kind != "Bundle":
            raise self.fail("$.resourceType", f"a FHIR {kind!r} resource is not a patient record: give a Bundle "
                                              "holding the Patient and their clinical resources")
        else:
            entries_path = "$.entry"
        entries = self.array(bundle.get("entry", []), entries_path or "$")
        resources: list[tuple[dict[str, Any], str, str | None]] = []
        patients: list[tuple[dict[str, Any], str, str | None]] = []
        for index, entry in enumerate(entries):
            entry_path = f"$.entry[{index}]" if entries_path else "$"
            entry = self.obj(entry, entry_path)
            if entries_path is None:
                resource, path = entry["resource"], "$"
            else:
                if "resource" not in entry:  # a transaction response, a deleted entry
                    continue
                path = f"{entry_path}.resource"
                resource = self.obj(entry["resource"], path)
            resource_type = resource.get("resourceType")
            if not isinstance(resource_type, str):
                raise self.fail(f"{path}.resourceType", "a resource needs its resourceType")
            full_url = self.text(entry.get("fullUrl"), (entry_path, "fullUrl"))
            if resource_type == "Patient":
                patients.append((resource, path, full_url))
            elif resource_type == "Medication":
                for key in _keys(resource, full_url, "Medication"):
                    self.medication_index[key] = (resource, path)
            elif resource_type in _CLINICAL:
                resources.append((resource, path, full_url))
        if not patients:
            raise self.fail(entries_path or "$", "the bundle holds no Patient resource")
        patient, patient_path, patient_url = patients[0]
        patient_id = self.patient_id(patient, patient_path, patient_url)
        known_ids = {patient_id}
        for other, other_path, other_url in patients[1:]:  # an interface replay repeats the Patient
            if not self.same_patient(patient, patient_path, other, other_path):
                raise self.fail(other_path, f"the bundle holds {len(patients)} Patient resources of different "
                                            "patients: a patient record is one patient's")
            known_ids.add(self.patient_id(other, other_path, other_url))
        for resource, path, _ in resources:
            self.check_subject(resource, path, known_ids)
            getattr(self, f"read_{resource['resourceType']}")(resource, path)
        fields: dict[str, Any] = {
            "id": patient_id,
            "sex": self.sex(patient, patient_path),
            "birth_date": self.date(patient.get("birthDate"), (patient_path, "birthDate"), required_day=True),
            "observations": tuple(self.observations),
            "conditions": tuple(self.conditions),
            "medications": tuple(self.medications),
            "procedures": tuple(self.procedures),
        }
        if fields["birth_date"] is None:
            raise self.fail(f"{patient_path}.birthDate", "the Patient has no birthDate: age criteria need it")
        try:
            return Patient(**fields)
        except ValidationError as error:  # the fields were checked above; kept as a safety net
            raise self.fail(patient_path, error.errors()[0]["msg"]) from None

    def patient_id(self, patient: dict[str, Any], path: str, full_url: str | None) -> str:
        found = self.text(patient.get("id"), (path, "id"))
        if found:
            return found
        identifiers = self.array(patient.get("identifier", []), (path, "identifier"))
        for index, identifier in enumerate(identifiers):
            value = self.text(self.obj(identifier, f"{path}.identifier[{index}]").get("value"),
                              f"{path}.identifier[{index}].value")
            if value:
                return value
        return full_url or "patient"

    def sex(self, patient: dict[str, Any], path: str) -> str:
        gender = self.text(patient.get("gender"), (path, "gender"))
        if gender in ("male", "female"):
            return gender
        for index, extension in enumerate(self.array(patient.get("extension", []), (path, "extension"))):
            extension = self.obj(extension, f"{path}.extension[{index}]")
            if extension.get("url") == _BIRTH_SEX:
                birth_sex = extension.get("valueCode")
                if birth_sex in ("M", "F"):
                    return "male" if birth_sex == "M" else "female"
        written = f"gender {gender!r}" if gender else "no gender"
        raise self.fail(f"{path}.gender", f"the Patient has {written} (nor a US Core birth sex M or F): "
                                          "sex criteria need male or female")

    def same_patient(self, first: dict[str, Any], first_path: str, other: dict[str, Any], other_path: str) -> bool:
        """Two Patient resources of one patient: a shared identifier, the same birth date and gender."""
        def identifiers(patient: dict[str, Any], path: str) -> set[tuple[Any, Any]]:
            found = self.array(patient.get("identifier", []), (path, "identifier"))
            return {(i.get("system"), i.get("value")) for i in found if isinstance(i, dict) and i.get("value")}

        return (bool(identifiers(first, first_path) & identifiers(other, other_path))
                and first.get("birthDate") == other.get("birthDate") and first.get("gender") == other.get("gender"))

    def check_subject(self, resource: dict[str, Any], path: str, patient_ids: set[str]) -> None:
        """Refuse a resource that names another patient as its subject."""
        field = "patient" if resource["resourceType"] == "AllergyIntolerance" else "subject"
        subject = resource.get(field)
        if subject is None:
            return
        if not isinstance(subject, dict):
            raise self.fail(f"{path}.{field}", f"expected a JSON object, not {_kind(subject)}")
        reference = subject.get("reference")
        if reference is not None and not isinstance(reference, str):
            raise self.fail(f"{path}.{field}.reference", f"expected a string, not {_kind(reference)}")
        if reference and "Patient/" in reference:
            named = reference.split("Patient/", 1)[1].split("/", 1)[0]
            if named not in patient_ids:
                raise self.fail(f"{path}.{field}.reference",
                                f"refers to Patient {named!r}, not the bundle's patient {min(patient_ids)!r}")

    # -- codes and names -----------------------------------------------------------------
    def concept(self, concept: Any, path: Path, kind: str) -> tuple[str, Code | None]:
        """The name and code to record for a CodeableConcept (see the module's notes).

        Records repeat the same concepts (every creatinine result has the same code), so the
        answer is kept per concept as written, once it was read without a problem.
        """
        if isinstance(concept, dict):
            codings = concept.get("coding")
            try:
                key = (kind, concept.get("text"), tuple((c.get("system"), c.get("code"), c.get("display")) for c in codings)
                       if isinstance(codings, list) else codings)
                found = _CONCEPTS.get(key)
            except (AttributeError, TypeError):  # a coding that is not an object, a value that is not hashable
                key, found = None, None
            if found is not None and _CONCEPTS_VOCABULARY[0] is self.vocab:
                return found
            result = self.read_concept(concept, _joined(path), kind)
            if key is not None:
                if len(_CONCEPTS) > 50_000 or _CONCEPTS_VOCABULARY[0] is not self.vocab:
                    _CONCEPTS.clear()
                    _CONCEPTS_VOCABULARY[0] = self.vocab
                _CONCEPTS[key] = result
            return result
        return self.read_concept(concept, _joined(path), kind)

    def read_concept(self, concept: Any, path: str, kind: str) -> tuple[str, Code | None]:
        concept = self.obj(concept, path)
        text = self.text(concept.get("text"), (path, "text"))
        codings: list[tuple[str | None, str | None, str | None]] = []
        for index, coding in enumerate(self.array(concept.get("coding", []), (path, "coding"))):
            where = f"{path}.coding[{index}]"
            coding = self.obj(coding, where)
            codings.append((self.text(coding.get("system"), (where, "system")),
                            self.text(coding.get("code"), (where, "code")),
                            self.text(coding.get("display"), (where, "display"))))
        if text is None and not any(code or display for _, code, display in codings):
            raise self.fail(path, "the concept has neither a coded coding nor a text")
        allowed = _KINDS[kind]
        preferred = _PREFERRED[kind]
        rank = {system: position for position, system in enumerate(preferred)}
        ordered = sorted(codings, key=lambda c: rank.get(c[0] or "", len(preferred)))
        chosen: tuple[str, str] | None = None
        fallback: tuple[str, str] | None = None
        for system, code, _ in ordered:
            if not (system and code):
                continue
            variable = self.vocab.by_code(system, code)
            if variable is not None and variable.kind in allowed:
                chosen = (system, code)
                break
            if variable is None and fallback is None and kind != "allergy":  # an allergy's code is its substance's
                fallback = (system, code)
        pick = chosen or fallback
        bases = [text, *(display for _, _, display in ordered)]
        name = self.name(bases, kind, allowed)
        if name is None:
            system, code = pick or next(((s, c) for s, c, _ in ordered if c), ("", ""))
            name = f"{system}|{code}" if system else code
        return name, Code(system=pick[0], code=pick[1]) if pick else None

    def name(self, bases: list[str | None], kind: str, allowed: frozenset[str]) -> str | None:
        """The first candidate name the vocabulary knows (for this kind), else the first candidate."""
        candidates: list[str] = []
        for base in bases:
            if not base:
                continue
            stripped = _SEMANTIC_TAG.sub("", base)
            if kind == "allergy":
                if re.search(r"allerg|hypersensitiv|intoleran", stripped, re.IGNORECASE):
                    candidates += [stripped]
                else:
                    candidates += [f"allergy to {stripped}", f"{stripped} allergy"]
            else:
                candidates += [base, stripped]
                if kind == "medication":
                    candidates += _ingredient_names(stripped)
        for candidate in candidates:
            variable = self.vocab.by_name(candidate)
            if variable is not None and variable.kind in allowed:
                return candidate
        first = next((base for base in bases if base), None)
        if first is not None and kind == "allergy" and candidates:
            return candidates[0]
        return first

    # -- resources -----------------------------------------------------------------------
    def status(self, resource: dict[str, Any], path: str) -> str | None:
        status = self.text(resource.get("status"), (path, "status"))
        return status.casefold() if status else None

    def last_updated(self, resource: dict[str, Any], path: str) -> dt.date | None:
        meta = resource.get("meta")
        if meta is None:
            return None
        return self.date(self.obj(meta, (path, "meta")).get("lastUpdated"), f"{path}.meta.lastUpdated")

    def period(self, resource: dict[str, Any], field: str, path: str) -> tuple[dt.date | None, dt.date | None]:
        value = resource.get(field)
        if value is None:
            return None, None
        value = self.obj(value, f"{path}.{field}")
        return (self.date(value.get("start"), f"{path}.{field}.start"),
                self.date(value.get("end"), f"{path}.{field}.end"))

    def read_Observation(self, resource: dict[str, Any], path: str) -> None:
        if self.status(resource, path) in _SKIPPED_OBSERVATION:
            return
        if "code" not in resource:
            raise self.fail(f"{path}.code", "an Observation needs a code")
        date = self.date(resource.get("effectiveDateTime"), (path, "effectiveDateTime"))
        if date is None:
            date = self.period(resource, "effectivePeriod", path)[0]
        if date is None:
            date = self.date(resource.get("effectiveInstant"), (path, "effectiveInstant"))
        if date is None:
            date = self.date(resource.get("issued"), (path, "issued"))
        self.observation(resource, path, date)
        for index, component in enumerate(self.array(resource.get("component", []), (path, "component"))):
            where = f"{path}.component[{index}]"
            component = self.obj(component, where)
            if "code" not in component:
                raise self.fail(f"{where}.code", "an Observation component needs a code")
            self.observation(component, where, date)

    def observation(self, element: dict[str, Any], path: str, date: dt.date | None) -> None:
        """An Observation's (or a component's) own value, if it has one the engine can use."""
        value: int | float | str
        unit = None
        if "valueQuantity" in element:
            where = f"{path}.valueQuantity"
            quantity = self.obj(element["valueQuantity"], where)
            if "value" not in quantity:
                return
            value = self.number(quantity["value"], (where, "value"))
            unit = self.unit(quantity, where)
            comparator = self.text(quantity.get("comparator"), (where, "comparator"))
            if comparator:
                value = f"{comparator}{value:g}"  # "<0.2": a bound, not a value; it is never compared as exact
        elif "valueInteger" in element:
            found = element["valueInteger"]
            if isinstance(found, bool) or not isinstance(found, int):
                raise self.fail(f"{path}.valueInteger", f"expected an integer, not {_kind(found)}")
            value = found
        elif "valueString" in element:
            found_text = self.text(element["valueString"], (path, "valueString"))
            if found_text is None:
                return
            value = found_text
        elif "valueCodeableConcept" in element:
            where = f"{path}.valueCodeableConcept"
            concept = self.obj(element["valueCodeableConcept"], where)
            found_text = self.text(concept.get("text"), (where, "text"))
            for index, coding in enumerate(self.array(concept.get("coding", []), (where, "coding"))):
                if found_text:
                    break
                coding = self.obj(coding, f"{where}.coding[{index}]")
                found_text = self.text(coding.get("display"), f"{where}.coding[{index}].display") or \
                    self.text(coding.get("code"), f"{where}.coding[{index}].code")
            if found_text is None:
                return
            value = _SEMANTIC_TAG.sub("", found_text)
        else:  # no value (a panel, dataAbsentReason), or a kind the engine does not screen (Range, Ratio, ...)
            return
        name, code = self.concept(element["code"], (path, "code"), "observation")
        self.observations.append(self.build(Observation, path, name=name, value=value, unit=unit, date=date, code=code,
                                            reference_range=self.reference_range(element, path, unit)))

    def unit(self, quantity: dict[str, Any], path: str) -> str | None:
        """The quantity's unit: its UCUM code (what the unit table reads), else the unit as written."""
        written = self.text(quantity.get("unit"), (path, "unit"))
        code = self.text(quantity.get("code"), (path, "code"))
        system = self.text(quantity.get("system"), (path, "system"))
        if code and system in (_UCUM, None):
            return code
        return written or code

    def reference_range(self, element: dict[str, Any], path: str, unit: str | None) -> ReferenceRange | None:
        """The first referenceRange with a numeric low or high in the value's own unit."""
        ranges = self.array(element.get("referenceRange", []), (path, "referenceRange"))
        for index, found in enumerate(ranges):
            where = f"{path}.referenceRange[{index}]"
            found = self.obj(found, where)
            bounds: dict[str, float] = {}
            same_unit = True
            for side in ("low", "high"):
                if side not in found:
                    continue
                quantity = self.obj(found[side], f"{where}.{side}")
                if "value" not in quantity:
                    continue
                bounds[side] = float(self.number(quantity["value"], f"{where}.{side}.value"))
                bound_unit = self.unit(quantity, f"{where}.{side}")
                if bound_unit is not None and unit is not None and bound_unit != unit:
                    same_unit = False
            if bounds and same_unit:
                return self.build(ReferenceRange, where, **bounds)
        return None

    def read_Condition(self, resource: dict[str, Any], path: str, kind: str = "condition") -> None:
        verification = self.code_of(resource.get("verificationStatus"), (path, "verificationStatus"))
        if verification == "entered-in-error":
            return
        clinical = self.code_of(resource.get("clinicalStatus"), (path, "clinicalStatus"))
        if "code" not in resource:  # allowed by FHIR, but nothing a criterion can name
            return
        name, code = self.concept(resource["code"], (path, "code"), kind)
        onset = self.date(resource.get("onsetDateTime"), (path, "onsetDateTime"))
        if onset is None:
            onset = self.period(resource, "onsetPeriod", path)[0]
        diagnosed = self.date(resource.get("recordedDate"), (path, "recordedDate"))
        end = self.date(resource.get("abatementDateTime"), (path, "abatementDateTime"))
        if end is None:
            start_of_end, end_of_end = self.period(resource, "abatementPeriod", path)
            end = end_of_end or start_of_end
        if end is None and clinical in _ENDED_CONDITION:
            end = self.last_updated(resource, path) or _latest(onset, diagnosed)
        self.conditions.append(self.build(Condition, path, name=name, code=code, present=verification != "refuted",
                                          onset=onset, diagnosed=diagnosed, end=end))

    def read_AllergyIntolerance(self, resource: dict[str, Any], path: str) -> None:
        self.read_Condition(resource, path, kind="allergy")

    def read_MedicationStatement(self, resource: dict[str, Any], path: str) -> None:
        self.medication(resource, path, "effective")

    def read_MedicationAdministration(self, resource: dict[str, Any], path: str) -> None:
        self.medication(resource, path, "effective")

    def read_MedicationRequest(self, resource: dict[str, Any], path: str) -> None:
        self.medication(resource, path, "authoredOn")

    def medication(self, resource: dict[str, Any], path: str, dated_by: str) -> None:
        status = self.status(resource, path)
        if status in _SKIPPED_MEDICATION:
            return
        concept = self.medication_concept(resource, path)
        if concept is None:
            return
        name, code = self.concept(*concept, "medication")
        if dated_by == "authoredOn":
            start = self.date(resource.get("authoredOn"), (path, "authoredOn"))
            end = None
        else:
            start = self.date(resource.get("effectiveDateTime"), (path, "effectiveDateTime"))
            end = None
            if start is not None:
                if status == "completed" or (resource["resourceType"] == "MedicationAdministration" and status != "in-progress"):
                    end = start  # taken (given) at that time
            else:
                start, end = self.period(resource, "effectivePeriod", path)
        if end is None and status in _ENDED_MEDICATION:
            end = self.last_updated(resource, path) or start
        self.medications.append(self.build(Medication, path, name=name, code=code, present=status != "not-taken",
                                           start=start, end=end))

    def medication_concept(self, resource: dict[str, Any], path: str) -> tuple[Any, str] | None:
        """The medication's CodeableConcept and its path: inline, contained or elsewhere in the bundle."""
        if "medicationCodeableConcept" in resource:
            return resource["medicationCodeableConcept"], f"{path}.medicationCodeableConcept"
        if "medicationReference" not in resource:
            raise self.fail(f"{path}.medicationCodeableConcept", f"a {resource['resourceType']} needs its medication")
        where = f"{path}.medicationReference"
        reference_element = self.obj(resource["medicationReference"], where)
        reference = self.text(reference_element.get("reference"), (where, "reference"))
        if reference and reference.startswith("#"):
            for index, contained in enumerate(self.array(resource.get("contained", []), (path, "contained"))):
                contained = self.obj(contained, f"{path}.contained[{index}]")
                if contained.get("resourceType") == "Medication" and contained.get("id") == reference[1:]:
                    if "code" not in contained:
                        break
                    return contained["code"], f"{path}.contained[{index}].code"
        elif reference:
            found = self.medication_index.get(reference) or self.medication_index.get(_relative(reference))
            if found is not None and "code" in found[0]:
                return found[0]["code"], f"{found[1]}.code"
        display = self.text(reference_element.get("display"), (where, "display"))
        if display:
            return {"text": display}, where
        return None  # a medication the bundle does not identify: nothing to screen

    def read_Procedure(self, resource: dict[str, Any], path: str) -> None:
        status = self.status(resource, path)
        if status in _SKIPPED_PROCEDURE:
            return
        if "code" not in resource:  # allowed by FHIR, but nothing a criterion can name
            return
        name, code = self.concept(resource["code"], (path, "code"), "procedure")
        date = self.date(resource.get("performedDateTime"), (path, "performedDateTime"))
        end = None
        if date is not None:
            if status == "completed":
                end = date
        else:
            date, end = self.period(resource, "performedPeriod", path)
        self.procedures.append(self.build(Procedure, path, name=name, code=code, date=date, end=end))


def _joined(path: Path) -> str:
    return path if isinstance(path, str) else ".".join(path)


def _ingredient_names(name: str) -> list[str]:
    """An RxNorm clinical drug name's ingredient words, longest first: "metformin hydrochloride
    500 MG Oral Tablet" -> ["metformin hydrochloride", "metformin"]."""
    cut = _DRUG_STRENGTH.search(name)
    if cut is None:
        return []
    words = name[:cut.start()].split()
    return [" ".join(words[:count]) for count in range(len(words), 0, -1)]


def _latest(*dates: dt.date | None) -> dt.date | None:
    known = [d for d in dates if d is not None]
    return max(known) if known else None


def _keys(resource: dict[str, Any], full_url: str | None, resource_type: str) -> list[str]:
    keys = [full_url] if full_url else []
    if isinstance(resource.get("id"), str):
        keys.append(f"{resource_type}/{resource['id']}")
    return keys + [_relative(key) for key in keys]


def _relative(reference: str) -> str:
    """``http://server/fhir/Medication/7`` -> ``Medication/7`` (an absolute reference, relative)."""
    parts = reference.rstrip("/").split("/")
    return "/".join(parts[-2:]) if len(parts) >= 2 else reference


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float, Decimal)):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string {value!r}" if len(value) <= 40 else "a string"
    if isinstance(value, dict):
        return "an object"
    return "an array" if isinstance(value, list) else type(value).__name__
