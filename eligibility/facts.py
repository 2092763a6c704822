"""Patient record -> facts: every entry matched to a vocabulary variable, values in canonical units.

This is done once per patient (and cached on it), so that screening against any number
of criteria compares floats and dates only: names are resolved, units converted, reference
ranges read and the record's own values written out for reasons here, not per criterion.
Name, unit and event lookups are memoised process-wide by what is written, since records
repeat them ("epilepsy", absent; "creatinine" in umol/L).

Facts outlive a screening (a batch keeps its patients), and the cyclic garbage collector
traverses every tracked object at each full collection, which comes the sooner the more
objects each screening leaves behind. So entries are plain tuples of atomic values, and a
variable's entries a tuple of them: CPython stops tracking such tuples at the first
collection (a named tuple, being a subclass, is tracked for ever). ``Measurement`` names the
fields of a measurement row; ``Facts.measurement_rows`` holds the rows themselves.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any, NamedTuple, TypeVar, cast

from .patient import Code, Condition, Medication, Observation, Patient, Procedure
from .units import UnitProblem, convert_written, units
from .vocabulary import EVENT_KINDS, Variable, Vocabulary, name_key, vocabulary

_MEMO_LIMIT = 100_000
"""Memoised spellings kept before a memo starts again (records may be free text without end)."""


class Measurement(NamedTuple):
    """One observation of a measured variable, converted once, with the text reasons quote
    (the fields of a ``MeasurementRow``, by name)."""

    date: dt.date | None
    date_text: str | None  # ISO form
    recorded: float | str  # the value as recorded
    recorded_unit: str | None
    shown: str  # as reasons quote it: "1.1 mg/dL (2026-01-10)", "38 point (2026-01-12)", "72 % (undated)"
    value: float | None  # in the variable's canonical unit; None when it cannot be had
    value_text: str | None = None  # ``value`` written out, when it differs from the recorded value
    problem: str | None = None  # why ``value`` is None, or why it cannot be trusted
    conversion_note: str | None = None  # "converted with molar mass 113.12 g/mol", when it was
    # as a multiple of the upper limit of normal (x ULN), when one is known: by the record's own
    # reference range, else the vocabulary's typical one (``uln_assumption`` then says so)
    uln: float | None = None
    uln_rounded: float | None = None  # to 3 decimals, for evidence
    uln_shown: str | None = None  # "95 U/L (2026-01-05) = 2.38 x ULN"
    uln_assumption: str | None = None
    conflicting: bool = False  # another value of the variable differs on the same date


MeasurementRow = tuple[dt.date | None, str | None, float | str, str | None, str, float | None, str | None, str | None,
                       str | None, float | None, float | None, str | None, str | None, bool]
"""A ``Measurement`` as a plain tuple, as facts keep it."""

_DATE = itemgetter(0)

Finding = tuple[dt.date | None, str | None, str, str | None]
"""One categorical observation (El Escorial category ...): (date, date in ISO form, the value
as recorded, its canonical value or None)."""

_Dated = TypeVar("_Dated", MeasurementRow, Finding)

Event = tuple[bool, dt.date | None, dt.date | None, dt.date | None, str, str, str, str | None, str | None, str | None]
"""A condition, medication or procedure entry, present or asserted absent: (present, start
(onset / start / date performed), diagnosed, end, the entry's name in the record ("alcohol
abuse" for substance abuse), ``name_key`` of it (reasons say "as 'ALS'" only when it differs
from the label), ``repr`` of it (as reasons quote it), start, diagnosed and end in ISO form)."""


@dataclass(slots=True)
class Facts:
    """What a patient's record says, indexed by variable id; entries newest first, undated last
    (events: present ones first, then those asserted absent)."""

    patient_id: str
    sex: str
    birth_date: dt.date | None
    age: float | None
    measurement_rows: dict[str, tuple[MeasurementRow, ...]] = field(default_factory=dict)
    findings: dict[str, tuple[Finding, ...]] = field(default_factory=dict)
    events: dict[str, tuple[Event, ...]] = field(default_factory=dict)
    unmatched: list[str] = field(default_factory=list)  # record names the vocabulary does not know
    birth_date_text: str | None = None  # ISO form, for evidence

    @property
    def measurements(self) -> dict[str, tuple[Measurement, ...]]:
        """The measurements by variable, each with its fields named (made afresh: for reading, not screening)."""
        return {variable_id: tuple(map(Measurement._make, rows)) for variable_id, rows in self.measurement_rows.items()}


def _date_desc(item: MeasurementRow | Finding) -> tuple[bool, dt.date]:
    date = item[0]
    return (date is not None, date or dt.date.min)


def _newest_first(entries: tuple[_Dated, ...]) -> list[_Dated]:
    """Entries by date, newest first, undated last; equal dates in record order."""
    try:  # all dated, the common case: compared by date in C
        return sorted(entries, key=_DATE, reverse=True)
    except TypeError:  # None (undated) does not compare with a date
        return sorted(entries, key=_date_desc, reverse=True)


def _present_then_by_date_desc(event: Event) -> tuple[bool, bool, dt.date]:
    when = event[1] or event[2]
    return (event[0], when is not None, when or dt.date.min)


def _mark_conflicts(entries: list[MeasurementRow]) -> tuple[MeasurementRow, ...]:
    """Flag each measurement whose date carries two different values (sorted by date)."""
    if len(set(map(_DATE, entries))) == len(entries):
        return tuple(entries)  # every date once, the common case: nothing to compare
    marked = list(entries)
    start = 0
    while start < len(entries):
        end = start + 1
        while end < len(entries) and entries[end][0] == entries[start][0]:
            end += 1
        if len({m[5] for m in entries[start:end]}) > 1:  # values
            marked[start:end] = [(*m[:-1], True) for m in entries[start:end]]
        start = end
    return tuple(marked)


class _Reading(NamedTuple):
    """How a variable reads values written in one unit: to its canonical unit, or why not; with
    the variable's bounds, so that a measurement reads no model attribute."""

    problem: str | None
    factor: float
    shown_unit: str | None  # the unit reasons quote: as written, or the one a bare number is in
    note: str | None  # an assumption the conversion made (a molar mass)
    low: float | None  # plausible bounds, in the canonical unit
    high: float | None
    typical_high: float | None  # the vocabulary's typical upper limit of normal
    typical_assumption: str | None  # the evidence's words when that limit is used
    converted: dict[float, float]  # recorded number -> converted and rounded value, memoised


_MEASURED, _FINDING, _OTHER = range(3)
"""How an observation of a variable is read (by the variable's kind); ``_OTHER`` is not read."""


class FactsBuilder:
    """Matches a record's entries to the vocabulary and converts their values.

    Names and units repeat across records, so their lookups (regular expressions, unit
    tables) are memoised by the text as written; so are whole events, which repeat too.
    """

    def __init__(self, vocab: Vocabulary | None = None):
        self.vocab = vocab or vocabulary()
        self._names: dict[str, tuple[Variable | None, int]] = {}
        self._codes: dict[tuple[str, str], tuple[Variable | None, int]] = {}
        self._readings: dict[tuple[str, str | None, bool], _Reading] = {}
        self._categories: dict[tuple[str, str], str | None] = {}
        self._events: dict[tuple[Any, ...], tuple[tuple[str, ...], Event | None]] = {}  # by entry type and fields

    def _route(self, name: str, code: Code | None) -> tuple[Variable | None, int]:
        """The variable an entry names (its code first) and how an observation of it is read."""
        if code is not None:
            key = (code.system, code.code)
            by_code = self._codes.get(key)
            if by_code is None:
                by_code = _routed(self.vocab.by_code(code.system, code.code))
                _bounded(self._codes)
                self._codes[key] = by_code
            if by_code[0] is not None:
                return by_code
        by_name = self._names.get(name)
        if by_name is None:
            by_name = _routed(self.vocab.by_name(name))
            _bounded(self._names)
            self._names[name] = by_name
        return by_name

    def reading(self, variable: Variable, written_unit: str | None, mapped: bool = False) -> _Reading:
        """How ``variable`` reads a number recorded in ``written_unit`` (``mapped``: a text value
        such as "class III", which its value map puts in the canonical unit)."""
        key = (variable.id, written_unit, mapped)
        found = self._readings.get(key)
        if found is None:
            unit = variable.unit if mapped else variable.record_unit(written_unit)
            conversion = None if unit is None else units().conversion(unit, variable.unit or unit, variable.molar_mass)
            bounds, typical = variable.plausible, variable.reference_range
            limits = (bounds.low if bounds else None, bounds.high if bounds else None,
                      typical.high if typical else None,
                      f"upper limit of normal {typical.high:g} {variable.unit} assumed (typical adult range, "
                      "rules/vocabulary.yaml): the record gives no range" if typical and typical.high else None)
            if conversion is None:
                found = _Reading(f"no unit given (expected {variable.unit})", 1.0, written_unit, None, *limits, {})
            elif isinstance(conversion, UnitProblem):
                found = _Reading(str(conversion), 1.0, written_unit, None, *limits, {})
            else:
                note = f"converted with molar mass {conversion.molar_mass:g} g/mol" if conversion.molar_mass else None
                found = _Reading(None, conversion.factor, written_unit or unit, note, *limits, {})  # a bare score is in points
            _bounded(self._readings)
            self._readings[key] = found
        return found

    def build(self, patient: Patient) -> Facts:
        facts = Facts(patient.id, patient.sex, patient.birth_date, patient.age, birth_date_text=iso_date(patient.birth_date))
        # grouped into tuples as they come (most variables have one entry), then sorted where several
        measured, found, events, unmatched = facts.measurement_rows, facts.findings, facts.events, facts.unmatched
        route = self._route
        for observation in patient.observations:
            variable, how = route(observation.name, observation.code)
            if variable is not None and how == _MEASURED:
                row = self.measurement(variable, observation)
                rows = measured.get(variable.id)
                measured[variable.id] = (row,) if rows is None else (*rows, row)
            elif variable is not None and how == _FINDING:
                finding = self._finding(variable, observation)
                same = found.get(variable.id)
                found[variable.id] = (finding,) if same is None else (*same, finding)
            else:
                unmatched.append(observation.name)
        for entries in (patient.conditions, patient.medications, patient.procedures):
            for item in entries:
                ids, event = self._event(item)
                if event is None:
                    unmatched.append(item.name)
                    continue
                for variable_id in ids:
                    listed = events.get(variable_id)
                    events[variable_id] = (event,) if listed is None else (*listed, event)
        for variable_id, rows in measured.items():
            if len(rows) > 1:
                measured[variable_id] = _mark_conflicts(_newest_first(rows))
        for variable_id, same in found.items():
            if len(same) > 1:
                found[variable_id] = tuple(_newest_first(same))
        for variable_id, listed in events.items():
            if len(listed) > 1:
                events[variable_id] = tuple(sorted(listed, key=_present_then_by_date_desc, reverse=True))
        return facts

    def _finding(self, variable: Variable, observation: Observation) -> Finding:
        recorded = str(observation.value)
        key = (variable.id, recorded)
        try:
            value = self._categories[key]
        except KeyError:
            value = self.vocab.category_value(variable.id, recorded)
            _bounded(self._categories)
            self._categories[key] = value
        return (observation.date, iso_date(observation.date), recorded, value)

    def measurement(self, variable: Variable, observation: Observation) -> MeasurementRow:
        """The observation as a measurement row (see ``Measurement`` for its fields)."""
        recorded, date, written_unit = observation.value, observation.date, observation.unit
        iso = iso_date(date)
        if isinstance(recorded, str):
            mapped = variable.value_map.get(recorded.strip().casefold())
            if mapped is None:
                return _unusable(date, iso, recorded, written_unit, _shown(recorded, written_unit, iso),
                                 f"{recorded!r} is not a value of {variable.label}")
            number: float = mapped
            reading = self.reading(variable, written_unit, mapped=True)
        else:
            number = recorded
            reading = self.reading(variable, written_unit)
        own_range = observation.reference_range
        shown_unit = reading.shown_unit
        shown = _shown(recorded, shown_unit, iso)
        own_high = own_range.high if own_range is not None else None
        if own_high is not None and own_high <= 0:  # a range the record gives but that cannot be used
            return _unusable(date, iso, recorded, shown_unit, shown,
                             f"its reference range has an upper limit of {own_high:g}, not a usable upper limit of normal")
        # a ratio to the record's own limit needs no unit, but never of a negative value
        own_ratio = number / own_high if own_high is not None and number >= 0 else None
        if reading.problem is not None:
            if own_ratio is None:
                return _unusable(date, iso, recorded, shown_unit, shown, reading.problem)
            return (date, iso, recorded, shown_unit, shown, None, None, reading.problem, None,
                    own_ratio, round(own_ratio, 3), f"{shown} = {own_ratio:.2f} x ULN", None, False)
        value = number * reading.factor
        if reading.factor != 1.0:  # to the precision written: its digits are counted in text, so memoised
            converted = reading.converted.get(number)
            if converted is None:
                converted = convert_written(number, reading.factor)
                _bounded(reading.converted)
                reading.converted[number] = converted
            value = converted
        low, high = reading.low, reading.high
        if (low is not None and value < low) or (high is not None and value > high):
            problem = f"{number:g} {written_unit or ''} is not a plausible {variable.label}".replace("  ", " ")
            return _unusable(date, iso, recorded, shown_unit, shown, problem)  # no x ULN either
        value_text = None if recorded == value else f"{value:g}"
        if own_ratio is not None:
            return (date, iso, recorded, shown_unit, shown, value, value_text, None, reading.note,
                    own_ratio, round(own_ratio, 3), f"{shown} = {own_ratio:.2f} x ULN", None, False)
        if reading.typical_high:
            ratio = value / reading.typical_high
            return (date, iso, recorded, shown_unit, shown, value, value_text, None, reading.note,
                    ratio, round(ratio, 3), f"{shown} = {ratio:.2f} x ULN", reading.typical_assumption, False)
        return (date, iso, recorded, shown_unit, shown, value, value_text, None, reading.note, None, None, None, None, False)

    def _event(self, entry: Condition | Medication | Procedure) -> tuple[tuple[str, ...], Event | None]:
        """The entry as an event, with the variables it is recorded under (its own, and those a
        present entry implies or an absent one rules out); no event for a name not of an event."""
        key = (type(entry).__name__, *entry.__dict__.values())  # frozen models of atoms (and a frozen Code)
        known = self._events.get(key)
        if known is not None:
            return known
        variable = self._route(entry.name, entry.code)[0]
        if variable is None or variable.kind not in EVENT_KINDS:
            known = ((), None)
        else:
            if isinstance(entry, Condition):
                start, diagnosed, end = entry.onset, entry.diagnosed, entry.end
            elif isinstance(entry, Medication):
                start, diagnosed, end = entry.start, None, entry.end
            elif variable.timing == "current":  # an ongoing therapy: in use until its end
                start, diagnosed, end = entry.date, None, entry.end
            else:  # a one-off procedure happened on its date
                start, diagnosed, end = entry.date, None, entry.end or entry.date
            event: Event = (entry.present, start, diagnosed, end, entry.name, name_key(entry.name), repr(entry.name),
                            iso_date(start), iso_date(diagnosed), iso_date(end))
            related = self.vocab.broader.get(variable.id, ()) if entry.present else self.vocab.narrower.get(variable.id, ())
            known = ((variable.id, *related), event)
        _bounded(self._events)
        self._events[key] = known
        return known


def _routed(variable: Variable | None) -> tuple[Variable | None, int]:
    if variable is None:
        return None, _OTHER
    if variable.values:
        return variable, _FINDING
    if variable.is_measured:
        return variable, _MEASURED
    return variable, _OTHER


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


def _unusable(date: dt.date | None, iso: str | None, recorded: float | str, unit: str | None, shown: str,
              problem: str) -> MeasurementRow:
    """A measurement with no value to compare, and why."""
    return (date, iso, recorded, unit, shown, None, None, problem, None, None, None, None, None, False)


def _shown(recorded: float | str, unit: str | None, iso: str | None) -> str:
    if unit:
        return f"{recorded} {unit} ({iso})" if iso else f"{recorded} {unit} (undated)"
    return f"{recorded} ({iso})" if iso else f"{recorded} (undated)"


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
