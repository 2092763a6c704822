"""The public surface: ``eligibility.__all__`` is what the package offers, and nothing private leaks."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
import types
from pathlib import Path

import eligibility

REPO = Path(__file__).resolve().parents[1]

# contract.md section 5, and the errors a caller catches
CONTRACT_NAMES = {"load_trial", "compile_trial", "compile_criterion", "Patient", "screen", "Report", "Trial", "Criterion",
                  "CriterionResult", "EligibilityError", "InputError", "PatientRecordError", "RuleFileError", "CriteriaTextError"}


def test_every_name_in_all_exists() -> None:
    missing = [name for name in eligibility.__all__ if not hasattr(eligibility, name)]
    assert missing == []


def test_all_has_no_duplicates_and_nothing_private() -> None:
    assert len(eligibility.__all__) == len(set(eligibility.__all__))
    assert [name for name in eligibility.__all__ if name.startswith("_")] == []


def test_the_contract_names_are_exported() -> None:
    assert CONTRACT_NAMES <= set(eligibility.__all__)


def test_no_public_name_outside_all() -> None:
    """Every public attribute is in __all__, except the package's own submodules."""
    public = {name for name in dir(eligibility) if not name.startswith("_")}
    submodules = {name for name in public if isinstance(getattr(eligibility, name), types.ModuleType)}
    assert all(getattr(eligibility, name).__name__.startswith("eligibility.") for name in submodules)
    assert public - submodules - set(eligibility.__all__) == set()


def test_exported_classes_and_functions_are_the_packages_own() -> None:
    for name in eligibility.__all__:
        value = getattr(eligibility, name)
        if inspect.isclass(value) or inspect.isfunction(value):
            assert value.__module__.startswith("eligibility."), name


def test_star_import_gives_exactly_all() -> None:
    namespace: dict[str, object] = {}
    exec("from eligibility import *", namespace)
    assert set(namespace) - {"__builtins__"} == set(eligibility.__all__)


def test_public_functions_have_docstrings() -> None:
    undocumented = [name for name in eligibility.__all__
                    if (inspect.isfunction(getattr(eligibility, name)) or inspect.isclass(getattr(eligibility, name)))
                    and not inspect.getdoc(getattr(eligibility, name))]
    assert undocumented == []


def test_screening_a_rule_file_imports_neither_lark_nor_pint(tmp_path: Path) -> None:
    """Start-up cost: the parser and the unit registry are loaded only when needed."""
    rules = tmp_path / "rules.yaml"
    text = "Inclusion Criteria:\n* serum creatinine < 176.8 umol/L\n* Age 18-65 years\nExclusion Criteria:\n* pregnancy\n"
    rules.write_text(eligibility.compile_trial(text).to_rule_file("yaml"), encoding="utf-8")
    code = ("import sys, datetime, eligibility\n"
            f"trial = eligibility.load_trial({str(rules)!r})\n"
            "patient = eligibility.Patient.model_validate({'id': 'P', 'age': 50, 'sex': 'male'})\n"
            "eligibility.screen(trial, patient, as_of=datetime.date(2026, 1, 15))\n"
            "print(sorted(m for m in ('lark', 'pint') if m in sys.modules))\n")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
