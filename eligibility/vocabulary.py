"""The vocabulary: the variables criteria and records speak of, loaded from ``rules/vocabulary.yaml``.

Names are matched case-insensitively through synonyms ("creatinine", "serum creatinine" and
"SCr" are one variable); record entries may also match by code (LOINC, SNOMED CT, ICD-10,
RxNorm), which is tried first.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import VocabularyError
from .resources import data_file, load_yaml_data
from .units import unit_key, units

VariableKind = Literal["demographic", "lab", "score", "vital", "category", "condition", "medication", "procedure"]
MEASURED_KINDS = frozenset({"lab", "score", "vital"})
EVENT_KINDS = frozenset({"condition", "medication", "procedure"})

_SEPARATORS = re.compile(r"[\s_\-–—‐]+")
_QUOTES = str.maketrans({"’": "'"})


def name_key(name: str) -> str:
    """The lookup form of a name: casefolded, without spaces or hyphens.

    "ALS-FRS", "ALS FRS" and "ALSFRS" are one name, as the grammar's name terminal reads them.
    """
    return _SEPARATORS.sub("", name.translate(_QUOTES)).casefold()


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Code(_Frozen):
    system: str
    code: str
    display: str | None = None
    source: str | None = None


class Bounds(_Frozen):
    low: float | None = None
    high: float | None = None
    source: str | None = None


class CategoryValue(_Frozen):
    value: str
    synonyms: tuple[str, ...] = ()


class Variable(_Frozen):
    """One variable: what it is called, what kind of thing it is, and how it is measured."""

    id: str
    label: str
    kind: VariableKind
    synonyms: tuple[str, ...] = ()
    unit: str | None = None
    molar_mass: float | None = Field(default=None, gt=0)
    molar_mass_source: str | None = None
    unit_aliases: dict[str, str] = Field(default_factory=dict)
    reference_range: Bounds | None = None
    plausible: Bounds | None = None
    codes: tuple[Code, ...] = ()
    values: tuple[CategoryValue, ...] = ()
    value_map: dict[str, float] = Field(default_factory=dict)
    applies_to: Literal["female", "male"] | None = None
    timing: Literal["current", "ever"] | None = None  # what "presence" means when the text does not say
    includes: tuple[str, ...] = ()
    unit_implied: bool = False  # by convention written without a unit (BMI, blood pressure)  # narrower variables: "alcohol abuse" is a "substance abuse"


    @property
    def is_measured(self) -> bool:
        return self.kind in MEASURED_KINDS

    def record_unit(self, written: str | None) -> str | None:
        """How this variable reads a unit as written on a record ("%" for FVC is % predicted)."""
        if written is None or not written.strip():
            if self.kind == "score":
                return "point"
            return self.unit if self.unit_implied or self.unit == "1" else None
        for alias, meaning in self.unit_aliases.items():
            if unit_key(alias) == unit_key(written):
                return meaning
        return written


class Vocabulary:
    """All variables, indexed by id, by normalised name and by (system, code)."""

    def __init__(self, variables: list[Variable]):
        self.variables = {v.id: v for v in variables}
        self._by_name: dict[str, Variable] = {}
        self._written_names: set[str] = set()
        self._by_code: dict[tuple[str, str], Variable] = {}
        self._category_values: dict[str, dict[str, str]] = {}
        self.broader: dict[str, tuple[str, ...]] = {}
        self.narrower: dict[str, tuple[str, ...]] = {}
        for variable in variables:
            for name in (variable.id.replace("_", " "), variable.label, *variable.synonyms):
                self._index_name(name, variable)
            for code in variable.codes:
                self._by_code[(code.system.casefold(), code.code.casefold())] = variable
            if variable.values:
                self._category_values[variable.id] = {
                    name_key(name): value.value
                    for value in variable.values
                    for name in (value.value, *value.synonyms)
                }

        self._index_hierarchy()

    def _index_hierarchy(self) -> None:
        """``includes`` closed transitively both ways: a present child makes its parents present,
        an absent parent makes its children absent."""
        direct = {v.id: v.includes for v in self.variables.values()}
        for variable_id, children in direct.items():
            for child in children:
                if child not in direct:
                    raise VocabularyError(f"rules/vocabulary.yaml: {variable_id} includes unknown variable {child}")

        def below(variable_id: str, seen: tuple[str, ...] = ()) -> list[str]:
            if variable_id in seen:
                raise VocabularyError(f"rules/vocabulary.yaml: 'includes' loops through {variable_id}")
            found: list[str] = []
            for child in direct[variable_id]:
                found += [child, *below(child, (*seen, variable_id))]
            return list(dict.fromkeys(found))

        for variable_id in direct:
            self.narrower[variable_id] = tuple(below(variable_id))
        parents: dict[str, list[str]] = {}
        for variable_id, children in self.narrower.items():
            for child in children:
                parents.setdefault(child, []).append(variable_id)
        self.broader = {child: tuple(ids) for child, ids in parents.items()}

    def _index_name(self, name: str, variable: Variable) -> None:
        key = name_key(name)
        self._written_names.add(name.strip().casefold())
        other = self._by_name.get(key)
        if other is not None and other.id != variable.id:
            raise VocabularyError(f"rules/vocabulary.yaml: {name!r} names both {other.id} and {variable.id}")
        self._by_name[key] = variable

    def __getitem__(self, variable_id: str) -> Variable:
        return self.variables[variable_id]

    def __contains__(self, variable_id: object) -> bool:
        return variable_id in self.variables

    def by_name(self, name: str) -> Variable | None:
        return self._by_name.get(name_key(name))

    def by_code(self, system: str, code: str) -> Variable | None:
        return self._by_code.get((_system_key(system), code.strip().casefold()))

    def names(self) -> list[str]:
        """Every name the vocabulary knows as written, longest first (what a criterion can mention)."""
        return sorted(self._written_names, key=len, reverse=True)

    def category_value(self, variable_id: str, written: str) -> str | None:
        """The canonical category value a written value means, if any."""
        return self._category_values.get(variable_id, {}).get(name_key(written))


_SYSTEM_ALIASES = {
    "http://loinc.org": "loinc",
    "http://snomed.info/sct": "snomed",
    "http://hl7.org/fhir/sid/icd-10": "icd10",
    "http://hl7.org/fhir/sid/icd-10-cm": "icd10",
    "http://www.nlm.nih.gov/research/umls/rxnorm": "rxnorm",
    "snomed ct": "snomed",
    "snomedct": "snomed",
    "icd-10": "icd10",
    "icd-10-cm": "icd10",
}


def _system_key(system: str) -> str:
    key = system.strip().casefold()
    return _SYSTEM_ALIASES.get(key, key)


@cache
def vocabulary() -> Vocabulary:
    """The vocabulary of ``rules/vocabulary.yaml``, loaded and checked once."""
    path = data_file("rules", "vocabulary.yaml")
    raw = load_yaml_data(path)  # from a JSON copy when there is one: YAML parsing is ~50 ms
    variables = []
    for variable_id, fields in raw["variables"].items():
        try:
            variable = Variable(id=variable_id, **fields)
        except ValidationError as error:
            raise VocabularyError(f"{path.name}: variable {variable_id}: {error}") from None
        if variable.unit is not None and not units().is_known(variable.unit):
            raise VocabularyError(f"{path.name}: variable {variable_id}: unit {variable.unit!r} is not in units.yaml")
        variables.append(variable)
    return Vocabulary(variables)
