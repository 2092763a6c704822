"""Properties of the engine, checked with hypothesis (profiles in tests/conftest.py).

Each test states its property in its first line.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import yaml
from hypothesis import assume, given
from hypothesis import strategies as st

from eligibility import (
    All,
    AnyOf,
    Category,
    Comparison,
    Criterion,
    Duration,
    Implies,
    Manual,
    Not,
    Patient,
    Period,
    PredicateAdapter,
    Presence,
    Range,
    Sex,
    Trial,
    compile_criterion,
    screen,
)
from eligibility.evaluate import Planner, Screening
from eligibility.facts import facts_of
from eligibility.predicates import PredicateNode, variables_of
from eligibility.trial import load_rule_text
from eligibility.units import units
from eligibility.vocabulary import vocabulary

AS_OF = dt.date(2026, 1, 15)
VOCAB = vocabulary()
OPS = ("lt", "le", "gt", "ge", "eq")


def verdict_of(predicate: PredicateNode, record: dict[str, Any], kind: str = "inclusion") -> str:
    trial = Trial(trial="T", criteria=(Criterion(id="C1", kind=kind, text="-", compiled=True, predicate=predicate),))  # type: ignore[arg-type]
    patient = Patient.model_validate({"id": "P", "birth_date": "1970-01-01", "sex": "male", **record})
    return screen(trial, patient, as_of=AS_OF).criteria[0].verdict


def lab(name: str, value: float, unit: str) -> dict[str, Any]:
    return {"observations": [{"name": name, "value": value, "unit": unit, "date": "2026-01-10"}]}


# --- one quantity, any unit ---------------------------------------------------------------------

# A value on a coarse grid of the canonical unit (what labs report), the same quantity derived
# exactly in another unit, and a threshold on the same grid at or next to the value, so that the
# boundary itself (value == threshold) is where the property is tested.
UMOL_PER_MG_DL = 1 / units().conversion("umol/L", "mg/dL", VOCAB["creatinine"].molar_mass).factor  # type: ignore[union-attr]


@given(hundredths=st.integers(5, 999), offset=st.integers(-2, 2), op=st.sampled_from(OPS), kind=st.sampled_from(["inclusion", "exclusion"]))
def test_creatinine_in_mg_per_dl_or_umol_per_l_gives_one_verdict(hundredths: int, offset: int, op: str, kind: str) -> None:
    """Creatinine x mg/dL and the same x in µmol/L (x * 88.40) get the same verdict against any threshold."""
    mg_dl = hundredths / 100
    predicate = Comparison(variable="creatinine", op=op, value=(hundredths + offset) / 100, unit="mg/dL")  # type: ignore[arg-type]
    assert verdict_of(predicate, lab("creatinine", mg_dl, "mg/dL"), kind) == \
        verdict_of(predicate, lab("creatinine", mg_dl * UMOL_PER_MG_DL, "µmol/L"), kind)


@given(count=st.integers(1, 2000), offset=st.integers(-2, 2), op=st.sampled_from(OPS),
       unit=st.sampled_from([("/mm3", 1000), ("/µL", 1000), ("10^3/µL", 1), ("K/uL", 1), ("x10^9/L", 1), ("10*9/L", 1)]))
def test_platelets_in_any_count_unit_give_one_verdict(count: int, offset: int, op: str, unit: tuple[str, int]) -> None:
    """Platelets x 10^9/L and the same count per mm3, per µL or 10^3/µL get the same verdict."""
    written, per_canonical = unit
    predicate = Comparison(variable="platelets", op=op, value=count + offset, unit="10^9/L")  # type: ignore[arg-type]
    assert verdict_of(predicate, lab("platelets", count, "10^9/L")) == verdict_of(predicate, lab("PLT", count * per_canonical, written))


# --- missing data never passes --------------------------------------------------------------------

FIXTURES = Path(__file__).parent / "fixtures" / "grammar"
COMPILED_FIXTURES = [
    PredicateAdapter.validate_python(case["predicate"])
    for path in sorted(FIXTURES.glob("*.yaml"))
    for case in yaml.safe_load(path.read_text(encoding="utf-8"))
    if "predicate" in case and "xfail" not in case
]


def decided_by_demographics(predicate: PredicateNode, sex: str) -> bool:
    """Whether a predicate reads only age and sex, or conditions the patient's sex rules out."""
    return all(v in ("age", "sex") or (v in VOCAB and VOCAB[v].applies_to not in (None, sex)) for v in variables_of(predicate))


@given(predicate=st.sampled_from(COMPILED_FIXTURES), kind=st.sampled_from(["inclusion", "exclusion"]),
       sex=st.sampled_from(["female", "male"]), born=st.sampled_from([{"birth_date": "1950-06-01"}, {"birth_date": "2000-02-29"}, {"age": 44}]))
def test_an_empty_record_never_passes_a_compiled_seed_criterion(predicate: PredicateNode, kind: str, sex: str, born: dict[str, Any]) -> None:
    """A record with no observations, conditions, medications or procedures gets unknown, unless age or sex decide."""
    patient = Patient.model_validate({"id": "P", "sex": sex, **born})
    trial = Trial(trial="T", criteria=(Criterion(id="C1", kind=kind, text="-", compiled=True, predicate=predicate),))  # type: ignore[arg-type]
    found = screen(trial, patient, as_of=AS_OF).criteria[0]
    if not decided_by_demographics(predicate, sex):
        assert found.verdict == "unknown", found.reason
        assert found.missing
    elif "birth_date" in born:
        assert found.verdict != "unknown", found.reason


# --- strategies for predicate trees --------------------------------------------------------------

NAMES = st.sampled_from(sorted(VOCAB.variables))
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=30)
NUMBER = st.floats(allow_nan=False, allow_infinity=False, width=64)
PERIOD = st.builds(Period, amount=st.floats(0, 1e6, allow_nan=False), unit=st.sampled_from(["day", "week", "month", "year"]))

LEAVES: st.SearchStrategy[PredicateNode] = st.one_of(
    st.builds(Comparison, variable=NAMES, op=st.sampled_from(OPS), value=NUMBER, unit=TEXT, within=st.none() | PERIOD),
    st.builds(Range, variable=NAMES, low=NUMBER, high=NUMBER, unit=TEXT, low_inclusive=st.booleans(),
              high_inclusive=st.booleans(), within=st.none() | PERIOD),
    st.builds(Category, variable=NAMES, values=st.lists(TEXT, max_size=3).map(tuple), within=st.none() | PERIOD),
    st.builds(Sex, sex=st.sampled_from(["female", "male"])),
    st.builds(Presence, variable=NAMES, current=st.booleans(), within=st.none() | PERIOD),
    st.builds(Duration, variable=NAMES, since=st.sampled_from(["onset", "diagnosed", "start"]), op=st.sampled_from(OPS), period=PERIOD),
    st.builds(Manual, text=TEXT),
)


def branches(children: st.SearchStrategy[PredicateNode]) -> st.SearchStrategy[PredicateNode]:
    several = st.lists(children, min_size=1, max_size=3).map(tuple)
    return st.one_of(st.builds(All, items=several), st.builds(AnyOf, items=several), st.builds(Not, item=children),
                     st.builds(Implies, condition=children, then=children))


PREDICATES = st.recursive(LEAVES, branches, max_leaves=8)


@given(PREDICATES)
def test_predicates_round_trip_through_json(predicate: PredicateNode) -> None:
    """Any predicate tree dumped to JSON and read back is the same tree."""
    assert PredicateAdapter.validate_json(PredicateAdapter.dump_json(predicate)) == predicate


@given(PREDICATES, TEXT)
def test_predicates_round_trip_through_a_yaml_rule_file(predicate: PredicateNode, text: str) -> None:
    """Any predicate, with any criterion text, survives a YAML rule file.

    The trees are random (a presence of "creatinine", units that are not the variable's), so the
    vocabulary check that loading does by default is off; tests/test_fuzz.py checks it.
    """
    trial = Trial(trial="T", criteria=(Criterion(id="I1", kind="inclusion", text=text, compiled=True, predicate=predicate),))
    assert load_rule_text(trial.to_rule_file("yaml"), "rules.yaml", check_vocabulary=False) == trial


# --- Kleene logic over leaves whose truth the record controls ---------------------------------------

CONDITIONS = ("epilepsy", "stroke", "dementia", "diabetes")


def record_for(truths: dict[str, bool | None]) -> Patient:
    """True: present; False: recorded absent; None: not on record."""
    conditions = [{"name": name, **({} if value else {"present": False})} for name, value in truths.items() if value is not None]
    return Patient.model_validate({"id": "P", "age": 50, "sex": "female", "conditions": conditions})


ASSIGNMENTS = st.fixed_dictionaries({name: st.sampled_from([True, False, None]) for name in CONDITIONS})
CONDITION_LEAVES = st.sampled_from(CONDITIONS).map(lambda name: Presence(variable=name))
TREES = st.recursive(CONDITION_LEAVES, branches, max_leaves=6)


def truth(predicate: PredicateNode, patient: Patient) -> bool | None:
    return Planner().plan(predicate)(facts_of(patient), Screening(AS_OF)).truth


def kleene(predicate: PredicateNode, truths: dict[str, bool | None]) -> bool | None:
    """The reference: Kleene's strong three-valued logic, written out."""
    if isinstance(predicate, Presence):
        return truths[predicate.variable]
    if isinstance(predicate, Not):
        inner = kleene(predicate.item, truths)
        return None if inner is None else not inner
    if isinstance(predicate, Implies):
        return kleene(AnyOf(items=(Not(item=predicate.condition), predicate.then)), truths)
    values = [kleene(item, truths) for item in predicate.items]  # type: ignore[union-attr]
    decisive = isinstance(predicate, AnyOf)
    if decisive in values:
        return decisive
    return None if None in values else not decisive


@given(TREES, ASSIGNMENTS)
def test_evaluation_is_kleene_logic(tree: PredicateNode, truths: dict[str, bool | None]) -> None:
    """Any all/any/not/implies tree evaluates as Kleene's three-valued logic says."""
    assert truth(tree, record_for(truths)) is kleene(tree, truths)


@given(TREES, TREES, ASSIGNMENTS)
def test_de_morgan(a: PredicateNode, b: PredicateNode, truths: dict[str, bool | None]) -> None:
    """not(a and b) == (not a) or (not b), and not(a or b) == (not a) and (not b), unknown included."""
    patient = record_for(truths)
    assert truth(Not(item=All(items=(a, b))), patient) is truth(AnyOf(items=(Not(item=a), Not(item=b))), patient)
    assert truth(Not(item=AnyOf(items=(a, b))), patient) is truth(All(items=(Not(item=a), Not(item=b))), patient)


@given(TREES, TREES, ASSIGNMENTS)
def test_absorption(a: PredicateNode, b: PredicateNode, truths: dict[str, bool | None]) -> None:
    """a and (a or b) == a, and a or (a and b) == a."""
    patient = record_for(truths)
    assert truth(All(items=(a, AnyOf(items=(a, b)))), patient) is truth(a, patient)
    assert truth(AnyOf(items=(a, All(items=(a, b)))), patient) is truth(a, patient)


@given(TREES, ASSIGNMENTS, st.sampled_from(CONDITIONS), st.sampled_from(CONDITIONS))
def test_identity_and_annihilation(a: PredicateNode, truths: dict[str, bool | None], yes: str, no: str) -> None:
    """a and TRUE == a, a or FALSE == a, a or TRUE == TRUE, a and FALSE == FALSE, not not a == a."""
    assume(yes != no)
    truths = {**truths, yes: True, no: False}
    patient, true, false = record_for(truths), Presence(variable=yes), Presence(variable=no)
    assert truth(All(items=(a, true)), patient) is truth(a, patient)
    assert truth(AnyOf(items=(a, false)), patient) is truth(a, patient)
    assert truth(AnyOf(items=(a, true)), patient) is True
    assert truth(All(items=(a, false)), patient) is False
    assert truth(Not(item=Not(item=a)), patient) is truth(a, patient)


@given(TREES, TREES, ASSIGNMENTS)
def test_implies_is_not_a_or_b(a: PredicateNode, b: PredicateNode, truths: dict[str, bool | None]) -> None:
    """a implies b == (not a) or b."""
    patient = record_for(truths)
    assert truth(Implies(condition=a, then=b), patient) is truth(AnyOf(items=(Not(item=a), b)), patient)


@given(TREES)
def test_unknown_leaves_never_decide(tree: PredicateNode) -> None:
    """With every leaf unknown, any tree is unknown: missing data never becomes pass or fail."""
    assert truth(tree, record_for(dict.fromkeys(CONDITIONS))) is None


# --- the compiler never crashes -------------------------------------------------------------------

WORDS = ["serum creatinine", "ALT", "AST", "/", "or", "and", "and/or", "not", "no", "<", "≥", "not less than", "over", "2.0",
         "31", "~", "-", "to", "between", "mg/dL", "µmol/L", "x ULN", "times", "%", "of the expected value", "years", "days",
         "age", "riluzole", "naive", "stable dose", "for", "more than", "within", "30", "history of", "pregnancy", "female",
         "(", ")", ",", "For subjects who are under", "treatment", "duration of", "disease", "from the first diagnosis date",
         "onset", "El Escorial", "definite", "probable", "ALSFRS-R", "FVC", "in the range of", "points", "+", "on"]


@given(st.lists(st.sampled_from(WORDS), min_size=1, max_size=14).map(" ".join), st.sampled_from(["inclusion", "exclusion"]),
       st.sampled_from([None, "als"]))
def test_compiling_word_salad_never_raises(text: str, kind: str, condition: str | None) -> None:
    """Any sequence of the grammar's own words compiles to a valid predicate or is kept with a note: no exception."""
    predicate, note = compile_criterion(text, kind, condition)  # type: ignore[arg-type]
    if predicate is None:
        assert note
    else:
        assert PredicateAdapter.validate_python(PredicateAdapter.dump_python(predicate)) == predicate


@given(st.text(max_size=120), st.sampled_from(["inclusion", "exclusion"]))
def test_compiling_any_text_never_raises(text: str, kind: str) -> None:
    """Any text at all compiles or is kept with a note: no exception escapes."""
    predicate, note = compile_criterion(text, kind)  # type: ignore[arg-type]
    assert predicate is not None or note
