"""Bad input: the catalogue in tests/bad_input/, the README's limits, and the safety of loading.

Every catalogue case (tests/bad_input/cases.yaml says what each must give) is checked twice:
through the API, where a bad file raises one of our errors with its structured fields and a bad
value makes its criterion unknown, and through the command line run as a subprocess, where a
bad file exits 2 with one line naming the file and the problem, never a traceback.
"""

from __future__ import annotations

import ast
import datetime as dt
import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml

import eligibility
from eligibility import EligibilityError, load_patient, load_trial, screen, split_items
from eligibility.compiler import MAX_TRIAL_BYTES
from eligibility.grammar import MAX_CRITERION_LENGTH
from eligibility.items import MAX_ITEMS
from eligibility.patient import MAX_NESTING, MAX_RECORD_BYTES, check_nesting
from eligibility.trial import MAX_RULE_FILE_VALUES, load_rule_text
from eligibility.units import MAX_UNIT_LENGTH, units

REPO = Path(__file__).resolve().parents[1]
CATALOGUE = Path(__file__).resolve().parent / "bad_input"
TRIAL = CATALOGUE / "trial.yaml"
PATIENT = CATALOGUE / "patient.json"
AS_OF = dt.date(2026, 1, 15)
CASES: list[dict[str, Any]] = yaml.safe_load((CATALOGUE / "cases.yaml").read_text(encoding="utf-8"))


def case_params() -> list[Any]:
    params = []
    for case in CASES:
        marks = [pytest.mark.xfail(strict=True, reason=case["xfail"])] if "xfail" in case else []
        params.append(pytest.param(case, id=case["file"], marks=marks))
    return params


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each case's file: the catalogue's own, or for the large cases, built from it by ``expand``."""
    folder = tmp_path_factory.mktemp("bad_input")
    paths = {}
    for case in CASES:
        source = CATALOGUE / case["file"]
        if "expand" not in case:
            paths[case["file"]] = source
            continue
        data = source.read_bytes()
        for placeholder, (text, times) in case["expand"].items():
            assert placeholder.encode() in data, (case["file"], placeholder)
            data = data.replace(placeholder.encode(), text.encode() * times)
        target = folder / case["kind"] / source.name
        target.parent.mkdir(exist_ok=True)
        target.write_bytes(data)
        paths[case["file"]] = target
    return paths


def run_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    env.pop("ELIGIBILITY_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "eligibility", *map(str, args)], capture_output=True, text=True,
                          env=env, cwd=REPO, timeout=120)


def screen_args(case: dict[str, Any], path: Path) -> list[str | Path]:
    trial, patient = (TRIAL, path) if case["kind"] == "patient" else (path, PATIENT)
    return ["screen", trial, patient, "--format", "json", "--as-of", AS_OF.isoformat()]


@pytest.fixture(scope="module")
def cli_runs(inputs: dict[str, Path]) -> Iterator[dict[str, Future[subprocess.CompletedProcess[str]]]]:
    """Every case through the command line, each a fresh interpreter, started in the background as
    soon as the catalogue's first test starts, so they run while the API tests do."""
    pool = ThreadPoolExecutor(max_workers=3)
    yield {case["file"]: pool.submit(run_cli, *screen_args(case, inputs[case["file"]])) for case in CASES}
    pool.shutdown(wait=True, cancel_futures=True)


# --- the catalogue ----------------------------------------------------------------------------------


def test_every_catalogue_file_has_a_case_and_every_case_a_file() -> None:
    files = {f"{path.parent.name}/{path.name}" for path in CATALOGUE.glob("*/*") if path.is_file()}
    named = [case["file"] for case in CASES]
    assert len(named) == len(set(named)), "a file is listed twice"
    assert files == set(named)
    for case in CASES:
        assert case["kind"] == case["file"].split("/")[0]
        assert set(case) <= {"file", "kind", "what", "expand", "expected", "xfail"}, case["file"]
        assert {"error", "unknown", "criteria"} & set(case["expected"]), case["file"]


def load_api(case: dict[str, Any], path: Path) -> eligibility.Report:
    """What the API does with the case: load it, and screen it against its counterpart."""
    if case["kind"] == "patient":
        return screen(load_trial(TRIAL), load_patient(path), AS_OF)
    return screen(load_trial(path), load_patient(PATIENT), AS_OF)


@pytest.mark.usefixtures("cli_runs")
@pytest.mark.parametrize("case", case_params())
def test_catalogue_case_through_the_api(case: dict[str, Any], inputs: dict[str, Path]) -> None:
    expected, path = case["expected"], inputs[case["file"]]
    if "error" in expected:
        with pytest.raises(EligibilityError) as raised:
            load_api(case, path)
        error = raised.value
        assert type(error).__name__ == expected["type"]
        assert expected["error"] in error.message
        assert error.source == str(path)
        for field in ("line", "column", "path"):
            if field in expected:
                assert getattr(error, field) == expected[field], field
        return
    report = load_api(case, path)
    results = {result.id: result for result in report.criteria}
    for criterion_id in expected.get("unknown", []):
        assert results[criterion_id].verdict == "unknown", results[criterion_id]
        assert expected["reason"] in results[criterion_id].reason
    if "criteria" in expected:
        trial = load_trial(path)
        assert len(trial.criteria) == len(report.criteria) == expected["criteria"]
        for criterion in trial.criteria:
            kept = expected.get("kept", {})
            assert criterion.compiled == (criterion.id not in kept), criterion
            if criterion.id in kept:
                assert kept[criterion.id] in (criterion.note or "")
                assert criterion.text, "a criterion kept for review keeps its text"


@pytest.mark.parametrize("case", case_params())
def test_catalogue_case_through_the_cli(case: dict[str, Any], inputs: dict[str, Path],
                                        cli_runs: dict[str, Future[subprocess.CompletedProcess[str]]]) -> None:
    expected, path, result = case["expected"], inputs[case["file"]], cli_runs[case["file"]].result()
    assert "Traceback" not in result.stderr
    if "error" in expected:
        assert result.returncode == 2, result.stderr
        assert result.stdout == ""
        lines = result.stderr.splitlines()
        assert len(lines) == 1, result.stderr
        where = str(path)
        if "line" in expected:
            where += f":{expected['line']}" + (f":{expected['column']}" if "column" in expected else "")
        if "path" in expected:
            where += f" at {expected['path']}"
        assert lines[0].startswith(f"eligibility: error: {where}"), lines[0][:300]
        assert expected["error"] in lines[0]
        return
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    results = {criterion["id"]: criterion for criterion in report["criteria"]}
    for criterion_id in expected.get("unknown", []):
        assert results[criterion_id]["verdict"] == "unknown", results[criterion_id]
        assert expected["reason"] in results[criterion_id]["reason"]
    if "criteria" in expected:
        assert len(report["criteria"]) == expected["criteria"]
        for criterion_id, note in expected.get("kept", {}).items():
            assert results[criterion_id]["compiled"] is False
            assert note in results[criterion_id]["note"]


def test_a_file_name_with_a_newline_still_gives_one_line(tmp_path: Path) -> None:
    path = tmp_path / "bad\nname.json"
    path.write_text("{", encoding="utf-8")
    result = run_cli("screen", TRIAL, path)
    assert result.returncode == 2 and len(result.stderr.splitlines()) == 1, result.stderr
    assert "bad\\nname.json:1:2: invalid JSON" in result.stderr


def test_a_reader_that_leaves_early_is_not_an_error(tmp_path: Path) -> None:
    """`eligibility compile ... | head -1`: the closed pipe ends the command quietly."""
    read, write = os.pipe()
    os.close(read)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-m", "eligibility", "compile", str(REPO / "rules" / "NCT04745299.yaml")],
                            stdout=write, stderr=subprocess.PIPE, text=True, env=env, timeout=60)
    os.close(write)
    assert "Traceback" not in result.stderr and "BrokenPipeError" not in result.stderr
    assert result.returncode == 0, result.stderr


def test_a_bug_gives_one_line_and_exit_1(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """An exception that is not ours is a bug of the engine: still one line, no traceback, exit 1."""
    import eligibility.cli

    def broken(args: object) -> int:
        raise KeyError("a bug\nover two lines")

    monkeypatch.setattr(eligibility.cli, "_screen", broken)
    monkeypatch.delenv("ELIGIBILITY_DEBUG", raising=False)
    assert eligibility.cli.main(["screen", str(TRIAL), str(PATIENT)]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("eligibility: internal error") and "KeyError" in lines[0]
    monkeypatch.setenv("ELIGIBILITY_DEBUG", "1")
    with pytest.raises(KeyError):
        eligibility.cli.main(["screen", str(TRIAL), str(PATIENT)])


# --- limits (README "Limits"): each at its boundary ------------------------------------------------


def test_criterion_length_limit() -> None:
    """An item of MAX_CRITERION_LENGTH characters is parsed; one longer is kept whole, flagged, not parsed."""
    head = "Serum creatinine < 2.0 mg/dL and "
    at_limit = head + "x" * (MAX_CRITERION_LENGTH - len(head))
    _, note = eligibility.compile_criterion(at_limit, "inclusion")
    assert note is not None and "longer than" not in note and "did not understand" in note
    _, note = eligibility.compile_criterion(at_limit + "x", "inclusion")
    assert note == f"not compiled: longer than {MAX_CRITERION_LENGTH} characters: not parsed"
    trial = eligibility.compile_trial(f"Inclusion Criteria:\n* {at_limit}x\n* Serum creatinine < 2.0 mg/dL\n")
    assert [(c.id, c.compiled) for c in trial.criteria] == [("I1", False), ("I2", True)]
    assert trial.criteria[0].text == at_limit + "x"


def test_a_long_run_of_parentheses_compiles_in_linear_time() -> None:
    """100,000 '(' (within the file limits) are kept for review, not stuck in quadratic regex work.

    The bound is generous (a guard against hours, not a speed goal): a quadratic pattern took
    3.5 s for 10,000."""
    code = "import eligibility; print(eligibility.compile_criterion('x ' + '(' * 100000, 'inclusion')[1])"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    try:
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=20)
    except subprocess.TimeoutExpired:
        pytest.fail("compile_criterion did not finish in 20 s")
    assert "longer than" in result.stdout


def test_trial_file_size_limit(tmp_path: Path) -> None:
    text = b"Inclusion Criteria:\n* Age 18 years or older\n"
    at_limit = tmp_path / "at_limit.txt"
    at_limit.write_bytes(text + b" " * (MAX_TRIAL_BYTES - len(text)))
    assert at_limit.stat().st_size == MAX_TRIAL_BYTES
    assert len(load_trial(at_limit).criteria) == 1
    past = tmp_path / "past.txt"
    past.write_bytes(at_limit.read_bytes() + b" ")
    with pytest.raises(eligibility.InputError, match="larger than 5 MB"):
        load_trial(past)


def test_patient_file_size_limit(tmp_path: Path) -> None:
    record = json.dumps({"id": "P", "age": 50, "sex": "male"}).encode()
    at_limit = tmp_path / "at_limit.json"
    at_limit.write_bytes(record + b" " * (MAX_RECORD_BYTES - len(record)))
    assert load_patient(at_limit).id == "P"
    past = tmp_path / "past.json"
    past.write_bytes(at_limit.read_bytes() + b" ")
    with pytest.raises(eligibility.PatientRecordError, match="larger than 20 MB"):
        load_patient(past)


def test_item_count_limit() -> None:
    items = "".join(f"* Item {n}\n" for n in range(MAX_ITEMS))
    assert len(split_items("Inclusion Criteria:\n" + items)) == MAX_ITEMS
    with pytest.raises(eligibility.CriteriaTextError, match=f"more than {MAX_ITEMS} criteria"):
        split_items("Inclusion Criteria:\n" + items + "Exclusion Criteria:\n* One too many\n")


def nested(depth: int) -> Any:
    data: Any = 1
    for _ in range(depth):
        data = [data]
    return data


def test_nesting_limit() -> None:
    check_nesting(nested(MAX_NESTING), "x.json")
    with pytest.raises(eligibility.PatientRecordError, match=f"nested deeper than {MAX_NESTING} levels"):
        check_nesting(nested(MAX_NESTING + 1), "x.json")
    with pytest.raises(eligibility.PatientRecordError, match="nested deeper"):
        eligibility.patient.parse_json_text(json.dumps({"id": "P", "observations": nested(MAX_NESTING + 1)}), "x.json")


def test_rule_file_value_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Counted as loaded, aliases expanded; the catalogue's alias_bomb.yaml is the real-size case."""
    assert MAX_RULE_FILE_VALUES == 1_000_000
    check_nesting(list(range(999)), "r.yaml", max_values=1000)  # the list and its 999 items
    with pytest.raises(eligibility.RuleFileError, match="more than 1,000 values"):
        check_nesting(list(range(1000)), "r.yaml", eligibility.RuleFileError, max_values=1000)
    monkeypatch.setattr(eligibility.trial, "MAX_RULE_FILE_VALUES", 1000)
    with pytest.raises(eligibility.RuleFileError, match="more than 1,000 values"):
        load_rule_text("trial: T\nx: &x [" + ", ".join(["1"] * 40) + "]\ncriteria: [" + ", ".join(["*x"] * 40) + "]\n", "r.yaml")


def test_integer_digits_limit() -> None:
    """Python's own limit on integer digits, reported as invalid JSON (a float's range is the value's own check)."""
    assert eligibility.patient.parse_json_text('{"x": ' + "1" * 4300 + "}", "x.json")
    with pytest.raises(eligibility.PatientRecordError, match="invalid JSON: exceeds the limit"):
        eligibility.patient.parse_json_text('{"x": ' + "1" * 4301 + "}", "x.json")


def test_unit_limits() -> None:
    """Units outside the table are read by pint, but never a long one or one with a huge or chained power."""
    fresh = eligibility.units.UnitTable.from_rules  # the table caches by spelling without blanks: a fresh one each
    at_limit = "mg/(100" + " " * (MAX_UNIT_LENGTH - len("mg/(100mL)")) + "mL)"
    assert len(at_limit) == MAX_UNIT_LENGTH and fresh().info(at_limit) is not None
    assert fresh().info(at_limit.replace("mg/", "mg/ ")) is None
    assert fresh().info("10^99/L") is not None and fresh().info("10^100/L") is None
    assert units().info("10^9/L") is not None
    assert units().info("10^12/L") is not None
    for written in ("10^10^10", "9^9^9", "10^(9^9)", "10^999999999", "(10^9)^9", "m" + "/m" * MAX_UNIT_LENGTH):
        assert units().info(written) is None, written


# --- safety of loading ------------------------------------------------------------------------------

PACKAGE = REPO / "eligibility"
NETWORK_MODULES = {"socket", "urllib", "http", "requests", "httpx", "aiohttp", "ftplib", "smtplib", "xmlrpc", "ssl"}
UNSAFE_MODULES = {"pickle", "marshal", "shelve", "dill", "subprocess"}


SAFE_LOADER = re.compile(r"""(yaml\.)?C?SafeLoader|getattr\(yaml, ["']C?SafeLoader["'], yaml\.C?SafeLoader\)""")


def package_sources() -> Iterator[tuple[Path, str, ast.Module]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        yield path, source, ast.parse(source, filename=str(path))


def test_no_eval_exec_or_unsafe_yaml_in_the_package() -> None:
    problems = []
    for path, source, tree in package_sources():
        name = path.relative_to(REPO)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            function = node.func
            if isinstance(function, ast.Name) and function.id in ("eval", "exec", "compile", "__import__"):
                problems.append(f"{name}:{node.lineno}: {function.id}()")
            if isinstance(function, ast.Attribute) and isinstance(function.value, ast.Name) and function.value.id == "yaml":
                if function.attr in ("unsafe_load", "full_load", "load_all", "unsafe_load_all", "full_load_all"):
                    problems.append(f"{name}:{node.lineno}: yaml.{function.attr}")
                elif function.attr == "load":
                    loaders = [k.value for k in node.keywords if k.arg == "Loader"] + node.args[1:2]
                    loader = ast.get_source_segment(source, loaders[0]) if loaders else ""
                    if not SAFE_LOADER.fullmatch(loader or ""):
                        problems.append(f"{name}:{node.lineno}: yaml.load with Loader={loader or 'the default'}")
    # and plain text, in case a call hides from the tree walk (getattr(builtins, "eval"))
    for path, source, _ in package_sources():
        for number, line in enumerate(source.splitlines(), start=1):
            code = line.split("#", 1)[0]
            if re.search(r"(?<![\w.])(eval|exec)\s*\(|\bpickle\b|yaml\.(unsafe|full)_load|Loader=yaml\.Loader\b", code):
                problems.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    assert not problems, "\n".join(sorted(set(problems)))


def test_no_network_or_unsafe_modules_imported_by_the_package() -> None:
    problems = []
    for path, _, tree in package_sources():
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for module in names:
                if module.split(".")[0] in NETWORK_MODULES | UNSAFE_MODULES:
                    problems.append(f"{path.relative_to(REPO)}:{node.lineno}: import {module}")
    assert not problems, "\n".join(problems)


def test_compiling_and_screening_open_no_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole pipeline, pint's fallback for an unlisted unit included, runs with sockets forbidden."""

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("network access at run time")

    monkeypatch.setattr(socket, "socket", forbidden)
    monkeypatch.setattr(socket, "create_connection", forbidden)
    monkeypatch.setattr(socket, "getaddrinfo", forbidden)
    trial = eligibility.compile_trial("Inclusion Criteria:\n* Serum creatinine < 2.0 mg/dL\n* Age 18 years or older")
    patient = eligibility.Patient.model_validate({"id": "P", "age": 50, "sex": "male", "observations": [
        {"name": "creatinine", "value": 1.0, "unit": "mg/(100 mL)", "date": "2026-01-10"}]})
    report = screen(trial, patient, AS_OF)
    assert [c.verdict for c in report.criteria] == ["pass", "pass"]
