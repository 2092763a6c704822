"""Evaluation (eligibility/facts.py, evaluate.py, report.py): the boundary patients a clinician checks.

Every case compiles real criterion text, screens one patient on 2026-01-15 and checks the
verdict: pass (the criterion does not stand in the way), fail (it rules the patient out) or
unknown (the record cannot decide it).
"""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import pytest

from eligibility import (
    All,
    AnyOf,
    Criterion,
    CriterionResult,
    Implies,
    Not,
    Patient,
    Period,
    Presence,
    Trial,
    TrialScreener,
    compile_criterion,
    compile_trial,
    screen,
)
from eligibility.evaluate import Planner, Screening, add_period, completed
from eligibility.facts import facts_of
from eligibility.predicates import PredicateNode
from eligibility.report import overall_of

AS_OF = dt.date(2026, 1, 15)

CREATININE_E7 = "Subjects with severe renal disorder (serum creatinine: not less than 2.0 mg/dL)."
LIVER_E8 = "Subjects with severe hepatic disorder (ALT, AST, or bilirubin: over 2.0 times of the normal upper limit)."
ALSFRS_I5 = "Subjects whose ALSFRS-R scores are in the range of 31~46 at the time of screening (P-V0)."
FVC_E3 = "subjects whose forced vital capacity is found to be not greater than 40%of the expected value."
RILUZOLE_I3 = ("For subjects who are under Riluzole treatment, those who have received stable dose of Riluzole "
               "for more than 28 days before screening visit.")
DURATION_I4 = "Subjects with duration of disease of no more than 2 years from the first diagnosis date."


def patient(**record: Any) -> Patient:
    """A record with defaults for what the case does not care about (a 56-year-old man)."""
    return Patient.model_validate({"id": "P1", "birth_date": "1970-01-01", "sex": "male", **record})


def lab(name: str, value: float | str, unit: str | None = None, date: str = "2026-01-10", **extra: Any) -> dict[str, Any]:
    entry = {"name": name, "value": value, "date": date, **extra}
    if unit is not None:
        entry["unit"] = unit
    return entry


def one_criterion(text: str, kind: str, condition: str | None = None) -> Trial:
    predicate, note = compile_criterion(text, kind, condition)  # type: ignore[arg-type]
    assert predicate is not None, note
    return Trial(trial="T", criteria=(Criterion(id="C1", kind=kind, text=text, compiled=True, predicate=predicate),))  # type: ignore[arg-type]


def result(text: str, kind: str, condition: str | None = None, *, closed_world: bool = False, **record: Any) -> CriterionResult:
    report = screen(one_criterion(text, kind, condition), patient(**record), as_of=AS_OF, closed_world=closed_world)
    return report.criteria[0]


def verdict(text: str, kind: str, condition: str | None = None, **record: Any) -> str:
    return result(text, kind, condition, **record).verdict


# --- serum creatinine "not less than 2.0 mg/dL" as an exclusion (seed 001 E7) ---------------------


@pytest.mark.parametrize(
    ("value", "unit", "expected"),
    [(1.99, "mg/dL", "pass"), (2.0, "mg/dL", "fail"), (2.01, "mg/dL", "fail"), (1.1, "mg/dL", "pass"),
     (176.8, "µmol/L", "fail"), (176.8, "umol/L", "fail"), (176, "µmol/L", "pass"), (176.79, "umol/L", "pass")],
)
def test_creatinine_exclusion_boundary(value: float, unit: str, expected: str) -> None:
    assert verdict(CREATININE_E7, "exclusion", observations=[lab("serum creatinine", value, unit)]) == expected


def test_creatinine_in_umol_per_l_shows_the_conversion_and_its_molar_mass() -> None:
    found = result(CREATININE_E7, "exclusion", observations=[lab("creatinine", 176.8, "µmol/L")])
    assert "2 mg/dL" in found.reason
    assert found.evidence[0]["converted"] == {"value": 2.0, "unit": "mg/dL"}
    assert "113.12" in found.evidence[0]["assumption"]


def test_creatinine_threshold_written_in_umol_per_l_meets_the_same_value_in_the_record() -> None:
    record = {"observations": [lab("creatinine", 176.8, "µmol/L")]}
    assert verdict("serum creatinine ≤ 176.8 µmol/L", "inclusion", **record) == "pass"
    assert verdict("serum creatinine < 176.8 µmol/L", "inclusion", **record) == "fail"
    assert verdict("serum creatinine < 176.8 µmol/L", "inclusion", observations=[lab("creatinine", 2.0, "mg/dL")]) == "fail"


def test_a_lab_in_a_unit_that_does_not_convert_is_unknown() -> None:
    found = result(CREATININE_E7, "exclusion", observations=[lab("creatinine", 2.5, "U/L")])
    assert found.verdict == "unknown" and "U/L" in found.reason


def test_a_lab_without_a_unit_is_unknown() -> None:
    assert verdict(CREATININE_E7, "exclusion", observations=[lab("creatinine", 2.5)]) == "unknown"


def test_an_implausible_value_is_unknown_not_a_verdict() -> None:
    found = result(CREATININE_E7, "exclusion", observations=[lab("creatinine", 250, "mg/dL")])  # a µmol/L value in mg/dL
    assert found.verdict == "unknown" and "plausible" in found.reason


def test_a_lab_matched_by_code_alone() -> None:
    entry = lab("Creat (lab 17)", 2.4, "mg/dL", code={"system": "http://loinc.org", "code": "2160-0"})
    assert verdict(CREATININE_E7, "exclusion", observations=[entry]) == "fail"


# --- ALSFRS-R 31~46 as an inclusion (seed 001 I5) ------------------------------------------------


@pytest.mark.parametrize(("score", "expected"), [(30, "fail"), (31, "pass"), (38, "pass"), (46, "pass"), (47, "fail")])
def test_alsfrs_r_range_is_inclusive(score: int, expected: str) -> None:
    assert verdict(ALSFRS_I5, "inclusion", observations=[lab("ALSFRS-R", score, date="2026-01-12")]) == expected


def test_alsfrs_r_reason_and_evidence() -> None:
    found = result(ALSFRS_I5, "inclusion", observations=[lab("ALSFRS-R", 38, date="2026-01-12")])
    assert "31-46 points" in found.reason and "2026-01-12" in found.reason
    assert found.evidence[0]["name"] == "ALSFRS-R" and found.evidence[0]["value"] == 38


def test_alsfrs_r_text_value_is_not_a_score() -> None:
    assert verdict(ALSFRS_I5, "inclusion", observations=[lab("ALSFRS-R", "good")]) == "unknown"


# --- FVC "not greater than 40% of the expected value" as an exclusion (seed 001 E3) --------------


@pytest.mark.parametrize(
    ("value", "unit", "expected"),
    [(40, "% predicted", "fail"), (41, "% predicted", "pass"), (39.5, "% of expected", "fail"), (40, "%", "fail"), (72, "%", "pass")],
)
def test_fvc_percent_predicted_boundary(value: float, unit: str, expected: str) -> None:
    assert verdict(FVC_E3, "exclusion", observations=[lab("FVC", value, unit)]) == expected


def test_fvc_in_litres_cannot_decide_percent_predicted() -> None:
    found = result(FVC_E3, "exclusion", observations=[lab("FVC", 3.1, "L")])
    assert found.verdict == "unknown" and "% predicted" in found.reason


def test_fvc_volume_is_another_variable() -> None:
    found = result(FVC_E3, "exclusion", observations=[lab("FVC volume", 3.1, "L")])
    assert found.verdict == "unknown" and found.missing == ["FVC"]


# --- which measurement counts ----------------------------------------------------------------


def test_a_lab_dated_after_the_screening_date_is_ignored() -> None:
    found = result(CREATININE_E7, "exclusion", observations=[lab("creatinine", 3.0, "mg/dL", "2026-01-16")])
    assert found.verdict == "unknown"
    assert verdict(CREATININE_E7, "exclusion", observations=[lab("creatinine", 3.0, "mg/dL", "2026-01-16"),
                                                            lab("creatinine", 1.0, "mg/dL", "2026-01-01")]) == "pass"


def test_a_lab_on_the_screening_date_counts() -> None:
    assert verdict(CREATININE_E7, "exclusion", observations=[lab("creatinine", 3.0, "mg/dL", "2026-01-15")]) == "fail"


@pytest.mark.parametrize("order", [1, -1])
def test_the_latest_lab_before_the_screening_date_is_used(order: int) -> None:
    labs = [lab("creatinine", 3.0, "mg/dL", "2025-12-20"), lab("creatinine", 1.0, "mg/dL", "2026-01-14"),
            lab("creatinine", 2.5, "mg/dL", "2025-01-01")][::order]
    found = result(CREATININE_E7, "exclusion", observations=labs)
    assert found.verdict == "pass" and "2026-01-14" in found.reason


def test_conflicting_values_on_the_same_day_are_unknown() -> None:
    labs = [lab("creatinine", 3.0, "mg/dL", "2026-01-14"), lab("creatinine", 1.0, "mg/dL", "2026-01-14")]
    found = result(CREATININE_E7, "exclusion", observations=labs)
    assert found.verdict == "unknown" and "conflicting" in found.reason


def test_one_value_in_two_units_on_the_same_day_is_not_a_conflict() -> None:
    labs = [lab("creatinine", 2.0, "mg/dL", "2026-01-14"), lab("SCr", 176.8, "µmol/L", "2026-01-14")]
    assert verdict(CREATININE_E7, "exclusion", observations=labs) == "fail"


@pytest.mark.parametrize(("date", "expected"), [("2025-11-01", "unknown"), ("2025-12-15", "unknown"), ("2025-12-16", "pass"), ("2026-01-10", "pass")])
def test_recency_window(date: str, expected: str) -> None:
    text = "serum creatinine < 2.0 mg/dL within 30 days"
    found = result(text, "inclusion", observations=[lab("creatinine", 1.0, "mg/dL", date)])
    assert found.verdict == expected
    if expected == "unknown":
        assert "within 30 days" in found.reason


# --- multiples of the upper limit of normal ----------------------------------------------------


def test_x_uln_uses_the_records_own_reference_range() -> None:
    def alt(value: float, high: float) -> dict[str, Any]:
        return lab("ALT", value, "U/L", reference_range={"low": 7, "high": high})

    assert verdict("ALT > 2 x ULN", "exclusion", observations=[alt(100, 40)]) == "fail"  # 2.5 x ULN
    assert verdict("ALT > 2 x ULN", "exclusion", observations=[alt(80, 40)]) == "pass"  # exactly 2 x ULN is not over
    # 120 U/L is 1.2 x the record's ULN of 100, though 2.1 x the typical 56: the record's own range decides
    found = result("ALT > 2 x ULN", "exclusion", observations=[alt(120, 100)])
    assert found.verdict == "pass" and "assumption" not in found.evidence[0]


def test_x_uln_without_a_range_names_the_assumed_uln() -> None:
    found = result("ALT > 2 x ULN", "exclusion", observations=[lab("ALT", 120, "U/L")])
    assert found.verdict == "fail"  # 120 / 56 = 2.14
    assumption = found.evidence[0]["assumption"]
    assert "56 U/L" in assumption and "assumed" in assumption


def test_x_uln_list_as_exclusion_any_one_excludes() -> None:
    high = {"low": 7, "high": 40}
    assert verdict(LIVER_E8, "exclusion", observations=[lab("ALT", 100, "U/L", reference_range=high)]) == "fail"
    # ALT normal, AST and bilirubin missing: cannot tell
    assert verdict(LIVER_E8, "exclusion", observations=[lab("ALT", 30, "U/L", reference_range=high)]) == "unknown"
    normal = [lab("ALT", 30, "U/L", reference_range=high), lab("AST", 30, "U/L", reference_range=high),
              lab("total bilirubin", 0.8, "mg/dL", reference_range={"low": 0.3, "high": 1.0})]
    assert verdict(LIVER_E8, "exclusion", observations=normal) == "pass"


def test_x_uln_list_as_inclusion_each_must_meet_it() -> None:
    high = {"low": 7, "high": 40}
    both = [lab("AST", 40, "U/L", reference_range=high), lab("ALT", 130, "U/L", reference_range=high)]
    assert verdict("AST/ALT <= 2.5 x ULN", "inclusion", observations=both) == "fail"
    both[1] = lab("ALT", 100, "U/L", reference_range=high)
    assert verdict("AST/ALT <= 2.5 x ULN", "inclusion", observations=both) == "pass"


# --- age in completed years --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("birth_date", "expected"),
    [("1985-01-16", "pass"),  # 40 the day before their 41st birthday
     ("1985-01-15", "fail"),  # 41 on the birthday itself
     ("2006-01-15", "pass"),  # 20 on the birthday itself
     ("2006-01-16", "fail")],  # 19, one day short
)
def test_age_in_completed_years(birth_date: str, expected: str) -> None:
    assert verdict("Age 20-40 years", "inclusion", birth_date=birth_date) == expected


def test_completed_years_and_months() -> None:
    assert completed("year", dt.date(1985, 1, 16), AS_OF) == 40
    assert completed("year", dt.date(1985, 1, 15), AS_OF) == 41
    assert completed("month", dt.date(2025, 7, 16), AS_OF) == 5
    assert completed("month", dt.date(2025, 7, 15), AS_OF) == 6
    assert completed("year", dt.date(2000, 2, 29), dt.date(2026, 2, 28)) == 25
    assert completed("year", dt.date(2000, 2, 29), dt.date(2026, 3, 1)) == 26


def test_age_given_as_a_number() -> None:
    found = result("Age 20-40 years", "inclusion", birth_date=None, age=40)
    assert found.verdict == "pass" and "assumption" in found.evidence[0]


def test_age_given_with_a_fraction_counts_completed_years() -> None:
    assert verdict("Age 20-40 years", "inclusion", birth_date=None, age=40.5) == "pass"
    assert verdict("Age 20-40 years", "inclusion", birth_date=None, age=19.9) == "fail"


def test_age_in_months_needs_a_birth_date() -> None:
    assert verdict("age 18 months or older", "inclusion", birth_date=None, age=40) == "unknown"
    assert verdict("age 18 months or older", "inclusion", birth_date="2024-07-15") == "pass"
    assert verdict("age 18 months or older", "inclusion", birth_date="2024-07-16") == "fail"


def test_a_birth_date_after_the_screening_date_is_unknown() -> None:
    assert verdict("Age 20-40 years", "inclusion", birth_date="2026-02-01") == "unknown"


# --- presence: open world -----------------------------------------------------------------------


def test_presence_open_world() -> None:
    found = result("history of epilepsy", "exclusion")
    assert found.verdict == "unknown" and found.missing == ["epilepsy"]
    assert verdict("history of epilepsy", "exclusion", conditions=[{"name": "epilepsy", "present": False}]) == "pass"
    assert verdict("history of epilepsy", "exclusion", conditions=[{"name": "Epilepsy"}]) == "fail"
    assert verdict("history of epilepsy", "exclusion", conditions=[{"name": "seizure disorder", "onset": "2010-05-01"}]) == "fail"


def test_presence_closed_world_on_request() -> None:
    assert result("history of epilepsy", "exclusion", closed_world=True).verdict == "pass"


def test_an_entry_dated_after_the_screening_date_is_ignored() -> None:
    """Ignored means as if not on record: unknown in the open world, never a pass for an exclusion."""
    later = [{"name": "epilepsy", "onset": "2026-03-01"}]
    found = result("history of epilepsy", "exclusion", conditions=later)
    assert found.verdict == "unknown" and found.missing == ["epilepsy"]
    assert "after 2026-01-15" in found.reason
    assert verdict("history of epilepsy", "inclusion", conditions=later) == "unknown"
    assert verdict("history of epilepsy", "exclusion", conditions=[*later, {"name": "epilepsy", "present": False}]) == "pass"
    assert verdict("history of epilepsy", "exclusion", closed_world=True, conditions=later) == "pass"


def test_an_unrelated_entry_says_nothing_about_absence() -> None:
    assert verdict("history of epilepsy", "exclusion", conditions=[{"name": "hypertension"}]) == "unknown"


def test_pregnancy_does_not_apply_to_a_man() -> None:
    assert verdict("pregnancy", "exclusion", sex="male") == "pass"
    assert verdict("pregnancy", "exclusion", sex="female") == "unknown"
    assert verdict("pregnancy, breastfeeding", "exclusion", sex="male") == "pass"
    pregnant = [{"name": "pregnant", "onset": "2025-12-01"}]
    assert verdict("pregnancy", "exclusion", sex="female", conditions=pregnant) == "fail"
    over = [{"name": "pregnancy", "onset": "2024-01-01", "end": "2024-09-30"}]
    assert verdict("pregnancy", "exclusion", sex="female", conditions=over) == "pass"


def test_presence_within_a_window() -> None:
    text = "history of stroke within 6 months"
    assert verdict(text, "exclusion", conditions=[{"name": "stroke", "onset": "2025-10-01"}]) == "fail"
    assert verdict(text, "exclusion", conditions=[{"name": "stroke", "onset": "2024-10-01", "end": "2024-10-20"}]) == "pass"
    assert verdict(text, "exclusion", conditions=[{"name": "stroke"}]) == "unknown"  # no date: cannot tell when


def test_a_procedure_is_matched_by_synonym() -> None:
    assert verdict("Subjects who received gastrotomy at the time of screening (P-V0).", "exclusion",
                   procedures=[{"name": "PEG", "date": "2025-12-01"}]) == "fail"


def test_alcohol_abuse_meets_alcohol_or_drug_abuse() -> None:
    assert verdict("alcohol or drug abuse", "exclusion", conditions=[{"name": "alcohol abuse", "onset": "2015-01-01"}]) == "fail"


# --- the riluzole conditional (seed 001 I3) ----------------------------------------------------


@pytest.mark.parametrize(
    ("medications", "expected"),
    [
        ([{"name": "riluzole", "present": False}], "pass"),  # not on riluzole: the condition does not apply
        ([{"name": "riluzole", "start": "2026-01-01"}], "fail"),  # 14 days
        ([{"name": "riluzole", "start": "2025-12-18"}], "fail"),  # 28 days is not more than 28
        ([{"name": "Rilutek", "start": "2025-12-17"}], "pass"),  # 29 days
        ([{"name": "riluzole", "start": "2025-01-01", "end": "2025-06-01"}], "pass"),  # stopped: not under treatment now
        ([{"name": "riluzole"}], "unknown"),  # on it, since when?
        ([], "unknown"),  # open world: the record does not say
    ],
)
def test_riluzole_conditional(medications: list[dict[str, Any]], expected: str) -> None:
    assert verdict(RILUZOLE_I3, "inclusion", medications=medications) == expected


@pytest.mark.parametrize(("medications", "expected"), [([{"name": "riluzole", "present": False}], "pass"),
                                                       ([{"name": "riluzole", "start": "2025-11-15"}], "pass"),
                                                       ([{"name": "riluzole", "start": "2025-11-16"}], "fail"),
                                                       ([], "unknown")])
def test_riluzole_naive_or_stable(medications: list[dict[str, Any]], expected: str) -> None:
    assert verdict("riluzole naive or stable dose for at least 2 months,", "inclusion", medications=medications) == expected


# --- duration since diagnosis (seed 001 I4, in an ALS trial) -------------------------------------


@pytest.mark.parametrize(("diagnosed", "expected"), [("2025-06-01", "pass"), ("2024-01-16", "pass"), ("2024-01-15", "pass"),
                                                     ("2024-01-14", "fail"), ("2020-01-01", "fail")])
def test_duration_since_diagnosis(diagnosed: str, expected: str) -> None:
    conditions = [{"name": "amyotrophic lateral sclerosis", "onset": "2023-01-01", "diagnosed": diagnosed}]
    assert verdict(DURATION_I4, "inclusion", "als", conditions=conditions) == expected


def test_duration_needs_the_diagnosis_date() -> None:
    found = result(DURATION_I4, "inclusion", "als", conditions=[{"name": "ALS", "onset": "2025-01-01"}])
    assert found.verdict == "unknown" and "diagnosis" in found.reason
    assert verdict(DURATION_I4, "inclusion", "als") == "unknown"


def test_calendar_periods() -> None:
    assert add_period(dt.date(2024, 1, 15), Period(amount=2, unit="year")) == dt.date(2026, 1, 15)
    assert add_period(dt.date(2024, 2, 29), Period(amount=1, unit="year")) == dt.date(2025, 2, 28)
    assert add_period(dt.date(2026, 3, 31), Period(amount=1, unit="month"), -1) == dt.date(2026, 2, 28)
    assert add_period(AS_OF, Period(amount=30, unit="day"), -1) == dt.date(2025, 12, 16)
    assert add_period(AS_OF, Period(amount=2, unit="week"), -1) == dt.date(2026, 1, 1)


# --- Kleene logic ---------------------------------------------------------------------------------

# Three leaves whose truth the record fixes: epilepsy present (True), stroke recorded absent
# (False), dementia not on record (unknown).
LEAF = {True: Presence(variable="epilepsy"), False: Presence(variable="stroke"), None: Presence(variable="dementia")}
RECORD = patient(conditions=[{"name": "epilepsy", "onset": "2010-01-01"}, {"name": "stroke", "present": False}])
VALUES = (True, False, None)


def truth(predicate: PredicateNode) -> bool | None:
    return Planner().plan(predicate)(facts_of(RECORD), Screening(AS_OF)).truth


def kleene_and(a: bool | None, b: bool | None) -> bool | None:
    return False if False in (a, b) else (None if None in (a, b) else True)


def kleene_or(a: bool | None, b: bool | None) -> bool | None:
    return True if True in (a, b) else (None if None in (a, b) else False)


def kleene_not(a: bool | None) -> bool | None:
    return None if a is None else not a


def test_leaves_have_the_truth_the_record_gives() -> None:
    assert [truth(LEAF[v]) for v in VALUES] == list(VALUES)


@pytest.mark.parametrize(("a", "b"), list(itertools.product(VALUES, repeat=2)))
def test_all_any_implies_truth_tables(a: bool | None, b: bool | None) -> None:
    assert truth(All(items=(LEAF[a], LEAF[b]))) is kleene_and(a, b)
    assert truth(AnyOf(items=(LEAF[a], LEAF[b]))) is kleene_or(a, b)
    assert truth(Implies(condition=LEAF[a], then=LEAF[b])) is kleene_or(kleene_not(a), b)


@pytest.mark.parametrize("a", VALUES)
def test_not_truth_table(a: bool | None) -> None:
    assert truth(Not(item=LEAF[a])) is kleene_not(a)
    assert truth(Not(item=Not(item=LEAF[a]))) is a


def test_unknown_with_unknown_stays_unknown_even_for_a_tautology_shape() -> None:
    # Kleene, not classical: "p or not p" is unknown when p is
    assert truth(AnyOf(items=(LEAF[None], Not(item=LEAF[None])))) is None


def test_an_unknown_part_reports_what_would_decide_it() -> None:
    outcome = Planner().plan(All(items=(LEAF[True], LEAF[None])))(facts_of(RECORD), Screening(AS_OF))
    assert outcome.truth is None and outcome.missing == ["dementia"]


# --- verdicts and the overall result -----------------------------------------------------------


@pytest.mark.parametrize(("value", "inclusion", "exclusion"), [(True, "pass", "fail"), (False, "fail", "pass"), (None, "unknown", "unknown")])
def test_exclusion_inverts_the_verdict_not_unknown(value: bool | None, inclusion: str, exclusion: str) -> None:
    trial = Trial(trial="T", criteria=(
        Criterion(id="I1", kind="inclusion", text="x", compiled=True, predicate=LEAF[value]),
        Criterion(id="E1", kind="exclusion", text="x", compiled=True, predicate=LEAF[value]),
    ))
    report = screen(trial, RECORD, as_of=AS_OF)
    assert [c.verdict for c in report.criteria] == [inclusion, exclusion]


@pytest.mark.parametrize(("verdicts", "overall"), [
    (["pass", "pass"], "eligible"), (["pass", "unknown"], "needs_review"), (["unknown", "fail"], "ineligible"),
    (["fail", "pass"], "ineligible"), ([], "eligible"),
])
def test_overall_of(verdicts: list[str], overall: str) -> None:
    assert overall_of(verdicts) == overall


TRIAL_TEXT = """Inclusion Criteria:
1. Age 25 to 75 years
2. Subjects whose ALSFRS-R scores are in the range of 31~46 at the time of screening (P-V0).
Exclusion Criteria:
1. Subjects with severe renal disorder (serum creatinine: not less than 2.0 mg/dL).
2. pregnancy, breastfeeding
"""


@pytest.mark.parametrize(("creatinine", "alsfrs", "overall"), [(1.1, 38, "eligible"), (2.4, 38, "ineligible"), (None, 38, "needs_review"),
                                                               (None, 20, "ineligible")])
def test_overall_for_a_trial(creatinine: float | None, alsfrs: int, overall: str) -> None:
    observations = [lab("ALSFRS-R", alsfrs)] + ([lab("creatinine", creatinine, "mg/dL")] if creatinine is not None else [])
    report = screen(compile_trial(TRIAL_TEXT), patient(observations=observations), as_of=AS_OF)
    assert [c.id for c in report.criteria] == ["I1", "I2", "E1", "E2"]
    assert report.overall == overall
    assert report.as_of == AS_OF and report.patient == "P1"


def test_a_criterion_not_compiled_is_unknown_and_kept_for_review() -> None:
    trial = compile_trial("Inclusion Criteria:\n* Something no grammar will ever read, kept for review\n")
    found = screen(trial, patient(), as_of=AS_OF).criteria[0]
    assert (found.compiled, found.verdict, found.missing) == (False, "unknown", ["manual review"])
    assert found.note and "not compiled" in found.note


def test_a_missing_value_is_never_normal() -> None:
    found = result(CREATININE_E7, "exclusion")
    assert found.verdict == "unknown" and found.missing == ["serum creatinine"] and "no serum creatinine" in found.reason


# --- a negation before a defining parenthesis is not dropped ---------------------------------------


def test_negated_lead_in_before_a_defining_parenthesis() -> None:
    text = "No severe renal disorder (serum creatinine: not less than 2.0 mg/dL)."
    predicate, _ = compile_criterion(text, "inclusion")
    trial = Trial(trial="T", criteria=(Criterion(id="I1", kind="inclusion", text=text, compiled=predicate is not None, predicate=predicate),))
    high = screen(trial, patient(observations=[lab("creatinine", 3.0, "mg/dL")]), as_of=AS_OF).criteria[0].verdict
    normal = screen(trial, patient(observations=[lab("creatinine", 1.0, "mg/dL")]), as_of=AS_OF).criteria[0].verdict
    assert high != "pass" and normal != "fail"


# --- one screener, many screenings: nothing of one date or world leaks into another -----------------


def test_a_screener_reused_across_dates_and_worlds_reports_as_a_fresh_one() -> None:
    """A TrialScreener keeps each screening date set up (ISO text, window starts): screening on
    other dates, open and closed world, gives exactly what a new screener gives each time."""
    trial = compile_trial("Exclusion Criteria:\n* History of myocardial infarction within the past 6 months\n"
                          "* Subjects whose ALSFRS-R scores are in the range of 31~46 within 30 days\n")
    records = [patient(conditions=[{"name": "myocardial infarction", "onset": "2025-10-01"}],
                       observations=[lab("ALSFRS-R", 40, date="2026-01-02")]), patient()]
    screener = TrialScreener(trial)
    dates = (AS_OF, dt.date(2026, 6, 15), AS_OF, dt.date(2025, 12, 1))
    for record, as_of, closed_world in itertools.product(records, dates, (False, True)):
        reused = screener.screen(record, as_of, closed_world=closed_world)
        assert reused == TrialScreener(trial).screen(record, as_of, closed_world=closed_world), (as_of, closed_world)
    verdicts = {(as_of, closed): [c.verdict for c in screener.screen(records[1], as_of, closed_world=closed).criteria]
                for as_of in dates for closed in (False, True)}
    assert verdicts[(AS_OF, False)] == ["unknown", "unknown"] and verdicts[(AS_OF, True)] == ["pass", "unknown"]


def test_presence_entries_after_the_screening_date_leave_an_asserted_absence() -> None:
    """An entry dated after the screening date is ignored; a recorded absence beside it decides."""
    later = {"name": "epilepsy", "onset": "2026-03-01"}
    trial = compile_trial("Exclusion Criteria:\n* Subjects who have experienced epileptic seizure.\n")
    absent_too = screen(trial, patient(conditions=[later, {"name": "epilepsy", "present": False}]), as_of=AS_OF).criteria[0]
    assert (absent_too.verdict, absent_too.reason) == ("pass", "epilepsy: recorded as absent")
    only_later = screen(trial, patient(conditions=[later]), as_of=AS_OF).criteria[0]
    assert only_later.verdict == "unknown" and "only on record after 2026-01-15" in only_later.reason
    before = screen(trial, patient(conditions=[later, {"name": "epilepsy", "onset": "2020-05-01"}]), as_of=AS_OF).criteria[0]
    assert before.verdict == "fail" and "(since 2020-05-01)" in before.reason


def test_a_plan_reused_across_records_gives_each_the_outcome_a_fresh_plan_gives() -> None:
    """all / any keep the combination of results without evidence ("no record of X" and a manual
    part): a record with evidence, or other results, between two without is combined afresh."""
    from eligibility import Manual

    pair = All(items=(Presence(variable="epilepsy"), Manual(text="was it treated?")))
    many = AnyOf(items=(Presence(variable="epilepsy"), Presence(variable="stroke"), Presence(variable="dementia")))
    none_on_record = patient()
    some = patient(conditions=[{"name": "stroke", "present": False}])
    present = patient(conditions=[{"name": "epilepsy", "onset": "2010-01-01"}])
    for predicate in (pair, many):
        reused = Planner().plan(predicate)
        for record in (none_on_record, none_on_record, some, present, none_on_record, present):
            fresh = Planner().plan(predicate)(facts_of(record), Screening(AS_OF))
            assert reused(facts_of(record), Screening(AS_OF)) == fresh, (predicate.type, record.conditions)
    outcome = Planner().plan(many)(facts_of(none_on_record), Screening(AS_OF))
    assert outcome.truth is None and outcome.missing == ["epilepsy", "stroke", "dementia"]
    assert outcome.reason.count("; ") == 2


def test_a_record_written_as_a_converted_threshold_compares_equal_to_it() -> None:
    """275 lb is 124.7 kg as a threshold and as a record: a patient of exactly 275 lb is not over 275 lb."""
    text = "Weight over 275 pounds"
    assert verdict(text, "exclusion", observations=[lab("weight", 275, "lb")]) == "pass"
    assert verdict(text, "exclusion", observations=[lab("weight", 276, "lb")]) == "fail"
    assert verdict(text, "exclusion", observations=[lab("weight", 124.9, "kg")]) == "fail"
    assert verdict(text, "exclusion", observations=[lab("weight", 124.7, "kg")]) == "pass"
