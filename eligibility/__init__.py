"""eligibility: compile clinical-trial eligibility criteria into predicates and screen patients.

The pipeline, one module per stage: text -> items (``items``) -> parse tree (``grammar``) ->
predicates (``transform``, ``predicates``) -> evaluation (``facts``, ``evaluate``) -> report
(``report``).

>>> import datetime, eligibility
>>> trial = eligibility.compile_trial("Inclusion Criteria:\\n* Serum creatinine < 2.0 mg/dL")
>>> patient = eligibility.Patient.model_validate({"id": "P1", "age": 60, "sex": "male",
...     "observations": [{"name": "creatinine", "value": 150, "unit": "umol/L", "date": "2026-01-10"}]})
>>> eligibility.screen(trial, patient, as_of=datetime.date(2026, 1, 15)).overall
'eligible'
"""

from .compiler import compile_criterion, compile_registry_record, compile_trial, load_trial
from .errors import (
    CriteriaTextError,
    EligibilityError,
    InputError,
    PatientRecordError,
    RuleFileError,
    VocabularyError,
)
from .fhir import patient_from_fhir
from .items import Item, split_items
from .patient import Code, Condition, Medication, Observation, Patient, Procedure, ReferenceRange, load_patient
from .predicates import (
    All,
    AnyOf,
    Category,
    Comparison,
    Duration,
    Implies,
    Manual,
    Not,
    Period,
    Predicate,
    PredicateAdapter,
    Presence,
    Range,
    Sex,
    predicate_schema,
)
from .report import CriterionResult, Report, TrialScreener, render_table, screen
from .trial import Criterion, Trial

__version__ = "0.1.0"

__all__ = [
    "All",
    "AnyOf",
    "Category",
    "Code",
    "Comparison",
    "Condition",
    "CriteriaTextError",
    "Criterion",
    "CriterionResult",
    "Duration",
    "EligibilityError",
    "Implies",
    "InputError",
    "Item",
    "Manual",
    "Medication",
    "Not",
    "Observation",
    "Patient",
    "PatientRecordError",
    "Period",
    "Predicate",
    "PredicateAdapter",
    "Presence",
    "Procedure",
    "Range",
    "ReferenceRange",
    "Report",
    "RuleFileError",
    "Sex",
    "Trial",
    "TrialScreener",
    "VocabularyError",
    "compile_criterion",
    "compile_registry_record",
    "compile_trial",
    "load_patient",
    "load_trial",
    "patient_from_fhir",
    "predicate_schema",
    "render_table",
    "screen",
    "split_items",
]
