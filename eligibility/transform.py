"""Parse tree -> predicate: one Transformer method per grammar rule (``grammars/criterion.lark``).

The Transformer resolves names through the vocabulary and normalises every threshold to
its variable's canonical unit, so evaluation compares plain floats. A tree whose meaning
cannot be pinned down (a unit that does not convert, a measured variable with no
threshold, "the disease" with no condition known) raises ``CompileProblem``: the
criterion is then kept as text for review, never compiled to a guess.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal, cast

from lark import Token, Transformer, Tree, v_args
from lark.exceptions import VisitError

from .predicates import (
    All,
    Manual,
    AnyOf,
    Category,
    Comparison,
    Duration,
    Implies,
    Not,
    Operator,
    Period,
    PredicateNode,
    Presence,
    Range,
    Sex,
    TimeUnit,
)
from .units import UnitProblem, convert_written, units
from .vocabulary import Variable, Vocabulary, vocabulary

CriterionKind = Literal["inclusion", "exclusion"]


class CompileProblem(Exception):
    """The parse tree is valid but its meaning is not certain enough to compile."""


@dataclass(frozen=True)
class CompileContext:
    """What a criterion's meaning depends on beyond its own words."""

    kind: CriterionKind
    condition: str | None = None  # the trial's condition, which "the disease" refers to


@dataclass(frozen=True)
class Quantity:
    value: float
    unit: str | None
    unit_type: str  # "UNIT", "ULN", "TIME_UNIT", "AGE_UNIT" or "none"
    before_anchor: bool = False  # "6 months prior to screening": a time before the screening date
    out_of: float | None = None  # "MoCA < 26/30": the scale's maximum, written after the value


class Qualifier(str):
    """Words that narrow a condition ("uncontrolled", "clinically significant")."""


class RomanNumeral(float):
    """A number written in Roman numerals: valid only for a scale that writes its values so."""

    def __new__(cls, written: str) -> RomanNumeral:
        value = {"I": 1, "II": 2, "III": 3, "IV": 4, "V": 5}[written]
        number = super().__new__(cls, value)
        number.written = written
        return number

    written: str


_THOUSANDS_DOT = re.compile(r"[1-9]\d{0,2}\.\d{3}")


class AmbiguousNumber(float):
    """"50.000", "1.500": a decimal, or a thousands separator as many European registries write it
    (50,000 platelets/mm3). Valued as the decimal; a threshold may use it only when the thousands
    reading is not a plausible value of its variable (see ``_threshold``)."""

    def __new__(cls, written: str) -> AmbiguousNumber:
        number = super().__new__(cls, float(written))
        number.written = written
        return number

    written: str


@dataclass(frozen=True)
class Bound:
    """A comparator and quantity with no variable of its own (see the grammar's ``bound``)."""

    op: Operator
    quantity: Quantity


@dataclass(frozen=True)
class Span:
    """Two bounds ("18-65", "> 3 to < 13 years"): inclusive unless a comparator says otherwise."""

    low: Quantity
    high: Quantity
    low_inclusive: bool = True
    high_inclusive: bool = True


@dataclass(frozen=True)
class Subject:
    variables: tuple[Variable, ...]
    joined_by_and: bool
    repeated: bool = False  # one variable named twice across a joint ("are pregnant or have been pregnant")


# What stands between two names of a list: "A, B", "A; B", "A/B", "A & B", "A and/or B"
_LIST_GAP = re.compile(r"[,;，；/&]|(?<![\w])(and|or)(?![\w])", re.IGNORECASE)
_OPERATORS: dict[str, Operator] = {"GE": "ge", "GT": "gt", "LE": "le", "LT": "lt", "EQ": "eq",
                                   "GE_POST": "ge", "LE_POST": "le"}
_NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
                 "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20, "thirty": 30}
_TIME_UNITS: dict[str, TimeUnit] = {"d": "day", "w": "week", "m": "month", "y": "year"}
_MEDICATION_PLACEHOLDER = ""  # a duration whose medication is named elsewhere in the sentence


_DAYS_IN = {"day": 1, "week": 7, "month": 31, "year": 366}
MAX_PERIOD_DAYS = 200 * 366
"""Longer windows and durations are not read: no calendar can apply them to a date."""


def _sane_period(amount: float, unit: TimeUnit) -> Period:
    if amount * _DAYS_IN[unit] > MAX_PERIOD_DAYS:
        raise CompileProblem(f"{amount:g} {unit}s is longer than any window a criterion means")
    return Period(amount=amount, unit=unit)


def _time_unit(text: str) -> TimeUnit:
    word = text.strip().lower().lstrip("-")  # "50-year-old"
    if word.startswith("mo"):
        return "month"
    return _TIME_UNITS[word[0]]


@v_args(inline=True)
class PredicateBuilder(Transformer[Token, PredicateNode]):
    """Builds one criterion's predicate from its parse tree."""

    def __init__(self, context: CompileContext, vocab: Vocabulary, text: str):
        super().__init__()
        self.context = context
        self.vocab = vocab
        self.text = text  # the parsed text: a comma between two names is ignored by the lexer, not here
        self.name_spans: list[tuple[int, int]] = []  # where each name read so far starts and ends
        self.ambiguous: list[AmbiguousNumber] = []  # read as decimals only where _threshold found that certain
        self.certain: set[int] = set()

    # -- leaves -------------------------------------------------------------------
    def number(self, token: Token) -> float:
        if token.type == "ROMAN":
            return RomanNumeral(str(token))
        text = str(token).lower()
        if _THOUSANDS_DOT.fullmatch(text):
            number = AmbiguousNumber(text)
            self.ambiguous.append(number)
            return number
        value = float(_NUMBER_WORDS[text]) if text in _NUMBER_WORDS else float(text.replace(",", ""))
        if not math.isfinite(value):
            raise CompileProblem(f"{token!s} is too large to be a threshold")
        return value

    def quantity(self, value: float, *parts: Token) -> Quantity:
        ago = any(p.type == "AGO" for p in parts)
        unit = next((p for p in parts if p.type != "AGO"), None)
        if unit is None:
            return Quantity(value, None, "none", ago)
        return Quantity(value, str(unit), unit.type, ago)

    def quantity_out_of(self, value: float, _slash: Token, maximum: float) -> Quantity:
        return Quantity(value, None, "none", out_of=maximum)

    def comparator(self, token: Token) -> Operator:
        return _OPERATORS[token.type]

    postfix_comparator = comparator

    def variable(self, name: Token, alias: Token | None = None) -> Variable:
        self.name_spans.append((name.start_pos or 0, (alias or name).end_pos or 0))
        variable = self._lookup(name)
        if alias is not None and self._lookup(alias).id != variable.id:
            raise CompileProblem(f"{name!s} and {alias!s} are different variables")
        return variable

    def variable_list(self, *parts: Variable | Tree[Token]) -> Subject:
        """Names joined by "and", "or", "/". Two names side by side are one name of the variable
        ("hemoglobin Hb < 12 g/dL"), never a list: "Parkinson's Disease Dementia" and
        "insulin-treated diabetes" are narrower concepts than either name."""
        named = [p for p in parts if isinstance(p, Variable)]
        spans = self.name_spans[len(self.name_spans) - len(named):]  # this list's names, read just before it
        separated = False
        for index, (before, after) in enumerate(zip(named, named[1:])):
            if _LIST_GAP.search(self.text[spans[index][1]:spans[index + 1][0]]):
                separated = True
            elif before.id != after.id:
                raise CompileProblem(f"{before.label} and {after.label} side by side: one compound name, or a list?")
        variables = tuple({p.id: p for p in named}.values())
        separators = {cast(Token, t.children[0]).type for t in parts if isinstance(t, Tree)}
        return Subject(variables, joined_by_and=separators == {"AND"},
                       repeated=(separated or bool(separators)) and len(variables) < len(named))

    def subject(self, variables: Subject) -> Subject:
        return variables

    def period(self, *parts: float | Token) -> Period:
        amount = parts[0] if isinstance(parts[0], float) else 1.0
        unit = next(p for p in parts if isinstance(p, Token) and p.type == "TIME_UNIT")
        return _sane_period(amount, _time_unit(str(unit)))

    def window(self, _within: Token, period: Period) -> Period:
        return period

    def marker(self, *tokens: Token) -> str:
        """HISTORY if any word says the event may be over, else CURRENT if one says now, else KNOWN
        ("known", "documented": how it is known, so the variable's own timing holds)."""
        types = {t.type for t in tokens}
        if "HISTORY" in types:
            return "HISTORY"
        return "CURRENT" if types & {"CURRENT", "CURRENTLY"} else "KNOWN"

    # -- measured values ---------------------------------------------------------------
    def comparison(self, subject: Subject, op: Operator, quantity: Quantity, window: Period | None = None) -> PredicateNode:
        if quantity.before_anchor and quantity.unit_type == "TIME_UNIT" and _are_events(subject):
            return self._presence_before(subject, quantity, op, window)
        return self._compare(subject, op, quantity, window)

    def _presence_before(self, subject: Subject, quantity: Quantity, op: Operator, window: Period | None) -> PredicateNode:
        """"Myocardial infarction ≤ 6 months prior to first study treatment", "surgery less than 3 months
        ago": the event within that time. "> 6 months prior" (an event longer ago) is no window."""
        if op not in ("le", "lt") or window is not None:
            raise CompileProblem("an event more than some time before the screening date: not a window")
        return self.presence(subject, self._period(quantity))

    def comparison_after(self, op: Operator, quantity: Quantity, *rest: Subject | Period | Token) -> PredicateNode:
        subject = next(r for r in rest if isinstance(r, Subject))
        window = next((r for r in rest if isinstance(r, Period)), None)
        return self._compare(subject, op, quantity, window)

    def comparison_inverted(self, op: Operator, subject: Subject, quantity: Quantity) -> PredicateNode:
        return self._compare(subject, op, quantity, None)

    def bound(self, op: Operator, quantity: Quantity) -> Bound:
        return Bound(op, quantity)

    def comparison_postfix(self, *parts: Subject | Quantity | Operator) -> PredicateNode:
        subject = parts[0] if isinstance(parts[0], Subject) else None
        quantity, op = cast(Quantity, parts[-2]), cast(Operator, parts[-1])
        return self._compare(subject or self._implied_age(quantity), op, quantity, None)

    def comparison_plus(self, *parts: Subject | float | Token) -> PredicateNode:
        subject = parts[0] if isinstance(parts[0], Subject) else None
        unit = cast(Token, parts[-1])
        quantity = Quantity(cast(float, parts[-3]), str(unit), unit.type)
        return self._compare(subject or self._implied_age(quantity), "ge", quantity, None)

    def range_between(self, subject: Subject, *parts: Quantity | Token | Period) -> PredicateNode:
        low, high = (p for p in parts if isinstance(p, Quantity))
        window = next((p for p in parts if isinstance(p, Period)), None)
        return self._range(subject, low, high, window)

    def range_between_unnamed(self, _between: Token, *parts: Subject | Quantity | Token) -> PredicateNode:
        """"between 18 and 80 years of age", "between the ages of 18 to 70 years"."""
        low, high = (p for p in parts if isinstance(p, Quantity))
        subject = next((p for p in parts if isinstance(p, Subject)), None) or self._implied_age(high)
        return self._range(subject, low, high, None)

    def range(self, subject: Subject, *parts: Span | Token | Period) -> PredicateNode:
        span = next(p for p in parts if isinstance(p, Span))
        window = next((p for p in parts if isinstance(p, Period)), None)
        return self._range(subject, span.low, span.high, window, span.low_inclusive, span.high_inclusive)

    def value_list(self, subject: Subject, *parts: float | Token) -> PredicateNode:
        """"ECOG 0, 1, or 2": a run of whole scores is a range; other lists are each value."""
        values = sorted({float(p) for p in parts if isinstance(p, float)})
        items: list[PredicateNode] = []
        for variable in subject.variables:
            if variable.kind != "score":
                raise CompileProblem(f"a list of values for {variable.label}, which is not a score")
            for value in parts:
                if isinstance(value, float):
                    self._threshold(variable, Quantity(value, None, "none"))
            if all(v.is_integer() for v in values) and values == [values[0] + i for i in range(len(values))]:
                items.append(Range(variable=variable.id, low=values[0], high=values[-1], unit="point"))
            else:
                items.append(AnyOf(items=tuple(Comparison(variable=variable.id, op="eq", value=v, unit="point") for v in values)))
        return self._combine(items)

    def blood_pressure(self, _name: Token, op: Operator, systolic: float, _slash: Token, diastolic: float,
                       unit: Token | None = None) -> PredicateNode:
        """"> 140/90 mmHg" bounds systolic and diastolic pressure alike: each must meet it to
        include; either exceeding it excludes."""
        items: list[PredicateNode] = []
        for variable_id, value in (("systolic_bp", systolic), ("diastolic_bp", diastolic)):
            threshold, canonical = self._threshold(self.vocab[variable_id], Quantity(value, str(unit) if unit else None, "UNIT" if unit else "none"))
            items.append(Comparison(variable=variable_id, op=op, value=threshold, unit=canonical))
        return self._combine(items)

    def alternative_threshold(self, clause: PredicateNode, bound: Bound, _mark: Token, condition: Subject) -> PredicateNode:
        """"ALT <= 3 x ULN (<= 5 x ULN if liver metastases)": if the condition, the second bound,
        else the first. The redundant third term (both bounds met) lets a value meeting both
        decide even when the condition is not known (Kleene logic keeps the consensus term)."""
        alternative = self._continue(clause, bound)
        present = self.presence(condition)
        return AnyOf(items=(All(items=(present, alternative)), All(items=(Not(item=present), clause)),
                            All(items=(alternative, clause))))

    def range_unnamed(self, *parts: Token | Span) -> PredicateNode:
        span = cast(Span, parts[-1])
        return self._range(self._implied_age(span.high), span.low, span.high, None, span.low_inclusive, span.high_inclusive)

    def age_range(self, _open: Token, span: Span) -> PredicateNode:
        """"Age (45 - 70 yr old)", "Age (20-50)": the word before the bracket names the age."""
        return self._range(Subject((self.vocab["age"],), joined_by_and=False), span.low, span.high, None,
                           span.low_inclusive, span.high_inclusive)

    def age_comparison(self, _open: Token, op: Operator, quantity: Quantity) -> PredicateNode:
        """"Adult (age ≥ 18)"."""
        return self._compare(Subject((self.vocab["age"],), joined_by_and=False), op, quantity, None)

    def range_between_bounds(self, low: Quantity, low_op: Operator, subject: Subject, high_op: Operator,
                             high: Quantity) -> PredicateNode:
        """"20 < age < 75", "145 mmHg ≤ SBP ≤ 190 mmHg" (or written from the top down)."""
        if low_op in ("gt", "ge") and high_op in ("gt", "ge"):
            low, low_op, high, high_op = high, _FLIPPED[high_op], low, _FLIPPED[low_op]
        if low_op not in ("lt", "le") or high_op not in ("lt", "le"):
            raise CompileProblem("the two comparators do not bound a range")
        if low.unit is None and high.unit is not None:
            low = Quantity(low.value, high.unit, high.unit_type)
        return self._range(subject, low, high, None, low_op == "le", high_op == "le")

    def span(self, low: float, _sep: Token, high: Quantity) -> Span:
        return Span(Quantity(low, high.unit, high.unit_type), high)

    def span_both_units(self, low: float, unit: Token, _sep: Token, high: Quantity) -> Span:
        return Span(Quantity(low, str(unit), unit.type), high)

    def span_bounded(self, *parts: Operator | float | Token | Quantity) -> Span:
        """"≥ 2 weeks to 4 months", "2 to < 12 years", "> 3 to < 13 years"."""
        sep = next(i for i, p in enumerate(parts) if isinstance(p, Token) and p.type == "RANGE_SEP")
        before, after = parts[:sep], parts[sep + 1:]
        low_op = next((p for p in before if isinstance(p, str) and not isinstance(p, Token)), "ge")
        high_op = next((p for p in after if isinstance(p, str) and not isinstance(p, Quantity)), "le")
        if low_op not in ("ge", "gt") or high_op not in ("le", "lt"):
            raise CompileProblem("the comparators in the range point the wrong way")
        high = cast(Quantity, after[-1])
        low_value = next(p for p in before if isinstance(p, float))
        unit = next((p for p in before if isinstance(p, Token)), None)
        low = Quantity(low_value, str(unit), unit.type) if unit is not None else Quantity(low_value, high.unit, high.unit_type)
        return Span(low, high, low_op == "ge", high_op == "le")

    # -- categories, presence, sex ------------------------------------------------------
    def category_values(self, *tokens: Token) -> tuple[Token, ...]:
        return tuple(t for t in tokens if isinstance(t, Token) and t.type == "CATEGORY_VALUE")

    def category(self, *parts: Token | tuple[Token, ...]) -> PredicateNode:
        written = next(p for p in parts if isinstance(p, tuple))
        named = [p for p in parts if isinstance(p, Token) and p.type == "VARIABLE"]
        resolved = [self._category_value(str(t)) for t in written]
        variable_ids = {variable_id for variable_id, _ in resolved} | {self._lookup(n).id for n in named}
        if len(variable_ids) != 1:
            raise CompileProblem("the values belong to different scales: " + ", ".join(sorted(variable_ids)))
        variable = self.vocab[variable_ids.pop()]
        chosen = {value for _, value in resolved}
        return Category(variable=variable.id, values=tuple(v.value for v in variable.values if v.value in chosen))

    def qualifier(self, *tokens: Token) -> Qualifier:
        return Qualifier(" ".join(str(t).lower() for t in tokens))

    def presence(self, *parts: Token | str | Subject | Period | Qualifier) -> PredicateNode:
        negated = any(isinstance(p, Token) and p.type == "NEGATION" for p in parts)
        marker = next((p for p in parts if isinstance(p, str) and not isinstance(p, (Token, Qualifier))), None)
        qualifier = next((p for p in parts if isinstance(p, Qualifier)), None)
        subject = next(p for p in parts if isinstance(p, Subject))
        window = next((p for p in parts if isinstance(p, Period)), None)
        if subject.repeated and window is not None:  # "are pregnant or have been pregnant in the last month"
            raise CompileProblem(f"{subject.variables[0].label} named twice: is the window for both, or only the last?")
        if qualifier is not None and len(subject.variables) > 1:
            # "advanced cancer or haemodialysis": the qualifier may narrow the first name or each
            raise CompileProblem(f"'{qualifier}' before a list: does it qualify the first name or each?")
        items: list[PredicateNode] = [self._presence(v, marker, window) for v in subject.variables]
        if qualifier is not None:
            items = [item if (question := self._narrower(qualifier, variable.label)) is None else All(items=(item, Manual(text=question)))
                     for item, variable in zip(items, subject.variables)]
        if len(items) == 1:
            found: PredicateNode = items[0]
        elif subject.joined_by_and and self.context.kind == "inclusion" and not negated:
            found = All(items=tuple(items))
        else:
            found = AnyOf(items=tuple(items))
        return Not(item=found) if negated else found

    @staticmethod
    def _narrower(qualifier: str, label: str) -> str | None:
        """The question a person answers for a qualified name ("other" is other than what?), or
        None when the name is as narrow as the qualifier ("systemic corticosteroids")."""
        if qualifier.split()[0] == "other":
            return f"{qualifier} {label}: other than the trial's condition or the ones named before it?"
        return None if qualifier in label.lower() else f"{qualifier} {label}?"

    def sex_and(self, sex: PredicateNode, clause: PredicateNode | Bound) -> PredicateNode:
        """"Female patients aged 18 to 50", "women < 47 years old": the sex and the clause both."""
        if isinstance(clause, Bound):
            clause = self._bound_as_age(clause, clause.quantity)
        if self._only_for(clause, cast(Sex, sex).sex):
            # "Women must not be breastfeeding": the subject of a condition only women have, not a
            # requirement to be a woman (a man is not breastfeeding)
            return clause
        return All(items=(sex, clause))

    def _only_for(self, predicate: PredicateNode, sex: str) -> bool:
        """Whether ``predicate`` is about conditions that apply to ``sex`` alone (pregnancy)."""
        if isinstance(predicate, Presence):
            return self.vocab[predicate.variable].applies_to == sex
        if isinstance(predicate, Not):
            return self._only_for(predicate.item, sex)
        if isinstance(predicate, (All, AnyOf)):
            return all(self._only_for(item, sex) for item in predicate.items)
        return False

    def age_of_sex(self, clause: PredicateNode | Bound, sex: PredicateNode) -> PredicateNode:
        """"18-35-year-old women", "Over 40 years of age women": only an age may come before the sex
        ("Hb ≥ 12 g/dL in women" sets a threshold for women alone, which is not "women and Hb ≥ 12")."""
        if isinstance(clause, Bound):
            clause = self._bound_as_age(clause, clause.quantity)
        if not _is_age(clause):
            raise CompileProblem("a threshold for one sex: the other sex's is not written")
        return All(items=(sex, clause))

    def windowed(self, clause: PredicateNode, window: Period) -> PredicateNode:
        """"ALSFRS-R >= 30 (within 3 months)": the bracketed window applies to the clause."""
        return _with_window(clause, window)

    def sex_specific(self, clause: PredicateNode, *parts: PredicateNode | Bound | Token) -> PredicateNode:
        """"HDL < 50 mg/dL in females, < 40 mg/dL in males": each sex its own threshold."""
        first_sex, bound, second_sex = (p for p in parts if not isinstance(p, Token))
        bound = cast(Bound, bound)
        if first_sex == second_sex:  # "< 50 in females, < 40 in females"
            raise CompileProblem("two thresholds for the same sex")
        return AnyOf(items=(All(items=(first_sex, clause)), All(items=(second_sex, self._continue(clause, bound)))))

    def sex(self, token: Token) -> PredicateNode:
        word = str(token).lower()
        return Sex(sex="female" if word.startswith(("fem", "wom")) else "male")

    # -- durations and structure ---------------------------------------------------------------
    def duration_since_diagnosis(self, _of: Token, event: Token, op: Operator, quantity: Quantity, _since: Token) -> PredicateNode:
        return Duration(variable=self._event(event).id, since="diagnosed", op=op, period=self._period(quantity))

    def duration_from_onset(self, op: Operator, quantity: Quantity, *parts: Token) -> PredicateNode:
        event = next(p for p in parts if p.type in ("VARIABLE", "DISEASE"))
        return Duration(variable=self._event(event).id, since="onset", op=op, period=self._period(quantity))

    def duration_on_medication(self, _stable: Token, *parts: Variable | Token | Operator | Quantity) -> PredicateNode:
        medication = next((p for p in parts if isinstance(p, Variable)), None)
        if medication is not None and medication.kind != "medication":
            raise CompileProblem(f"{medication.label} is not a medication")
        op = next(p for p in parts if isinstance(p, str) and not isinstance(p, Token))
        quantity = next(p for p in parts if isinstance(p, Quantity))
        return Duration(variable=medication.id if medication else _MEDICATION_PLACEHOLDER, since="start",
                        op=op, period=self._period(quantity))

    def time_since_last(self, op: Operator, quantity: Quantity, *parts: Token | str | Variable) -> PredicateNode:
        """"At least 5 years since prior chemotherapy": none within those 5 years (or never)."""
        variable = next(p for p in parts if isinstance(p, Variable))
        within = self._presence(variable, "HISTORY", self._period(quantity))
        if op in ("ge", "gt"):
            return Not(item=within)
        if op in ("le", "lt"):
            return within
        raise CompileProblem("'equal to' a time since an event")

    def duration_for(self, *parts: str | Subject | Token | Operator | Quantity) -> PredicateNode:
        """"On metformin for at least 3 months", "type 2 diabetes for more than 6 months": a course
        (medication, since its start: one stopped fails) or a condition still present (since its onset)
        lasting that long. Not after a history word ("treated with X for 3 months" may be a course
        that is over)."""
        marker = next((p for p in parts if isinstance(p, str) and not isinstance(p, Token) and p not in _OPERATORS.values()), None)
        subject = next(p for p in parts if isinstance(p, Subject))
        quantity = next(p for p in parts if isinstance(p, Quantity))
        op = next(p for p in parts if isinstance(p, str) and not isinstance(p, Token) and p in _OPERATORS.values())
        if marker == "HISTORY":
            raise CompileProblem("a course in the past or an ongoing one? the time is not anchored")
        if len(subject.variables) != 1 or subject.repeated:
            raise CompileProblem("a duration of several names: of each, or of all together?")
        variable = subject.variables[0]
        since = {"medication": "start", "condition": "onset"}.get(variable.kind)
        if since is None:
            raise CompileProblem(f"a time on {variable.label}: only a condition's or a medication's is on record")
        duration = Duration(variable=variable.id, since=since, op=op, period=self._period(quantity))
        if since == "onset":  # an onset long ago says nothing of a fever that has since resolved
            return All(items=(Presence(variable=variable.id, current=True), duration))
        return duration

    def conditional(self, _mark: Token, *parts: Token | Variable | PredicateNode) -> PredicateNode:
        variable = next(p for p in parts if isinstance(p, Variable))
        then = cast(PredicateNode, parts[-1])
        if variable.kind not in ("condition", "medication", "procedure"):
            raise CompileProblem(f"a condition on {variable.label} needs a threshold")
        condition = Presence(variable=variable.id, current=variable.kind == "medication" or any(
            isinstance(p, Token) and p.type in ("CURRENT", "TREATMENT") for p in parts))
        then = self._fill_medication(then, variable)
        if self.context.kind == "inclusion":
            return Implies(condition=condition, then=then)
        return All(items=(condition, then))

    def naive_or(self, name: Token, _naive: Token, _or: Token, duration: PredicateNode) -> PredicateNode:
        medication = self._lookup(name)
        if medication.kind != "medication":
            raise CompileProblem(f"{medication.label} is not a medication")
        return AnyOf(items=(Not(item=Presence(variable=medication.id)), self._fill_medication(duration, medication)))

    def clause_joint(self, token: Token) -> str:
        return "all" if token.type == "AND" else "any"

    def conjunction(self, *parts: PredicateNode | Bound | str) -> PredicateNode:
        joints = {p for p in parts if isinstance(p, str)}
        if len(joints) != 1:
            raise CompileProblem("'and' and 'or' mixed without brackets: which binds first is not written")
        clauses = [p for p in parts if not isinstance(p, str)]
        if all(isinstance(c, Bound) for c in clauses):  # "> 18 and < 60 years of age"
            last_unit = cast(Bound, clauses[-1]).quantity
            clauses = [self._bound_as_age(cast(Bound, c), last_unit) for c in clauses]
        items: list[PredicateNode] = []
        for clause in clauses:
            if isinstance(clause, Bound) and _is_age_bound(clause, items[-1] if items else None):
                items.append(self._bound_as_age(clause, clause.quantity))
            elif isinstance(clause, Bound):
                items.append(self._continue(items[-1] if items else None, clause))
            else:
                items.append(clause)
        if joints == {"all"}:
            _check_satisfiable(items)
            return All(items=tuple(items))
        return AnyOf(items=tuple(items))

    def measure_list(self, *parts: PredicateNode | str) -> PredicateNode:
        """"Hb < 10 g/dL, platelets < 100,000/mm3, or ANC < 1,500/mm3": the last joint joins all.
        An exclusion's "A, B and C" often lists conditions that each exclude: not compiled."""
        if "all" in parts and self.context.kind == "exclusion":
            raise CompileProblem("'A, B and C' in an exclusion: each one, or all at once?")
        joint = next(p for p in parts if isinstance(p, str))
        items = tuple(p for p in parts if not isinstance(p, str))
        if joint == "all":
            _check_satisfiable(list(items))
            return All(items=items)
        return AnyOf(items=items)

    def series(self, *items: PredicateNode) -> PredicateNode:
        """"Abnormal blood counts (hemoglobin less than 12 g/dl, platelets less than 150,000/ul)": in
        an exclusion any one listed threshold excludes. An inclusion list may mean all or any."""
        if self.context.kind == "inclusion":
            raise CompileProblem("thresholds listed without 'and' or 'or': all of them, or any?")
        return AnyOf(items=items)

    def _bound_as_age(self, bound: Bound, unit_from: Quantity) -> PredicateNode:
        quantity = bound.quantity if bound.quantity.unit else Quantity(bound.quantity.value, unit_from.unit, unit_from.unit_type)
        return self._compare(self._implied_age(quantity), bound.op, quantity, None)

    def _continue(self, previous: PredicateNode | None, bound: Bound) -> PredicateNode:
        """A bound after a comparison on one variable is a second bound on that variable."""
        if not isinstance(previous, Comparison):
            raise CompileProblem("a threshold with no variable")
        variable = self.vocab[previous.variable]
        quantity = bound.quantity
        if quantity.unit is None and previous.unit != "x ULN":
            value, unit = quantity.value, previous.unit
            if variable.id != "age" and unit != variable.unit:
                raise CompileProblem("a threshold with no unit")
        else:
            value, unit = self._threshold(variable, quantity if quantity.unit else Quantity(quantity.value, "x ULN", "ULN"))
        return Comparison(variable=variable.id, op=bound.op, value=value, unit=unit, within=previous.within)

    def start(self, *parts: Token | PredicateNode | Bound) -> PredicateNode:
        predicate = cast(PredicateNode | Bound, parts[-1])
        if isinstance(predicate, Bound):
            predicate = self._bound_as_age(predicate, predicate.quantity)
        if len(parts) > 1 and not _is_age(predicate):
            raise CompileProblem(f"'{parts[0]!s}' limits the age, and no age is written")
        uncertain = next((n for n in self.ambiguous if id(n) not in self.certain), None)
        if uncertain is not None:
            raise CompileProblem(_ambiguous(uncertain))
        if isinstance(predicate, Duration) and predicate.variable == _MEDICATION_PLACEHOLDER:
            raise CompileProblem("a stable dose of what? No medication is named")
        return predicate

    # -- helpers ----------------------------------------------------------------------------
    def _lookup(self, name: Token | str) -> Variable:
        variable = self.vocab.by_name(str(name))
        if variable is None:  # the grammar's VARIABLE terminal comes from the same vocabulary
            raise CompileProblem(f"{name!s} is not in the vocabulary")
        return variable

    def _category_value(self, written: str) -> tuple[str, str]:
        for variable in self.vocab.variables.values():
            value = self.vocab.category_value(variable.id, written) if variable.values else None
            if value is not None:
                return variable.id, value
        raise CompileProblem(f"{written!r} is not a known category value")

    def _event(self, token: Token) -> Variable:
        if token.type == "DISEASE":
            if self.context.condition is None:
                raise CompileProblem(f"{token!s} refers to the trial's condition, which is not known here")
            return self.vocab[self.context.condition]
        variable = self._lookup(token)
        if variable.kind != "condition":
            raise CompileProblem(f"{variable.label} is not a condition")
        return variable

    def _presence(self, variable: Variable, marker: str | None, window: Period | None) -> Presence:
        if variable.kind not in ("condition", "medication", "procedure"):
            raise CompileProblem(f"{variable.label} is a measurement: the criterion gives no threshold")
        timing = variable.timing or ("current" if variable.kind == "medication" else "ever")
        # "active X within 6 months": the window decides, not whether X is active today
        current = window is None and (marker == "CURRENT" or (marker in (None, "KNOWN") and timing == "current"))
        return Presence(variable=variable.id, current=current, within=window)

    def _implied_age(self, quantity: Quantity) -> Subject:
        """A bare number of years ("over 18 years", "60+ years") is an age; nothing else is."""
        is_years = quantity.unit_type == "TIME_UNIT" and _time_unit(quantity.unit or "d") == "year"
        if quantity.unit_type != "AGE_UNIT" and not is_years:
            raise CompileProblem("no variable named for the threshold")
        return Subject((self.vocab["age"],), joined_by_and=False)

    def _period(self, quantity: Quantity) -> Period:
        if quantity.unit_type != "TIME_UNIT" or quantity.unit is None:
            raise CompileProblem("a duration needs a time unit (days, weeks, months, years)")
        return _sane_period(quantity.value, _time_unit(quantity.unit))

    def _fill_medication(self, predicate: PredicateNode, medication: Variable) -> PredicateNode:
        if isinstance(predicate, Duration) and predicate.variable == _MEDICATION_PLACEHOLDER:
            return predicate.model_copy(update={"variable": medication.id})
        return predicate

    def _combine(self, items: list[PredicateNode]) -> PredicateNode:
        """A threshold shared by several variables: each must meet it to include, any excludes."""
        if len(items) == 1:
            return items[0]
        return All(items=tuple(items)) if self.context.kind == "inclusion" else AnyOf(items=tuple(items))

    def _compare(self, subject: Subject, op: Operator, quantity: Quantity, window: Period | None) -> PredicateNode:
        if op == "eq" and any(v.id == "age" for v in subject.variables):
            # "Male or female = 18 years of age and <60 years": registry text loses '≥' and keeps '='
            raise CompileProblem("'=' before an age: an exact age, or a lost '≥' or '≤'?")
        items: list[PredicateNode] = []
        for variable in subject.variables:
            value, unit = self._threshold(variable, quantity)
            items.append(Comparison(variable=variable.id, op=op, value=value, unit=unit, within=window))
        return self._combine(items)

    def _range(self, subject: Subject, low: Quantity, high: Quantity, window: Period | None,
               low_inclusive: bool = True, high_inclusive: bool = True) -> PredicateNode:
        items: list[PredicateNode] = []
        for variable in subject.variables:
            low_value, unit = self._threshold(variable, low if low.unit else Quantity(low.value, high.unit, high.unit_type))
            high_value, high_unit = self._threshold(variable, high)
            if variable.id == "age" and high_unit != unit:  # "between 6 months and 5 years"
                items.append(All(items=(
                    Comparison(variable="age", op="ge" if low_inclusive else "gt", value=low_value, unit=unit),
                    Comparison(variable="age", op="le" if high_inclusive else "lt", value=high_value, unit=high_unit))))
                continue
            if high_unit != unit or low_value > high_value or (low_value == high_value and not (low_inclusive and high_inclusive)):
                raise CompileProblem(f"the range {low.value:g} to {high.value:g} is not a range")
            items.append(Range(variable=variable.id, low=low_value, high=high_value, unit=unit, within=window,
                               low_inclusive=low_inclusive, high_inclusive=high_inclusive))
        return self._combine(items)

    def _threshold(self, variable: Variable, quantity: Quantity) -> tuple[float, str]:
        """The threshold in the variable's canonical unit (or x ULN, or the age unit written)."""
        if isinstance(quantity.value, RomanNumeral) and quantity.value.written.casefold() not in variable.value_map:
            raise CompileProblem(f"{variable.label} is not written in Roman numerals")
        if variable.id == "age":
            if quantity.unit_type in ("TIME_UNIT", "AGE_UNIT") and quantity.unit:
                return quantity.value, _time_unit(quantity.unit)
            if quantity.unit_type == "none":
                return quantity.value, "year"
            raise CompileProblem(f"an age in {quantity.unit}")
        if not variable.is_measured or variable.unit is None:
            raise CompileProblem(f"{variable.label} is not measured on a scale")
        if quantity.out_of is not None:
            # "MoCA < 26/30": sound only when 30 is the scale's maximum (not "26/35", another version)
            if variable.kind != "score" or variable.plausible is None or variable.plausible.high != quantity.out_of:
                raise CompileProblem(f"{quantity.value:g}/{quantity.out_of:g} is not a {variable.label} out of its maximum")
            if quantity.value > quantity.out_of:
                raise CompileProblem(f"{quantity.value:g}/{quantity.out_of:g} is more than the maximum")
        if isinstance(quantity.value, AmbiguousNumber):
            self._check_decimal(variable, quantity)
        if quantity.unit_type == "ULN":
            if variable.kind != "lab":
                raise CompileProblem(f"{variable.label} has no upper limit of normal")
            return quantity.value, "x ULN"
        if quantity.unit_type == "AGE_UNIT":
            raise CompileProblem(f"{variable.label} is not an age")
        unit = variable.record_unit(quantity.unit)
        if unit is None:
            raise CompileProblem(f"no unit given for {variable.label} (expected {variable.unit})")
        conversion = units().conversion(unit, variable.unit, variable.molar_mass)
        if isinstance(conversion, UnitProblem):
            raise CompileProblem(f"{variable.label}: {conversion}")
        if conversion.factor == 1.0:
            return quantity.value, variable.unit
        value = convert_written(quantity.value, conversion.factor)
        bounds = variable.plausible
        if bounds is not None and ((bounds.low is not None and value < bounds.low) or (bounds.high is not None and value > bounds.high)):
            # "TSH greater than 4.5 mIU/mL" (meant mIU/L) converts to a value no patient has: a mistyped unit
            raise CompileProblem(f"{quantity.value:g} {quantity.unit} is not a plausible {variable.label}: is the unit right?")
        return value, variable.unit


    def _check_decimal(self, variable: Variable, quantity: Quantity) -> None:
        """"Creatinine < 1.500 mg/dL" is a decimal: 1,500 mg/dL is no plausible creatinine. "Platelets
        < 50.000/mm3" may be either (50/mm3 and 50,000/mm3 are both values a patient may have)."""
        written = cast(AmbiguousNumber, quantity.value)
        thousands = Quantity(float(written.written.replace(".", "")), quantity.unit, quantity.unit_type)
        try:
            value, unit = self._threshold(variable, thousands)
        except CompileProblem:  # converted, the thousands reading is no value of the variable
            value, unit = math.inf, variable.unit or ""
        bounds = variable.plausible
        if unit == variable.unit and bounds is not None and bounds.high is not None and value > bounds.high:
            self.certain.add(id(written))
            return
        raise CompileProblem(_ambiguous(written))


def _ambiguous(number: AmbiguousNumber) -> str:
    return (f"the number {number.written} is ambiguous: a decimal, or {number.written.replace('.', ',')} "
            "with a thousands separator")


def _are_events(subject: Subject) -> bool:
    return all(v.kind in ("condition", "medication", "procedure") for v in subject.variables)


_FLIPPED: dict[Operator, Operator] = {"gt": "lt", "ge": "le", "lt": "gt", "le": "ge", "eq": "eq"}


def _is_age(predicate: PredicateNode) -> bool:
    if isinstance(predicate, (Comparison, Range)):
        return predicate.variable == "age"
    return isinstance(predicate, All) and all(_is_age(item) for item in predicate.items)


def _is_age_bound(bound: Bound, previous: PredicateNode | None) -> bool:
    """"female and ≥ 18 years of age": a bound in years after a sex is an age. After anything else
    it is not ("Children, adults under 21 years of age, and pregnant women" lists groups: 'and' there
    does not mean both)."""
    unit = bound.quantity
    return isinstance(previous, Sex) and (unit.unit_type == "AGE_UNIT" or (
        unit.unit_type == "TIME_UNIT" and _time_unit(unit.unit or "d") == "year"))


def _check_satisfiable(items: list[PredicateNode]) -> None:
    """"BMI below 20 and above 30" cannot hold: the writer meant "or", but that is not what is written."""
    comparisons = [item for item in items if isinstance(item, Comparison)]
    for low in (c for c in comparisons if c.op in ("ge", "gt")):
        for high in (c for c in comparisons if c.op in ("le", "lt")):
            if (low.variable, low.unit) == (high.variable, high.unit) and (
                    low.value > high.value or (low.value == high.value and (low.op == "gt" or high.op == "lt"))):
                raise CompileProblem(f"{low.variable} cannot be both above {low.value:g} and below {high.value:g}: "
                                     "'and' may mean 'or'")


def _with_window(predicate: PredicateNode, window: Period) -> PredicateNode:
    if isinstance(predicate, (Comparison, Range, Category)) and predicate.variable != "age":
        if predicate.within is not None:
            raise CompileProblem("two time windows for one value")
        return predicate.model_copy(update={"within": window})
    if isinstance(predicate, Presence):
        if predicate.within is not None:
            raise CompileProblem("two time windows for one event")
        return predicate.model_copy(update={"within": window, "current": False})
    if isinstance(predicate, (All, AnyOf)):
        return predicate.model_copy(update={"items": tuple(_with_window(item, window) for item in predicate.items)})
    if isinstance(predicate, Not):
        return predicate.model_copy(update={"item": _with_window(predicate.item, window)})
    raise CompileProblem("a time window on something that has no date")


def build_predicate(tree: Tree[Token], context: CompileContext, text: str, vocab: Vocabulary | None = None) -> PredicateNode:
    """The predicate the parse tree of ``text`` means, or CompileProblem."""
    try:
        return PredicateBuilder(context, vocab or vocabulary(), text).transform(tree)
    except VisitError as error:  # lark wraps errors raised inside callbacks
        if isinstance(error.orig_exc, CompileProblem):
            raise error.orig_exc from None
        raise
