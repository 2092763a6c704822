"""Hypothesis strategies for testing an app built on ``eligibility``.

Import it explicitly (it needs hypothesis, which the engine itself does not)::

    from eligibility.testing import patients, patients_for, predicates, criterion_texts

- ``patients()``: valid patient records with realistic values, in any unit the vocabulary
  converts, dated around a screening date.
- ``patients_for(trial, outcome, as_of=...)``: records a trial classifies as built,
  ``"eligible"``, ``"ineligible"``, ``"needs_review"``, or per criterion
  (``{"I1": "pass", "E2": "unknown"}``). They are constructed from the predicates (values
  inside or outside each bound, events inside or outside each window, data left out for
  unknown), not found by screening random records; an outcome no record can have raises
  ``ImpossibleOutcome``.
- ``predicates()``: predicate trees over the vocabulary's variables.
- ``criterion_texts()``: criterion sentences paired with the predicate they mean.

>>> import datetime
>>> from hypothesis import given
>>> import eligibility
>>> from eligibility.testing import patients_for
>>> trial = eligibility.compile_trial("Inclusion Criteria:\\n* Age 18 to 65 years\\n* ALSFRS-R ≥ 30")
>>> @given(patients_for(trial, "eligible", as_of=datetime.date(2026, 1, 15)))
... def test_eligible(patient):
...     assert eligibility.screen(trial, patient, as_of=datetime.date(2026, 1, 15)).overall == "eligible"
>>> test_eligible()
"""

from __future__ import annotations

import datetime as dt
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal, NamedTuple, cast

from hypothesis import assume
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from .patient import Patient
from .predicates import (
    All,
    AnyOf,
    Category,
    Comparison,
    Duration,
    Implies,
    Manual,
    Not,
    Operator,
    Period,
    PredicateNode,
    Presence,
    Range,
    Sex,
)
from .render import Phrasing, RenderError, render, unit_spellings, variable_names
from .trial import Trial
from .vocabulary import Variable, vocabulary

__all__ = [
    "CriterionText",
    "ImpossibleOutcome",
    "criterion_texts",
    "patients",
    "patients_for",
    "predicates",
]

Kind = Literal["inclusion", "exclusion"]
Verdict = Literal["pass", "fail", "unknown"]
Outcome = Literal["eligible", "ineligible", "needs_review"]

_OPS: tuple[Operator, ...] = ("lt", "le", "gt", "ge")
_TIME_UNITS = ("day", "week", "month", "year")
_EVENT_KINDS = ("condition", "medication", "procedure")


class ImpossibleOutcome(InvalidArgument):
    """No patient record can get the asked outcome from this trial (a hypothesis ``InvalidArgument``).

    ``criterion`` names the criterion that stands in the way, when one does.
    """

    def __init__(self, message: str, criterion: str | None = None):
        super().__init__(message)
        self.criterion = criterion


class CriterionText(NamedTuple):
    """A criterion sentence, the kind of criterion it is, and the predicate it means."""

    text: str
    kind: Kind
    predicate: PredicateNode
    condition: str | None = None  # the trial's condition, when the text says "the disease"


# --- the vocabulary, sorted for strategies -----------------------------------------------------------


@dataclass(frozen=True)
class _Variables:
    measured: tuple[str, ...]  # can be written as a threshold (a unit the grammar reads, values >= 0)
    labs: tuple[str, ...]
    conditions: tuple[str, ...]
    medications: tuple[str, ...]
    events: tuple[str, ...]
    categories: tuple[str, ...]


_VARIABLES: _Variables | None = None


def _variables() -> _Variables:
    global _VARIABLES
    if _VARIABLES is None:
        vocab = vocabulary()
        all_vars = sorted(vocab.variables.values(), key=lambda v: v.id)
        measured = tuple(v.id for v in all_vars if v.is_measured and v.unit and unit_spellings(v.id) and variable_names(v.id)
                         and (v.plausible is None or v.plausible.high is None or v.plausible.high > 0))
        _VARIABLES = _Variables(
            measured=measured,
            labs=tuple(v for v in measured if vocab[v].kind == "lab"),
            conditions=tuple(v.id for v in all_vars if v.kind == "condition" and variable_names(v.id)),
            medications=tuple(v.id for v in all_vars if v.kind == "medication" and variable_names(v.id)),
            events=tuple(v.id for v in all_vars if v.kind in _EVENT_KINDS and variable_names(v.id)),
            categories=tuple(v.id for v in all_vars if v.kind == "category" and v.values),
        )
    return _VARIABLES


def _bounds(variable: Variable) -> tuple[float, float]:
    """Where a threshold for the variable realistically lies (plausible bounds, at least 0)."""
    low = variable.plausible.low if variable.plausible and variable.plausible.low is not None else 0.0
    high = variable.plausible.high if variable.plausible and variable.plausible.high is not None else 1000.0
    return max(low, 0.0), high


def _nice(value: float, digits: int) -> float:
    """``value`` to ``digits`` significant digits (thresholds are written 2.0, 31, 1.5, 100 000)."""
    if value == 0:
        return 0.0
    return float(f"{value:.{digits}g}")


@st.composite
def _threshold(draw: st.DrawFn, variable_id: str) -> float:
    low, high = _bounds(vocabulary()[variable_id])
    value = draw(st.floats(low, high, allow_nan=False, allow_infinity=False))
    nice = _nice(value, draw(st.integers(1, 3)))
    if nice < 0.01:
        nice = round(nice, 2)
    return min(max(nice, low), high)


_PERIODS = st.builds(Period, amount=st.integers(1, 36).map(float), unit=st.sampled_from(_TIME_UNITS))
_ULN_MULTIPLES = st.sampled_from([0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 5.0, 10.0])


# --- predicates ---------------------------------------------------------------------------------------


@st.composite
def _comparison(draw: st.DrawFn, variable_id: str | None = None, window: bool = True) -> Comparison:
    names = _variables()
    variable = variable_id or draw(st.sampled_from(names.measured))
    op = draw(st.sampled_from(_OPS))
    within = draw(st.none() | _PERIODS) if window else None
    if variable in names.labs and draw(st.integers(0, 4)) == 0:
        return Comparison(variable=variable, op=op, value=draw(_ULN_MULTIPLES), unit="x ULN", within=within)
    return Comparison(variable=variable, op=op, value=draw(_threshold(variable)),
                      unit=cast(str, vocabulary()[variable].unit), within=within)


@st.composite
def _range(draw: st.DrawFn, variable_id: str | None = None) -> Range:
    names = _variables()
    variable = variable_id or draw(st.sampled_from(names.measured))
    within = draw(st.none() | _PERIODS)
    if variable in names.labs and draw(st.integers(0, 4)) == 0:
        low, high = sorted(draw(st.lists(_ULN_MULTIPLES, min_size=2, max_size=2, unique=True)))
        return Range(variable=variable, low=low, high=high, unit="x ULN", within=within)
    low, high = sorted(draw(st.lists(_threshold(variable), min_size=2, max_size=2, unique=True)))
    return Range(variable=variable, low=low, high=high, unit=cast(str, vocabulary()[variable].unit), within=within)


@st.composite
def _age(draw: st.DrawFn) -> PredicateNode:
    unit = draw(st.sampled_from(["year"] * 6 + ["month", "week", "day"]))
    top = {"year": 90, "month": 240, "week": 520, "day": 1000}[unit]
    if draw(st.booleans()):
        return Comparison(variable="age", op=draw(st.sampled_from(_OPS)), value=float(draw(st.integers(1, top))), unit=unit)
    low, high = sorted(draw(st.lists(st.integers(1, top), min_size=2, max_size=2, unique=True)))
    return Range(variable="age", low=float(low), high=float(high), unit=unit)


@st.composite
def _category(draw: st.DrawFn) -> Category:
    variable = vocabulary()[draw(st.sampled_from(_variables().categories))]
    chosen = draw(st.sets(st.sampled_from([v.value for v in variable.values]), min_size=1))
    return Category(variable=variable.id, values=tuple(v.value for v in variable.values if v.value in chosen))


_SEXES = st.builds(Sex, sex=st.sampled_from(["female", "male"]))


def _marker_current(variable: Variable, marker: str, window: Period | None) -> bool:
    timing = variable.timing or ("current" if variable.kind == "medication" else "ever")
    return window is None and (marker == "CURRENT" or (marker == "" and timing == "current"))


@st.composite
def _presences(draw: st.DrawFn, max_size: int = 1) -> list[Presence]:
    """Presences as one criterion writes them: one marker ("history of", "current") and one window."""
    vocab = vocabulary()
    chosen = draw(st.lists(st.sampled_from(_variables().events), min_size=1, max_size=max_size, unique=True))
    window = draw(st.none() | _PERIODS)
    marker = draw(st.sampled_from(["", "HISTORY", "CURRENT"]))
    return [Presence(variable=v, current=_marker_current(vocab[v], marker, window), within=window) for v in chosen]


@st.composite
def _duration(draw: st.DrawFn) -> Duration:
    names = _variables()
    period = draw(_PERIODS)
    op = draw(st.sampled_from(_OPS))
    if draw(st.booleans()):
        return Duration(variable=draw(st.sampled_from(names.medications)), since="start", op=op, period=period)
    since = draw(st.sampled_from(["diagnosed", "onset"]))
    return Duration(variable=draw(st.sampled_from(names.conditions)), since=since, op=op, period=period)


def _leaf() -> st.SearchStrategy[PredicateNode]:
    return st.one_of(_comparison(), _range(), _age(), _category(), _SEXES, _presences().map(lambda items: items[0]), _duration())


def predicates(*, max_leaves: int = 6, manual: bool = False) -> st.SearchStrategy[PredicateNode]:
    """Predicate trees over the vocabulary's variables (``all``/``any``/``not``/``implies`` of leaves).

    Leaves are meaningful: thresholds in each variable's canonical unit (or x ULN for labs) and
    within its plausible bounds, ages in years (or months, weeks, days), category values of the
    variable, presence and durations of conditions, medications and procedures. ``manual=True``
    adds ``manual`` parts (always unknown).

    >>> from hypothesis import given
    >>> from eligibility import PredicateAdapter
    >>> @given(predicates())
    ... def test(p):
    ...     assert PredicateAdapter.validate_json(PredicateAdapter.dump_json(p)) == p
    >>> test()
    """
    leaves = _leaf()
    if manual:
        leaves = leaves | st.builds(Manual, text=st.sampled_from(["needs a clinician's judgement", "unless very low risk"]))

    def extend(children: st.SearchStrategy[PredicateNode]) -> st.SearchStrategy[PredicateNode]:
        several = st.lists(children, min_size=2, max_size=3).map(tuple)
        return st.one_of(st.builds(All, items=several), st.builds(AnyOf, items=several), st.builds(Not, item=children),
                         st.builds(Implies, condition=children, then=children))

    return st.recursive(leaves, extend, max_leaves=max_leaves)


# --- criterion predicates: the forms one criterion sentence writes -----------------------------------


@st.composite
def _shared_threshold(draw: st.DrawFn, kind: Kind) -> PredicateNode:
    """"ALT, AST or bilirubin > 2 x ULN": one threshold for a list (each to include, any to exclude)."""
    names = _variables()
    vocab = vocabulary()
    if draw(st.booleans()):
        chosen = draw(st.lists(st.sampled_from(names.labs), min_size=2, max_size=3, unique=True))
        op = draw(st.sampled_from(_OPS))
        value = draw(_ULN_MULTIPLES)
        within = draw(st.none() | _PERIODS)
        items: tuple[PredicateNode, ...] = tuple(Comparison(variable=v, op=op, value=value, unit="x ULN", within=within) for v in chosen)
    else:
        first = draw(st.sampled_from(names.measured))
        same_unit = [v for v in names.measured if vocab[v].unit == vocab[first].unit and v != first]
        if not same_unit:
            return draw(_comparison(first))
        chosen = [first, *draw(st.lists(st.sampled_from(same_unit), min_size=1, max_size=2, unique=True))]
        low = max(_bounds(vocab[v])[0] for v in chosen)
        high = min(_bounds(vocab[v])[1] for v in chosen)
        if low > high:
            return draw(_comparison(first))
        value = _nice(draw(st.floats(low, high)), draw(st.integers(1, 3)))
        if not low <= value <= high:
            value = low
        op = draw(st.sampled_from(_OPS))
        unit = cast(str, vocab[first].unit)
        items = tuple(Comparison(variable=v, op=op, value=value, unit=unit) for v in chosen)
    return All(items=items) if kind == "inclusion" else AnyOf(items=items)


@st.composite
def _presence_clause(draw: st.DrawFn, kind: Kind) -> PredicateNode:
    items = draw(_presences(max_size=3))
    negated = draw(st.integers(0, 3)) == 0
    if len(items) == 1:
        single: PredicateNode = items[0]
        return Not(item=single) if negated else single
    if negated:
        return Not(item=AnyOf(items=tuple(items)))
    if kind == "inclusion" and draw(st.booleans()):
        return All(items=tuple(items))
    return AnyOf(items=tuple(items))


@st.composite
def _bounds_of_one(draw: st.DrawFn) -> PredicateNode:
    """"ALT ≥ 30 and ≤ 100 U/L": a lower and an upper bound on one variable."""
    first = draw(_comparison(window=False))
    if first.unit == "x ULN":
        values = sorted(draw(st.lists(_ULN_MULTIPLES, min_size=2, max_size=2, unique=True)))
    else:
        values = sorted(draw(st.lists(_threshold(first.variable), min_size=2, max_size=2, unique=True)))
    low = first.model_copy(update={"op": draw(st.sampled_from(["ge", "gt"])), "value": values[0]})
    high = first.model_copy(update={"op": draw(st.sampled_from(["le", "lt"])), "value": values[1]})
    return All(items=(low, high))


def _clause(kind: Kind) -> st.SearchStrategy[PredicateNode]:
    return st.one_of(_comparison(), _range(), _age(), _category(), _SEXES, _presence_clause(kind), _duration(),
                     _shared_threshold(kind))


@st.composite
def _conditional(draw: st.DrawFn, kind: Kind) -> PredicateNode:
    vocab = vocabulary()
    variable = vocab[draw(st.sampled_from(_variables().events))]
    current = True if variable.kind == "medication" else draw(st.booleans())
    condition = Presence(variable=variable.id, current=current)
    if variable.kind == "medication" and draw(st.booleans()):
        then: PredicateNode = Duration(variable=variable.id, since="start", op=draw(st.sampled_from(_OPS)), period=draw(_PERIODS))
    else:
        then = draw(st.one_of(_comparison(), _range(), _category(), _duration()))
    return Implies(condition=condition, then=then) if kind == "inclusion" else All(items=(condition, then))


@st.composite
def _naive_or(draw: st.DrawFn) -> PredicateNode:
    medication = draw(st.sampled_from(_variables().medications))
    return AnyOf(items=(Not(item=Presence(variable=medication)),
                        Duration(variable=medication, since="start", op=draw(st.sampled_from(_OPS)), period=draw(_PERIODS))))


@st.composite
def _measured_conjunction(draw: st.DrawFn) -> PredicateNode:
    """"ALSFRS-R ≥ 30 and serum creatinine < 2.0 mg/dL": whole clauses joined."""
    items = draw(st.lists(st.one_of(_comparison(), _range()), min_size=2, max_size=3,
                          unique_by=lambda p: cast(Comparison, p).variable))
    if draw(st.booleans()):
        return All(items=tuple(items))
    return AnyOf(items=tuple(items))


def _criterion_predicates(kind: Kind) -> st.SearchStrategy[PredicateNode]:
    return st.one_of(
        _clause(kind),
        _conditional(kind),
        _naive_or(),
        st.builds(lambda sex, clause: All(items=(sex, clause)), _SEXES, st.one_of(_comparison(), _range(), _age())),
        _bounds_of_one(),
        _measured_conjunction(),
    )


@st.composite
def criterion_texts(draw: st.DrawFn, kind: Kind | None = None) -> CriterionText:
    """A criterion sentence and the predicate it means, in a random phrasing.

    The predicate is drawn among the forms the grammar reads (thresholds in words or symbols
    and in any unit they convert to exactly, ranges written four ways, x ULN, lists sharing a
    threshold, presence with markers and windows, durations, conditionals, ages, sex); the
    text is ``eligibility.render.render`` of it, so ``compile_criterion(text, kind)`` gives
    the predicate back.

    >>> from hypothesis import given
    >>> from eligibility import compile_criterion
    >>> @given(criterion_texts())
    ... def test(case):
    ...     assert compile_criterion(case.text, case.kind, case.condition)[0] == case.predicate
    >>> test()
    """
    chosen: Kind = kind if kind is not None else draw(st.sampled_from(["inclusion", "exclusion"]))
    predicates = _criterion_predicates(chosen)
    if chosen == "exclusion":  # "no X" under exclusions compiles with a manual part (render refuses it)
        predicates = predicates.filter(lambda p: not isinstance(p, Not))
    predicate = draw(predicates)
    condition = None
    if isinstance(predicate, Duration) and predicate.since != "start" and draw(st.booleans()):
        condition = predicate.variable  # "duration of disease ..." in a trial of that condition
    phrasing: Phrasing = draw(st.randoms(use_true_random=False))
    try:
        text = render(predicate, chosen, phrasing, condition=condition)
    except RenderError as error:  # a bug of the strategies above: each form is one render writes
        raise AssertionError(f"criterion_texts drew {predicate!r}, which render cannot write: {error}") from None
    return CriterionText(text, chosen, predicate, condition)


# --- patient records -----------------------------------------------------------------------------------
# The model below says what a record's entries make of each leaf of a predicate. It is written
# from the documented semantics (README "How verdicts are decided"), not from the evaluator, so
# that patients_for's patients check the engine rather than repeat it.

Truth = bool | None
_UNIT_DAYS = {"day": 1.0, "week": 7.0, "month": 30.4375, "year": 365.25}
_EVENT_HORIZON = 20 * 365  # dated events go back at most 20 years
_OBSERVATION_HORIZON = 2 * 365
_COMPARE = {"lt": lambda a, b: a < b, "le": lambda a, b: a <= b, "gt": lambda a, b: a > b, "ge": lambda a, b: a >= b,
            "eq": lambda a, b: a == b}


def _days(period: Period) -> float:
    return period.amount * _UNIT_DAYS.get(period.unit, 1.0)


def _margin(days: float) -> float:
    """Distance kept from a window's or period's end: calendar months and years vary by a few days."""
    return 3.0 + 0.03 * days


def _completed(unit: str, birth: dt.date, on: dt.date) -> int:
    """Completed days / weeks / months / years of age on a date; a birthday counts on the day."""
    if unit == "day":
        return (on - birth).days
    if unit == "week":
        return (on - birth).days // 7
    months = (on.year - birth.year) * 12 + on.month - birth.month - (on.day < birth.day)
    return months // 12 if unit == "year" else months


def _years_before(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


# What one subject of a record is: each key ("sex", "age", a variable id) takes one of these states.


@dataclass(frozen=True)
class _AgeState:
    birth: dt.date | None  # None: the record gives only "age"
    years: float  # the record's "age" when there is no birth date


@dataclass(frozen=True)
class _Reading:
    """One observation of a measured variable (``number`` None: nothing on record)."""

    number: float | None = None
    unit: str | None = None
    canonical: float | None = None  # the number in the variable's canonical unit, as the engine reads it
    reference_high: float | None = None  # the record's upper limit of normal, in the observation's unit
    offset: int = 0  # days before the screening date

    @property
    def ratio(self) -> float | None:
        return None if self.number is None or not self.reference_high else self.number / self.reference_high


@dataclass(frozen=True)
class _Finding:
    written: str | None = None  # None: nothing on record
    value: str | None = None  # the canonical value it means (None: a value the vocabulary does not know)
    offset: int = 0


@dataclass(frozen=True)
class _EventState:
    """A condition, medication or procedure: not on record, recorded absent, or one entry with dates.

    Dates are days before the screening date (negative: after it); ``end`` as written on the record.
    """

    entry: Literal["none", "absent", "present"] = "none"
    start: int | None = None
    diagnosed: int | None = None
    end: int | None = None


@dataclass(frozen=True)
class _Event:
    """An entry as the engine files it under a variable (a procedure done once ends on its date)."""

    present: bool
    start: int | None
    diagnosed: int | None
    end: int | None
    order: int  # position in the record, which breaks ties between equal dates


_INVALID = "invalid"  # a combination of states whose outcome depends on the record's order: not used


@dataclass(frozen=True)
class _Leaf:
    node: PredicateNode
    keys: tuple[str, ...]


class _Model:
    """The leaves of a trial's predicates and what each state of the record makes of them."""

    def __init__(self, trial: Trial, as_of: dt.date):
        self.vocab = vocabulary()
        self.as_of = as_of
        self.trial = trial
        self.leaves: list[_Leaf] = []
        self.trees: list[Any] = []  # per criterion: a nested tuple over leaf indices, or None (not compiled)
        for criterion in trial.criteria:
            self.trees.append(None if criterion.predicate is None else self._tree(criterion.predicate))
        self.keys: dict[str, str] = {"sex": "sex", "age": "age"}
        for leaf in self.leaves:
            for key in leaf.keys:
                self.keys.setdefault(key, self._key_kind(key))
        self.order = {key: position for position, key in enumerate(self.keys)}
        # keys a leaf names (others are only related to one through "includes")
        self.named = {"sex", "age"} | {getattr(leaf.node, "variable", "") for leaf in self.leaves}
        self.leaves_of: dict[str, list[int]] = {key: [] for key in self.keys}
        for index, leaf in enumerate(self.leaves):
            for key in leaf.keys:
                self.leaves_of[key].append(index)

    # -- structure --------------------------------------------------------------------------------
    def _tree(self, p: PredicateNode) -> Any:
        if isinstance(p, All):
            return ("all", tuple(self._tree(i) for i in p.items))
        if isinstance(p, AnyOf):
            return ("any", tuple(self._tree(i) for i in p.items))
        if isinstance(p, Not):
            return ("not", self._tree(p.item))
        if isinstance(p, Implies):
            return ("any", (("not", self._tree(p.condition)), self._tree(p.then)))
        self.leaves.append(_Leaf(p, self._leaf_keys(p)))
        return ("leaf", len(self.leaves) - 1)

    def _leaf_keys(self, p: PredicateNode) -> tuple[str, ...]:
        if isinstance(p, Manual):
            return ()
        if isinstance(p, Sex):
            return ("sex",)
        if isinstance(p, (Comparison, Range)) and p.variable == "age":
            return ("age",)
        variable_id = p.variable  # type: ignore[union-attr]
        if isinstance(p, (Presence, Duration)):
            keys = [variable_id, *self.vocab.narrower.get(variable_id, ()), *self.vocab.broader.get(variable_id, ())]
            if variable_id in self.vocab and self.vocab[variable_id].applies_to and isinstance(p, Presence):
                keys.append("sex")
            return tuple(dict.fromkeys(keys))
        return (variable_id,)

    def _key_kind(self, key: str) -> str:
        if key not in self.vocab:
            return "void"  # not a variable the engine knows: never on record
        variable = self.vocab[key]
        if variable.values:
            return "category"
        if variable.is_measured:
            return "measured"
        if variable.kind in _EVENT_KINDS:
            return "event"
        return "void"

    # -- truth of a leaf --------------------------------------------------------------------------
    def truth(self, index: int, states: Mapping[str, Any]) -> Truth | str:
        p = self.leaves[index].node
        if isinstance(p, Manual):
            return None
        if isinstance(p, Sex):
            return bool(states["sex"] == p.sex)
        if isinstance(p, (Comparison, Range)) and p.variable == "age":
            return self._age(p, states["age"])
        if isinstance(p, (Comparison, Range)):
            return self._measured(p, states[p.variable])
        if isinstance(p, Category):
            return self._category(p, states[p.variable])
        if isinstance(p, Presence):
            return self._presence(p, states)
        if isinstance(p, Duration):
            return self._duration(p, states)
        return None

    @staticmethod
    def _test(p: Comparison | Range, value: float) -> bool:
        if isinstance(p, Comparison):
            return bool(_COMPARE[p.op](value, p.value))
        low_ok = value >= p.low if p.low_inclusive else value > p.low
        high_ok = value <= p.high if p.high_inclusive else value < p.high
        return low_ok and high_ok

    def _age(self, p: Comparison | Range, state: _AgeState) -> Truth:
        if state.birth is not None:
            return self._test(p, _completed(p.unit, state.birth, self.as_of))
        return self._test(p, int(state.years)) if p.unit == "year" else None

    def _measured(self, p: Comparison | Range, state: Any) -> Truth:
        if not isinstance(state, _Reading) or state.number is None or state.canonical is None:
            return None
        if p.within is not None and state.offset > _days(p.within):
            return None
        if p.unit == "x ULN":
            ratio = state.ratio
            if ratio is None:
                variable = self.vocab[p.variable]
                typical = variable.reference_range.high if variable.reference_range else None
                if not typical:
                    return None
                ratio = state.canonical / typical
            return self._test(p, ratio)
        return self._test(p, state.canonical)

    def _category(self, p: Category, state: Any) -> Truth:
        if not isinstance(state, _Finding) or state.written is None:
            return None
        if p.within is not None and state.offset > _days(p.within):
            return None
        return None if state.value is None else state.value in p.values

    def events(self, variable_id: str, states: Mapping[str, Any]) -> list[_Event]:
        """The entries the engine files under a variable: its own, a narrower one's when present,
        a broader one's when recorded absent ("includes" in the vocabulary)."""
        found = [self.event_of(variable_id, key, states.get(key)) for key in self.related(variable_id)]
        return [e for e in found if e is not None]

    def related(self, variable_id: str) -> list[str]:
        return [variable_id, *self.vocab.narrower.get(variable_id, ()), *self.vocab.broader.get(variable_id, ())]

    def event_of(self, variable_id: str, key: str, state: Any) -> _Event | None:
        """The entry ``key``'s state files under ``variable_id``, if any."""
        if not isinstance(state, _EventState) or state.entry == "none":
            return None
        present = state.entry == "present"
        if key != variable_id:
            narrower = key in self.vocab.narrower.get(variable_id, ())
            if present != narrower:  # a narrower one counts when present, a broader one when absent
                return None
        kind = self.vocab[key].kind
        end = state.end
        if kind == "procedure" and self.vocab[key].timing != "current" and end is None:
            end = state.start  # done once, on its date
        return _Event(present, state.start, state.diagnosed if kind == "condition" else None, end, self.order[key])

    def classify(self, p: Presence, event: _Event) -> str:
        """What one entry makes of a presence: "Q" it qualifies (true), "U" undecided, "E" an entry that
        does not qualify, "L" one dated after the screening date (ignored). Entries decide alone: any "Q" makes the presence true, else any "U" unknown."""
        if not event.present:
            return "E"  # recorded absent
        if event.start is not None and event.start < 0:
            return "L"  # only after the screening date: ignored, as if not on record
        if p.current and event.end is not None and event.end > 0:
            return "E"  # ended before the screening date
        if p.within is not None:
            window = _days(p.within)
            began = event.start if event.start is not None else event.diagnosed
            began_inside = began is not None and began <= window
            ended_inside = event.end is not None and event.end <= window
            if not began_inside and not ended_inside:
                variable = self.vocab[p.variable] if p.variable in self.vocab else None
                ongoing = event.end is None and (variable is not None and variable.kind == "medication" or began is None)
                if not ongoing:
                    return "U" if event.end is None else "E"  # began before the window: no end date, cannot tell
                if began is None:
                    return "U"
        return "Q"

    def sex_rules_out(self, p: Presence, sex: Any) -> bool:
        variable = self.vocab[p.variable] if p.variable in self.vocab else None
        return variable is not None and variable.applies_to is not None and sex != variable.applies_to

    def _presence(self, p: Presence, states: Mapping[str, Any]) -> Truth:
        if self.sex_rules_out(p, states.get("sex")):
            return False
        classes = {self.classify(p, e) for e in self.events(p.variable, states)} - {"L"}
        if not classes:
            return None  # open world: nothing on record
        return True if "Q" in classes else None if "U" in classes else False

    def _duration(self, p: Duration, states: Mapping[str, Any]) -> Truth | str:
        entries = self.events(p.variable, states)
        present = [e for e in entries if e.present]
        if not present:
            return False if entries and p.since == "start" else None

        def newest(e: _Event) -> tuple[bool, float]:
            when = e.start if e.start is not None else e.diagnosed
            return (when is not None, -when if when is not None else 0.0)

        present.sort(key=lambda e: e.order)
        present.sort(key=newest, reverse=True)
        if len(present) > 1 and newest(present[0]) == newest(present[1]):
            return _INVALID  # which entry counts would depend on their order in the record
        event = present[0]
        anchor = event.diagnosed if p.since == "diagnosed" else event.start
        if anchor is None:
            return None
        if p.since == "start" and event.end is not None and event.end > 0:
            return False
        if anchor < 0:
            return None
        return bool(_COMPARE[p.op](anchor, _days(p.period)))  # days elapsed against the period

    # -- critical points: where a state's truth changes -----------------------------------------------------
    def thresholds(self, key: str) -> tuple[list[float], list[float], list[float]]:
        """(canonical thresholds, x ULN thresholds, windows in days) of the measured leaves on ``key``."""
        values: set[float] = set()
        multiples: set[float] = set()
        windows: set[float] = set()
        for index in self.leaves_of.get(key, ()):
            p = self.leaves[index].node
            if isinstance(p, (Comparison, Range, Category)) and p.within is not None:
                windows.add(_days(p.within))
            bounds = [p.value] if isinstance(p, Comparison) else [p.low, p.high] if isinstance(p, Range) else []
            (multiples if getattr(p, "unit", None) == "x ULN" else values).update(bounds)
        return sorted(values), sorted(multiples), sorted(windows)

    def event_days(self, key: str) -> list[float]:
        """Windows and periods, in days, of the presence and duration leaves reading ``key``."""
        days: set[float] = set()
        for index in self.leaves_of.get(key, ()):
            p = self.leaves[index].node
            if isinstance(p, Presence) and p.within is not None:
                days.add(_days(p.within))
            if isinstance(p, Duration):
                days.add(_days(p.period))
        return sorted(days)

    def needs_diagnosis(self, key: str) -> bool:
        return any(isinstance(self.leaves[i].node, Duration) and self.leaves[i].node.since == "diagnosed"  # type: ignore[union-attr]
                   for i in self.leaves_of.get(key, ()))


# --- states: one representative of each region where the leaves' truth is constant ------------------------


@dataclass(frozen=True)
class _Span:
    """A region of numbers between two critical points (``exact``: the critical point itself)."""

    low: float
    high: float
    exact: bool = False


def _spans(points: Sequence[float], low: float, high: float) -> list[_Span]:
    """The critical points in [low, high] and the open intervals between them."""
    inside = sorted({p for p in points if low <= p <= high})
    spans = [_Span(p, p, True) for p in inside]
    edges = [low, *inside, high]
    spans += [_Span(a, b) for a, b in zip(edges, edges[1:]) if b > a]
    return spans


def _inner(span: _Span, relative: float = 0.02) -> tuple[float, float] | None:
    """The part of an interval far enough from its ends that rounding never crosses them."""
    if span.exact:
        return span.low, span.high
    gap = relative * max(abs(span.low), abs(span.high), 0.01)
    low, high = span.low + gap, span.high - gap
    return (low, high) if low < high else None


def _offset_spans(days: Sequence[float], horizon: float) -> list[tuple[int, int]]:
    """Whole days before the screening date, between the windows' and periods' ends (kept apart by a margin)."""
    edges = [0.0, *sorted({d for d in days if 0 < d < horizon}), float(horizon)]
    found = []
    for a, b in zip(edges, edges[1:]):
        low = math.ceil(a + _margin(a)) if a > 0 else 0
        high = math.floor(b - _margin(b)) if b < horizon else int(horizon)
        if low <= high:
            found.append((low, high))
    return found


def _record_units(variable: Variable) -> list[tuple[str | None, float]]:
    """Every unit a record may give a variable's value in, with the factor to its canonical unit."""
    from .render import _pretty_unit  # the unit spellings as clinicians write them
    from .units import UnitProblem, units

    table = units()
    found: dict[str, tuple[str | None, float]] = {}
    candidates: list[str | None] = [None, variable.unit, *variable.unit_aliases]
    candidates += [_pretty_unit(key) for key in table.spelling_keys()]
    for written in candidates:
        meaning = variable.record_unit(written)
        if meaning is None:
            continue
        conversion = table.conversion(meaning, variable.unit or meaning, variable.molar_mass)
        if isinstance(conversion, UnitProblem):
            continue
        found.setdefault("" if written is None else written.casefold().replace(" ", ""), (written, conversion.factor))
    return sorted(found.values(), key=lambda entry: entry[1] != 1.0)


_UNITS_OF: dict[str, list[tuple[str | None, float]]] = {}


def _units_of(variable: Variable) -> list[tuple[str | None, float]]:
    if variable.id not in _UNITS_OF:
        _UNITS_OF[variable.id] = _record_units(variable)
    return _UNITS_OF[variable.id]


def _realistic(variable: Variable) -> tuple[float, float]:
    """Where most patients' values lie: around the reference range, within the plausible bounds."""
    low, high = (variable.plausible.low, variable.plausible.high) if variable.plausible else (None, None)
    low = 0.0 if low is None else low
    high = max(low + 1.0, 1000.0) if high is None else high
    if variable.reference_range and variable.reference_range.low is not None and variable.reference_range.high is not None:
        return max(low, variable.reference_range.low * 0.5), min(high, variable.reference_range.high * 2.0)
    return low, high


def _convert(number: float, factor: float) -> float:
    """A recorded number in the canonical unit, kept to the precision written (as facts.py reads it)."""
    from .units import convert_written

    return convert_written(number, factor)


def _plausible(variable: Variable, value: float) -> bool:
    bounds = variable.plausible
    return bounds is None or ((bounds.low is None or value >= bounds.low) and (bounds.high is None or value <= bounds.high))


def _number(value: float, digits: int) -> float:
    return float(f"{value:.{digits}g}")


def _reading_value(variable: Variable, span: _Span, rnd: Any) -> tuple[float, str | None, float] | None:
    """(number, unit, canonical value) recorded in a random convertible unit, its value in ``span``."""
    units_of = _units_of(variable)
    exact_units = [u for u in units_of if u[1] == 1.0]
    if span.exact:
        if not exact_units or not _plausible(variable, span.low):
            return None
        written, _ = rnd.choice(exact_units)
        return span.low, written, span.low
    inner = _inner(span)
    if inner is None:
        return None
    low, high = inner
    realistic_low, realistic_high = _realistic(variable)
    if max(low, realistic_low) < min(high, realistic_high):
        low, high = max(low, realistic_low), min(high, realistic_high)
    for attempt in range(8):
        target = rnd.uniform(low, high)
        if variable.unit in ("point", "%", "% predicted", "/min", "mmHg") and math.ceil(low) <= math.floor(high) and attempt < 4:
            target = float(rnd.randint(math.ceil(low), math.floor(high)))  # scores and percentages are written whole
        written, factor = rnd.choice(units_of) if units_of and (attempt < 6 and rnd.random() < 0.5) else \
            (rnd.choice(exact_units) if exact_units else (None, 1.0))
        if factor == 1.0 and written is None and variable.record_unit(None) is None:
            continue
        number = _number(target / factor, rnd.choice([3, 4, 5])) if factor != 1.0 else target
        if factor == 1.0 and number != int(number):
            number = _number(number, rnd.choice([3, 4]))
        canonical = _convert(number, factor)
        if span.low < canonical < span.high and _plausible(variable, canonical):
            return number, written, canonical
    return None


def _reference_high(number: float, ratio: _Span, rnd: Any) -> float | None:
    """An upper limit of normal, in the observation's unit, making ``number`` that many times it."""
    if number <= 0:
        return None
    if ratio.exact:
        if ratio.low <= 0:
            return None
        high = number / ratio.low
        return high if number / high == ratio.low else None
    inner = _inner(ratio)
    if inner is None:
        return None
    for _ in range(6):
        high = _number(number / rnd.uniform(*inner), 3)
        if high > 0 and ratio.low < number / high < ratio.high:
            return high
    return None


def _offset(span: tuple[int, int], rnd: Any) -> int:
    return int(rnd.randint(span[0], span[1]))


class _Domains:
    """The states each key of a record can take, one representative per region."""

    def __init__(self, model: _Model):
        self.model = model
        self.vocab = model.vocab

    def of(self, key: str, rnd: Any) -> list[Any]:
        kind = self.model.keys.get(key) or self.model._key_kind(key)
        if kind == "sex":
            return ["female", "male"]
        if kind == "age":
            return self.ages(rnd)
        if kind == "measured":
            return self.readings(key, rnd)
        if kind == "category":
            return self.findings(key, rnd)
        if kind == "event":
            return self.events(key, rnd)
        return [None]

    def ages(self, rnd: Any) -> list[_AgeState]:
        as_of = self.model.as_of
        years: set[int] = set()
        days: set[int] = set()
        for index in self.model.leaves_of.get("age", ()):
            p = self.model.leaves[index].node
            bounds = [p.value] if isinstance(p, Comparison) else [p.low, p.high]  # type: ignore[union-attr]
            unit = getattr(p, "unit", "year")
            for bound in bounds:
                if unit == "year":
                    years.update(int(math.floor(bound)) + k for k in (-1, 0, 1, 2))
                else:
                    days.update(int(bound * _UNIT_DAYS.get(unit, 1.0)) + k for k in (-35, -3, 0, 3, 35))
        if not years and not days:
            years = {rnd.randint(18, 85)}
        states: list[_AgeState] = []
        for age in sorted(y for y in years if 0 <= y <= 105):
            anniversary = _years_before(as_of, age)
            for after in (rnd.randint(0, 20), rnd.randint(40, 300), rnd.randint(330, 362)):
                birth = anniversary - dt.timedelta(days=after)
                states.append(_AgeState(birth, float(_completed("year", birth, as_of))))
            states.append(_AgeState(None, age + rnd.choice([0.0, 0.25, 0.5, 0.9])))
        for total in sorted(d for d in days if 0 <= d <= 40000):
            birth = as_of - dt.timedelta(days=total)
            states.append(_AgeState(birth, float(_completed("year", birth, as_of))))
        return states

    def readings(self, key: str, rnd: Any) -> list[_Reading]:
        variable = self.vocab[key]
        values, multiples, windows = self.model.thresholds(key)
        plausible_low = variable.plausible.low if variable.plausible and variable.plausible.low is not None else 0.0
        plausible_high = variable.plausible.high if variable.plausible and variable.plausible.high is not None else \
            max([plausible_low + 1000.0, *(abs(v) * 10 for v in values)])
        states = [_Reading()]
        value_spans: list[_Span | None] = list(_spans(values, plausible_low, plausible_high)) if values or not multiples else [None]
        ratio_spans: list[_Span | None] = list(_spans(multiples, 0.0, max(multiples) * 3 + 1)) if multiples else [None]
        horizon = max([_OBSERVATION_HORIZON, *(w * 1.5 + 30 for w in windows)])
        for offsets in _offset_spans(windows, horizon):
            for value_span in value_spans:
                for ratio_span in ratio_spans:
                    reading = self.reading(variable, value_span, ratio_span, _offset(offsets, rnd), rnd)
                    if reading is not None:
                        states.append(reading)
        return states

    def reading(self, variable: Variable, value: _Span | None, ratio: _Span | None, offset: int, rnd: Any) -> _Reading | None:
        if value is None and ratio is not None:  # thresholds only in x ULN: the value follows from a typical limit
            exact_units = [u for u in _units_of(variable) if u[1] == 1.0 and u[0] is not None] or [(variable.unit, 1.0)]
            written, _ = rnd.choice(exact_units)
            typical = variable.reference_range.high if variable.reference_range and variable.reference_range.high else 1.0
            if ratio.exact:
                number = typical * ratio.low
                if number <= 0 or number / typical != ratio.low:
                    return None
                high = typical
            else:
                inner = _inner(ratio)
                if inner is None:
                    return None
                number = _number(typical * rnd.uniform(*inner), 3)
                high = typical
                if not ratio.low < number / high < ratio.high:
                    return None
            if not _plausible(variable, number):
                return None
            return _Reading(number, written, number, high, offset)
        if value is None:
            return None
        found = _reading_value(variable, value, rnd)
        if found is None:
            return None
        number, written, canonical = found
        reference_high = None if ratio is None else _reference_high(number, ratio, rnd)
        if ratio is not None and reference_high is None:
            return None
        return _Reading(number, written, canonical, reference_high, offset)

    def findings(self, key: str, rnd: Any) -> list[_Finding]:
        variable = self.vocab[key]
        _, _, windows = self.model.thresholds(key)
        horizon = max([_OBSERVATION_HORIZON, *(w * 1.5 + 30 for w in windows)])
        states = [_Finding()]
        for offsets in _offset_spans(windows, horizon):
            for value in variable.values:
                written = [w for w in (value.value, *value.synonyms) if self.vocab.category_value(key, w) == value.value]
                states.append(_Finding(rnd.choice(written), value.value, _offset(offsets, rnd)))
            states.append(_Finding("not assessed", None, _offset(offsets, rnd)))
        return states

    def events(self, key: str, rnd: Any) -> list[_EventState]:
        states = self._events(key, rnd)
        if key in self.model.named or len(states) <= 4:
            return states
        # only related to a named variable ("includes"): a few states are enough
        return [states[0], states[1], *rnd.sample(states[2:], 2)]

    def _events(self, key: str, rnd: Any) -> list[_EventState]:
        variable = self.vocab[key]
        spans = _offset_spans(self.model.event_days(key), _EVENT_HORIZON)
        diagnosis = variable.kind == "condition" and self.model.needs_diagnosis(key)
        states = [_EventState(), _EventState("absent"), _EventState("present", -rnd.randint(1, 90)),
                  _EventState("present")]
        for i, span in enumerate(spans):
            start = _offset(span, rnd)
            ends: list[int | None] = [None, -rnd.randint(1, 365)]
            for j in range(i + 1):
                low, high = spans[j][0], min(spans[j][1], start - 1)
                if low <= high:
                    ends.append(rnd.randint(low, high))
            diagnoses: list[int | None] = [None]
            if diagnosis:
                for j in range(i + 1):
                    low, high = spans[j][0], min(spans[j][1], start)
                    if low <= high:
                        diagnoses.append(rnd.randint(low, high))
                states.append(_EventState("present", None, rnd.randint(*span), None))
            for end in ends:
                for diagnosed in diagnoses:
                    states.append(_EventState("present", start, diagnosed, end))
        return states


# --- the search: one state per key, every criterion's truth where it was asked to be ----------------------

_TRUTHS = frozenset({True, False, None})
_SEARCH_BUDGET = 20_000  # states tried before a search gives up


class _Search:
    """Backtracking over the keys, pruning on the truths each criterion can still take."""

    def __init__(self, model: _Model, domains: dict[str, list[Any]], wanted: dict[int, frozenset[Truth]], rnd: Any):
        self.model = model
        self.domains = domains
        self.wanted = wanted
        self.rnd = rnd
        self.assigned: dict[str, Any] = {}
        self.cache: dict[tuple[int, tuple[int, ...]], Truth | str] = {}
        self.unions: dict[int, frozenset[Any]] = {}
        self.classes: dict[tuple[int, str], frozenset[str | None]] = {}
        self.tried = 0
        self.exhausted = False  # the whole search space was tried
        self.criteria_of: dict[str, list[int]] = {key: [] for key in domains}
        for index, tree in enumerate(model.trees):
            if index in wanted and tree is not None:
                for key in self._keys(tree):
                    self.criteria_of.setdefault(key, []).append(index)

    def _keys(self, tree: Any) -> list[str]:
        if tree[0] == "leaf":
            return list(self.model.leaves[tree[1]].keys)
        children = tree[1] if tree[0] in ("all", "any") else (tree[1],)
        return list(dict.fromkeys(k for child in children for k in self._keys(child)))

    def leaf_truth(self, index: int, states: Mapping[str, Any]) -> Truth | str:
        keys = self.model.leaves[index].keys
        signature = (index, tuple(id(states[k]) for k in keys))
        if signature not in self.cache:
            self.cache[signature] = self.model.truth(index, states)
        return self.cache[signature]

    def leaf_possible(self, index: int) -> frozenset[Any]:
        keys = self.model.leaves[index].keys
        open_keys = [k for k in keys if k not in self.assigned]
        if not open_keys:
            truth = self.leaf_truth(index, self.assigned)
            return frozenset() if truth == _INVALID else frozenset({truth})
        node = self.model.leaves[index].node
        if isinstance(node, Presence):
            return self.presence_possible(index, node, open_keys)
        if len(open_keys) == len(keys) and index in self.unions:
            return self.unions[index]
        combinations = 1
        for key in open_keys:
            combinations *= len(self.domains[key])
        if combinations > 400:
            return _TRUTHS
        found: set[Any] = set()
        states = dict(self.assigned)

        def walk(position: int) -> None:
            if len(found) == 3:
                return
            if position == len(open_keys):
                truth = self.leaf_truth(index, states)
                if truth != _INVALID:
                    found.add(truth)
                return
            for state in self.domains[open_keys[position]]:
                states[open_keys[position]] = state
                walk(position + 1)

        walk(0)
        result = frozenset(found)
        if len(open_keys) == len(keys):
            self.unions[index] = result
        return result

    def contributions(self, index: int, node: Presence, key: str) -> frozenset[str | None]:
        """What ``key`` can add to a presence leaf over its domain: an entry's class, or None (nothing)."""
        signature = (index, key)
        if signature not in self.classes:
            found: set[str | None] = set()
            for state in self.domains[key]:
                event = self.model.event_of(node.variable, key, state)
                kind = None if event is None else self.model.classify(node, event)
                found.add(None if kind == "L" else kind)  # an entry after the screening date adds nothing
            self.classes[signature] = frozenset(found)
        return self.classes[signature]

    def presence_possible(self, index: int, node: Presence, open_keys: list[str]) -> frozenset[Any]:
        """Exact: a presence is true when one entry qualifies, unknown when one is undecided and none
        qualifies, unknown with no entry at all, else false."""
        found: set[Any] = set()
        sexes = [self.assigned["sex"]] if "sex" in self.assigned else self.domains["sex"]
        if any(self.model.sex_rules_out(node, sex) for sex in sexes):
            found.add(False)
            if all(self.model.sex_rules_out(node, sex) for sex in sexes):
                return frozenset(found)
        fixed: set[str] = set()
        for key in self.model.leaves[index].keys:
            if key != "sex" and key in self.assigned:
                event = self.model.event_of(node.variable, key, self.assigned[key])
                kind = None if event is None else self.model.classify(node, event)
                if kind is not None and kind != "L":
                    fixed.add(kind)
        options = [self.contributions(index, node, key) for key in open_keys if key != "sex"]
        if "Q" in fixed or any("Q" in option for option in options):
            found.add(True)
        if "Q" in fixed:
            return frozenset(found)
        avoiding = [option - {"Q"} for option in options]
        if not all(avoiding):
            return frozenset(found)
        if "U" in fixed or any("U" in option for option in avoiding):
            found.add(None)
        if not fixed and all(None in option for option in avoiding):
            found.add(None)
        if "U" not in fixed and all(option - {"U"} for option in avoiding) and \
                (fixed or any("E" in option for option in avoiding)):
            found.add(False)
        return frozenset(found)

    def possible(self, tree: Any) -> frozenset[Any]:
        """The truths a tree can still take (Kleene logic over sets of truths)."""
        if tree[0] == "leaf":
            return self.leaf_possible(tree[1])
        if tree[0] == "not":
            return frozenset(None if t is None else not t for t in self.possible(tree[1]))
        parts = [self.possible(child) for child in tree[1]]
        decisive = tree[0] == "any"  # the truth one part decides alone
        found: set[Any] = set()
        if any(decisive in part for part in parts):
            found.add(decisive)
        if all((not decisive) in part for part in parts):
            found.add(not decisive)
        if all(part - {decisive} for part in parts) and any(None in part for part in parts):
            found.add(None)
        return frozenset(found)

    def consistent(self, criteria: Sequence[int]) -> bool:
        return all(self.possible(self.model.trees[c]) & self.wanted[c] for c in criteria)

    def order(self) -> list[str]:
        """Keys of the most constrained criteria first, then the rest."""
        ranked = sorted(self.wanted, key=lambda c: (len(self.wanted[c]), c))
        keys: list[str] = []
        for criterion in ranked:
            tree = self.model.trees[criterion]
            if tree is not None:
                keys += [k for k in self._keys(tree) if k not in keys]
        return keys + [k for k in self.domains if k not in keys]

    def run(self, attempts: int = 8) -> dict[str, Any] | None:
        """A state per key meeting every wanted truth; None if there is none (``exhausted``) or the
        search gave up. Each attempt tries the states in a new random order (restarts beat one long
        search when a bad early choice dooms a subtree)."""
        if not self.consistent(list(self.wanted)):
            self.exhausted = True
            return None
        keys = self.order()
        for attempt in range(attempts):
            self.budget = _SEARCH_BUDGET // attempts * (attempt + 1)
            self.assigned = {}
            self.gave_up = False
            if self._assign(keys, 0):
                return dict(self.assigned)
            if not self.gave_up:
                self.exhausted = True
                return None
        return None

    def _assign(self, keys: list[str], position: int) -> bool:
        if position == len(keys):
            return True
        key = keys[position]
        choices = list(self.domains[key])
        self.rnd.shuffle(choices)
        for state in choices:
            self.tried += 1
            if self.tried > self.budget:
                self.gave_up = True
                return False
            self.assigned[key] = state
            if self.consistent(self.criteria_of.get(key, ())) and self._assign(keys, position + 1):
                return True
            del self.assigned[key]
            if self.gave_up:
                return False
        return False


_VERDICT_TRUTH = {"inclusion": {"pass": True, "fail": False, "unknown": None},
                  "exclusion": {"pass": False, "fail": True, "unknown": None}}
_VERDICTS = ("pass", "fail", "unknown")


def _truths(kind: str, verdicts: Sequence[str]) -> frozenset[Truth]:
    return frozenset(_VERDICT_TRUTH[kind][v] for v in verdicts)


# --- states -> a patient record ---------------------------------------------------------------------------


def _written_name(variable_id: str, rnd: Any) -> str:
    """A name of the variable as a record may spell it: any synonym, in any case."""
    names = variable_names(variable_id)
    name = rnd.choice(names)
    return str(rnd.choice([name, name, name.upper(), name.capitalize(), name.lower()]))


def _iso(as_of: dt.date, offset: int | None) -> str | None:
    return None if offset is None else (as_of - dt.timedelta(days=offset)).isoformat()


def _json_number(number: float) -> float | int:
    return int(number) if number == int(number) and abs(number) < 1e15 else number


class _Record:
    """Builds the patient record (native JSON) from one state per key."""

    def __init__(self, as_of: dt.date, rnd: Any):
        self.as_of = as_of
        self.rnd = rnd
        self.vocab = vocabulary()
        self.data: dict[str, Any] = {"id": f"P{rnd.randrange(10 ** 6):06d}"}
        self.observations: list[dict[str, Any]] = []
        self.conditions: list[dict[str, Any]] = []
        self.medications: list[dict[str, Any]] = []
        self.procedures: list[dict[str, Any]] = []

    def add(self, key: str, state: Any, *, noise: bool = True) -> None:
        if key == "sex":
            self.data["sex"] = state
        elif key == "age":
            if state.birth is not None:
                self.data["birth_date"] = state.birth.isoformat()
            else:
                self.data["age"] = _json_number(state.years)
        elif isinstance(state, _Reading):
            self.reading(key, state, noise)
        elif isinstance(state, _Finding):
            self.finding(key, state, noise)
        elif isinstance(state, _EventState):
            self.event(key, state)

    def _named(self, key: str) -> dict[str, Any]:
        entry: dict[str, Any] = {"name": _written_name(key, self.rnd)}
        codes = self.vocab[key].codes
        if codes and self.rnd.random() < 0.15:
            code = self.rnd.choice(codes)
            entry["code"] = {"system": code.system, "code": code.code}
        return entry

    def reading(self, key: str, state: _Reading, noise: bool) -> None:
        variable = self.vocab[key]
        taken = set()
        if state.number is not None:
            entry = self._named(key)
            entry["value"] = _json_number(state.number)
            if state.unit is not None:
                entry["unit"] = state.unit
            entry["date"] = _iso(self.as_of, state.offset)
            if state.reference_high is not None:
                entry["reference_range"] = {"low": round(state.reference_high * self.rnd.choice([0.1, 0.2, 0.25]), 6),
                                            "high": state.reference_high}
            self.observations.append(entry)
            taken.add(state.offset)
            if noise:  # older values never decide: the newest one does
                for _ in range(self.rnd.choice([0, 0, 1, 2])):
                    older = state.offset + self.rnd.randint(1, 400)
                    if older not in taken:
                        taken.add(older)
                        self.observations.append(self._any_reading(variable, older))
        if noise and self.rnd.random() < 0.25:  # a value dated after the screening date is ignored
            self.observations.append(self._any_reading(variable, -self.rnd.randint(1, 60)))

    def _any_reading(self, variable: Variable, offset: int) -> dict[str, Any]:
        low, high = _realistic(variable)
        for _ in range(8):
            found = _reading_value(variable, _Span(low, high), self.rnd)
            if found is not None:
                break
        else:
            found = (low, variable.unit, low)
        entry = self._named(variable.id)
        entry["value"] = _json_number(found[0])
        if found[1] is not None:
            entry["unit"] = found[1]
        entry["date"] = _iso(self.as_of, offset)
        return entry

    def finding(self, key: str, state: _Finding, noise: bool) -> None:
        variable = self.vocab[key]
        if state.written is not None:
            self.observations.append({**self._named(key), "value": state.written, "date": _iso(self.as_of, state.offset)})
            if noise and self.rnd.random() < 0.3:
                value = self.rnd.choice(variable.values)
                self.observations.append({**self._named(key), "value": value.value,
                                          "date": _iso(self.as_of, state.offset + self.rnd.randint(1, 300))})
        if noise and self.rnd.random() < 0.2:
            value = self.rnd.choice(variable.values)
            self.observations.append({**self._named(key), "value": value.value, "date": _iso(self.as_of, -self.rnd.randint(1, 60))})

    def event(self, key: str, state: _EventState) -> None:
        if state.entry == "none":
            return
        variable = self.vocab[key]
        entry = self._named(key)
        if state.entry == "absent":
            entry["present"] = False
        elif variable.kind == "condition":
            for field, offset in (("onset", state.start), ("diagnosed", state.diagnosed), ("end", state.end)):
                if offset is not None:
                    entry[field] = _iso(self.as_of, offset)
        elif variable.kind == "medication":
            for field, offset in (("start", state.start), ("end", state.end)):
                if offset is not None:
                    entry[field] = _iso(self.as_of, offset)
        else:
            for field, offset in (("date", state.start), ("end", state.end)):
                if offset is not None:
                    entry[field] = _iso(self.as_of, offset)
        {"condition": self.conditions, "medication": self.medications, "procedure": self.procedures}[variable.kind].append(entry)

    def patient(self) -> Patient:
        for name, entries in (("observations", self.observations), ("conditions", self.conditions),
                              ("medications", self.medications), ("procedures", self.procedures)):
            if entries:
                self.rnd.shuffle(entries)
                self.data[name] = entries
        return Patient.model_validate(self.data)


def _unrelated(keys: Sequence[str]) -> list[str]:
    """Variables a record may mention without touching any of ``keys`` (nor, through "includes", theirs)."""
    vocab = vocabulary()
    blocked = set(keys)
    for key in keys:
        blocked |= set(vocab.narrower.get(key, ())) | set(vocab.broader.get(key, ()))
    names = _variables()
    candidates = [*names.measured, *names.categories, *names.events]
    return [v for v in candidates if v not in blocked and v not in ("age", "sex")
            and not (set(vocab.narrower.get(v, ())) | set(vocab.broader.get(v, ()))) & blocked]


def _noise(record: _Record, model: _Model, keys: Sequence[str], rnd: Any, count: int) -> None:
    """Entries on variables the trial does not read, with no constraint on them."""
    domains = _Domains(model)
    sex = record.data.get("sex")
    candidates = [v for v in _unrelated(keys) if model.vocab[v].applies_to in (None, sex)]
    for key in rnd.sample(candidates, min(count, len(candidates))):
        states = [s for s in domains.of(key, rnd) if not (isinstance(s, _EventState) and s.entry == "none")]
        if isinstance(states[0], _Reading):
            states = [s for s in states if s.number is not None] or states
        record.add(key, rnd.choice(states))


# --- the strategies ---------------------------------------------------------------------------------------


def patients(*, as_of: dt.date | None = None, max_entries: int = 10) -> st.SearchStrategy[Patient]:
    """Valid patient records (the contract's JSON model) with realistic values.

    Observations of measured variables lie in their realistic range (around the reference
    range, within the plausible bounds), in any unit the vocabulary converts for the variable
    (mg/dL or µmol/L, x10^9/L or /mm3, ...), named by any synonym in any case, sometimes
    with a code and a reference range; older values and values dated after the screening
    date may be present. Conditions, medications and procedures are present, recorded absent,
    undated or dated up to 20 years before ``as_of`` (default: today), ongoing or ended.
    Ages come as a birth date or as ``age``.

    >>> import datetime
    >>> from hypothesis import given
    >>> from eligibility import Patient
    >>> @given(patients(as_of=datetime.date(2026, 1, 15)))
    ... def test(patient):
    ...     assert Patient.model_validate_json(patient.model_dump_json()) == patient
    >>> test()
    """
    if max_entries < 0:
        raise InvalidArgument(f"max_entries must be at least 0, got max_entries={max_entries!r}")
    screening = as_of or dt.date.today()
    empty = Trial(trial="patients", criteria=())

    def build(rnd: Any) -> Patient:
        model = _Model(empty, screening)
        domains = _Domains(model)
        record = _Record(screening, rnd)
        record.add("sex", rnd.choice(["female", "male"]))
        record.add("age", rnd.choice(domains.of("age", rnd)))
        _noise(record, model, [], rnd, rnd.randint(0, max_entries))
        return record.patient()

    return st.randoms(use_true_random=False).map(build)


class _Plan:
    """What patients_for builds: the truths each criterion's predicate must take, checked possible."""

    def __init__(self, trial: Trial, outcome: Outcome | Mapping[str, Verdict], as_of: dt.date):
        if not isinstance(trial, Trial):
            raise InvalidArgument(f"expected an eligibility.Trial, got trial={trial!r}")
        if not isinstance(as_of, dt.date):
            raise InvalidArgument(f"expected a datetime.date, got as_of={as_of!r}")
        self.trial = trial
        self.as_of = as_of
        self.model = _Model(trial, as_of)
        # The ways to get the outcome ("ineligible": one per criterion that may fail), kept if possible
        self.alternatives = [w for w in self._alternatives(outcome) if self._possible(w) is not False]
        if not self.alternatives:
            raise self._impossible(outcome)

    def _alternatives(self, outcome: Outcome | Mapping[str, Verdict]) -> list[dict[int, frozenset[Truth]]]:
        criteria = self.trial.criteria
        compiled = [i for i, c in enumerate(criteria) if c.predicate is not None]
        if isinstance(outcome, Mapping):
            ids = {c.id: i for i, c in enumerate(criteria)}
            wanted: dict[int, frozenset[Truth]] = {}
            for criterion_id, verdict in outcome.items():
                if criterion_id not in ids:
                    raise InvalidArgument(f"expected criterion ids of {self.trial.trial} ({', '.join(ids)}), "
                                          f"got {criterion_id!r}")
                if verdict not in _VERDICTS:
                    raise InvalidArgument(f"expected a verdict 'pass', 'fail' or 'unknown', got {criterion_id}={verdict!r}")
                index = ids[criterion_id]
                if criteria[index].predicate is None:
                    if verdict != "unknown":
                        raise ImpossibleOutcome(f"{criterion_id} is not compiled: its verdict is always unknown, "
                                                f"never {verdict}", criterion_id)
                    continue
                wanted[index] = _truths(criteria[index].kind, [verdict])
            return [wanted]
        if outcome == "eligible":
            for criterion in criteria:
                if criterion.predicate is None:
                    raise ImpossibleOutcome(f"{criterion.id} is not compiled (kept for manual review): no record is "
                                            "eligible while it is unknown", criterion.id)
            return [{i: _truths(criteria[i].kind, ["pass"]) for i in compiled}]
        if outcome == "ineligible":
            return [{i: _truths(criteria[i].kind, ["fail"])} for i in compiled]
        if outcome == "needs_review":
            base = {i: _truths(criteria[i].kind, ["pass", "unknown"]) for i in compiled}
            if len(compiled) < len(criteria):
                return [base]  # a criterion kept for review is unknown already
            return [{**base, i: frozenset({None})} for i in compiled]
        raise InvalidArgument("expected outcome 'eligible', 'ineligible', 'needs_review' or a mapping "
                              f"criterion id -> 'pass' / 'fail' / 'unknown', got outcome={outcome!r}")

    def _possible(self, wanted: dict[int, frozenset[Truth]]) -> bool | None:
        """Whether some record meets ``wanted`` (None: the search ran out of budget before it could tell)."""
        rnd = random.Random(0)
        search = self.search(wanted, rnd)
        found = search.run()
        if found is not None:
            return True
        return False if search.exhausted else None

    def search(self, wanted: dict[int, frozenset[Truth]], rnd: Any) -> _Search:
        domains = _Domains(self.model)
        return _Search(self.model, {key: domains.of(key, rnd) for key in self.model.keys}, wanted, rnd)

    def _impossible(self, outcome: Outcome | Mapping[str, Verdict]) -> ImpossibleOutcome:
        criteria = self.trial.criteria
        asked = outcome if isinstance(outcome, str) else dict(outcome)
        if outcome == "ineligible":
            return ImpossibleOutcome(f"no criterion of {self.trial.trial} can fail (a record can only pass or "
                                     "leave each unknown): no record is ineligible")
        if outcome == "needs_review":
            return ImpossibleOutcome(f"no record leaves a criterion of {self.trial.trial} unknown without another failing")
        wanted = self._alternatives(outcome)[0]
        for index, truths in wanted.items():
            if self._possible({index: truths}) is False:
                criterion = criteria[index]
                verdicts = sorted(v for v in _VERDICTS if _VERDICT_TRUTH[criterion.kind][v] in truths)
                return ImpossibleOutcome(f"{criterion.id} ({criterion.kind}) can never be {' or '.join(verdicts)}: "
                                         f"{criterion.text!r}", criterion.id)
        return ImpossibleOutcome(f"{self.trial.trial}: the criteria cannot all be as asked ({asked!r}) in one record")

    def draw(self, rnd: Any, noise: bool = True) -> tuple[Patient, dict[str, Truth]] | None:
        """A patient for one of the alternatives, and the truth the model gives each compiled criterion."""
        search = self.search(rnd.choice(self.alternatives), rnd)
        states = search.run()
        if states is None:
            return None
        record = _Record(self.as_of, rnd)
        for key in ("sex", "age", *(k for k in self.model.keys if k not in ("sex", "age"))):
            record.add(key, states[key], noise=noise)
        if noise:
            _noise(record, self.model, list(self.model.keys), rnd, rnd.randint(0, 4))
        search.assigned = states
        truths = {}
        for criterion, tree in zip(self.trial.criteria, self.model.trees):
            if tree is not None:
                (truth,) = search.possible(tree)
                truths[criterion.id] = truth
        return record.patient(), truths


@lru_cache(maxsize=128)
def _plan(trial: Trial, outcome: str | tuple[tuple[str, str], ...], as_of: dt.date) -> _Plan:
    """Plans are kept: a strategy made inside another (``st.composite``) is made for every example."""
    return _Plan(trial, outcome if isinstance(outcome, str) else dict(outcome), as_of)  # type: ignore[arg-type]


def patients_for(trial: Trial, outcome: Outcome | Mapping[str, Verdict], *, as_of: dt.date,
                 noise: bool = True) -> st.SearchStrategy[Patient]:
    """Patient records that ``trial`` classifies as ``outcome`` when screened on ``as_of``.

    ``outcome`` is ``"eligible"`` (every criterion passes), ``"ineligible"`` (at least one
    fails), ``"needs_review"`` (none fails, at least one is unknown), or a mapping from
    criterion id to ``"pass"``, ``"fail"`` or ``"unknown"`` (criteria left out may take any
    verdict). Records are built from the predicates: each value is put inside or outside each
    threshold (away from it, in a random unit it converts from), each event is recorded
    present, absent or dated inside or outside each window, and data is left out where a
    criterion must stay unknown. ``noise`` adds entries the trial does not read, older values
    and values dated after the screening date, none of which may change a verdict.

    Raises ``ImpossibleOutcome`` (a hypothesis ``InvalidArgument``) when no record can have the
    outcome: "eligible" for a trial with a criterion kept for manual review, a ``manual`` part
    that decides a criterion, or criteria that contradict each other.

    Screening is open-world (the default of ``eligibility.screen``).
    """
    try:
        plan = _plan(trial, outcome if isinstance(outcome, str) else tuple(sorted(outcome.items())), as_of)
    except TypeError:  # arguments that cannot be kept (unhashable): checked and planned afresh
        plan = _Plan(trial, outcome, as_of)

    @st.composite
    def build(draw: st.DrawFn) -> Patient:
        found = plan.draw(draw(st.randoms(use_true_random=False)), noise)
        assume(found is not None)
        assert found is not None
        return found[0]

    return build()
