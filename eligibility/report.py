"""Evaluation -> screening report (contract section 3), and the terminal table.

Per criterion: the predicate's truth becomes a verdict (for an exclusion criterion the
excluding condition being present is a fail), and the overall result follows from them.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from .evaluate import Evaluator, Planner, Screening
from .facts import facts_of
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


class TrialScreener:
    """A trial with its predicates planned once, ready to screen many patients."""

    def __init__(self, trial: Trial, planner: Planner | None = None):
        planner = planner or Planner()
        self.trial = trial
        self._plans: list[tuple[Criterion, Evaluator | None]] = [
            (c, planner.plan(c.predicate) if c.predicate is not None else None) for c in trial.criteria
        ]

    def screen(self, patient: Patient, as_of: dt.date | None = None, *, closed_world: bool = False) -> Report:
        screening = Screening(as_of or dt.date.today(), closed_world)
        facts = facts_of(patient)
        results = []
        construct = CriterionResult.model_construct
        for criterion, plan in self._plans:
            if plan is None:
                results.append(construct(id=criterion.id, kind=criterion.kind, text=criterion.text, compiled=False,
                                         verdict="unknown", reason=f"kept for manual review ({criterion.note or 'not compiled'})",
                                         evidence=[], missing=["manual review"], note=criterion.note))
                continue
            outcome = plan(facts, screening)
            if outcome.truth is None:
                verdict: Verdict = "unknown"
            elif criterion.kind == "inclusion":
                verdict = "pass" if outcome.truth else "fail"
            else:
                verdict = "fail" if outcome.truth else "pass"
            results.append(construct(id=criterion.id, kind=criterion.kind, text=criterion.text, compiled=True,
                                     verdict=verdict, reason=outcome.reason, evidence=outcome.evidence,
                                     missing=outcome.missing if verdict == "unknown" else [], note=criterion.note))
        return Report.model_construct(trial=self.trial.trial, patient=patient.id, as_of=screening.as_of,
                                      overall=overall_of([r.verdict for r in results]),
                                      healthy_volunteers=self.trial.healthy_volunteers, criteria=results)


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
