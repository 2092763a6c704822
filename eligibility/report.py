"""Evaluation -> screening report (contract section 3), and the terminal table.

Per criterion: the predicate's truth becomes a verdict (for an exclusion criterion the
excluding condition being present is a fail), and the overall result follows from them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict

from .evaluate import Evaluator, Planner, Result, Screening, Truth
from .facts import Facts, facts_of
from .patient import Patient
from .trial import Criterion, Trial

Verdict = Literal["pass", "fail", "unknown"]
Overall = Literal["eligible", "ineligible", "needs_review"]


class CriterionResult(BaseModel):
    """One criterion's verdict with the reason, the evidence and what would decide it."""

    model_config = ConfigDict(frozen=True)

    id: str
    kind: Literal["inclusion", "exclusion"]
    text: str
    compiled: bool
    verdict: Verdict
    reason: str
    evidence: list[dict[str, Any]] = []
    missing: list[str] = []
    note: str | None = None


class Report(BaseModel):
    """A patient screened against a trial on a date."""

    model_config = ConfigDict(frozen=True)

    trial: str
    patient: str
    as_of: dt.date
    overall: Overall
    healthy_volunteers: bool | None = None
    criteria: list[CriterionResult]

    def to_json(self) -> str:
        return self.model_dump_json(indent=2, exclude_none=True)


def overall_of(verdicts: list[str]) -> Overall:
    if "fail" in verdicts:
        return "ineligible"
    return "eligible" if all(v == "pass" for v in verdicts) else "needs_review"


_Model = TypeVar("_Model", bound=BaseModel)
_SET_DICT = BaseModel.__dict__["__dict__"].__set__  # the slots pydantic's own constructors fill
_SET_FIELDS_SET = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_SET_EXTRA = BaseModel.__dict__["__pydantic_extra__"].__set__
_SET_PRIVATE = BaseModel.__dict__["__pydantic_private__"].__set__
_RESULT_FIELDS = set(CriterionResult.model_fields)
_new = object.__new__


def _trusted_constructor(model: type[_Model]) -> Callable[[dict[str, Any]], _Model]:
    """``model.model_construct(**values)`` for values that name every field, in a fifth of the
    time: a screening makes one model per criterion, and ``model_construct`` spends most of its
    time matching aliases and defaults. The fields-set is shared: the models are frozen, and
    pydantic copies the set before changing it (``model_copy``). ``TrialScreener.screen`` does
    the same for each criterion's result inline, without a call."""
    fields_set = set(model.model_fields)

    def construct(values: dict[str, Any]) -> _Model:
        instance = _new(model)
        _SET_DICT(instance, values)
        _SET_FIELDS_SET(instance, fields_set)
        _SET_EXTRA(instance, None)
        _SET_PRIVATE(instance, None)
        return instance

    return construct


_report = _trusted_constructor(Report)

_VERDICTS: dict[str, dict[Truth, Verdict]] = {
    "inclusion": {True: "pass", False: "fail", None: "unknown"},
    "exclusion": {True: "fail", False: "pass", None: "unknown"},  # the excluding condition holds: fail
}


def _kept_for_review(criterion: Criterion) -> Evaluator:
    result: Result = (None, f"kept for manual review ({criterion.note or 'not compiled'})", (), ("manual review",))

    def evaluate(facts: Facts, screening: Screening) -> Result:
        return result

    return evaluate


_SCREENINGS_KEPT = 64
"""Screening dates (with the open / closed world flag) a TrialScreener keeps set up."""


class TrialScreener:
    """A trial with its predicates planned once, ready to screen many patients."""

    def __init__(self, trial: Trial, planner: Planner | None = None):
        planner = planner or Planner()
        self.trial = trial
        # per criterion: its evaluator (a constant for one kept as text), how a truth reads as
        # a verdict, and its result's fields in order, the screening's own left as None
        self._steps: list[tuple[Evaluator, dict[Truth, Verdict], dict[str, Any]]] = [
            (planner.evaluator(c.predicate) if c.predicate is not None else _kept_for_review(c), _VERDICTS[c.kind],
             {"id": c.id, "kind": c.kind, "text": c.text, "compiled": c.compiled,
              "verdict": None, "reason": None, "evidence": None, "missing": None, "note": c.note})
            for c in trial.criteria
        ]
        self._screenings: dict[tuple[dt.date, bool], Screening] = {}

    def _screening(self, as_of: dt.date, closed_world: bool) -> Screening:
        """The ``Screening`` of a date, kept: a batch screens many patients on one date, and its
        ISO text and window starts are the same for all of them. A Screening holds nothing of a
        patient, and two threads filling its window memo at once write the same dates."""
        key = (as_of, closed_world)
        screening = self._screenings.get(key)
        if screening is None:
            if len(self._screenings) >= _SCREENINGS_KEPT:
                self._screenings.clear()
            screening = self._screenings[key] = Screening(as_of, closed_world)
        return screening

    def screen(self, patient: Patient, as_of: dt.date | None = None, *, closed_world: bool = False) -> Report:
        screening = self._screening(as_of or dt.date.today(), closed_world)
        facts = facts_of(patient)
        results = []
        failed = undecided = False
        fields_set = _RESULT_FIELDS
        for evaluate, verdicts, fields in self._steps:
            truth, reason, evidence, missing = evaluate(facts, screening)
            verdict = verdicts[truth]
            if truth is None:
                undecided = True
            elif verdict == "fail":
                failed = True
            values = fields.copy()  # a copy of a dict of the same keys beats a literal of them
            values["verdict"] = verdict
            values["reason"] = reason
            values["evidence"] = [*evidence]
            values["missing"] = [*missing]
            result = _new(CriterionResult)  # as _trusted_constructor's construct, without a call per criterion
            _SET_DICT(result, values)
            _SET_FIELDS_SET(result, fields_set)
            _SET_EXTRA(result, None)
            _SET_PRIVATE(result, None)
            results.append(result)
        overall: Overall = "ineligible" if failed else "needs_review" if undecided else "eligible"
        return _report({"trial": self.trial.trial, "patient": patient.id, "as_of": screening.as_of, "overall": overall,
                        "healthy_volunteers": self.trial.healthy_volunteers, "criteria": results})


def screen(trial: Trial, patient: Patient, as_of: dt.date | None = None, *, closed_world: bool = False) -> Report:
    """Screen one patient against one trial on ``as_of`` (default: today).

    For many patients, make one ``TrialScreener(trial)`` and call its ``screen``.
    """
    return TrialScreener(trial).screen(patient, as_of, closed_world=closed_world)


_COLOURS = {"pass": "\033[32m", "fail": "\033[31m", "unknown": "\033[33m",
            "eligible": "\033[32m", "ineligible": "\033[31m", "needs_review": "\033[33m"}
_RESET = "\033[0m"


def render_table(report: Report, *, colour: bool = False, width: int = 100) -> str:
    """The report as a table for a terminal: one line per criterion, verdict first."""

    def paint(word: str) -> str:
        return f"{_COLOURS[word]}{word}{_RESET}" if colour else word

    counts = {v: sum(r.verdict == v for r in report.criteria) for v in ("pass", "fail", "unknown")}
    lines = [
        f"trial {report.trial}   patient {report.patient}   as of {report.as_of}",
        f"overall: {paint(report.overall)}   ({counts['pass']} pass, {counts['fail']} fail, {counts['unknown']} unknown)",
        "",
    ]
    text_width = max(width - 20, 40)
    for result in report.criteria:
        verdict = paint(result.verdict) + " " * (8 - len(result.verdict))
        flag = "" if result.compiled else " [not compiled]"
        text = result.text if len(result.text) <= text_width else result.text[: text_width - 1] + "…"
        lines.append(f"{result.id:<7} {verdict} {text}{flag}")
        lines.append(f"{'':<16}{result.reason}")
    return "\n".join(lines) + "\n"
