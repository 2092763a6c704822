"""The `eligibility` command end to end (contract sections 3 and 4), run as a subprocess.

Each test runs ``python -m eligibility`` with this checkout first on the path, so it tests the
source tree whether or not the package is installed.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from eligibility import compile_trial, load_trial

REPO = Path(__file__).resolve().parents[1]
TRIAL = """Inclusion Criteria:

1. Age between 18 and 80 years
2. Serum creatinine < 2.0 mg/dL

Exclusion Criteria:

* Pregnancy
* Something no grammar will ever read, kept for review
"""
PATIENT = {"id": "C1", "birth_date": "1970-05-01", "sex": "female",
           "observations": [{"name": "creatinine", "value": 1.0, "unit": "mg/dL", "date": "2026-01-10"}]}


def run(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, "-m", "eligibility", *map(str, args)], capture_output=True, text=True,
                          env=env, cwd=cwd or REPO, timeout=60)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The trial as text and as a rule file (screening a rule file skips the grammar: faster)."""
    folder = tmp_path_factory.mktemp("cli")
    paths = {name: folder / name for name in ("trial.txt", "rules.json", "patient.json", "bad.json")}
    paths["trial.txt"].write_text(TRIAL, encoding="utf-8")
    paths["rules.json"].write_text(compile_trial(TRIAL, trial_id="T1").to_rule_file("json"), encoding="utf-8")
    paths["patient.json"].write_text(json.dumps(PATIENT), encoding="utf-8")
    paths["bad.json"].write_text("{not json", encoding="utf-8")
    return paths


@pytest.fixture(scope="module")
def text_report(files: dict[str, Path]) -> dict[str, Any]:
    """`screen trial.txt patient.json --format json`, run once for the tests that read it."""
    result = run("screen", files["trial.txt"], files["patient.json"], "--format", "json", "--as-of", "2026-01-15")
    assert result.returncode == 0, result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def assert_usage_error(result: subprocess.CompletedProcess[str], *words: str) -> None:
    """Exit 2, one line on stderr naming the problem, no traceback, nothing on stdout."""
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0]
    assert result.stdout == ""


def test_screen_json_has_the_contract_shape(text_report: dict[str, Any]) -> None:
    report = text_report
    assert {"trial", "patient", "as_of", "overall", "criteria"} <= set(report)
    assert (report["trial"], report["patient"], report["as_of"], report["overall"]) == ("trial", "C1", "2026-01-15", "needs_review")
    criteria = report["criteria"]
    assert [c["id"] for c in criteria] == ["I1", "I2", "E1", "E2"]
    assert [c["kind"] for c in criteria] == ["inclusion", "inclusion", "exclusion", "exclusion"]
    assert [c["verdict"] for c in criteria] == ["pass", "pass", "unknown", "unknown"]
    assert [c["compiled"] for c in criteria] == [True, True, True, False]
    for criterion in criteria:
        assert {"id", "kind", "text", "compiled", "verdict", "reason"} <= set(criterion)
        assert criterion["reason"]
    assert criteria[2]["missing"] == ["pregnancy"]
    assert criteria[1]["evidence"][0]["name"] == "serum creatinine"


def test_screen_closed_world(files: dict[str, Path]) -> None:
    result = run("screen", files["rules.json"], files["patient.json"], "--format", "json", "--as-of", "2026-01-15", "--closed-world")
    assert json.loads(result.stdout)["criteria"][2]["verdict"] == "pass"


def test_screen_table_is_the_default(files: dict[str, Path]) -> None:
    result = run("screen", files["rules.json"], files["patient.json"], "--as-of", "2026-01-15")
    assert result.returncode == 0, result.stderr
    with pytest.raises(json.JSONDecodeError):
        json.loads(result.stdout)
    assert "overall: needs_review" in result.stdout and "(2 pass, 0 fail, 2 unknown)" in result.stdout
    rows = [line.split()[:2] for line in result.stdout.splitlines() if line[:1] in "IE" and line[1:2].isdigit()]
    assert rows == [["I1", "pass"], ["I2", "pass"], ["E1", "unknown"], ["E2", "unknown"]]
    assert "\033[" not in result.stdout  # no colour when not a terminal


def test_screen_a_registry_record(files: dict[str, Path]) -> None:
    record = {"protocolSection": {"identificationModule": {"nctId": "NCT00000001"}, "eligibilityModule": {
        "eligibilityCriteria": TRIAL, "sex": "FEMALE", "minimumAge": "18 Years", "maximumAge": "80 Years"}}}
    path = files["trial.txt"].with_name("NCT00000001.json")
    path.write_text(json.dumps(record), encoding="utf-8")
    report = json.loads(run("screen", path, files["patient.json"], "--format", "json", "--as-of", "2026-01-15").stdout)
    assert report["trial"] == "NCT00000001"
    assert [c["id"] for c in report["criteria"]] == ["age", "sex", "I1", "I2", "E1", "E2"]
    assert [c["verdict"] for c in report["criteria"][:2]] == ["pass", "pass"]


# --- bad input: exit 2 and one line ---------------------------------------------------------------


def test_bad_patient_json(files: dict[str, Path]) -> None:
    assert_usage_error(run("screen", files["rules.json"], files["bad.json"], "--format", "json"), "bad.json:1:2", "invalid JSON")


def test_invalid_patient_record_names_the_json_path(files: dict[str, Path], tmp_path: Path) -> None:
    path = tmp_path / "invalid.json"
    path.write_text(json.dumps({**PATIENT, "sex": "unknown"}), encoding="utf-8")
    assert_usage_error(run("screen", files["rules.json"], path), "invalid.json", "$.sex")


def test_missing_patient_file(files: dict[str, Path], tmp_path: Path) -> None:
    assert_usage_error(run("screen", files["rules.json"], tmp_path / "nope.json"), "nope.json")


def test_missing_trial_file(files: dict[str, Path], tmp_path: Path) -> None:
    assert_usage_error(run("screen", tmp_path / "nope.txt", files["patient.json"]), "nope.txt")


def test_trial_text_without_headings(files: dict[str, Path], tmp_path: Path) -> None:
    path = tmp_path / "prose.txt"
    path.write_text("Patients with ALS may take part.\n", encoding="utf-8")
    assert_usage_error(run("screen", path, files["patient.json"]), "prose.txt", "heading")


@pytest.mark.parametrize("as_of", ["2026-13-01", "yesterday"])
def test_bad_as_of(files: dict[str, Path], as_of: str) -> None:
    assert_usage_error(run("screen", files["rules.json"], files["patient.json"], "--as-of", as_of), "--as-of", as_of)


@pytest.mark.parametrize("args", [(), ("frobnicate",), ("screen",), ("compile", "x.txt", "--format", "xml")])
def test_usage_errors(args: tuple[str, ...]) -> None:
    assert_usage_error(run(*args), "error")


# --- compile ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_compile_to_a_file(files: dict[str, Path], tmp_path: Path, fmt: str) -> None:
    output = tmp_path / f"rules.{fmt}"
    result = run("compile", files["trial.txt"], "--format", fmt, "-o", output)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert "3/4 criteria compiled" in result.stderr and "E2: not compiled" in result.stderr
    text = output.read_text(encoding="utf-8")
    data = json.loads(text) if fmt == "json" else yaml.safe_load(text)
    assert [c["id"] for c in data["criteria"]] == ["I1", "I2", "E1", "E2"]
    assert [c["compiled"] for c in data["criteria"]] == [True, True, True, False]
    assert all("text" in c for c in data["criteria"])
    assert "predicate" not in data["criteria"][3] and data["criteria"][3]["note"]
    assert load_trial(output) == load_trial(files["trial.txt"])


def test_screening_the_compiled_file_gives_the_same_report(files: dict[str, Path], text_report: dict[str, Any]) -> None:
    screened = json.loads(run("screen", files["rules.json"], files["patient.json"], "--format", "json", "--as-of", "2026-01-15").stdout)
    assert screened["criteria"] == text_report["criteria"] and screened["overall"] == text_report["overall"]


def test_compile_to_an_unwritable_place(files: dict[str, Path], tmp_path: Path) -> None:
    assert_usage_error(run("compile", files["rules.json"], "-o", tmp_path / "no" / "such" / "dir" / "rules.yaml"), "rules.yaml")


# --- the shared contract check ----------------------------------------------------------------------


def test_contract_check(shared_dir: Path, tmp_path: Path) -> None:
    check = shared_dir / "checks" / "contract_check.py"
    if not check.is_file():
        pytest.skip(f"{check} is not present")
    wrapper = tmp_path / "eligibility"
    wrapper.write_text(f'#!/bin/sh\nPYTHONPATH="{REPO}${{PYTHONPATH:+:$PYTHONPATH}}" exec "{sys.executable}" -m eligibility "$@"\n',
                       encoding="utf-8")
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    result = subprocess.run([sys.executable, str(check), str(wrapper)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "all good" in result.stdout
