"""The patient record (contract section 2): pydantic models and a loader with JSON-path errors.

Absent fields mean *not known*. ``"present": false`` on a condition, medication or
procedure asserts its absence; without it, an entry's absence proves nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (BaseModel, BeforeValidator, ConfigDict, Field, PrivateAttr, StrictBool, StrictFloat, StrictInt,
                      ValidationError, model_validator)

from .errors import InputError, PatientRecordError

MAX_RECORD_BYTES = 20 * 1024 * 1024
"""A patient record larger than this is refused (real records are kilobytes)."""

MAX_NESTING = 64
"""JSON (or YAML) input nested deeper than this is refused: records nest 4 levels, registry records 6."""

_NUMERIC_TEXT = re.compile(r"\s*[-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?\s*")


def _date_written_as_date(value: Any) -> Any:
    """A date is ISO 8601 text ("2026-01-15"): pydantic would read a number, or a string of
    digits, as seconds since 1970, so that ``"birth_date": 0`` became 1970-01-01."""
    if type(value) is str and value[4:5] == "-" and value[:4].isdecimal():  # "2026-01-15": cannot be a number
        return value
    if isinstance(value, (int, float)) or (isinstance(value, str) and _NUMERIC_TEXT.fullmatch(value)):
        raise ValueError(f"a date is written as text such as '2026-01-15', not as the number {value!r}")
    return value


def _number_written_as_number(value: Any) -> Any:
    """A number is a JSON number: not text ("50") and not true/false, which pydantic would convert."""
    if isinstance(value, (str, bool)):
        raise ValueError(f"Input should be a number, not {type(value).__name__} {value!r}")
    return value


def _finite_number(value: Any) -> Any:
    """An integer too large for a float (``1e400`` written out) is not a measurement."""
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            float(value)
        except OverflowError:
            raise ValueError("Input should be a finite number (this one is too large)") from None
    return value


Date = Annotated[dt.date, BeforeValidator(_date_written_as_date)]
Number = Annotated[float, BeforeValidator(_number_written_as_number)]


class _Entry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False, str_strip_whitespace=True)


class Code(_Entry):
    system: str
    code: str


class ReferenceRange(_Entry):
    low: Number | None = None
    high: Number | None = None


class Observation(_Entry):
    """A measurement, score or categorical finding."""

    name: str = Field(min_length=1)
    value: Annotated[StrictInt | StrictFloat | str, BeforeValidator(_finite_number)]  # strict: JSON true/false is not a number
    unit: str | None = None
    date: Date | None = None
    reference_range: ReferenceRange | None = None
    code: Code | None = None


class Condition(_Entry):
    name: str = Field(min_length=1)
    present: StrictBool = True
    onset: Date | None = None
    diagnosed: Date | None = None
    end: Date | None = None
    code: Code | None = None


class Medication(_Entry):
    name: str = Field(min_length=1)
    present: StrictBool = True
    start: Date | None = None
    end: Date | None = None
    code: Code | None = None


class Procedure(_Entry):
    """A procedure on ``date``; an ongoing one (ventilation, dialysis) may carry an ``end``."""

    name: str = Field(min_length=1)
    present: StrictBool = True
    date: Date | None = None
    end: Date | None = None
    code: Code | None = None


class Patient(_Entry):
    """One patient's record, as in the contract's section 2.

    >>> p = Patient.model_validate({"id": "P1", "age": 50, "sex": "female"})
    >>> p.sex
    'female'
    """

    id: str = Field(min_length=1)
    birth_date: Date | None = None
    age: Number | None = Field(default=None, ge=0, le=130)
    sex: Literal["male", "female"]
    observations: tuple[Observation, ...] = ()
    conditions: tuple[Condition, ...] = ()
    medications: tuple[Medication, ...] = ()
    procedures: tuple[Procedure, ...] = ()

    _facts: Any = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _needs_age(self) -> Patient:
        if self.birth_date is None and self.age is None:
            raise ValueError("the record needs birth_date or age")
        return self


def json_path(location: tuple[int | str, ...]) -> str:
    """pydantic's error location as a JSON path: ``$.observations[2].value``."""
    path = "$"
    for part in location:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def validation_error(error: ValidationError, source: str, error_type: type[InputError] = PatientRecordError,
                     data: Any = None) -> InputError:
    """The first problem of a pydantic error, as our error with its JSON path into ``data``."""
    located = [(_input_location(data, e["loc"], missing=e["type"] == "missing"), e["msg"].removeprefix("Value error, "))
               for e in error.errors()]
    location = located[0][0]
    # every member of a union fails at one place: one problem, "a valid integer or a valid string"
    messages = list(dict.fromkeys(msg for where, msg in located if where == location))
    message = messages[0] + "".join(" or " + msg.removeprefix("Input should be ") for msg in messages[1:])
    more = len({where for where, _ in located}) - 1
    if more:
        message += f" (and {more} more problem{'s' if more > 1 else ''})"
    return error_type(message, source=source, path=json_path(location))


def _input_location(data: Any, location: tuple[int | str, ...], missing: bool) -> tuple[int | str, ...]:
    """The part of pydantic's error location found in the input.

    pydantic also names the union member or tag that failed ("float", "comparison"): those are
    not in the record, so they are left out; a missing field is kept as the last step.
    """
    kept: list[int | str] = []
    node = data
    for index, part in enumerate(location):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        elif not (missing and index == len(location) - 1):
            continue
        kept.append(part)
    return tuple(kept)


def parse_json_text(raw: bytes | str, source: str, error_type: type[InputError] = PatientRecordError) -> Any:
    """Decode JSON text, reporting line and column of a syntax error."""
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            raise error_type(f"not UTF-8 text (byte {error.start})", source=source) from None
    if not raw.strip():
        raise error_type("the file is empty", source=source)
    try:
        data = json.loads(raw, object_pairs_hook=_object_without_repeated_keys)
    except _RepeatedKey as repeated:
        raise error_type(f"invalid JSON: the key {repeated.args[0]!r} appears twice in one object (which one holds?)",
                         source=source) from None
    except json.JSONDecodeError as error:
        raise error_type(f"invalid JSON: {error.msg}", source=source, line=error.lineno, column=error.colno) from None
    except RecursionError:
        raise error_type(f"invalid JSON: nested deeper than {MAX_NESTING} levels", source=source) from None
    except ValueError as error:  # an integer of more than 4,300 digits
        raise error_type(f"invalid JSON: {str(error).split(':')[0].lower()}", source=source) from None
    check_nesting(data, source, error_type)
    return data


class _RepeatedKey(Exception):
    pass


def _object_without_repeated_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object; ``{"sex": "female", ..., "sex": "male"}`` is refused, not read as its last value."""
    data = dict(pairs)
    if len(data) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _RepeatedKey(key)
            seen.add(key)
    return data


def check_nesting(data: Any, source: str, error_type: type[InputError] = PatientRecordError, max_values: int | None = None) -> None:
    """Refuse data nested deeper than MAX_NESTING, or (YAML aliases) holding more than ``max_values`` values.

    Walked without recursion, so any depth is safe to check; the path names the first place too deep.
    """
    stack: list[tuple[Any, tuple[int | str, ...]]] = [(data, ())]
    values = 0
    while stack:
        node, location = stack.pop()
        values += 1
        if max_values is not None and values > max_values:
            raise error_type(f"more than {max_values:,} values (YAML aliases expanding?)", source=source, path="$")
        if isinstance(node, (dict, list)):
            if len(location) >= MAX_NESTING:
                raise error_type(f"nested deeper than {MAX_NESTING} levels", source=source, path=json_path(location[:8]) + "...")
            children = node.items() if isinstance(node, dict) else enumerate(node)
            stack.extend((child, (*location, key if isinstance(key, int) else str(key))) for key, child in children)


def patient_from_data(data: Any, source: str = "<patient>") -> Patient:
    if not isinstance(data, dict):
        raise PatientRecordError("a patient record is a JSON object", source=source, path="$")
    try:
        return Patient.model_validate(data)
    except ValidationError as error:
        raise validation_error(error, source, data=data) from None


def load_patient(path: str | Path) -> Patient:
    """Read a patient record from a JSON file (clear errors with file, line or JSON path).

    The file is the native record or a FHIR R4 Bundle, told apart by content (``resourceType``).
    """
    source = str(path)
    try:
        file_path = Path(path)
        if file_path.stat().st_size > MAX_RECORD_BYTES:
            raise PatientRecordError(f"larger than {MAX_RECORD_BYTES // (1024 * 1024)} MB", source=source)
        raw = file_path.read_bytes()
    except OSError as error:
        raise PatientRecordError(error.strerror or "cannot be read", source=source) from None
    data = parse_json_text(raw, source)
    if isinstance(data, dict) and "resourceType" in data:  # FHIR: eligibility/fhir.py reads it
        from .fhir import patient_from_fhir

        return patient_from_fhir(data, source)
    return patient_from_data(data, source)
