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

import importlib as _importlib
import importlib.util as _importlib_util
import typing as _typing

if _typing.TYPE_CHECKING:  # the names, for type checkers; at run time each module is imported when first used
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

# Where each public name lives: importing them all up front costs the command line ~15 ms
# for modules a run may never use (the FHIR reader, for a native patient record).
_HOMES = {
    "compiler": ("compile_criterion", "compile_registry_record", "compile_trial", "load_trial"),
    "errors": ("CriteriaTextError", "EligibilityError", "InputError", "PatientRecordError", "RuleFileError",
               "VocabularyError"),
    "fhir": ("patient_from_fhir",),
    "items": ("Item", "split_items"),
    "patient": ("Code", "Condition", "Medication", "Observation", "Patient", "Procedure", "ReferenceRange",
                "load_patient"),
    "predicates": ("All", "AnyOf", "Category", "Comparison", "Duration", "Implies", "Manual", "Not", "Period",
                   "Predicate", "PredicateAdapter", "Presence", "Range", "Sex", "predicate_schema"),
    "report": ("CriterionResult", "Report", "TrialScreener", "render_table", "screen"),
    "trial": ("Criterion", "Trial"),
}
_MODULE_OF = {name: module for module, names in _HOMES.items() for name in names}


def __getattr__(name: str) -> _typing.Any:
    """A public name (or a submodule), imported on first use (PEP 562)."""
    module = _MODULE_OF.get(name)
    if module is None:
        if name.startswith("_") or _importlib_util.find_spec(f"{__name__}.{name}") is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        return _importlib.import_module(f"{__name__}.{name}")
    value = getattr(_importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
