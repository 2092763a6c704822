"""Patient record -> facts: every entry matched to a vocabulary variable, values in canonical units.

This is done once per patient (and cached on it), so that screening against any number
of criteria compares floats and dates only: names are resolved, units converted and
reference ranges read here, not per criterion.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from .patient import Condition, Medication, Observation, Patient, Procedure
from .units import UnitProblem, round_significant, significant_digits, units
from .vocabulary import Variable, Vocabulary, vocabulary

@dataclass(frozen=True, slots=True)
class Measurement:
    """One observation of a measured variable, converted once."""

    date: dt.date | None
    recorded: float | str  # the value as recorded
    recorded_unit: str | None
    value: float | None  # in the variable's canonical unit; None when it cannot be had
    uln_multiple: float | None  # value / upper limit of normal, from the record's own range
    uln_assumed: float | None  # the vocabulary's typical upper limit, when the record gives none
    problem: str | None = None  # why ``value`` is None, or why it cannot be trusted
    molar_mass: float | None = None  # set when converted through a molar mass


@dataclass(frozen=True, slots=True)
class Finding:
    """One categorical observation (El Escorial category ...), with its canonical value."""

    date: dt.date | None
    recorded: str
    value: str | None


@dataclass(frozen=True, slots=True)
class Event:
    """A condition, medication or procedure entry: present or asserted absent, with its dates."""

    present: bool
    start: dt.date | None  # onset / start / date performed
    diagnosed: dt.date | None
    end: dt.date | None
    recorded: str = ""  # the entry's name in the record ("alcohol abuse" for substance abuse)


@dataclass(slots=True)
class Facts:
    """What a patient's record says, indexed by variable id; lists newest first."""

    patient_id: str
    sex: str
    birth_date: dt.date | None
    age: float | None
    measurements: dict[str, list[Measurement]] = field(default_factory=dict)
    findings: dict[str, list[Finding]] = field(default_factory=dict)
    events: dict[str, list[Event]] = field(default_factory=dict)
    unmatched: list[str] = field(default_factory=list)  # record names the vocabulary does not know


def _by_date_desc(item: Measurement | Finding | Event) -> tuple[bool, dt.date]:
    when = item.date if not isinstance(item, Event) else (item.start or item.diagnosed)
    return (when is not None, when or dt.date.min)


class FactsBuilder:
    """Matches a record's entries to the vocabulary and converts their values."""

    def __init__(self, vocab: Vocabulary | None = None):
        self.vocab = vocab or vocabulary()

    def variable_for(self, name: str, code: object | None) -> Variable | None:
        if code is not None:
            found = self.vocab.by_code(getattr(code, "system"), getattr(code, "code"))
            if found is not None:
                return found
        return self.vocab.by_name(name)

    def build(self, patient: Patient) -> Facts:
        facts = Facts(patient.id, patient.sex, patient.birth_date, patient.age)
        for observation in patient.observations:
            self._add_observation(facts, observation)
        for entry in (*patient.conditions, *patient.medications, *patient.procedures):
            self._add_event(facts, entry)
        for table in (facts.measurements, facts.findings, facts.events):
            for entries in table.values():
                entries.sort(key=_by_date_desc, reverse=True)  # type: ignore[arg-type]
        return facts

    def _add_observation(self, facts: Facts, observation: Observation) -> None:
        variable = self.variable_for(observation.name, observation.code)
        if variable is None:
            facts.unmatched.append(observation.name)
        elif variable.values:
            recorded = str(observation.value)
            value = self.vocab.category_value(variable.id, recorded)
            facts.findings.setdefault(variable.id, []).append(Finding(observation.date, recorded, value))
        elif variable.is_measured:
            facts.measurements.setdefault(variable.id, []).append(self.measurement(variable, observation))
        else:
            facts.unmatched.append(observation.name)

    def measurement(self, variable: Variable, observation: Observation) -> Measurement:
        recorded = observation.value
        unit = variable.record_unit(observation.unit)
        assumed_uln = variable.reference_range.high if variable.reference_range else None
        if isinstance(recorded, str):
            mapped = variable.value_map.get(recorded.strip().casefold())
            if mapped is None:
                return Measurement(observation.date, recorded, observation.unit, None, None, None,
                                   f"{recorded!r} is not a value of {variable.label}")
            number, unit = mapped, variable.unit
        else:
            number = recorded
        uln_multiple = None
        if observation.reference_range is not None and observation.reference_range.high:
            uln_multiple = number / observation.reference_range.high
        if unit is None:
            return Measurement(observation.date, recorded, observation.unit, None, uln_multiple, None,
                               f"no unit given (expected {variable.unit})")
        conversion = units().conversion(unit, variable.unit or unit, variable.molar_mass)
        if isinstance(conversion, UnitProblem):
            return Measurement(observation.date, recorded, observation.unit, None, uln_multiple, None, str(conversion))
        shown_unit = observation.unit or unit  # a score recorded without a unit is in points
        value = number * conversion.factor
        if conversion.factor != 1.0:
            value = round_significant(value, significant_digits(number))
        problem = None
        bounds = variable.plausible
        if bounds is not None and ((bounds.low is not None and value < bounds.low) or (bounds.high is not None and value > bounds.high)):
            problem = f"{number:g} {observation.unit or ''} is not a plausible {variable.label}".replace("  ", " ")
        return Measurement(observation.date, recorded, shown_unit, None if problem else value,
                           uln_multiple, assumed_uln if uln_multiple is None else None, problem, conversion.molar_mass)

    def _add_event(self, facts: Facts, entry: Condition | Medication | Procedure) -> None:
        variable = self.variable_for(entry.name, entry.code)
        if variable is None or variable.kind not in ("condition", "medication", "procedure"):
            facts.unmatched.append(entry.name)
            return
        if isinstance(entry, Condition):
            event = Event(entry.present, entry.onset, entry.diagnosed, entry.end, entry.name)
        elif isinstance(entry, Medication):
            event = Event(entry.present, entry.start, None, entry.end, entry.name)
        elif variable.timing == "current":  # an ongoing therapy: in use until its end
            event = Event(entry.present, entry.date, None, entry.end, entry.name)
        else:  # a one-off procedure happened on its date
            event = Event(entry.present, entry.date, None, entry.end or entry.date, entry.name)
        facts.events.setdefault(variable.id, []).append(event)
        related = self.vocab.broader.get(variable.id, ()) if event.present else self.vocab.narrower.get(variable.id, ())
        for other in related:
            facts.events.setdefault(other, []).append(event)


_builder: FactsBuilder | None = None


def facts_of(patient: Patient) -> Facts:
    """The patient's facts, built on first use and kept on the patient."""
    global _builder
    facts = patient._facts
    if facts is None:
        if _builder is None:
            _builder = FactsBuilder()
        facts = _builder.build(patient)
        patient._facts = facts
    return facts
