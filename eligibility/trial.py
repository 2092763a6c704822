"""The trial model and rule files: criteria with their source text and predicates.

A rule file (JSON or YAML, as ``eligibility compile`` writes it) is the reviewed form of a
trial: loading it back gives the same trial, and a predicate edited by hand is screened as
written.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .errors import RuleFileError
from .patient import validation_error
from .predicates import Predicate, PredicateNode

CriterionKind = Literal["inclusion", "exclusion"]


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


def trial_from_rule_data(data: object, source: str = "<rule file>") -> Trial:
    if not isinstance(data, dict) or "criteria" not in data:
        raise RuleFileError("a rule file is a mapping with 'trial' and 'criteria'", source=source, path="$")
    try:
        return Trial.model_validate(data)
    except ValidationError as error:
        raise validation_error(error, source, RuleFileError, data) from None


def load_rule_text(text: str, source: str) -> Trial:
    """Read a rule file's text, JSON or YAML (safe loader only)."""
    try:
        data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        raise RuleFileError(f"invalid YAML/JSON: {getattr(error, 'problem', None) or error}", source=source,
                            line=mark.line + 1 if mark else None, column=mark.column + 1 if mark else None) from None
    return trial_from_rule_data(data, source)


def predicate_of(criterion: Criterion) -> PredicateNode | None:
    return criterion.predicate


def write_rule_file(trial: Trial, path: Path) -> None:
    path.write_text(trial.to_rule_file("json" if path.suffix == ".json" else "yaml"), encoding="utf-8")
