"""The ``eligibility`` command (contract sections 3 and 4).

Exit codes: 0 when the command ran (whatever the verdicts), 2 for bad input or usage,
with a one-line message naming the file and the problem; 1, also with one line, for a bug
of the engine itself; never a traceback.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from .errors import EligibilityError


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2026-01-15") from None


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line usage error (argparse prints the whole usage first)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="eligibility", description="Screen patients against clinical-trial eligibility criteria.")
    commands = parser.add_subparsers(dest="command", required=True)

    screen = commands.add_parser("screen", help="screen a patient record against a trial")
    screen.add_argument("trial", help="criteria text (.txt), a ClinicalTrials.gov v2 record (.json) or a rule file")
    screen.add_argument("patient", help="patient record: the native JSON or a FHIR R4 Bundle")
    screen.add_argument("--as-of", type=_date, default=None, help="screening date (default: today)")
    screen.add_argument("--format", choices=("table", "json"), default="table")
    screen.add_argument("--closed-world", action="store_true",
                        help="treat a condition, medication or procedure missing from the record as absent")
    screen.add_argument("--condition", help="vocabulary id of the trial's condition, for 'the disease' in text")

    compile_ = commands.add_parser("compile", help="compile a trial into a reviewable rule file")
    compile_.add_argument("trial", help="criteria text (.txt), a ClinicalTrials.gov v2 record (.json) or a rule file")
    compile_.add_argument("--format", choices=("json", "yaml"), default="yaml")
    compile_.add_argument("-o", "--output", type=Path, help="write here instead of standard output")
    compile_.add_argument("--condition", help="vocabulary id of the trial's condition, for 'the disease' in text")
    return parser


def _screen(args: argparse.Namespace) -> int:
    from .patient import load_patient
    from .report import TrialScreener, render_table
    from .trial_cache import load_trial  # a file compiled before is read back, not compiled again

    trial = load_trial(args.trial, condition=args.condition)
    patient = load_patient(args.patient)
    report = TrialScreener(trial).screen(patient, args.as_of, closed_world=args.closed_world)
    if args.format == "json":
        sys.stdout.write(report.to_json() + "\n")
    else:
        sys.stdout.write(render_table(report, colour=sys.stdout.isatty()))
    return 0


def _compile(args: argparse.Namespace) -> int:
    from .trial_cache import load_trial

    trial = load_trial(args.trial, condition=args.condition)
    text = trial.to_rule_file(args.format)
    if args.output is not None:
        try:
            args.output.write_text(text, encoding="utf-8")
        except OSError as error:
            raise EligibilityError(error.strerror or "cannot be written", source=str(args.output)) from None
    else:
        sys.stdout.write(text)
    for criterion in trial.criteria:
        if not criterion.compiled:
            print(f"{criterion.id}: {criterion.note}", file=sys.stderr)
    print(f"{trial.trial}: {trial.summary()}", file=sys.stderr)
    return 0


def _one_line(message: str) -> str:
    """A message on one line: control characters (a newline in a file name) written as escapes."""
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in message)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if hasattr(sys.stdout, "reconfigure"):  # a terminal that cannot show "≥" gets "\u2265", not a crash
        sys.stdout.reconfigure(errors="backslashreplace")
    try:
        return _screen(args) if args.command == "screen" else _compile(args)
    except EligibilityError as error:
        print(f"eligibility: error: {_one_line(str(error))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `eligibility compile ... | head`: the reader left; not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as error:  # a bug: one line, not a traceback (ELIGIBILITY_DEBUG=1 shows it)
        if os.environ.get("ELIGIBILITY_DEBUG"):
            raise
        print(f"eligibility: internal error (please report, with the input): {type(error).__name__}: "
              f"{_one_line(str(error))[:300]}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
