"""The patient record (contract section 2): pydantic models and a loader with JSON-path errors.

Absent fields mean *not known*. ``"present": false`` on a condition, medication or
procedure asserts its absence; without it, an entry's absence proves nothing.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, StrictFloat, StrictInt, ValidationError, model_validator

from .errors import InputError, PatientRecordError

MAX_RECORD_BYTES = 20 * 1024 * 1024
"""A patient record larger than this is refused (real records are kilobytes)."""


class _Entry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False, str_strip_whitespace=True)


class Code(_Entry):
    system: str
    code: str


class ReferenceRange(_Entry):
    low: float | None = None
    high: float | None = None


class Observation(_Entry):
    """A measurement, score or categorical finding."""

    name: str = Field(min_length=1)
    value: StrictInt | StrictFloat | str  # strict: JSON true/false is not a number
    unit: str | None = None
    date: dt.date | None = None
    reference_range: ReferenceRange | None = None
    code: Code | None = None


class Condition(_Entry):
    name: str = Field(min_length=1)
    present: bool = True
    onset: dt.date | None = None
    diagnosed: dt.date | None = None
    end: dt.date | None = None
    code: Code | None = None


class Medication(_Entry):
    name: str = Field(min_length=1)
    present: bool = True
    start: dt.date | None = None
    end: dt.date | None = None
    code: Code | None = None


class Procedure(_Entry):
    """A procedure on ``date``; an ongoing one (ventilation, dialysis) may carry an ``end``."""

    name: str = Field(min_length=1)
    present: bool = True
    date: dt.date | None = None
    end: dt.date | None = None
    code: Code | None = None


class Patient(_Entry):
    """One patient's record, as in the contract's section 2.

    >>> p = Patient.model_validate({"id": "P1", "age": 50, "sex": "female"})
    >>> p.sex
    'female'
    """

    id: str = Field(min_length=1)
    birth_date: dt.date | None = None
    age: float | None = Field(default=None, ge=0, le=130)
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
        return json.loads(raw)
    except json.JSONDecodeError as error:
        raise error_type(f"invalid JSON: {error.msg}", source=source, line=error.lineno, column=error.colno) from None
    except RecursionError:
        raise error_type("invalid JSON: nested too deeply", source=source) from None


def patient_from_data(data: Any, source: str = "<patient>") -> Patient:
    if not isinstance(data, dict):
        raise PatientRecordError("a patient record is a JSON object", source=source, path="$")
    try:
        return Patient.model_validate(data)
    except ValidationError as error:
        raise validation_error(error, source, data=data) from None


def load_patient(path: str | Path) -> Patient:
    """Read a patient record from a JSON file (clear errors with file, line or JSON path)."""
    source = str(path)
    try:
        file_path = Path(path)
        if file_path.stat().st_size > MAX_RECORD_BYTES:
            raise PatientRecordError(f"larger than {MAX_RECORD_BYTES // (1024 * 1024)} MB", source=source)
        raw = file_path.read_bytes()
    except OSError as error:
        raise PatientRecordError(error.strerror or "cannot be read", source=source) from None
    return patient_from_data(parse_json_text(raw, source), source)
