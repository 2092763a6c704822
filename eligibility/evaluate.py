"""Predicates x patient facts -> three-valued outcomes, with reasons and evidence.

Each predicate is turned once into a small closure (``plan``) holding its precomputed
strings and comparison function; screening a patient then only compares floats and dates.
Missing or unusable data gives ``None`` (unknown), which flows through all/any/not by
Kleene's logic: it never becomes a pass.
"""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .facts import Event, Facts, Finding, Measurement
from .predicates import (
    OPERATOR_SYMBOLS,
    All,
    AnyOf,
    Category,
    Comparison,
    Duration,
    Implies,
    Manual,
    Not,
    Period,
    PredicateNode,
    Presence,
    Range,
    Sex,
)
from .vocabulary import Vocabulary, name_key, vocabulary

Truth = bool | None


@dataclass(frozen=True, slots=True)
class Screening:
    """What one screening run knows besides the record."""

    as_of: dt.date
    closed_world: bool = False


@dataclass(slots=True)
class Outcome:
    """A predicate's truth for one patient: True, False or None (unknown), and why."""

    truth: Truth
    reason: str
    evidence: list[dict[str, Any]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


Evaluator = Callable[[Facts, Screening], Outcome]

_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "lt": operator.lt, "le": operator.le, "gt": operator.gt, "ge": operator.ge, "eq": operator.eq,
}
_WORDS = {"lt": "below", "le": "at most", "gt": "above", "ge": "at least", "eq": "equal to"}


def add_period(day: dt.date, period: Period, sign: int = 1) -> dt.date:
    """A calendar date ``period`` after (or before, sign=-1) ``day``; month ends clamp."""
    amount = period.amount * sign
    if period.unit in ("day", "week"):
        return day + dt.timedelta(days=amount * (7 if period.unit == "week" else 1))
    months = amount * (12 if period.unit == "year" else 1)
    whole = int(months)
    month_index = day.year * 12 + day.month - 1 + whole
    year, month = divmod(month_index, 12)
    month += 1
    last_day = (dt.date(year + (month == 12), month % 12 + 1, 1) - dt.timedelta(days=1)).day
    moved = dt.date(year, month, min(day.day, last_day))
    fraction = months - whole
    return moved + dt.timedelta(days=round(fraction * 30.4375)) if fraction else moved


def completed(unit: str, birth: dt.date, on: dt.date) -> int:
    """Completed years / months / weeks / days of age on a date (a birthday counts that day)."""
    if unit == "day":
        return (on - birth).days
    if unit == "week":
        return (on - birth).days // 7
    months = (on.year - birth.year) * 12 + on.month - birth.month - (on.day < birth.day)
    return months // 12 if unit == "year" else months


def _fmt(value: float) -> str:
    return f"{value:g}"


def _unit_text(unit: str) -> str:
    return {"point": "points", "1": "", "day": "days", "week": "weeks", "month": "months", "year": "years"}.get(unit, unit)


class Planner:
    """Turns predicates into evaluators; one per vocabulary."""

    def __init__(self, vocab: Vocabulary | None = None):
        self.vocab = vocab or vocabulary()

    def label(self, variable_id: str) -> str:
        return self.vocab[variable_id].label if variable_id in self.vocab else variable_id

    def plan(self, predicate: PredicateNode) -> Evaluator:
        method: Callable[[Any], Evaluator] = getattr(self, f"_plan_{predicate.type}")
        return method(predicate)

    # -- measured values -------------------------------------------------------------
    def _latest(self, variable_id: str, within: Period | None) -> Callable[[Facts, Screening], tuple[Measurement | None, str | None]]:
        label = self.label(variable_id)

        def latest(facts: Facts, screening: Screening) -> tuple[Measurement | None, str | None]:
            entries = facts.measurements.get(variable_id)
            if not entries:
                return None, f"no {label} on record"
            usable = [m for m in entries if m.date is None or m.date <= screening.as_of]
            if not usable:
                return None, f"no {label} on or before {screening.as_of}"
            if within is not None:
                since = add_period(screening.as_of, within, -1)
                recent = [m for m in usable if m.date is not None and m.date >= since]
                if not recent:
                    newest = usable[0].date
                    return None, f"no {label} within {within} before {screening.as_of}" + (f" (latest {newest})" if newest else "")
                usable = recent
            first = usable[0]
            same_day = [m for m in usable if m.date == first.date]
            if len({m.value for m in same_day}) > 1:
                return None, f"{label} has conflicting values on {first.date}"
            return first, None

        return latest

    def _measured(self, variable_id: str, unit: str, within: Period | None, test: Callable[[float], bool], describe: str) -> Evaluator:
        label = self.label(variable_id)
        latest = self._latest(variable_id, within)
        relative = unit == "x ULN"

        def evaluate(facts: Facts, screening: Screening) -> Outcome:
            found, problem = latest(facts, screening)
            if found is None:
                return Outcome(None, problem or "", missing=[label])
            evidence: dict[str, Any] = {"name": label, "value": found.recorded, "unit": found.recorded_unit,
                                        "date": found.date.isoformat() if found.date else None, "threshold": describe}
            recorded = f"{found.recorded}{' ' + found.recorded_unit if found.recorded_unit else ''}"
            when = f" ({found.date})" if found.date else " (undated)"
            if relative:
                if found.uln_multiple is not None:
                    value = found.uln_multiple
                elif found.value is not None and found.uln_assumed:
                    value = found.value / found.uln_assumed
                    evidence["assumption"] = (f"upper limit of normal {_fmt(found.uln_assumed)} {self.vocab[variable_id].unit}"
                                              " assumed (typical adult range, rules/vocabulary.yaml): the record gives no range")
                else:
                    return Outcome(None, f"{label} {recorded}{when}: no upper limit of normal to compare with",
                                   [evidence], [f"{label} reference range"])
                evidence["converted"] = {"value": round(value, 3), "unit": "x ULN"}
                shown = f"{label} {recorded}{when} = {value:.2f} x ULN"
            else:
                if found.value is None:
                    return Outcome(None, f"{label} {recorded}{when}: {found.problem}", [evidence], [label])
                value = found.value
                shown = f"{label} {recorded}{when}"
                if found.recorded_unit is None or found.recorded != value:
                    evidence["converted"] = {"value": value, "unit": unit}
                    if found.recorded != value:
                        shown += f" = {_fmt(value)} {_unit_text(unit)}"
                if found.molar_mass:
                    evidence["assumption"] = f"converted with molar mass {found.molar_mass:g} g/mol"
            holds = test(value)
            return Outcome(holds, f"{shown} is {'' if holds else 'not '}{describe}", [evidence])

        return evaluate

    def _plan_comparison(self, p: Comparison) -> Evaluator:
        compare, threshold = _COMPARE[p.op], p.value
        describe = f"{_WORDS[p.op]} {_fmt(p.value)} {_unit_text(p.unit)}".rstrip()
        if p.variable == "age":
            return self._age(p.unit, lambda age: compare(age, threshold), describe)
        return self._measured(p.variable, p.unit, p.within, lambda v: compare(v, threshold), describe)

    def _plan_range(self, p: Range) -> Evaluator:
        low, high = p.low, p.high
        low_ok = operator.ge if p.low_inclusive else operator.gt
        high_ok = operator.le if p.high_inclusive else operator.lt
        describe = f"within {_fmt(low)}-{_fmt(high)} {_unit_text(p.unit)}".rstrip()

        def test(v: float) -> bool:
            return low_ok(v, low) and high_ok(v, high)

        if p.variable == "age":
            return self._age(p.unit, test, describe)
        return self._measured(p.variable, p.unit, p.within, test, describe)

    def _age(self, unit: str, test: Callable[[float], bool], describe: str) -> Evaluator:
        def evaluate(facts: Facts, screening: Screening) -> Outcome:
            if facts.birth_date is not None:
                if facts.birth_date > screening.as_of:
                    return Outcome(None, f"birth date {facts.birth_date} is after the screening date", missing=["birth_date"])
                age: float = completed(unit, facts.birth_date, screening.as_of)
                evidence = {"name": "age", "value": age, "unit": unit, "date": screening.as_of.isoformat(),
                            "birth_date": facts.birth_date.isoformat(), "threshold": describe}
            elif facts.age is not None and unit == "year":
                age = int(facts.age)  # completed years, as from a birth date: 40.5 is 40
                evidence = {"name": "age", "value": age, "unit": unit, "threshold": describe,
                            "assumption": "age as given in the record (no birth date)"}
            else:
                return Outcome(None, f"age in {unit}s needs a birth date", missing=["birth_date"])
            holds = test(age)
            return Outcome(holds, f"age {_fmt(age)} {unit}s is {'' if holds else 'not '}{describe}", [evidence])

        return evaluate

    def _plan_category(self, p: Category) -> Evaluator:
        label, wanted, within = self.label(p.variable), frozenset(p.values), p.within
        shown = " or ".join(p.values)

        def evaluate(facts: Facts, screening: Screening) -> Outcome:
            entries: list[Finding] = [f for f in facts.findings.get(p.variable, ()) if f.date is None or f.date <= screening.as_of]
            if within is not None:
                since = add_period(screening.as_of, within, -1)
                entries = [f for f in entries if f.date is not None and f.date >= since]
            if not entries:
                return Outcome(None, f"no {label} on record", missing=[label])
            latest = entries[0]
            evidence = {"name": label, "value": latest.recorded, "date": latest.date.isoformat() if latest.date else None,
                        "threshold": shown}
            if latest.value is None:
                return Outcome(None, f"{label} {latest.recorded!r} is not a known value", [evidence], [label])
            holds = latest.value in wanted
            return Outcome(holds, f"{label} {latest.value} ({latest.date}) is {'' if holds else 'not '}{shown}", [evidence])

        return evaluate

    def _plan_sex(self, p: Sex) -> Evaluator:
        def evaluate(facts: Facts, screening: Screening) -> Outcome:
            holds = facts.sex == p.sex
            return Outcome(holds, f"sex {facts.sex} is {'' if holds else 'not '}{p.sex}",
                           [{"name": "sex", "value": facts.sex}])

        return evaluate

    # -- events ----------------------------------------------------------------------
    def _plan_presence(self, p: Presence) -> Evaluator:
        variable = self.vocab[p.variable] if p.variable in self.vocab else None
        label = self.label(p.variable)
        applies_to = variable.applies_to if variable else None
        is_medication = variable is not None and variable.kind == "medication"
        when = " now" if p.current else (f" within {p.within}" if p.within else "")

        def evaluate(facts: Facts, screening: Screening) -> Outcome:
            if applies_to is not None and facts.sex != applies_to:
                return Outcome(False, f"{label} does not apply to a {facts.sex} patient",
                               [{"name": "sex", "value": facts.sex}])
            entries = facts.events.get(p.variable, [])
            present = [e for e in entries if e.present and (e.start is None or e.start <= screening.as_of)]
            if not present:
                if any(e.present for e in entries):
                    return Outcome(False, f"{label} only on record after {screening.as_of}",
                                   [{"name": label, "present": False}])
                if entries or screening.closed_world:
                    why = "recorded as absent" if entries else "not on record (closed world)"
                    return Outcome(False, f"{label}: {why}", [{"name": label, "present": False}])
                return Outcome(None, f"no record of {label} (present or absent)", missing=[label])
            since = add_period(screening.as_of, p.within, -1) if p.within else None
            undecided = None
            for event in present:
                if p.current and event.end is not None and event.end < screening.as_of:
                    continue
                if since is not None:
                    began = event.start or event.diagnosed
                    if not (began is not None and began >= since) and not (event.end is not None and event.end >= since):
                        ongoing = event.end is None and (is_medication or began is None)
                        if not ongoing:
                            if event.end is None:  # began before the window, no end date
                                undecided = f"{label} since {began}, no end date: cannot tell if{when}"
                            continue
                        if began is None:
                            undecided = f"{label} on record without a date: cannot tell if{when}"
                            continue
                dates = {k: v.isoformat() for k, v in (("start", event.start), ("end", event.end)) if v}
                as_recorded = f" as {event.recorded!r}" if event.recorded and name_key(event.recorded) != name_key(label) else ""
                return Outcome(True, f"{label} on record{as_recorded}{when}" + (f" (since {event.start})" if event.start else ""),
                               [{"name": label, "recorded": event.recorded, "present": True, **dates}])
            if undecided is not None:
                return Outcome(None, undecided, [{"name": label, "present": True}], [f"{label} dates"])
            return Outcome(False, f"{label} on record but not{when}", [{"name": label, "present": True}])

        return evaluate

    def _plan_duration(self, p: Duration) -> Evaluator:
        label, compare, period = self.label(p.variable), _COMPARE[p.op], p.period
        describe = f"{_WORDS[p.op]} {period}"
        anchor_name = {"onset": "onset", "diagnosed": "diagnosis", "start": "start"}[p.since]

        def evaluate(facts: Facts, screening: Screening) -> Outcome:
            entries = [e for e in facts.events.get(p.variable, []) if e.present]
            if not entries:
                if facts.events.get(p.variable) and p.since == "start":
                    return Outcome(False, f"not on {label}", [{"name": label, "present": False}])
                return Outcome(None, f"no {label} on record", missing=[label])
            event = entries[0]
            anchor = event.diagnosed if p.since == "diagnosed" else event.start
            if anchor is None:
                return Outcome(None, f"{label} has no {anchor_name} date", missing=[f"{label} {anchor_name} date"])
            if p.since == "start" and event.end is not None and event.end < screening.as_of:
                return Outcome(False, f"{label} stopped {event.end}", [{"name": label, "start": anchor.isoformat(), "end": event.end.isoformat()}])
            if anchor > screening.as_of:
                return Outcome(None, f"{label} {anchor_name} {anchor} is after the screening date", missing=[label])
            elapsed_days = (screening.as_of - anchor).days
            # compare the screening date with the anchor moved by the period, in calendar terms
            boundary = add_period(anchor, period)
            holds = compare(screening.as_of.toordinal(), boundary.toordinal())
            return Outcome(holds, f"{label} {anchor_name} {anchor}, {elapsed_days} days before {screening.as_of}: "
                                  f"{'' if holds else 'not '}{describe}",
                           [{"name": label, anchor_name: anchor.isoformat(), "elapsed_days": elapsed_days, "threshold": describe}])

        return evaluate

    # -- structure ---------------------------------------------------------------------
    def _plan_manual(self, p: Manual) -> Evaluator:
        outcome_reason = f"needs manual review: {p.text}"

        def evaluate(facts: Facts, screening: Screening) -> Outcome:
            return Outcome(None, outcome_reason, missing=["manual review"])

        return evaluate

    def _plan_not(self, p: Not) -> Evaluator:
        inner = self.plan(p.item)

        def evaluate(facts: Facts, screening: Screening) -> Outcome:
            result = inner(facts, screening)
            truth = None if result.truth is None else not result.truth
            return Outcome(truth, result.reason, result.evidence, result.missing)

        return evaluate

    def _plan_all(self, p: All) -> Evaluator:
        return _kleene([self.plan(item) for item in p.items], decisive=False)

    def _plan_any(self, p: AnyOf) -> Evaluator:
        return _kleene([self.plan(item) for item in p.items], decisive=True)

    def _plan_implies(self, p: Implies) -> Evaluator:
        return _kleene([self._plan_not(Not(item=p.condition)), self.plan(p.then)], decisive=True)


def _kleene(parts: list[Evaluator], decisive: bool) -> Evaluator:
    """all (decisive=False: one False decides) or any (decisive=True: one True decides)."""

    def evaluate(facts: Facts, screening: Screening) -> Outcome:
        results = [part(facts, screening) for part in parts]
        deciding = [r for r in results if r.truth is decisive]
        if deciding:
            return Outcome(decisive, "; ".join(r.reason for r in deciding), [e for r in deciding for e in r.evidence])
        unknown = [r for r in results if r.truth is None]
        if unknown:
            missing = list(dict.fromkeys(m for r in unknown for m in r.missing))
            return Outcome(None, "; ".join(r.reason for r in unknown), [e for r in results for e in r.evidence], missing)
        return Outcome(not decisive, "; ".join(r.reason for r in results), [e for r in results for e in r.evidence])

    return evaluate
