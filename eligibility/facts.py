"""Patient record -> facts: every entry matched to a vocabulary variable, values in canonical units.

This is done once per patient (and cached on it), so that screening against any number
of criteria compares floats and dates only: names are resolved, units converted, reference
ranges read and the record's own values written out for reasons here, not per criterion.
Name and unit lookups are memoised by the string as written, since records repeat them.
The records are named tuples: immutable, and made several times faster than frozen dataclasses.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, NamedTuple, cast

from .patient import Code, Condition, Medication, Observation, Patient, Procedure
from .units import UnitProblem, round_significant, significant_digits, units
from .vocabulary import Variable, Vocabulary, name_key, vocabulary

_MEMO_LIMIT = 100_000
"""Memoised spellings kept before a memo starts again (records may be free text without end)."""


class UlnRatio(NamedTuple):
    """A measurement as a multiple of the upper limit of normal (x ULN)."""

    ratio: float  # by the record's own reference range, else the vocabulary's typical one
    rounded: float  # to 3 decimals, for evidence
    shown: str  # "95 U/L (2026-01-05) = 2.38 x ULN"
    assumption: str | None  # says so when the vocabulary's typical range was used


class Measurement(NamedTuple):
    """One observation of a measured variable, converted once, with the text reasons quote."""

    date: dt.date | None
    date_text: str | None  # ISO form
    recorded: float | str  # the value as recorded
    recorded_unit: str | None
    shown: str  # as reasons quote it: "1.1 mg/dL (2026-01-10)", "38 point (2026-01-12)", "72 % (undated)"
    value: float | None  # in the variable's canonical unit; None when it cannot be had
    value_text: str | None = None  # ``value`` written out, when it differs from the recorded value
    problem: str | None = None  # why ``value`` is None, or why it cannot be trusted
    conversion_note: str | None = None  # "converted with molar mass 113.12 g/mol", when it was
    uln: UlnRatio | None = None  # against the upper limit of normal, when one is known
    conflicting: bool = False  # another value of the variable differs on the same date


class Finding(NamedTuple):
    """One categorical observation (El Escorial category ...), with its canonical value."""

    date: dt.date | None
    recorded: str
    value: str | None
    date_text: str | None = None  # ISO form


class Event(NamedTuple):
    """A condition, medication or procedure entry: present or asserted absent, with its dates."""

    present: bool
    start: dt.date | None  # onset / start / date performed
    diagnosed: dt.date | None
    end: dt.date | None
    recorded: str = ""  # the entry's name in the record ("alcohol abuse" for substance abuse)
    recorded_key: str = ""  # ``name_key(recorded)``: reasons say "as 'ALS'" only when it differs from the label
    recorded_quoted: str = ""  # ``repr(recorded)``, as reasons quote it
    start_text: str | None = None  # the dates in ISO form
    diagnosed_text: str | None = None
    end_text: str | None = None


@dataclass(slots=True)
class Facts:
    """What a patient's record says, indexed by variable id; lists newest first, undated last
    (events: present ones first, then those asserted absent)."""

    patient_id: str
    sex: str
    birth_date: dt.date | None
    age: float | None
    measurements: dict[str, list[Measurement]] = field(default_factory=dict)
    findings: dict[str, list[Finding]] = field(default_factory=dict)
    events: dict[str, list[Event]] = field(default_factory=dict)
    unmatched: list[str] = field(default_factory=list)  # record names the vocabulary does not know
    birth_date_text: str | None = None  # ISO form, for evidence


def _by_date_desc(item: Measurement | Finding) -> tuple[bool, dt.date]:
    return (item.date is not None, item.date or dt.date.min)


def _present_then_by_date_desc(event: Event) -> tuple[bool, bool, dt.date]:
    when = event.start or event.diagnosed
    return (event.present, when is not None, when or dt.date.min)


def _mark_conflicts(entries: list[Measurement]) -> list[Measurement]:
    """Flag each measurement whose date carries two different values (sorted by date)."""
    if all(entries[i].date != entries[i - 1].date for i in range(1, len(entries))):
        return entries  # every date once, the common case: nothing to compare
    marked = list(entries)
    start = 0
    while start < len(entries):
        end = start + 1
        while end < len(entries) and entries[end].date == entries[start].date:
            end += 1
        if len({m.value for m in entries[start:end]}) > 1:
            marked[start:end] = [m._replace(conflicting=True) for m in entries[start:end]]
        start = end
    return marked


class _Reading(NamedTuple):
    """How a variable reads values written in one unit: to its canonical unit, or why not."""

    problem: str | None
    factor: float
    shown_unit: str | None  # the unit reasons quote: as written, or the one a bare number is in
    note: str | None  # an assumption the conversion made (a molar mass)


class FactsBuilder:
    """Matches a record's entries to the vocabulary and converts their values.

    Names and units repeat across records, so their lookups (regular expressions, unit
    tables) are memoised by the text as written.
    """

    def __init__(self, vocab: Vocabulary | None = None):
        self.vocab = vocab or vocabulary()
        self._names: dict[str, tuple[Variable | None]] = {}  # in a tuple: None is a finding too
        self._codes: dict[tuple[str, str], tuple[Variable | None]] = {}
        self._readings: dict[tuple[str, str | None, bool], _Reading] = {}
        self._name_keys: dict[str, str] = {}

    def variable_for(self, name: str, code: Code | None) -> Variable | None:
        if code is not None:
            key = (code.system, code.code)
            by_code = self._codes.get(key)
            if by_code is None:
                by_code = (self.vocab.by_code(code.system, code.code),)
                _bounded(self._codes)
                self._codes[key] = by_code
            if by_code[0] is not None:
                return by_code[0]
        by_name = self._names.get(name)
        if by_name is None:
            by_name = (self.vocab.by_name(name),)
            _bounded(self._names)
            self._names[name] = by_name
        return by_name[0]

    def reading(self, variable: Variable, written_unit: str | None, mapped: bool = False) -> _Reading:
        """How ``variable`` reads a number recorded in ``written_unit`` (``mapped``: a text value
        such as "class III", which its value map puts in the canonical unit)."""
        key = (variable.id, written_unit, mapped)
        found = self._readings.get(key)
        if found is None:
            unit = variable.unit if mapped else variable.record_unit(written_unit)
            conversion = None if unit is None else units().conversion(unit, variable.unit or unit, variable.molar_mass)
            if conversion is None:
                found = _Reading(f"no unit given (expected {variable.unit})", 1.0, written_unit, None)
            elif isinstance(conversion, UnitProblem):
                found = _Reading(str(conversion), 1.0, written_unit, None)
            else:
                note = f"converted with molar mass {conversion.molar_mass:g} g/mol" if conversion.molar_mass else None
                found = _Reading(None, conversion.factor, written_unit or unit, note)  # a bare score is in points
            _bounded(self._readings)
            self._readings[key] = found
        return found

    def build(self, patient: Patient) -> Facts:
        facts = Facts(patient.id, patient.sex, patient.birth_date, patient.age, birth_date_text=iso_date(patient.birth_date))
        for observation in patient.observations:
            self._add_observation(facts, observation)
        entries: tuple[Condition | Medication | Procedure, ...] = (*patient.conditions, *patient.medications, *patient.procedures)
        for entry in entries:
            self._add_event(facts, entry)
        for findings in facts.findings.values():
            if len(findings) > 1:
                findings.sort(key=_by_date_desc, reverse=True)
        for events in facts.events.values():
            if len(events) > 1:
                events.sort(key=_present_then_by_date_desc, reverse=True)
        for variable_id, measured in facts.measurements.items():
            if len(measured) > 1:
                measured.sort(key=_by_date_desc, reverse=True)
                facts.measurements[variable_id] = _mark_conflicts(measured)
        return facts

    def _add_observation(self, facts: Facts, observation: Observation) -> None:
        variable = self.variable_for(observation.name, observation.code)
        if variable is None:
            facts.unmatched.append(observation.name)
        elif variable.values:
            recorded = str(observation.value)
            value = self.vocab.category_value(variable.id, recorded)
            finding = Finding(observation.date, recorded, value, iso_date(observation.date))
            facts.findings.setdefault(variable.id, []).append(finding)
        elif variable.is_measured:
            facts.measurements.setdefault(variable.id, []).append(self.measurement(variable, observation))
        else:
            facts.unmatched.append(observation.name)

    def measurement(self, variable: Variable, observation: Observation) -> Measurement:
        recorded, date, written_unit = observation.value, observation.date, observation.unit
        iso = iso_date(date)
        when = f" ({iso})" if iso else " (undated)"
        if isinstance(recorded, str):
            mapped = variable.value_map.get(recorded.strip().casefold())
            if mapped is None:
                return Measurement(date, iso, recorded, written_unit, _shown(recorded, written_unit, when), None,
                                   problem=f"{recorded!r} is not a value of {variable.label}")
            number: float = mapped
            reading = self.reading(variable, written_unit, mapped=True)
        else:
            number = recorded
            reading = self.reading(variable, written_unit)
        own_range = observation.reference_range
        shown_unit = reading.shown_unit
        shown = _shown(recorded, shown_unit, when)
        own_high = own_range.high if own_range is not None else None
        if own_high is not None and own_high <= 0:  # a range the record gives but that cannot be used
            return Measurement(date, iso, recorded, shown_unit, shown, None,
                               problem=f"its reference range has an upper limit of {own_high:g}, not a usable upper limit of normal")
        # a ratio to the record's own limit needs no unit, but never of a negative value
        own_ratio = number / own_high if own_high is not None and number >= 0 else None
        if reading.problem is not None:
            return Measurement(date, iso, recorded, shown_unit, shown, None, problem=reading.problem,
                               uln=None if own_ratio is None else _uln(own_ratio, shown, None))
        value = number * reading.factor
        if reading.factor != 1.0:
            value = round_significant(value, significant_digits(number))
        bounds = variable.plausible
        if bounds is not None and ((bounds.low is not None and value < bounds.low) or (bounds.high is not None and value > bounds.high)):
            problem = f"{number:g} {written_unit or ''} is not a plausible {variable.label}".replace("  ", " ")
            return Measurement(date, iso, recorded, shown_unit, shown, None, problem=problem)  # no x ULN either
        typical_high = variable.reference_range.high if variable.reference_range else None
        if own_ratio is not None:
            uln: UlnRatio | None = _uln(own_ratio, shown, None)
        elif typical_high:
            uln = _uln(value / typical_high, shown, f"upper limit of normal {typical_high:g} {variable.unit} assumed "
                                                    "(typical adult range, rules/vocabulary.yaml): the record gives no range")
        else:
            uln = None
        return Measurement(date, iso, recorded, shown_unit, shown, value, None if recorded == value else f"{value:g}",
                           conversion_note=reading.note, uln=uln)

    def _add_event(self, facts: Facts, entry: Condition | Medication | Procedure) -> None:
        variable = self.variable_for(entry.name, entry.code)
        if variable is None or variable.kind not in ("condition", "medication", "procedure"):
            facts.unmatched.append(entry.name)
            return
        if isinstance(entry, Condition):
            start, diagnosed, end = entry.onset, entry.diagnosed, entry.end
        elif isinstance(entry, Medication):
            start, diagnosed, end = entry.start, None, entry.end
        elif variable.timing == "current":  # an ongoing therapy: in use until its end
            start, diagnosed, end = entry.date, None, entry.end
        else:  # a one-off procedure happened on its date
            start, diagnosed, end = entry.date, None, entry.end or entry.date
        event = Event(entry.present, start, diagnosed, end, entry.name, self._name_key(entry.name), repr(entry.name),
                      iso_date(start), iso_date(diagnosed), iso_date(end))
        facts.events.setdefault(variable.id, []).append(event)
        related = self.vocab.broader.get(variable.id, ()) if event.present else self.vocab.narrower.get(variable.id, ())
        for other in related:
            facts.events.setdefault(other, []).append(event)

    def _name_key(self, name: str) -> str:
        key = self._name_keys.get(name)
        if key is None:
            _bounded(self._name_keys)
            key = self._name_keys[name] = name_key(name)
        return key



_DATE_TEXTS: dict[dt.date, str] = {}


def iso_date(date: dt.date | None) -> str | None:
    """``date.isoformat()``, memoised: records share dates, and a lookup costs a fifth as much."""
    if date is None:
        return None
    text = _DATE_TEXTS.get(date)
    if text is None:
        _bounded(_DATE_TEXTS)
        text = _DATE_TEXTS[date] = date.isoformat()
    return text


def _shown(recorded: float | str, unit: str | None, when: str) -> str:
    return f"{recorded}{' ' + unit if unit else ''}{when}"


def _uln(ratio: float, shown: str, assumption: str | None) -> UlnRatio:
    return UlnRatio(ratio, round(ratio, 3), f"{shown} = {ratio:.2f} x ULN", assumption)


def _bounded(memo: dict) -> None:  # type: ignore[type-arg]
    if len(memo) >= _MEMO_LIMIT:
        memo.clear()


_builder: FactsBuilder | None = None


def facts_of(patient: Patient) -> Facts:
    """The patient's facts, built on first use and kept on the patient (its ``_facts``).

    Read from pydantic's private-attribute dict itself: ``patient._facts`` goes through
    ``BaseModel.__getattr__``, which costs more than the rest of a screening's set-up.
    """
    global _builder
    private = cast(dict[str, Any], patient.__pydantic_private__)  # a dict on a model with private attributes
    facts: Facts | None = private["_facts"]
    if facts is None:
        if _builder is None:
            _builder = FactsBuilder()
        facts = private["_facts"] = _builder.build(patient)
    return facts
