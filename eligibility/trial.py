"""The trial model and rule files: criteria with their source text and predicates.

A rule file (JSON or YAML, as ``eligibility compile`` writes it) is the reviewed form of a
trial: loading it back gives the same trial, and a predicate edited by hand is screened as
written.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .errors import RuleFileError
from .patient import check_nesting, parse_json_text, validation_error
from .predicates import All, AnyOf, Category, Comparison, Duration, Implies, Not, Predicate, PredicateNode, Presence, Range
from .vocabulary import EVENT_KINDS, vocabulary

CriterionKind = Literal["inclusion", "exclusion"]

MAX_RULE_FILE_VALUES = 1_000_000
"""A rule file whose YAML aliases expand to more values than this is refused (real ones hold thousands)."""

_AGE_UNITS = frozenset({"day", "week", "month", "year"})
_DAYS = {"day": 1, "week": 7, "month": 31, "year": 366}
MAX_PERIOD_YEARS = 200
"""A longer window or duration is refused, as the compiler refuses it (transform.MAX_PERIOD_DAYS)."""


class Criterion(BaseModel):
    """One criterion: its text, and its predicate when the engine understood it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1)
    kind: CriterionKind
    text: str
    compiled: bool
    predicate: Predicate | None = None
    note: str | None = None
    reviewed: bool = False  # the predicate was written or checked by a person, not the grammar

    @model_validator(mode="after")
    def _compiled_means_predicate(self) -> Criterion:
        if self.compiled != (self.predicate is not None):
            raise ValueError("'compiled' is true exactly when there is a predicate")
        return self


class Trial(BaseModel):
    """A trial's criteria in order: registry age/sex first, then inclusion, then exclusion."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    trial: str
    title: str | None = None
    condition: str | None = None  # vocabulary id of the trial's condition ("the disease")
    healthy_volunteers: bool | None = None
    source: str | None = None
    criteria: tuple[Criterion, ...]

    @model_validator(mode="after")
    def _unique_ids(self) -> Trial:
        ids = [c.id for c in self.criteria]
        duplicated = sorted({i for i in ids if ids.count(i) > 1})
        if duplicated:
            raise ValueError(f"criterion ids repeat: {', '.join(duplicated)}")
        return self

    def summary(self) -> str:
        compiled = sum(c.compiled for c in self.criteria)
        return f"{compiled}/{len(self.criteria)} criteria compiled"

    def to_rule_file(self, fmt: Literal["json", "yaml"] = "yaml") -> str:
        """The rule file text (round trip: ``trial_from_rule_data`` reads it back equal)."""
        data = self.model_dump(mode="json", exclude_none=True)
        if fmt == "json":
            return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
        return yaml.dump(data, Dumper=_RuleFileDumper, sort_keys=False, allow_unicode=True, width=100)


class _RuleFileDumper(yaml.SafeDumper):  # type: ignore[misc, unused-ignore]  # (yaml without stubs is Any)
    """PyYAML writes U+0085 (NEL, a mis-decoded "..." in scraped text) raw inside single quotes
    and reads it back as a line break; a string holding it is double-quoted, where it is escaped."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style='"' if "\x85" in value else None)


_RuleFileDumper.add_representer(str, _represent_str)


def trial_from_rule_data(data: object, source: str = "<rule file>", *, check_vocabulary: bool = True) -> Trial:
    """A rule file's data as a Trial, each predicate checked against the vocabulary.

    A hand edit that would screen wrongly is refused: an unknown variable, a threshold in
    another unit than the variable's own, a non-finite number, no criteria at all.
    ``check_vocabulary=False`` checks the structure only (for tests of arbitrary trees).
    """
    if not isinstance(data, dict) or "criteria" not in data:
        raise RuleFileError("a rule file is a mapping with 'trial' and 'criteria'", source=source, path="$")
    check_nesting(data, source, RuleFileError, max_values=MAX_RULE_FILE_VALUES)
    try:
        trial = Trial.model_validate(data)
    except ValidationError as error:
        raise validation_error(error, source, RuleFileError, data) from None
    if not trial.criteria:
        raise RuleFileError("the rule file lists no criteria (a trial without criteria would screen everyone eligible)",
                            source=source, path="$.criteria")
    for index, criterion in enumerate(trial.criteria if check_vocabulary else ()):
        if criterion.predicate is not None:
            for path, problem in _predicate_problems(criterion.predicate, f"$.criteria[{index}].predicate"):
                raise RuleFileError(problem, source=source, path=path)
    return trial


def _predicate_problems(node: PredicateNode, path: str) -> Iterator[tuple[str, str]]:
    """Where a predicate would not screen as written: (JSON path, what is wrong and what is expected)."""
    vocab = vocabulary()
    if isinstance(node, (All, AnyOf)):
        for index, item in enumerate(node.items):
            yield from _predicate_problems(item, f"{path}.items[{index}]")
        return
    if isinstance(node, Not):
        yield from _predicate_problems(node.item, f"{path}.item")
        return
    if isinstance(node, Implies):
        yield from _predicate_problems(node.condition, f"{path}.condition")
        yield from _predicate_problems(node.then, f"{path}.then")
        return
    variable_id = getattr(node, "variable", None)
    if variable_id is None:  # sex, manual
        return
    if variable_id not in vocab:
        yield f"{path}.variable", f"unknown variable {variable_id!r}: expected a variable id of rules/vocabulary.yaml"
        return
    variable = vocab[variable_id]
    numbers = {"value": getattr(node, "value", None), "low": getattr(node, "low", None), "high": getattr(node, "high", None)}
    for period_field in ("within", "period"):
        period = getattr(node, period_field, None)
        if period is not None:
            numbers[f"{period_field}.amount"] = period.amount
            if math.isfinite(period.amount) and period.amount * _DAYS[period.unit] > MAX_PERIOD_YEARS * 366:
                yield f"{path}.{period_field}.amount", f"{period} is longer than {MAX_PERIOD_YEARS} years"
    for field, number in numbers.items():
        if number is not None and not math.isfinite(number):
            yield f"{path}.{field}", f"{number} is not a finite number"
    if isinstance(node, (Comparison, Range)):
        if variable_id == "age":
            if node.unit not in _AGE_UNITS:
                yield f"{path}.unit", f"unit {node.unit!r} is not an age unit: expected one of {', '.join(sorted(_AGE_UNITS))}"
        elif not variable.is_measured:
            yield f"{path}.variable", f"{variable_id!r} is a {variable.kind}, not a measured value: expected a lab, score or vital"
        elif node.unit not in (variable.unit, "x ULN"):
            yield f"{path}.unit", (f"unit {node.unit!r} is not the unit of {variable.label}: write the threshold in "
                                   f"{variable.unit!r} (or 'x ULN')")
    elif isinstance(node, Category):
        allowed = [value.value for value in variable.values]
        if not allowed:
            yield f"{path}.variable", f"{variable_id!r} has no categories: expected a categorical variable"
        for index, value in enumerate(node.values):
            if allowed and value not in allowed:
                yield f"{path}.values[{index}]", f"{value!r} is not a category of {variable.label}: expected one of {allowed}"
    elif isinstance(node, (Presence, Duration)) and variable.kind not in EVENT_KINDS:
        yield f"{path}.variable", f"{variable_id!r} is a {variable.kind}: expected a condition, medication or procedure"


def load_rule_text(text: str, source: str, *, check_vocabulary: bool = True) -> Trial:
    """Read a rule file's text, JSON or YAML (safe loader only)."""
    if text.lstrip().startswith("{"):  # JSON: read as JSON (YAML refuses the control characters JSON may hold)
        return trial_from_rule_data(parse_json_text(text, source, RuleFileError), source, check_vocabulary=check_vocabulary)
    try:
        data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        raise RuleFileError(f"invalid YAML/JSON: {getattr(error, 'problem', None) or error}", source=source,
                            line=mark.line + 1 if mark else None, column=mark.column + 1 if mark else None) from None
    except RecursionError:  # the pure-Python loader, on deeply nested text
        raise RuleFileError("invalid YAML/JSON: nested too deeply", source=source) from None
    except (ValueError, TypeError, AttributeError) as error:  # a tagged or implicit value PyYAML cannot build: "2026-02-30"
        raise RuleFileError(f"invalid YAML: a value cannot be read ({error})", source=source) from None
    return trial_from_rule_data(data, source, check_vocabulary=check_vocabulary)


def predicate_of(criterion: Criterion) -> PredicateNode | None:
    return criterion.predicate


def write_rule_file(trial: Trial, path: Path) -> None:
    path.write_text(trial.to_rule_file("json" if path.suffix == ".json" else "yaml"), encoding="utf-8")
