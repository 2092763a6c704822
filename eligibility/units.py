"""Units: written unit text -> dimension and scale, resolved once, compared as floats.

pint is the authority for every factor, but importing it and building its registry costs
about half a second, too much for a command-line screening. So the spellings in
``rules/units.yaml`` are resolved by pint ahead of time into ``rules/unit_table.json``
(``python -m eligibility.units`` rewrites it; a test checks it against pint), and pint is
imported only for a spelling the table does not hold.
"""

from __future__ import annotations

import json
import math
import re
import threading
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any


from .resources import data_file, load_yaml_data

_KEY_REPLACEMENTS = str.maketrans({"µ": "u", "μ": "u", "²": "^2", "³": "^3", "×": "x", "−": "-"})
_WHITESPACE = re.compile(r"\s+")
# Written units the table may not list but pint reads once spelled its way: 10^9 -> 10**9.
_POWER = re.compile(r"\^")
# UCUM writes powers of ten as "10*6" (10^6), never as a product: "10*6/mL" is 10^6 per mL
_UCUM_POWER_OF_TEN = re.compile(r"(?<![\d.*])10\*(?=[-+]?\d)")
MAX_UNIT_LENGTH = 40
"""A written unit longer than this is not read (the longest real ones, "mL/min/1.73 m2", are 15)."""
# pint evaluates powers with Python integers: "10^10^10" or "9^99999999" would compute for ever.
# A unit has one small exponent per factor.
_UNSAFE_POWER = re.compile(r"\*\*\s*[-+(]*\s*\d{3,}|\*\*[^*/]*\*\*")


def unit_key(written: str) -> str:
    """The lookup form of a written unit: lowercase, no spaces, µ as u, ² as ^2."""
    return _WHITESPACE.sub("", written.translate(_KEY_REPLACEMENTS)).casefold()


@dataclass(frozen=True, slots=True)
class UnitInfo:
    """A unit's physical dimension and the size of one unit in pint's base units."""

    dimension: str
    scale: float


@dataclass(frozen=True, slots=True)
class Conversion:
    """Multiply a value by ``factor`` to express it in the target unit."""

    factor: float
    molar_mass: float | None = None  # set when the conversion went through a molar mass


class UnitProblem(str):
    """Why a unit cannot be converted (a reason, for an ``unknown`` verdict or a compile note)."""


_MASS_CONCENTRATION = "[mass] / [length] ** 3"
_SUBSTANCE_CONCENTRATION = "[substance] / [length] ** 3"


class UnitTable:
    """The units this engine reads, with conversion factors cached per unit pair."""

    def __init__(self, spellings: dict[str, str], definitions: list[str], table: dict[str, UnitInfo]):
        self._spellings = spellings
        self._definitions = definitions
        self._table = dict(table)
        self._conversions: dict[tuple[str | None, str, float | None], Conversion | UnitProblem] = {}
        self._lock = threading.Lock()
        self._registry: Any = None

    @classmethod
    def from_rules(cls) -> UnitTable:
        spec = load_yaml_data(data_file("rules", "units.yaml"))
        table_path = data_file("rules", "unit_table.json")
        raw = json.loads(table_path.read_text(encoding="utf-8")) if table_path.exists() else {}
        table = {key: UnitInfo(dim, scale) for key, (dim, scale) in raw.items()}
        spellings = {unit_key(k): v for k, v in spec["spellings"].items()}
        return cls(spellings, spec["definitions"], table)

    def info(self, written: str) -> UnitInfo | None:
        """Dimension and scale of a written unit, or None when it is not a unit we can read."""
        key = unit_key(written)
        found = self._table.get(key)
        if found is None and key not in self._table:
            found = self._resolve_with_pint(written)
            with self._lock:
                self._table[key] = found  # type: ignore[assignment]  # None caches a miss
        return found

    def spelling_keys(self) -> list[str]:
        """Every unit spelling listed in rules/units.yaml, in lookup form."""
        return list(self._spellings)

    def is_known(self, written: str) -> bool:
        return self.info(written) is not None

    def convert(self, value: float, from_unit: str | None, to_unit: str, molar_mass: float | None = None) -> float | UnitProblem:
        conversion = self.conversion(from_unit, to_unit, molar_mass)
        if isinstance(conversion, UnitProblem):
            return conversion
        return value * conversion.factor

    def conversion(self, from_unit: str | None, to_unit: str, molar_mass: float | None = None) -> Conversion | UnitProblem:
        """How to turn a value in ``from_unit`` into ``to_unit`` (cached per unit pair)."""
        cache_key = (from_unit, to_unit, molar_mass)
        found = self._conversions.get(cache_key)
        if found is None:
            found = self._conversion(from_unit, to_unit, molar_mass)
            self._conversions[cache_key] = found
        return found

    def _conversion(self, from_unit: str | None, to_unit: str, molar_mass: float | None) -> Conversion | UnitProblem:
        if from_unit is None or not from_unit.strip():
            return UnitProblem(f"no unit given (expected {to_unit})")
        source, target = self.info(from_unit), self.info(to_unit)
        if source is None:
            return UnitProblem(f"unit {from_unit!r} is not a unit we can read")
        if target is None:
            raise ValueError(f"canonical unit {to_unit!r} is not in rules/units.yaml")
        if source.dimension == target.dimension:
            return Conversion(source.scale / target.scale)
        if molar_mass is not None:
            kg_per_mol = molar_mass / 1000.0
            if (source.dimension, target.dimension) == (_SUBSTANCE_CONCENTRATION, _MASS_CONCENTRATION):
                return Conversion(source.scale * kg_per_mol / target.scale, molar_mass)
            if (source.dimension, target.dimension) == (_MASS_CONCENTRATION, _SUBSTANCE_CONCENTRATION):
                return Conversion(source.scale / kg_per_mol / target.scale, molar_mass)
        return UnitProblem(f"{from_unit} cannot be converted to {to_unit}")

    # -- pint, only for spellings outside the table and for building the table ----------

    def _pint(self) -> Any:
        with self._lock:
            if self._registry is None:
                import pint

                registry: Any = pint.UnitRegistry(cache_folder=None)
                for definition in self._definitions:
                    registry.define(definition)
                self._registry = registry
            return self._registry

    def pint_info(self, expression: str) -> UnitInfo | None:
        """Resolve a pint expression; None when pint cannot read it as a unit."""
        registry = self._pint()
        try:
            with self._lock:
                quantity = registry.Quantity(registry.parse_expression(expression))
                base = quantity.to_base_units()
                dimension, magnitude = str(base.dimensionality), float(base.magnitude)
        except Exception:  # pint raises many types for unreadable text; all mean "not a unit"
            return None
        if not math.isfinite(magnitude) or magnitude <= 0:
            return None
        return UnitInfo(dimension, magnitude)

    def _resolve_with_pint(self, written: str) -> UnitInfo | None:
        spelled = self._spellings.get(unit_key(written))
        if spelled is not None:
            return self.pint_info(spelled)
        if not re.fullmatch(r"[A-Za-z0-9/^*.() µμ]+", written) or written.strip().isdigit() or len(written) > MAX_UNIT_LENGTH:
            return None
        expression = _UCUM_POWER_OF_TEN.sub("10**", _POWER.sub("**", written.strip()))
        if _UNSAFE_POWER.search(expression):
            return None
        return self.pint_info(expression)

    def build_table(self) -> dict[str, UnitInfo]:
        """Every spelling in rules/units.yaml resolved by pint (what unit_table.json holds)."""
        resolved = {}
        for key, expression in self._spellings.items():
            info = self.pint_info(expression)
            if info is None:
                raise ValueError(f"rules/units.yaml: pint cannot read {expression!r} (for {key!r})")
            resolved[key] = info
        return resolved


MIN_SIGNIFICANT_DIGITS = 3
MAX_SIGNIFICANT_DIGITS = 12
"""Digits past this are float noise of the conversion itself (0.22 mg/dL read back from umol/L)."""


def significant_digits(value: float) -> int:
    """How many significant digits a recorded number shows (176.8 -> 4, 1.1 -> 2)."""
    text = repr(float(value)).lower()
    if "e" in text:
        text = text.split("e")[0]
    digits = text.replace("-", "").replace(".", "").lstrip("0")
    if text.endswith(".0"):
        digits = digits[:-1]
    return max(len(digits.rstrip("0")) if "." not in text else len(digits), 1)


def round_significant(value: float, digits: int) -> float:
    """Round a converted value to the precision its recorded value had (3 to 12 digits).

    A conversion cannot add precision: 176.8 umol/L creatinine is 2.000 mg/dL, not 1.99996.
    """
    if value == 0 or not math.isfinite(value):
        return value
    digits = min(max(digits, MIN_SIGNIFICANT_DIGITS), MAX_SIGNIFICANT_DIGITS)
    return round(value, digits - 1 - int(math.floor(math.log10(abs(value)))))



def converted_digits(written: float, factor: float) -> int:
    """Significant digits a number converted from ``written`` (times ``factor``) keeps.

    As many as the written number shows (176.8 µmol/L is 2.000 mg/dL, not 1.99996), and more
    where the new unit is coarser than the written one, so the resolution written is kept
    (275 lb, to the pound, is 124.7 kg, not 125). Thresholds and records use the same rule, so
    a record written as the threshold is compares equal to it.
    """
    digits = significant_digits(written)
    converted = abs(written * factor)
    if converted == 0:
        return digits
    step = 10.0 ** (math.floor(math.log10(abs(written))) - digits + 1) * abs(factor)
    return max(digits, math.floor(math.log10(converted)) - math.floor(math.log10(step)) + 1)


def convert_written(written: float, factor: float) -> float:
    """``written`` times ``factor``, to the precision and resolution written (``converted_digits``)."""
    value = written * factor
    return value if factor == 1.0 else round_significant(value, converted_digits(written, factor))


@cache
def units() -> UnitTable:
    """The process-wide unit table, loaded once."""
    return UnitTable.from_rules()


def write_unit_table(path: Path | None = None) -> Path:
    """Regenerate ``rules/unit_table.json`` from ``rules/units.yaml`` with pint."""
    table = UnitTable.from_rules().build_table()
    target = path or data_file("rules", "units.yaml").with_name("unit_table.json")
    payload = {key: [info.dimension, info.scale] for key, info in sorted(table.items())}
    target.write_text(json.dumps(payload, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return target


if __name__ == "__main__":
    print(f"wrote {write_unit_table()}")
