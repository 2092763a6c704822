"""Predicate -> criterion text: the compiler's inverse, in several phrasings per form.

``render(predicate, kind)`` writes a predicate the way registries write criteria, so that
compiling the text gives the same predicate back::

    compile_criterion(render(p, kind), kind) == (p, None)

for every form the grammar reads (``RenderError`` for the others: a ``manual`` part, a range
open at one end, a negated measurement...). ``phrasing`` picks the wording: ``"symbols"``
(``≥ 2.0 mg/dL``, ``31-46``), ``"words"`` (``not less than 2.0 mg/dL``, ``between 31 and
46``), or an ``int`` seed / a ``random.Random`` for a random choice at every point where
English offers several (comparator words, range forms, synonyms of the variable, units the
value converts to exactly, number words, fillers such as "Subjects with").

>>> from eligibility import Comparison, Range
>>> render(Comparison(variable="creatinine", op="ge", value=2.0, unit="mg/dL"), "exclusion")
'serum creatinine ≥ 2.0 mg/dL'
>>> render(Comparison(variable="creatinine", op="ge", value=2.0, unit="mg/dL"), "exclusion", phrasing="words")
'serum creatinine not less than 2.0 mg/dL'
>>> render(Range(variable="alsfrs_r", low=31, high=46, unit="point"), "inclusion", phrasing="words")
'ALSFRS-R between 31 and 46 points'

This module imports neither lark nor hypothesis.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Callable, Sequence
from decimal import Decimal
from functools import cache
from typing import Literal, TypeVar, Union

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
from .units import UnitProblem, convert_written, unit_key, units
from .vocabulary import Variable, Vocabulary, name_key, vocabulary

__all__ = ["Phrasing", "RenderError", "render", "unit_spellings", "variable_names"]

Kind = Literal["inclusion", "exclusion"]
Phrasing = Union[Literal["symbols", "words"], int, random.Random]
"""How to word a predicate: a fixed style, or a seed / Random for a random choice everywhere."""

T = TypeVar("T")


class RenderError(ValueError):
    """The predicate has no criterion text that the grammar reads back as the same predicate."""


# --- wording tables ---------------------------------------------------------------------------------
# Each list starts with the "symbols" choice; ``_WORDS_INDEX`` names the "words" choice.

_COMPARATORS: dict[str, list[str]] = {
    "ge": ["≥", ">=", "not less than", "at least", "no less than", "greater than or equal to", "a minimum of",
           "equal to or greater than", "=>", "⩾"],
    "gt": [">", "more than", "greater than", "over", "above", "exceeding", "higher than", "in excess of"],
    "le": ["≤", "<=", "not more than", "at most", "no more than", "not greater than", "up to", "a maximum of",
           "less than or equal to", "not exceeding", "=<"],
    "lt": ["<", "less than", "below", "under", "lower than", "＜"],
    "eq": ["="],
}
_WORDS_INDEX = {"ge": 2, "gt": 1, "le": 2, "lt": 1, "eq": 0}
_POSTFIX = {"ge": ["or more", "or above", "or greater", "or higher"], "le": ["or less", "or below", "or lower"]}
_AGE_POSTFIX = {"ge": ["or older", "or more", "and older", "or above"], "le": ["or younger", "or less", "and younger"]}
_AGE_COMPARATORS = {"gt": ["older than"], "lt": ["younger than"]}
# First words of comparators that, after "and"/"or", read as a postfix ("or more", "and below")
_POSTFIX_WORDS = frozenset({"more", "greater", "higher", "above", "over", "older", "less", "lower", "below", "under", "younger"})

_RANGE_SEPARATORS = ["-", " to ", "~", "–", " through ", " ～ "]
_ULN = ["x ULN", "× ULN", "times ULN", "times the upper limit of normal", "x the ULN", "times the ULN",
        "x upper limit of normal", "times the upper limit of the normal range", "x institutional ULN",
        "times the institutional upper limit of normal", "x normal upper limit"]
_TIME_WORDS = {"day": ["days", "day"], "week": ["weeks", "week", "wks"], "month": ["months", "month", "mos"],
               "year": ["years", "year", "yrs"]}
_WINDOWS = ["within", "within the past", "within the last", "in the past", "in the last", "during the past",
            "during the previous", "within the previous", "within the preceding", "in the preceding"]
_NUMBER_WORDS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight", 9: "nine",
                 10: "ten", 11: "eleven", 12: "twelve", 15: "fifteen", 20: "twenty", 30: "thirty"}
_NEGATIONS = ["no", "without", "not", "absence of", "free of", "never had"]
_HISTORY = ["history of", "a history of", "prior", "previous", "documented history of", "known history of"]
_HISTORY_OF_TREATMENT = ["prior", "previous", "history of", "treatment with", "prior use of", "exposure to", "receipt of"]
# how an event is known, not when: the variable keeps its own timing
_KNOWN = ["", "", "", "known ", "documented ", "evidence of ", "presence of ", "confirmed "]
_CURRENT = ["current", "active", "ongoing", "currently"]
_CURRENT_TREATMENT = ["on", "taking", "using", "use of", "under", "current", "currently", "receiving", "currently taking"]
_LIST_OR = [" or ", ", or ", "/", " and/or ", ", "]
_LIST_AND = [" and ", ", and "]
_CONDITIONAL_MARKS = ["For patients", "For subjects", "For participants", "In patients with", "In case of", "If"]
_SUBJECT_PREFIX = ["", "Subjects with ", "Patients with ", "Participants with ", "Subjects whose ", "Patients whose "]
_SUFFIX = ["", ".", " at screening", " at the time of screening", " at the screening visit"]

# Unit spellings the grammar does not read as units: a bare letter or a word it reads otherwise.
_UNREAD_UNITS = frozenset({"in", "m", "g", "l", "a", "d", "h", "s", "y", "1", "mo", "wk", "yr", "min", "inch", "inches",
                           "ratio", "{ratio}", "score", "{score}"})
_SECONDS = ("seconds", "sec")
_TIME_DIMENSION = "[time]"


class _Chooser:
    """Every choice of wording goes through ``pick``: a fixed style, or a random one."""

    def __init__(self, phrasing: Phrasing):
        self.random: random.Random | None = None
        self.style: str = "symbols"
        if isinstance(phrasing, random.Random):
            self.random = phrasing
        elif isinstance(phrasing, bool) or not isinstance(phrasing, (int, str)):
            raise TypeError(f"phrasing must be 'symbols', 'words', an int seed or a random.Random, got {phrasing!r}")
        elif isinstance(phrasing, int):
            self.random = random.Random(phrasing)
        elif phrasing in ("symbols", "words"):
            self.style = phrasing
        else:
            raise ValueError(f"phrasing must be 'symbols', 'words', an int seed or a random.Random, got {phrasing!r}")

    @property
    def words(self) -> bool:
        return self.random is None and self.style == "words"

    def pick(self, options: Sequence[T], words: int = 0) -> T:
        if not options:
            raise RenderError("nothing to choose from")
        if self.random is not None:
            return options[self.random.randrange(len(options))]
        return options[words if self.style == "words" and words < len(options) else 0]

    def maybe(self, probability: float = 0.5) -> bool:
        """A random yes/no; always no in a fixed style."""
        return self.random is not None and self.random.random() < probability


# --- vocabulary: names and units ---------------------------------------------------------------------


@cache
def _names(variable_id: str) -> tuple[str, ...]:
    vocab = vocabulary()
    variable = vocab[variable_id]
    names: dict[str, str] = {}
    for name in (variable.label, *variable.synonyms, variable_id.replace("_", " ")):
        key = name_key(name)
        if len(key) >= 2 and not key.isdigit() and vocab.by_name(name) is variable:
            names.setdefault(key, name)
    return tuple(names.values())


_SEPARATORS = re.compile(r"[\s\-‐–]+")


@cache
def _digits_extend(variable_id: str) -> frozenset[str]:
    """Names of a variable that, followed by a number, name another variable: "HAMD 24.5" reads as
    "HAMD-24" (HAMD-24, the 24-item scale) and ".5" (names match whatever their spaces and hyphens)."""
    vocab = vocabulary()
    bare = {_SEPARATORS.sub("", other): other for other in vocab.names()}
    found = set()
    for name in _names(variable_id):
        key = _SEPARATORS.sub("", name_key(name))
        for other_key, other in bare.items():
            if other_key.startswith(key) and other_key[len(key):][:1].isdigit():
                owner = vocab.by_name(other)
                if owner is not None and owner.id != variable_id:
                    found.add(name)
    return frozenset(found)


def variable_names(variable_id: str) -> tuple[str, ...]:
    """The names a criterion can use for a variable (its label first, then its synonyms).

    >>> variable_names("creatinine")[:3]
    ('serum creatinine', 'creatinine', 'scr')
    """
    if variable_id not in vocabulary():
        raise KeyError(f"{variable_id!r} is not in the vocabulary")
    return _names(variable_id)


def _pretty_unit(key: str) -> str:
    """A unit spelling key as a clinician writes it: "umol/l" -> "µmol/L", "mg/dl" -> "mg/dL"."""
    fixed = {"mmhg": "mmHg", "mm[hg]": "mm[Hg]", "u/l": "U/L", "iu/l": "IU/L", "[iu]/l": "[IU]/L", "ui/l": "UI/L",
             "miu/l": "mIU/L", "k/ul": "K/µL", "gi/l": "G/L", "giga/l": "giga/L", "bpm": "bpm"}
    if key in fixed:
        return fixed[key]
    parts = []
    for part in key.split("/"):
        part = re.sub(r"^u(?=(mol|l|g)\b)", "µ", part)
        part = re.sub(r"(?<=[mdµnp])l$", "L", part)
        part = "L" if part == "l" else part
        parts.append(part)
    return "/".join(parts)


@cache
def _unit_table(variable_id: str) -> tuple[tuple[str | None, float], ...]:
    """(written unit, factor to the canonical unit) for every unit the grammar reads for a variable.

    ``None`` stands for a bare number, where the variable reads one (scores, ratios, implied units).
    The canonical spellings come first.
    """
    vocab = vocabulary()
    variable = vocab[variable_id]
    if variable.unit is None:
        return ()
    table = units()
    found: dict[str, tuple[str | None, float]] = {}

    def consider(written: str | None) -> None:
        meaning = variable.record_unit(written)
        if meaning is None:
            return
        conversion = table.conversion(meaning, variable.unit or meaning, variable.molar_mass)
        if isinstance(conversion, UnitProblem):
            return
        found.setdefault(unit_key(written) if written is not None else "", (written, conversion.factor))

    if variable.record_unit(None) is not None:
        consider(None)
    info = table.info(variable.unit)
    if info is not None and info.dimension == _TIME_DIMENSION:
        if variable.unit == "s":
            for word in _SECONDS:
                consider(word)
        else:
            for time_unit, words in _TIME_WORDS.items():
                for word in words[:1]:
                    consider(word)
    else:
        if variable.unit == "1":  # a ratio (INR) is written bare: "INR < 150%" is not how criteria read
            return tuple(found.values())
        canonical = unit_key(variable.unit)
        if canonical == "point":
            consider("points")
        elif canonical not in _UNREAD_UNITS:
            consider(variable.unit)
        spelled = set(table.spelling_keys())
        for alias in variable.unit_aliases:  # the grammar reads only the aliases units.yaml spells
            if unit_key(alias) not in _UNREAD_UNITS and unit_key(alias) in spelled:
                consider(alias)
        for key in table.spelling_keys():
            spelling_info = table.info(key)
            if key in _UNREAD_UNITS or spelling_info is None or spelling_info.dimension == _TIME_DIMENSION:
                continue
            consider(_pretty_unit(key))
    return tuple(found.values())


def unit_spellings(variable_id: str) -> tuple[tuple[str | None, float], ...]:
    """Units a criterion can give a variable's threshold in, with the factor to its canonical unit.

    ``None`` is a bare number (a score in points, an INR). The spellings of the canonical unit
    (factor 1.0) come first, then the others, the closest in size first.

    >>> [u for u, factor in unit_spellings("creatinine")][:2]
    ['mg/dL', 'mg%']
    >>> round(dict(unit_spellings("creatinine"))["µmol/L"], 6)  # 88.4 µmol/L is 1 mg/dL
    0.011312
    """
    if variable_id not in vocabulary():
        raise KeyError(f"{variable_id!r} is not in the vocabulary")
    table = _unit_table(variable_id)
    return tuple(sorted(table, key=lambda entry: abs(math.log10(entry[1]))))  # the closest in size first


# --- numbers -----------------------------------------------------------------------------------------


def _decimal(value: float) -> str:
    """A float written positionally with the digits of its repr: 2.0 -> "2.0", 1e-07 -> "0.0000001"."""
    return format(Decimal(repr(float(value))), "f")


def _check_number(value: float) -> None:
    if not math.isfinite(value) or value < 0:
        raise RenderError(f"{value!r} cannot be written as a criterion's number")


class _Renderer:
    def __init__(self, kind: Kind, phrasing: Phrasing, condition: str | None, vocab: Vocabulary):
        if kind not in ("inclusion", "exclusion"):
            raise ValueError(f"kind must be 'inclusion' or 'exclusion', got {kind!r}")
        self.kind = kind
        self.choose = _Chooser(phrasing)
        self.condition = condition
        self.vocab = vocab
        self.ends_with_name_ok = True  # False inside a conjunction, before its last clause
        self.after_joint = False  # True inside a conjunction, after its first clause
        self.bare_age_ok = True  # an age written without "age" ("over 18 years") may be written here

    # -- pieces ----------------------------------------------------------------------------
    def variable(self, variable_id: str) -> Variable:
        if variable_id not in self.vocab:
            raise RenderError(f"{variable_id!r} is not in the vocabulary")
        return self.vocab[variable_id]

    def name(self, variable_id: str, *, before_number: bool = False) -> str:
        """A name of the variable; ``before_number``: one that a number written right after it does
        not turn into another variable's name ("HAMD 24.5" is HAMD-24 and .5)."""
        names = _names(self.variable(variable_id).id)
        if before_number:
            names = tuple(n for n in names if n not in _digits_extend(variable_id))
        if not names:
            raise RenderError(f"{variable_id!r} has no name the grammar reads" + (" before a number" if before_number else ""))
        return self.choose.pick(names)

    def number(self, value: float, *, words_ok: bool = True, whole: bool = True) -> str:
        """A number as written: "2.0", "2", "two", "100,000". In a fixed style a whole number is
        written without decimals, except a small measured threshold (``whole=False``: "2.0 mg/dL")."""
        _check_number(value)
        options = [_decimal(value)]
        if value == int(value) and abs(value) < 1e15:
            integer = int(value)
            if whole or abs(value) >= 10:
                options.insert(0, str(integer))
            else:
                options.append(str(integer))
            if integer >= 1000:
                options.append(f"{integer:,}")
            if words_ok and integer in _NUMBER_WORDS:
                options.append(_NUMBER_WORDS[integer])
        return self.choose.pick(options)

    def comparator(self, op: str, *, age: bool = False) -> str:
        options = list(_COMPARATORS[op])
        if age and op in _AGE_COMPARATORS:
            options += _AGE_COMPARATORS[op]
        if self.after_joint:  # "and below", "or more" read as postfix comparators ("65 years and below")
            options = [o for o in options if o.split()[0] not in _POSTFIX_WORDS] or ["≥" if op == "ge" else _COMPARATORS[op][0]]
            return self.choose.pick(options)
        return self.choose.pick(options, _WORDS_INDEX[op])

    def time_unit(self, unit: str, amount: float) -> str:
        words = _TIME_WORDS[unit]
        if amount != 1:
            return self.choose.pick([w for w in words if w != unit])
        return self.choose.pick(words)

    def period(self, period: Period) -> str:
        return f"{self.number(period.amount)} {self.time_unit(period.unit, period.amount)}"

    def window(self, within: Period | None) -> str:
        if within is None:
            return ""
        words = self.choose.pick(_WINDOWS)
        if within.amount == 1 and words != "within" and self.choose.maybe(0.3):
            return f" {words} {within.unit}"  # "within the past year"
        return f" {words} {self.period(within)}"

    def quantity(self, variable_id: str, value: float, unit: str, *, allow_bare: bool = True) -> tuple[str, str]:
        """(number, unit text) for a threshold in the variable's canonical ``unit``: written in the
        canonical unit or, at random, in another unit that compiles back to exactly ``value``."""
        _check_number(value)
        if unit == "x ULN":
            if self.variable(variable_id).kind != "lab":
                raise RenderError(f"{variable_id} has no upper limit of normal")
            return self.number(value, whole=False), self.choose.pick(_ULN)
        variable = self.variable(variable_id)
        if variable.unit != unit:
            raise RenderError(f"{variable_id} thresholds are in {variable.unit}, not {unit}")
        spellings = unit_spellings(variable_id)
        if not allow_bare:
            spellings = tuple(s for s in spellings if s[0] is not None)
        if not spellings:
            raise RenderError(f"no unit the grammar reads for {variable_id} ({unit})")
        exact = [s for s in spellings if s[1] == 1.0]
        if self.choose.random is None:
            written, factor = (exact or spellings)[0]
            if self.choose.words and written is None and len(exact) > 1:
                written = exact[1][0]  # "31 points" rather than a bare 31
        else:  # half the time the canonical unit, half the time any unit
            written, factor = self.choose.pick(exact if exact and self.choose.maybe() else spellings)
        if factor == 1.0:
            return self.number(value, whole=False), written or ""
        number = _written_value(value, factor)
        if number is None:  # no written value compiles back to exactly this one: the canonical unit, or the closest
            for written, factor in spellings:
                number = self.number(value) if factor == 1.0 else _written_value(value, factor)
                if number is not None:
                    break
            else:
                raise RenderError(f"{value!r} {unit} cannot be written exactly for {variable_id}")
        return number, written or ""

    def age_quantity(self, value: float, unit: str, *, age_unit: bool) -> tuple[str, str]:
        if unit not in _TIME_WORDS:
            raise RenderError(f"an age in {unit!r}")
        if age_unit and unit == "year":
            return self.number(value), self.choose.pick(["years of age", "years old", "yrs of age"])
        return self.number(value), self.time_unit(unit, value)

    # -- statements ----------------------------------------------------------------------------
    def statement(self, p: PredicateNode) -> str:
        """The whole criterion: a clause, or a form only a whole criterion takes (conditional, ...)."""
        forms: list[Callable[[], str]] = []
        if isinstance(p, Implies):
            if self.kind != "inclusion":
                raise RenderError("an exclusion writes 'if X, Y' as all(X, Y), not implies")
            forms.append(lambda: self.conditional(p.condition, p.then))
        if isinstance(p, All) and self.kind == "exclusion" and len(p.items) == 2 and self._is_condition(p.items[0]):
            forms.append(lambda: self.conditional(p.items[0], p.items[1]))
        if isinstance(p, AnyOf) and self._naive_or(p) is not None:
            forms.append(lambda: self._naive_or(p) or "")
        if isinstance(p, All) and len(p.items) == 2 and isinstance(p.items[0], Sex) and not isinstance(p.items[1], Sex):
            forms.append(lambda: self.sex_and(p.items[0], p.items[1]))  # type: ignore[arg-type]
        if not isinstance(p, Implies):
            forms.append(lambda: self.clause(p))
        if isinstance(p, (All, AnyOf)) and len(p.items) > 1:
            forms.append(lambda: self.conjunction(p))
        if self.choose.random is not None:
            self.choose.random.shuffle(forms)
        problem: RenderError | None = None
        for form in forms:
            try:
                return form()
            except RenderError as error:
                problem = problem or error
        raise problem or RenderError(f"no criterion text for {p.type}")

    def sex_and(self, sex: Sex, clause: PredicateNode) -> str:
        """"Female patients aged 18 to 50": a sex, then the clause that goes with it."""
        self.bare_age_ok = False  # "women < 47 years old": a bare age is not a clause there (reported)
        try:
            return f"{self.sex(sex)} {self.clause(clause)}"
        finally:
            self.bare_age_ok = True

    def conjunction(self, p: All | AnyOf) -> str:
        bounded = self._bounds_on_one_variable(p)
        if bounded is not None:
            return bounded
        joint = " and " if isinstance(p, All) else self.choose.pick([" or ", " and/or "])
        parts = []
        for index, item in enumerate(p.items):
            if isinstance(item, (All, AnyOf)) and type(item) is type(p):
                raise RenderError("a conjunction directly inside the same conjunction")
            # a clause ending in a name would take the "and" after it as a list of names
            self.ends_with_name_ok = index == len(p.items) - 1
            self.after_joint = index > 0
            try:
                parts.append(self.clause(item))
            finally:
                self.ends_with_name_ok, self.after_joint = True, False
        return joint.join(parts)

    def _bounds_on_one_variable(self, p: All | AnyOf) -> str | None:
        """"ALT ≥ 30 and ≤ 100 U/L", "> 18 and < 60 years of age": bounds sharing one subject."""
        items = p.items
        if not isinstance(p, All) or len(items) != 2 or not all(isinstance(i, Comparison) for i in items):
            return None
        first, second = items
        assert isinstance(first, Comparison) and isinstance(second, Comparison)
        if first.variable != second.variable or first.unit != second.unit or first.within != second.within:
            return None
        if not self.choose.maybe(0.5):
            return None
        if first.variable == "age":
            if first.unit != "year":
                return None
            low_number, _ = self.age_quantity(first.value, first.unit, age_unit=False)
            high_number, unit = self.age_quantity(second.value, second.unit, age_unit=True)
            first_comparator = self.comparator(first.op)
            self.after_joint = True
            try:
                second_comparator = self.comparator(second.op)
            finally:
                self.after_joint = False
            return f"{first_comparator} {low_number} and {second_comparator} {high_number} {unit}"
        name = self.name(first.variable)
        low_number, low_unit = self.quantity(first.variable, first.value, first.unit, allow_bare=False)
        high_number, high_unit = self.quantity(second.variable, second.value, second.unit, allow_bare=False)
        first_comparator = self.comparator(first.op)
        self.after_joint = True
        try:
            second_comparator = self.comparator(second.op)
        finally:
            self.after_joint = False
        return (f"{name} {first_comparator} {low_number} {low_unit} and {second_comparator} "
                f"{high_number} {high_unit}{self.window(first.within)}")

    def _is_condition(self, p: PredicateNode) -> bool:
        return isinstance(p, Presence) and p.within is None and \
            self.variable(p.variable).kind in ("condition", "medication", "procedure")

    def conditional(self, condition: PredicateNode, then: PredicateNode) -> str:
        if not self._is_condition(condition):
            raise RenderError("a conditional's condition is the presence of a condition, medication or procedure")
        assert isinstance(condition, Presence)
        variable = self.variable(condition.variable)
        is_medication = variable.kind == "medication"
        if is_medication and not condition.current:
            raise RenderError("a conditional on a medication means the medication now (current)")
        name = self.name(variable.id)
        if condition.current and not is_medication:
            lead = self.choose.pick([f"For patients under {name} treatment", f"For subjects on {name} therapy",
                                     f"For patients with current {name}", f"In case of active {name}",
                                     f"If current {name}", f"In patients with ongoing {name}"])
        elif is_medication:
            mark = self.choose.pick(["For patients", "For subjects who are", "For participants", "If"])
            word = self.choose.pick(["on", "taking", "under", "using"])
            lead = f"{mark} {word} {name}" + (" treatment" if word == "under" else "")
        else:
            lead = f"{self.choose.pick(['In patients with', 'In case of', 'For patients with', 'For subjects with', 'If'])} {name}"
        if isinstance(then, Duration) and then.since == "start" and then.variable == variable.id and self.choose.maybe(0.5):
            body = f"{self.choose.pick(['stable dose', 'on a stable dose', 'received stable dose'])} for " \
                   f"{self.comparator(then.op)} {self.period(then.period)}"
        else:
            body = self.clause(then)
        return f"{lead}, {body}"

    def _naive_or(self, p: AnyOf) -> str | None:
        if len(p.items) != 2:
            return None
        negated, duration = p.items
        if not (isinstance(negated, Not) and isinstance(negated.item, Presence) and isinstance(duration, Duration)):
            return None
        presence = negated.item
        if presence.current or presence.within is not None or duration.since != "start" \
                or duration.variable != presence.variable or self.variable(presence.variable).kind != "medication":
            return None
        name = self.name(presence.variable)
        named = f" of {self.name(presence.variable)}" if self.choose.maybe() else ""
        # "treatment-naive" is left out: "riluzole treatment" is a name of riluzole, "-naive" then fails
        return (f"{name} {self.choose.pick(['naive', 'naïve', 'treatment naive'])} or "
                f"{self.choose.pick(['stable dose', 'on a stable dose', 'received stable dose'])}{named} for "
                f"{self.comparator(duration.op)} {self.period(duration.period)}")

    # -- clauses -------------------------------------------------------------------------------
    def clause(self, p: PredicateNode) -> str:
        if isinstance(p, Comparison):
            return self.comparison(p)
        if isinstance(p, Range):
            return self.range(p)
        if isinstance(p, Category):
            return self.category(p)
        if isinstance(p, Sex):
            return self.sex(p)
        if isinstance(p, Presence):
            return self.presence([p], negated=False)
        if isinstance(p, Duration):
            return self.duration(p)
        if isinstance(p, Manual):
            raise RenderError("a manual part has no criterion text the engine compiles")
        if isinstance(p, Not):
            return self.negated(p.item)
        if isinstance(p, (All, AnyOf)):
            return self.listed(p)
        raise RenderError(f"no criterion text for {p.type}")

    def negated(self, p: PredicateNode) -> str:
        if isinstance(p, Presence) and p.within is not None and not p.current and self.ends_with_name_ok \
                and self.choose.maybe(0.4):
            return self.time_since(p, at_least=True)
        if isinstance(p, Presence):
            return self.presence([p], negated=True)
        if isinstance(p, AnyOf) and all(isinstance(i, Presence) for i in p.items):
            return self.presence(list(p.items), negated=True, separators=_LIST_OR + _LIST_AND)  # type: ignore[arg-type]
        raise RenderError(f"'not' before a {p.type} has no criterion text")

    def listed(self, p: All | AnyOf) -> str:
        """One clause over a list of variables: "ALT, AST or bilirubin > 2 x ULN", "epilepsy or stroke"."""
        items = p.items
        shared_threshold = self.kind == "inclusion" and isinstance(p, All) or self.kind == "exclusion" and isinstance(p, AnyOf)
        if all(isinstance(i, Presence) for i in items):
            if isinstance(p, All):
                if self.kind != "inclusion":
                    raise RenderError("an exclusion reads 'X and Y' as either")
                return self.presence(list(items), negated=False, separators=_LIST_AND)  # type: ignore[arg-type]
            separators = _LIST_OR + _LIST_AND if self.kind == "exclusion" else _LIST_OR
            return self.presence(list(items), negated=False, separators=separators)  # type: ignore[arg-type]
        if shared_threshold and all(isinstance(i, Comparison) for i in items):
            return self.comparisons(list(items))  # type: ignore[arg-type]
        if shared_threshold and all(isinstance(i, Range) for i in items):
            return self.ranges(list(items))  # type: ignore[arg-type]
        raise RenderError(f"a {p.type} of {', '.join(sorted({i.type for i in items}))} is not one clause")

    def _list(self, names: list[str], separators: Sequence[str]) -> str:
        if len(names) == 1:
            return names[0]
        separator = self.choose.pick(separators)
        if separator in (" or ", " and ", ", or ", ", and ", " and/or "):
            return ", ".join(names[:-1]) + separator + names[-1]
        return separator.join(names)

    # comparisons ---------------------------------------------------------------------------
    def comparison(self, p: Comparison) -> str:
        if p.variable == "age":
            return self.age_comparison(p)
        self.variable(p.variable)
        if not self.variable(p.variable).is_measured:
            raise RenderError(f"{p.variable} is not measured on a scale")
        name = self.name(p.variable)
        number, unit = self.quantity(p.variable, p.value, p.unit)
        amount = f"{number} {unit}".rstrip()
        window = self.window(p.within)
        forms = [f"{name} {self.comparator(p.op)} {amount}{window}"]
        if self.choose.random is not None:
            if self.ends_with_name_ok or window:
                # "for" is left out: the grammar reads it as the "for" of "stable dose for" there (reported)
                forms.append(f"{self.comparator(p.op)} {amount} {self.choose.pick(['on', 'in'])} {name}{window}")
            try:
                before_number = self.name(p.variable, before_number=True)
            except RenderError:
                before_number = ""
            if before_number and p.op in _POSTFIX and not window:
                forms.append(f"{before_number} {amount} {self.choose.pick(_POSTFIX[p.op])}")
            if before_number and p.op == "ge" and unit and not window and unit not in _ULN:
                forms.append(f"{before_number} {number}+ {unit}")
        return self.choose.pick(forms)

    def comparisons(self, items: list[Comparison]) -> str:
        first = items[0]
        if any(i.op != first.op or i.unit != first.unit or i.within != first.within for i in items) \
                or len({i.variable for i in items}) != len(items) or any(i.variable == "age" for i in items):
            raise RenderError("a list of variables shares one comparator, unit and window")
        if first.unit != "x ULN":
            units_of = {self.variable(i.variable).unit for i in items}
            if len(units_of) != 1 or any(i.value != first.value for i in items):
                raise RenderError("a list of variables shares one threshold")
        names = self._list([self.name(i.variable) for i in items], [" or ", " and ", "/", ", ", " and/or "])
        if first.unit == "x ULN":
            unit = self.choose.pick(_ULN)
        else:  # a unit every variable of the list reads with factor 1 (molar masses differ)
            common = [u for u, factor in unit_spellings(first.variable) if factor == 1.0 and u is not None
                      and all(dict(unit_spellings(i.variable)).get(u) == 1.0 for i in items[1:])]
            if not common:
                raise RenderError("no unit the whole list reads alike")
            unit = self.choose.pick(common)
        return f"{names} {self.comparator(first.op)} {self.number(first.value)} {unit}".rstrip() + self.window(first.within)

    def _canonical_unit(self, variable_id: str) -> str:
        exact = [s for s in unit_spellings(variable_id) if s[1] == 1.0 and s[0] is not None]
        if not exact:
            raise RenderError(f"no unit the grammar reads for {variable_id}")
        return exact[0][0] or ""

    def age_comparison(self, p: Comparison) -> str:
        if p.within is not None:
            raise RenderError("an age has no recency window")
        options: list[Callable[[], str]] = [
            lambda: f"{self.choose.pick(['Age', 'age', 'aged'])} {self.comparator(p.op, age=True)} "
                    f"{' '.join(self.age_quantity(p.value, p.unit, age_unit=False))}",
        ]
        # after "and", a bare "< 11 years of age" continues the clause before it (reported)
        if p.unit == "year" and self.bare_age_ok and not self.after_joint:  # a bare "over 18 years" is an age; "over 18 months" is not
            options.append(lambda: f"{self.comparator(p.op, age=True)} {' '.join(self.age_quantity(p.value, p.unit, age_unit=True))}")
        if p.op in _AGE_POSTFIX and p.unit == "year" and self.bare_age_ok and not self.after_joint:
            options.append(lambda: f"{' '.join(self.age_quantity(p.value, p.unit, age_unit=True))} {self.choose.pick(_AGE_POSTFIX[p.op])}")
        if p.op in _AGE_POSTFIX:
            options.append(lambda: f"{self.choose.pick(['age', 'aged'])} {' '.join(self.age_quantity(p.value, p.unit, age_unit=False))} "
                                   f"{self.choose.pick(_AGE_POSTFIX[p.op])}")
        if p.op == "ge" and p.unit == "year" and self.bare_age_ok and not self.after_joint:
            options.append(lambda: f"{self.number(p.value, words_ok=False)}+ {self.time_unit(p.unit, p.value)}")
        if self.choose.random is None:
            return options[2 if self.choose.words and len(options) > 2 else 0]()
        return self.choose.pick(options)()

    # ranges ---------------------------------------------------------------------------------------
    def range(self, p: Range) -> str:
        if not (p.low_inclusive and p.high_inclusive):
            raise RenderError("a range open at one end: the grammar reads ranges as inclusive")
        if p.low > p.high:
            raise RenderError("a range from high to low")
        if p.variable == "age":
            return self.age_range(p)
        if not self.variable(p.variable).is_measured:
            raise RenderError(f"{p.variable} is not measured on a scale")
        name = self.name(p.variable)
        low, high, unit, low_unit = self.range_quantities(p)
        window = self.window(p.within)
        separator = self.choose.pick(_RANGE_SEPARATORS)
        sep = separator if separator.strip() in ("-", "–", "~", "～") and not low_unit else separator
        tail = f" {unit}" if unit else ""
        try:
            before_number = self.name(p.variable, before_number=True)
        except RenderError:
            before_number = ""
        forms = [
            f"{before_number} {low}{sep}{high}{tail}{window}" if before_number else f"{name} from {low} to {high}{tail}{window}",
            f"{name} between {low}{low_unit} and {high}{tail}{window}",
            # "within the range of" is left out: the grammar reads "within" as a window there (reported)
            f"{name} {self.choose.pick(['in the range of', 'ranging from', 'range', 'in the range'])} "
            f"{low}{sep}{high}{tail}{window}",
            f"{name} from {low}{low_unit} to {high}{tail}{window}",
        ]
        if low_unit and before_number:
            forms.append(f"{before_number} {low}{low_unit} {separator.strip()} {high}{tail}{window}")
        return self.choose.pick(forms, words=1)

    def range_quantities(self, p: Range) -> tuple[str, str, str, str]:
        """(low, high, unit, unit after low or ""), the two bounds in one written unit."""
        if p.unit == "x ULN":
            if self.variable(p.variable).kind != "lab":
                raise RenderError(f"{p.variable} has no upper limit of normal")
            unit = self.choose.pick(_ULN)
            return self.number(p.low), self.number(p.high), unit, (f" {unit}" if self.choose.maybe(0.3) else "")
        variable = self.variable(p.variable)
        if variable.unit != p.unit:
            raise RenderError(f"{p.variable} thresholds are in {variable.unit}, not {p.unit}")
        _check_number(p.low)
        _check_number(p.high)
        spellings = unit_spellings(p.variable)
        exact = [s for s in spellings if s[1] == 1.0]
        if not spellings:
            raise RenderError(f"no unit the grammar reads for {p.variable}")
        if self.choose.random is not None:
            first = self.choose.pick(exact if exact and self.choose.maybe() else spellings)
        else:  # "31 points" in words, a bare "31" in symbols
            named = [s for s in exact if s[0] is not None]
            first = named[0] if self.choose.words and named else spellings[0]
        low: str | None = None
        high: str | None = None
        for written, factor in (first, *spellings):
            if factor == 1.0:
                low, high = self.number(p.low), self.number(p.high)
            else:
                low, high = _written_value(p.low, factor), _written_value(p.high, factor)
            if low is not None and high is not None:
                break
        else:
            raise RenderError(f"{p.low!r}-{p.high!r} {p.unit} cannot be written exactly for {p.variable}")
        assert low is not None and high is not None
        unit = written or ""
        return low, high, unit, (f" {unit}" if unit and self.choose.maybe(0.3) else "")

    def ranges(self, items: list[Range]) -> str:
        first = items[0]
        if any((i.low, i.high, i.unit, i.within, i.low_inclusive, i.high_inclusive)
               != (first.low, first.high, first.unit, first.within, first.low_inclusive, first.high_inclusive) for i in items) \
                or len({i.variable for i in items}) != len(items) or any(i.variable == "age" for i in items):
            raise RenderError("a list of variables shares one range")
        if first.unit != "x ULN" and len({self.variable(i.variable).unit for i in items}) != 1:
            raise RenderError("a list of variables shares one range")
        names = self._list([self.name(i.variable) for i in items[:-1]] + [self.name(items[-1].variable, before_number=True)],
                           [" or ", " and ", "/", ", "])
        low, high = self.number(first.low), self.number(first.high)
        unit = self.choose.pick(_ULN) if first.unit == "x ULN" else self._canonical_unit(first.variable) if first.unit != "1" else ""
        return f"{names} {low}-{high} {unit}".rstrip() + self.window(first.within)

    def age_range(self, p: Range) -> str:
        if p.within is not None:
            raise RenderError("an age has no recency window")
        low = self.number(p.low)
        high, unit = self.age_quantity(p.high, p.unit, age_unit=False)
        age = self.choose.pick(["Age", "age", "aged", "Aged"])
        forms = [
            f"{age} {low} to {high} {unit}",
            f"{age} {low}-{high} {unit}",
            f"{age} between {low} and {high} {unit}",
            f"{age} {low}~{high} {unit}",
        ]
        if p.unit == "year":  # a bare range of years is an age anywhere
            forms += [f"{low}-{high} years old", f"between {low} and {high} years of age", f"{low} to {high} years of age",
                      f"{age} {low} years to {high} years"]
        return self.choose.pick(forms, words=2)

    # categories, sex -------------------------------------------------------------------------------
    def category(self, p: Category) -> str:
        if p.within is not None:
            raise RenderError("a category with a recency window")
        if not self.ends_with_name_ok:
            raise RenderError("category values before 'and'/'or' read as one longer list")
        variable = self.variable(p.variable)
        order = [v.value for v in variable.values]
        if not p.values or list(p.values) != [v for v in order if v in p.values]:
            raise RenderError(f"category values are {order}, in that order")
        written = []
        for value in p.values:
            entry = next(v for v in variable.values if v.value == value)
            options = [s for s in (entry.value, *entry.synonyms) if self._category_value_is(s, variable.id, value)]
            if not options:
                raise RenderError(f"no written form for {value!r}")
            written.append(self.choose.pick(options))
        values = self._list(written, [" or ", "/", ", ", " and/or "])
        forms = [values, f"{self.choose.pick(['diagnosis of', 'established diagnosis of', 'diagnosed with'])} {values}"]
        if self.choose.random is not None and self.ends_with_name_ok:
            names = _names(variable.id)
            if names:
                forms.append(f"{values} {self.choose.pick(['according to', 'according to the', 'per', 'by', 'based on'])} "
                             f"{self.choose.pick(names)}")
        return self.choose.pick(forms)

    def _category_value_is(self, written: str, variable_id: str, value: str) -> bool:
        """Whether a written value names this value of this variable and no other."""
        owners = [v.id for v in self.vocab.variables.values() if v.values and self.vocab.category_value(v.id, written) is not None]
        return owners == [variable_id] and self.vocab.category_value(variable_id, written) == value

    def sex(self, p: Sex) -> str:
        options = {"female": ["female", "women", "Female patients", "Female subjects", "females"],
                   "male": ["male", "men", "Male patients", "Male subjects", "males"]}[p.sex]
        return self.choose.pick(options)

    # events --------------------------------------------------------------------------------------------
    def presence(self, items: list[Presence], *, negated: bool, separators: Sequence[str] = (" or ",)) -> str:
        if not items or len({i.variable for i in items}) != len(items):
            raise RenderError("a list names each variable once")
        window = items[0].within
        if any(i.within != window for i in items):
            raise RenderError("a list of events shares one window")
        variables = [self.variable(i.variable) for i in items]
        if any(v.kind not in ("condition", "medication", "procedure") for v in variables):
            raise RenderError("presence is of a condition, medication or procedure")
        markers = [m for m in ("", "HISTORY", "CURRENT") if all(_current(v, m, window) == i.current for v, i in zip(variables, items))]
        if not markers:
            raise RenderError("no one marker gives each item its 'current'")
        marker = self.choose.pick(markers)
        treatment = all(v.kind == "medication" for v in variables)
        if marker == "HISTORY":
            lead = self.choose.pick(_HISTORY_OF_TREATMENT if treatment else _HISTORY) + " "
        elif marker == "CURRENT":
            lead = self.choose.pick(_CURRENT_TREATMENT if treatment else _CURRENT) + " "
        else:
            lead = self.choose.pick(_KNOWN)
        if not self.ends_with_name_ok and window is None:
            raise RenderError("a list of names before 'and'/'or' reads as one longer list")
        names = self._list([self.name(v.id) for v in variables], separators)
        text = f"{lead}{names}{self.window(window)}"
        if negated:
            negation = self.choose.pick(_NEGATIONS)
            if negation in ("never had",) and marker:
                negation = "no"
            return f"{negation} {text}"
        return text

    def time_since(self, p: Presence, *, at_least: bool) -> str:
        """"at least 5 years since prior chemotherapy" is not(chemotherapy within 5 years)."""
        assert p.within is not None
        if not self.ends_with_name_ok:
            raise RenderError("a name before 'and'/'or' reads as a list")
        op = self.choose.pick(["ge", "gt"] if at_least else ["le", "lt"])
        marker = self.choose.pick(["prior", "previous", "last", "the last"]) if self.choose.maybe(0.8) else ""
        name = self.name(p.variable)
        if marker in ("last", "the last"):
            marker = "prior"
        return f"{self.comparator(op)} {self.period(p.within)} {self.choose.pick(['since', 'from', 'after'])} {marker} {name}".replace("  ", " ")

    def duration(self, p: Duration) -> str:
        variable = self.variable(p.variable)
        period = self.period(p.period)
        comparator = self.comparator(p.op)
        if p.since == "start":
            if variable.kind != "medication":
                raise RenderError("a stable dose is of a medication")
            lead = self.choose.pick(["stable dose of", "on a stable dose of", "received stable dose of", "stable doses of"])
            return f"{lead} {self.name(variable.id)} for {comparator} {period}"
        if variable.kind != "condition":
            raise RenderError(f"a duration of {variable.kind} since {p.since}")
        event = self.name(variable.id)
        if p.variable == self.condition and self.choose.maybe(0.5):
            event = self.choose.pick(["disease", "the disease", "illness"])
        if p.since == "diagnosed":
            lead = self.choose.pick(["duration of", "disease duration of"])
            since = self.choose.pick(["from diagnosis", "from the first diagnosis date", "since diagnosis", "since the first diagnosis",
                                      "from the initial diagnosis", "after diagnosis"])
            return f"{lead} {event} {comparator} {period} {since}"
        if event.casefold() in ("disease", "the disease", "illness") and self.choose.maybe(0.5):
            event = "disease"
        return f"{comparator} {period} {self.choose.pick(['from', 'since', 'after'])} {event} {self.choose.pick(['onset', 'symptom onset'])}"


def _current(variable: Variable, marker: str, window: Period | None) -> bool:
    """The ``current`` flag the compiler gives a presence (transform.py ``_presence``)."""
    timing = variable.timing or ("current" if variable.kind == "medication" else "ever")
    return window is None and (marker == "CURRENT" or (marker == "" and timing == "current"))


def _written_value(value: float, factor: float) -> str | None:
    """A number in another unit that the compiler converts back to exactly ``value``.

    The compiler keeps the precision and resolution written (``units.converted_digits``), so 2.0 mg/dL
    may be written 177 µmol/L; ``None`` when no number of 3 to 9 significant digits comes back exact.
    """
    if value == 0:
        return "0"
    for digits in range(3, 10):
        number = float(f"{value / factor:.{digits}g}")
        if number > 0 and convert_written(number, factor) == value:
            return _decimal(number) if 1e-3 <= number <= 1e7 else None  # 4e10 pg/mL is not how anyone writes it
    return None


def render(predicate: PredicateNode, kind: Kind = "inclusion", phrasing: Phrasing = "symbols", *,
           condition: str | None = None) -> str:
    """A criterion text meaning ``predicate`` for an inclusion or exclusion criterion.

    ``kind`` matters: a threshold shared by a list ("AST/ALT ≤ 2.5 x ULN") means *each* in an
    inclusion and *any* in an exclusion, so ``all`` and ``any`` lists are written for the kind
    that reads them back. ``condition`` is the trial's condition (a vocabulary id), which lets
    a duration say "the disease". Raises ``RenderError`` for a predicate no criterion text
    compiles to.

    >>> from eligibility import Presence, Period, Not
    >>> render(Presence(variable="stroke", within=Period(amount=6, unit="month")), "exclusion")
    'stroke within 6 months'
    >>> render(Not(item=Presence(variable="epilepsy")), "inclusion", phrasing="words")
    'no epilepsy'
    """
    if kind == "exclusion" and isinstance(predicate, Not):
        # the compiler keeps "no X" under exclusions with a manual part (compiler._negative_exclusion)
        raise RenderError("a negative exclusion compiles with a manual part: write it as an inclusion")
    renderer = _Renderer(kind, phrasing, condition, vocabulary())
    text = renderer.statement(predicate)
    choose = renderer.choose
    if choose.random is not None:
        starts_with_sex = isinstance(predicate, Sex) or (isinstance(predicate, All) and isinstance(predicate.items[0], Sex))
        if not isinstance(predicate, Implies) and not starts_with_sex and not text[:1] in "≥≤<>=＜⩾" and choose.maybe(0.3):
            text = choose.pick(_SUBJECT_PREFIX) + text
        if not text.rstrip().endswith(("+", "=")) and choose.maybe(0.3):
            text += choose.pick(_SUFFIX)
    return re.sub(r"\s+", " ", text).strip()
