"""Screening from 8 threads at once gives the same reports as screening from one.

The shared state a thread could trip over: the grammar's parser (one lark parser per thread,
grammar.py), the unit table and its pint fallback for spellings outside rules/unit_table.json
(units.py, under a lock), the vocabulary, and the facts cached on a patient (facts.py). Each
test starts the threads together on a barrier, on cold caches where it can make them cold.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pytest

import eligibility
from eligibility import Patient, Trial, TrialScreener, compile_trial, load_trial
from eligibility.units import units

REPO = Path(__file__).resolve().parents[1]
THREADS = 8
AS_OF = dt.date(2026, 1, 15)
T = TypeVar("T")

TEXTS = [
    """Inclusion Criteria:
1. Age between 18 and 80 years
2. Serum creatinine < 2.0 mg/dL
3. ALSFRS-R score of 31 to 46 points
4. FVC >= 50% predicted
Exclusion Criteria:
* Pregnancy or breastfeeding
* ALT, AST, or total bilirubin over 2.0 times the upper limit of normal
* History of stroke within the past 3 months
* Something no grammar will ever read, kept for review
""",
    """Inclusion Criteria:
- BMI between 18.5 and 35 kg/m2
- Platelets >= 100 x 10^9/L
- Hemoglobin >= 9 g/dL
Exclusion Criteria:
- Epilepsy
- eGFR < 30 mL/min/1.73m2
""",
]
# Spellings outside rules/unit_table.json: each is resolved through pint, under the table's lock.
PINT_UNITS = [("creatinine", 1.02, "mg/(100 mL)"), ("creatinine", 88.4, "umol/dm^3"), ("hemoglobin", 120, "g/dm^3"),
              ("platelets", 150000, "1/mm^3"), ("ALT", 0.5, "ukat/L"), ("BMI", 24, "kg/m^2")]


def patients() -> list[Patient]:
    """The example records, the catalogue's records that screen, and records whose units need pint."""
    paths = [REPO / "examples" / name for name in ("eligible.json", "ineligible.json", "needs-review.json")] + [
        REPO / "tests" / "bad_input" / "patient" / name
        for name in ("creatinine_negative.json", "bmi_zero.json", "misspelt_unit.json", "duplicate_same_date.json",
                     "birth_after_screening.json", "unit_of_another_dimension.json")]
    records = [json.loads(path.read_text(encoding="utf-8")) for path in paths]
    for index, (name, value, unit) in enumerate(PINT_UNITS):
        records.append({"id": f"PINT-{index}", "birth_date": "1960-02-29", "sex": "female" if index % 2 else "male",
                        "observations": [{"name": name, "value": value, "unit": unit, "date": "2026-01-10"}],
                        "conditions": [{"name": "epilepsy", "present": False}]})
    return [Patient.model_validate(record) for record in records]


def trials_from_files() -> list[Trial]:
    return [load_trial(path) for path in sorted((REPO / "rules").glob("*.yaml")) if path.name.startswith(("NCT", "TCA"))]


def all_at_once(work: Callable[[int], T], threads: int = THREADS) -> list[T]:
    """``work(i)`` for i in 0..threads-1, each in its own new thread, all released together."""
    barrier = threading.Barrier(threads)

    def run(index: int) -> T:
        barrier.wait(timeout=60)
        return work(index)

    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(run, range(threads)))


def reports_json(trials: list[Trial], records: list[Patient], closed_world: bool = False) -> list[str]:
    return [TrialScreener(trial).screen(patient, AS_OF, closed_world=closed_world).to_json()
            for trial in trials for patient in records]


def test_screening_from_8_threads_gives_the_reports_of_one() -> None:
    trials = trials_from_files()
    units.cache_clear()  # a fresh unit table: the pint fallback runs inside the threads
    # each thread screens its own copies of the records (facts are built in the thread) ...
    threaded = all_at_once(lambda index: reports_json(trials, patients(), closed_world=index % 2 == 1))
    # ... and the same records in one thread, after
    expected = {closed: reports_json(trials, patients(), closed_world=closed) for closed in (False, True)}
    for index, reports in enumerate(threaded):
        assert reports == expected[index % 2 == 1], f"thread {index}"


def test_one_patient_screened_from_8_threads_at_once() -> None:
    """The same Patient object, its facts not built yet, screened by 8 threads together."""
    trials = trials_from_files()
    shared = patients()
    threaded = all_at_once(lambda index: reports_json(trials, shared))
    assert all(reports == threaded[0] for reports in threaded)
    assert threaded[0] == reports_json(trials, patients())


def test_the_first_compile_from_text_in_8_threads() -> None:
    """Compiling criteria text in 8 new threads (a lark parser each) gives the trial one thread gives."""
    units.cache_clear()
    threaded = all_at_once(lambda index: [compile_trial(text, trial_id=f"T{n}") for n, text in enumerate(TEXTS)])
    expected = [compile_trial(text, trial_id=f"T{n}") for n, text in enumerate(TEXTS)]
    assert any(c.compiled for trial in expected for c in trial.criteria)
    for trials in threaded:
        assert trials == expected
    records = patients()
    threaded_reports = all_at_once(lambda index: reports_json(threaded[index], records))
    assert all(reports == reports_json(expected, patients()) for reports in threaded_reports)


def test_unit_lookups_that_fall_back_to_pint_from_8_threads() -> None:
    """The same unlisted spellings resolved from 8 threads on a fresh table: one answer each, as one thread gets."""
    units.cache_clear()
    spellings = [unit for _, _, unit in PINT_UNITS] + ["mg/dLL", "10^10^10", "furlong/fortnight", "mmol/dm^3"]
    table = units()
    threaded: list[Any] = all_at_once(lambda index: [table.info(unit) for unit in spellings[index % 3:] + spellings[:index % 3]])
    fresh = eligibility.units.UnitTable.from_rules()
    expected = [fresh.info(unit) for unit in spellings]
    for index, infos in enumerate(threaded):
        shift = index % 3
        assert infos == expected[shift:] + expected[:shift], f"thread {index}"
    assert expected[0] is not None and expected[spellings.index("mg/dLL")] is None


@pytest.fixture(autouse=True)
def _restore_units() -> Any:
    """Leave a unit table behind for the other tests, whatever happened here."""
    yield
    units.cache_clear()
