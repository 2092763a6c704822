"""Predicates x patient facts -> three-valued outcomes, with reasons and evidence.

Each predicate is planned once per trial into a small closure holding everything that does
not depend on the patient: labels, thresholds, comparison functions, the fixed parts of its
reasons. Screening a patient then only compares floats and dates and joins strings.
Missing or unusable data gives ``None`` (unknown), which flows through all/any/not by
Kleene's logic: it never becomes a pass.

The closures return a plain tuple ``Result = (truth, reason, evidence, missing)`` with
tuples inside: a screening makes dozens of them, and a tuple costs a fraction of an object.
``Planner.plan`` wraps a predicate's result in an ``Outcome`` for callers outside the report.
Evidence dicts are made afresh for every screening; only immutable text is shared.
"""

from __future__ import annotations

import datetime as dt
import operator
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from .facts import Facts, iso_date
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
    Period,
    PredicateNode,
    Presence,
    Range,
    Sex,
)
from .vocabulary import Vocabulary, name_key, vocabulary

Truth = bool | None
Evidence = dict[str, Any]
Result = tuple[Truth, str, tuple[Evidence, ...], tuple[str, ...]]
"""(truth, reason, evidence, missing); ``missing`` is empty unless the truth is unknown."""
Window = tuple[float, str]
"""A recency window as (amount, time unit): the key of its start date within a screening."""

SEXES: tuple[str, ...] = typing.get_args(Patient.model_fields["sex"].annotation)


class Screening:
    """What one screening run knows besides the record, and what its criteria share: the date
    in ISO form and the first day of each recency window ("30 days" recurs across criteria)."""

    __slots__ = ("as_of", "closed_world", "as_of_text", "_starts")

    def __init__(self, as_of: dt.date, closed_world: bool = False) -> None:
        self.as_of = as_of
        self.closed_world = closed_world
        self.as_of_text: str = iso_date(as_of)  # type: ignore[assignment]  # a date has one
        self._starts: dict[Window, dt.date] = {}

    def since(self, window: Window) -> dt.date:
        """The first day of ``window`` ending on the screening date, worked out once per screening."""
        start = self._starts.get(window)
        if start is None:
            start = self._starts[window] = _shift(self.as_of, -window[0], window[1])
        return start


@dataclass(slots=True)
class Outcome:
    """A predicate's truth for one patient: True, False or None (unknown), and why."""

    truth: Truth
    reason: str
    evidence: list[Evidence] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


Evaluator = Callable[[Facts, Screening], Result]

# ``partial(_FLIPPED[op], threshold)(value)`` is ``value op threshold``, without a Python frame.
_FLIPPED: dict[str, Callable[[float, float], bool]] = {
    "lt": operator.gt, "le": operator.ge, "gt": operator.lt, "ge": operator.le, "eq": operator.eq,
}
_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "lt": operator.lt, "le": operator.le, "gt": operator.gt, "ge": operator.ge, "eq": operator.eq,
}
_WORDS = {"lt": "below", "le": "at most", "gt": "above", "ge": "at least", "eq": "equal to"}


MAX_PLAUSIBLE_AGE = 125
"""Years; an older age from a birth date is a data error, never compared (the record's own
``age`` field is bounded when the record is validated)."""


def add_period(day: dt.date, period: Period, sign: int = 1) -> dt.date:
    """A calendar date ``period`` after (or before, sign=-1) ``day``; month ends clamp."""
    return _shift(day, period.amount * sign, period.unit)


def _shift(day: dt.date, amount: float, unit: str) -> dt.date:
    if unit in ("day", "week"):
        return day + dt.timedelta(days=amount * (7 if unit == "week" else 1))
    months = amount * (12 if unit == "year" else 1)
    whole = int(months)
    month_index = day.year * 12 + day.month - 1 + whole
    year, month = divmod(month_index, 12)
    month += 1
    if day.day <= 28:  # every month has the day
        moved = dt.date(year, month, day.day)
    else:
        last_day = (dt.date(year + (month == 12), month % 12 + 1, 1) - dt.timedelta(days=1)).day
        moved = dt.date(year, month, min(day.day, last_day))
    fraction = months - whole
    return moved + dt.timedelta(days=round(fraction * 30.4375)) if fraction else moved


def _window(period: Period | None) -> Window | None:
    return None if period is None else (period.amount, period.unit)


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


def _int_text(value: int) -> str:
    """``_fmt`` of a whole number: ``str`` writes it the same below a million, in a fifth of the time."""
    return str(value) if -1_000_000 < value < 1_000_000 else f"{value:g}"


def _unit_text(unit: str) -> str:
    return {"point": "points", "1": "", "day": "days", "week": "weeks", "month": "months", "year": "years"}.get(unit, unit)


def _verdict_tails(describe: str) -> tuple[str, str]:
    """The end of a reason, indexed by the truth: (" is not <describe>", " is <describe>")."""
    return f" is not {describe}", f" is {describe}"


class Planner:
    """Turns predicates into evaluators; one per vocabulary."""

    def __init__(self, vocab: Vocabulary | None = None):
        self.vocab = vocab or vocabulary()

    def label(self, variable_id: str) -> str:
        return self.vocab[variable_id].label if variable_id in self.vocab else variable_id

    def plan(self, predicate: PredicateNode) -> Callable[[Facts, Screening], Outcome]:
        """The predicate as a function of (facts, screening) giving an ``Outcome``."""
        evaluate = self.evaluator(predicate)

        def outcome(facts: Facts, screening: Screening) -> Outcome:
            truth, reason, evidence, missing = evaluate(facts, screening)
            return Outcome(truth, reason, list(evidence), list(missing))

        return outcome

    def evaluator(self, predicate: PredicateNode) -> Evaluator:
        """The predicate as a function of (facts, screening) giving a ``Result`` tuple."""
        method: Callable[[Any], Evaluator] = getattr(self, f"_plan_{predicate.type}")
        return method(predicate)

    # -- measured values -------------------------------------------------------------
    def _measured(self, variable_id: str, unit: str, within: Period | None, test: Callable[[float], bool], describe: str) -> Evaluator:
        """The latest measurement on or before the screening date (within the window, if any)
        against ``test``; in ``unit``, or as a multiple of the upper limit of normal."""
        label, window, relative = self.label(variable_id), _window(within), unit == "x ULN"
        missing, no_range = (label,), (f"{label} reference range",)
        nothing: Result = (None, f"no {label} on record", (), missing)
        too_old = f"no {label} within {within} before "
        tails = _verdict_tails(describe)
        unit_text = _unit_text(unit)

        def evaluate(facts: Facts, screening: Screening) -> Result:
            as_of = screening.as_of
            rows = facts.measurement_rows.get(variable_id, ())
            for found in rows:  # newest first, undated last
                if found[0] is None or found[0] <= as_of:
                    break
            else:
                return (None, f"no {label} on or before {screening.as_of_text}", (), missing) if rows else nothing
            (date, date_text, recorded, recorded_unit, shown, value, value_text, problem, note,
             uln, uln_rounded, uln_shown, uln_assumption, conflicting) = found
            if window is not None and (date is None or date < screening.since(window)):
                latest = f" (latest {date_text})" if date_text else ""
                return None, f"{too_old}{screening.as_of_text}{latest}", (), missing
            if conflicting:
                return None, f"{label} has conflicting values on {date_text}", (), missing
            evidence: Evidence = {"name": label, "value": recorded, "unit": recorded_unit, "date": date_text,
                                  "threshold": describe}
            if relative:
                if uln is None:
                    if problem is not None:  # implausible value, unusable range
                        return None, f"{label} {shown}: {problem}", (evidence,), missing
                    return None, f"{label} {shown}: no upper limit of normal to compare with", (evidence,), no_range
                if uln_assumption is not None:
                    evidence["assumption"] = uln_assumption
                evidence["converted"] = {"value": uln_rounded, "unit": "x ULN"}
                holds = test(uln)
                return holds, f"{label} {uln_shown}{tails[holds]}", (evidence,), ()
            if value is None:
                return None, f"{label} {shown}: {problem}", (evidence,), missing
            if value_text is not None:  # the recorded value converted
                evidence["converted"] = {"value": value, "unit": unit}
                reason = f"{label} {shown} = {value_text} {unit_text}"
            else:
                if recorded_unit is None:
                    evidence["converted"] = {"value": value, "unit": unit}
                reason = f"{label} {shown}"
            if note is not None:
                evidence["assumption"] = note
            holds = test(value)
            return holds, reason + tails[holds], (evidence,), ()

        return evaluate

    def _plan_comparison(self, p: Comparison) -> Evaluator:
        test = partial(_FLIPPED[p.op], p.value)
        describe = f"{_WORDS[p.op]} {_fmt(p.value)} {_unit_text(p.unit)}".rstrip()
        if p.variable == "age":
            return self._age(p.unit, test, describe)
        return self._measured(p.variable, p.unit, p.within, test, describe)

    def _plan_range(self, p: Range) -> Evaluator:
        low, high = p.low, p.high
        low_ok: Callable[[float, float], bool] = operator.ge if p.low_inclusive else operator.gt
        high_ok: Callable[[float, float], bool] = operator.le if p.high_inclusive else operator.lt
        describe = f"within {_fmt(low)}-{_fmt(high)} {_unit_text(p.unit)}".rstrip()

        def test(v: float) -> bool:
            return low_ok(v, low) and high_ok(v, high)

        if p.variable == "age":
            return self._age(p.unit, test, describe)
        return self._measured(p.variable, p.unit, p.within, test, describe)

    def _age(self, unit: str, test: Callable[[float], bool], describe: str) -> Evaluator:
        tails = tuple(f" {unit}s{tail}" for tail in _verdict_tails(describe))
        no_birth_date: Result = (None, f"age in {unit}s needs a birth date", (), ("birth_date",))

        def evaluate(facts: Facts, screening: Screening) -> Result:
            if facts.birth_date is not None:
                if facts.birth_date > screening.as_of:
                    return None, f"birth date {facts.birth_date} is after the screening date", (), ("birth_date",)
                if completed("year", facts.birth_date, screening.as_of) > MAX_PLAUSIBLE_AGE:
                    return (None, f"birth date {facts.birth_date} gives an age over {MAX_PLAUSIBLE_AGE} years: "
                                  "not a plausible age", (), ("birth_date",))
                age = completed(unit, facts.birth_date, screening.as_of)
                evidence = {"name": "age", "value": age, "unit": unit, "date": screening.as_of_text,
                            "birth_date": facts.birth_date_text, "threshold": describe}
            elif facts.age is not None and unit == "year":
                age = int(facts.age)  # completed years, as from a birth date: 40.5 is 40
                evidence = {"name": "age", "value": age, "unit": unit, "threshold": describe,
                            "assumption": "age as given in the record (no birth date)"}
            else:
                return no_birth_date
            holds = test(age)
            return holds, f"age {_int_text(age)}{tails[holds]}", (evidence,), ()

        return evaluate

    def _plan_category(self, p: Category) -> Evaluator:
        label, wanted, window, variable_id = self.label(p.variable), frozenset(p.values), _window(p.within), p.variable
        shown = " or ".join(p.values)
        tails = _verdict_tails(shown)
        missing = (label,)
        nothing: Result = (None, f"no {label} on record", (), missing)

        def evaluate(facts: Facts, screening: Screening) -> Result:
            as_of = screening.as_of
            for date, date_text, recorded, value in facts.findings.get(variable_id, ()):  # newest first, undated last
                if date is None or date <= as_of:
                    break
            else:
                return nothing
            if window is not None and (date is None or date < screening.since(window)):
                return nothing
            evidence = {"name": label, "value": recorded, "date": date_text, "threshold": shown}
            if value is None:
                return None, f"{label} {recorded!r} is not a known value", (evidence,), missing
            holds = value in wanted
            return holds, f"{label} {value} ({date_text}){tails[holds]}", (evidence,), ()

        return evaluate

    def _plan_sex(self, p: Sex) -> Evaluator:
        wanted = p.sex

        def evaluate(facts: Facts, screening: Screening) -> Result:
            holds = facts.sex == wanted
            return (holds, f"sex {facts.sex} is {'' if holds else 'not '}{wanted}",
                    ({"name": "sex", "value": facts.sex},), ())

        return evaluate

    # -- events ----------------------------------------------------------------------
    def _plan_presence(self, p: Presence) -> Evaluator:
        variable = self.vocab[p.variable] if p.variable in self.vocab else None
        variable_id, label, current, window = p.variable, self.label(p.variable), p.current, _window(p.within)
        label_key = name_key(label)
        applies_to = variable.applies_to if variable else None
        is_medication = variable is not None and variable.kind == "medication"
        when = " now" if p.current else (f" within {p.within}" if p.within else "")
        no_record: Result = (None, f"no record of {label} (present or absent)", (), (label,))
        absent, not_on_record = f"{label}: recorded as absent", f"{label}: not on record (closed world)"
        undated, not_when = f"{label} on record without a date: cannot tell if{when}", f"{label} on record but not{when}"
        no_dates = (f"{label} dates",)

        def evaluate(facts: Facts, screening: Screening) -> Result:
            if applies_to is not None and facts.sex != applies_to:
                return (False, f"{label} does not apply to a {facts.sex} patient",
                        ({"name": "sex", "value": facts.sex},), ())
            entries = facts.events.get(variable_id)
            if not entries:
                return (False, not_on_record, ({"name": label, "present": False},), ()) if screening.closed_world else no_record
            if not entries[0][0]:  # present entries come first: all are asserted absent
                return False, absent, ({"name": label, "present": False},), ()
            as_of = screening.as_of
            undecided = None
            on_record = False  # a present entry dated on or before the screening date
            for present, start, diagnosed, end, recorded, recorded_key, quoted, start_text, diagnosed_text, end_text in entries:
                if not present:  # the asserted absences come last
                    break
                if start is not None and start > as_of:  # after the screening date: ignored
                    continue
                on_record = True
                if current and end is not None and end < as_of:
                    continue
                if window is not None:
                    since = screening.since(window)
                    began = start or diagnosed
                    if not (began is not None and began >= since) and not (end is not None and end >= since):
                        ongoing = end is None and (is_medication or began is None)
                        if not ongoing:
                            if end is None:  # began before the window, no end date
                                undecided = f"{label} since {start_text or diagnosed_text}, no end date: cannot tell if{when}"
                            continue
                        if began is None:
                            undecided = undated
                            continue
                evidence: Evidence = {"name": label, "recorded": recorded, "present": True}
                if start_text:
                    evidence["start"] = start_text
                if end_text:
                    evidence["end"] = end_text
                as_recorded = f" as {quoted}" if recorded and recorded_key != label_key else ""
                since_text = f" (since {start_text})" if start_text else ""
                return True, f"{label} on record{as_recorded}{when}{since_text}", (evidence,), ()
            if not on_record:  # entries dated after the screening date are ignored: as if not on record
                if not entries[-1][0]:
                    return False, absent, ({"name": label, "present": False},), ()
                if screening.closed_world:
                    return False, not_on_record, ({"name": label, "present": False},), ()
                return None, f"{label} only on record after {screening.as_of_text}: no record before it", (), (label,)
            if undecided is not None:
                return None, undecided, ({"name": label, "present": True},), no_dates
            return False, not_when, ({"name": label, "present": True},), ()

        return evaluate

    def _plan_duration(self, p: Duration) -> Evaluator:
        variable_id, label, compare, period = p.variable, self.label(p.variable), _COMPARE[p.op], p.period
        describe = f"{_WORDS[p.op]} {period}"
        tails = (f"not {describe}", describe)
        anchor_name = {"onset": "onset", "diagnosed": "diagnosis", "start": "start"}[p.since]
        by_diagnosis, by_start = p.since == "diagnosed", p.since == "start"
        no_record: Result = (None, f"no {label} on record", (), (label,))
        no_anchor: Result = (None, f"{label} has no {anchor_name} date", (), (f"{label} {anchor_name} date",))

        def evaluate(facts: Facts, screening: Screening) -> Result:
            entries = facts.events.get(variable_id)
            if entries is None:
                return no_record
            present, start, diagnosed, end, _recorded, _key, _quoted, start_text, diagnosed_text, end_text = entries[0]
            if not present:  # the newest present entry, if any, comes first
                return (False, f"not on {label}", ({"name": label, "present": False},), ()) if by_start else no_record
            anchor, anchor_text = (diagnosed, diagnosed_text) if by_diagnosis else (start, start_text)
            if anchor is None:
                return no_anchor
            as_of = screening.as_of
            if by_start and end is not None and end < as_of:
                return (False, f"{label} stopped {end_text}",
                        ({"name": label, "start": anchor_text, "end": end_text},), ())
            if anchor > as_of:
                return None, f"{label} {anchor_name} {anchor_text} is after the screening date", (), (label,)
            elapsed_days = (as_of - anchor).days
            # compare the screening date with the anchor moved by the period, in calendar terms
            holds = compare(as_of.toordinal(), add_period(anchor, period).toordinal())
            return (holds, f"{label} {anchor_name} {anchor_text}, {elapsed_days} days before {screening.as_of_text}: {tails[holds]}",
                    ({"name": label, anchor_name: anchor_text, "elapsed_days": elapsed_days, "threshold": describe},), ())

        return evaluate

    # -- structure ---------------------------------------------------------------------
    def _plan_manual(self, p: Manual) -> Evaluator:
        result: Result = (None, f"needs manual review: {p.text}", (), ("manual review",))

        def evaluate(facts: Facts, screening: Screening) -> Result:
            return result

        return evaluate

    def _plan_not(self, p: Not) -> Evaluator:
        return _negated(self.evaluator(p.item))

    def _plan_all(self, p: All) -> Evaluator:
        return self._sexes_only(p.items, decisive=False) or _kleene([self.evaluator(item) for item in p.items], decisive=False)

    def _plan_any(self, p: AnyOf) -> Evaluator:
        return self._sexes_only(p.items, decisive=True) or _kleene([self.evaluator(item) for item in p.items], decisive=True)

    def _plan_implies(self, p: Implies) -> Evaluator:
        return _kleene([_negated(self.evaluator(p.condition)), self.evaluator(p.then)], decisive=True)

    def _sexes_only(self, items: Sequence[PredicateNode], decisive: bool) -> Evaluator | None:
        """all/any of sexes only (a registry's "Sex: ALL") decided now for each sex a record
        can give; each screening copies the evidence. None when another kind of predicate is
        among the items."""
        if not items or not all(isinstance(item, Sex) for item in items):
            return None
        combined = _kleene([self.evaluator(item) for item in items], decisive)
        decided = {sex: combined(Facts("", sex, None, None), Screening(dt.date.min)) for sex in SEXES}

        def evaluate(facts: Facts, screening: Screening) -> Result:
            found = decided.get(facts.sex)
            if found is None:  # facts not made from a validated record
                return combined(facts, screening)
            truth, reason, evidence, missing = found
            return truth, reason, tuple([dict(item) for item in evidence]), missing

        return evaluate


def _negated(inner: Evaluator) -> Evaluator:
    def evaluate(facts: Facts, screening: Screening) -> Result:
        truth, reason, evidence, missing = inner(facts, screening)
        return None if truth is None else not truth, reason, evidence, missing

    return evaluate


def _kleene(parts: list[Evaluator], decisive: bool) -> Evaluator:
    """all (decisive=False: one False decides) or any (decisive=True: one True decides).

    Every part is evaluated: a decided result names all the parts that decide it, an unknown
    one all the unknown parts and what each is missing. Two parts, the commonest case (a
    condition and its manual part, "for subjects under X, ..."), are combined without lists.
    Unknown parts without evidence are mostly the planned constants ("no record of X", a
    manual part), so their last combination is kept and returned again for the same results.
    """
    if len(parts) == 2:
        return _kleene_pair(parts[0], parts[1], decisive)

    def evaluate(facts: Facts, screening: Screening) -> Result:
        results: list[Result] = []
        deciding: list[Result] = []
        unknown: list[Result] = []
        evidence: tuple[Evidence, ...] = ()
        for part in parts:  # one pass, no comprehension frame; for a few short tuples, += beats itertools.chain
            r = part(facts, screening)
            results.append(r)
            if r[0] is decisive:
                deciding.append(r)
            elif r[0] is None:
                unknown.append(r)
            evidence += r[2]
        if deciding:
            if len(deciding) == 1:
                return deciding[0]
            evidence = ()
            for r in deciding:
                evidence += r[2]
            return decisive, "; ".join([r[1] for r in deciding]), evidence, ()
        if not unknown:
            return not decisive, "; ".join([r[1] for r in results]), evidence, ()
        if len(unknown) == 1:
            return None, unknown[0][1], evidence, unknown[0][3]
        if not evidence:  # no part has evidence ("no record of X" for each): these very results may recur
            last = kept[0]
            if last[0] == results:
                return last[1]
        missing: tuple[str, ...] = ()
        for r in unknown:
            missing += r[3]
        combined = None, "; ".join([r[1] for r in unknown]), evidence, tuple(dict.fromkeys(missing))
        if not evidence:
            kept[0] = (results, combined)  # one tuple, replaced whole: safe for threads sharing the plan
        return combined

    kept: list[tuple[list[Result], Result]] = [([], (None, "", (), ()))]
    return evaluate


def _kleene_pair(first: Evaluator, second: Evaluator, decisive: bool) -> Evaluator:
    """``_kleene`` of two parts, case by case."""

    def evaluate(facts: Facts, screening: Screening) -> Result:
        a = first(facts, screening)
        b = second(facts, screening)
        if a[0] is decisive:
            return (decisive, f"{a[1]}; {b[1]}", a[2] + b[2], ()) if b[0] is decisive else a
        if b[0] is decisive:
            return b
        if a[0] is None:
            if b[0] is None:
                if a[2] or b[2]:
                    return None, f"{a[1]}; {b[1]}", a[2] + b[2], tuple(dict.fromkeys(a[3] + b[3]))
                last = kept[0]  # no evidence: constant results ("no record of X" and a manual part) recur
                if last[0] is a and last[1] is b:
                    return last[2]
                combined: Result = None, f"{a[1]}; {b[1]}", (), tuple(dict.fromkeys(a[3] + b[3]))
                kept[0] = (a, b, combined)  # one tuple, replaced whole: safe for threads sharing the plan
                return combined
            return None, a[1], a[2] + b[2], a[3]
        if b[0] is None:
            return None, b[1], a[2] + b[2], b[3]
        return not decisive, f"{a[1]}; {b[1]}", a[2] + b[2], ()

    kept: list[tuple[Result | None, Result | None, Result]] = [(None, None, (None, "", (), ()))]
    return evaluate
