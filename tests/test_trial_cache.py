"""Trials kept between command-line runs (eligibility.trial_cache) and the vocabulary's JSON copy
(eligibility.resources.load_yaml_data): a stored trial screens exactly as a freshly compiled
one, and anything stale, damaged or unusable is compiled (or parsed) anew."""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from eligibility import compiler, trial_cache
from eligibility.errors import InputError
from eligibility.patient import load_patient
from eligibility.report import TrialScreener
from eligibility.resources import data_file, load_yaml_data
from eligibility.trial import Trial

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
AS_OF = datetime.date(2026, 1, 15)
PATIENTS = [load_patient(path) for path in sorted((REPO / "examples").glob("*.json"))]
TEXT = "Inclusion Criteria:\n* Age 18 to 65 years\n* Serum creatinine < 2.0 mg/dL\nExclusion Criteria:\n* Pregnancy\n"


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cache directory of the test's own; the tree counts as unchanged since the process began
    (other work may be editing it: a key must not depend on that here)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("ELIGIBILITY_NO_CACHE", raising=False)
    monkeypatch.setattr(trial_cache, "DATA_EPOCH", time.time() + 60)
    return tmp_path / "xdg" / "eligibility"


def no_compiling(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> Trial:
        raise AssertionError("compiled, not read from the cache")

    monkeypatch.setattr(compiler, "load_trial", refuse)


def trial_file(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def outputs(trial: Trial) -> list[str]:
    """Everything the command line prints from a trial: both rule files, each example patient's report."""
    screener = TrialScreener(trial)
    return [trial.to_rule_file("yaml"), trial.to_rule_file("json")] + [
        screener.screen(patient, AS_OF, closed_world=closed).to_json()
        for patient in PATIENTS for closed in (False, True)]


def corpus_cases() -> list[tuple[str, str, str | None]]:
    """(file name, content, --condition): the seeds, the registry records and every tenth corpus
    raw text (those with a criterion that compiles)."""
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} is not present")
    cases: list[tuple[str, str, str | None]] = []
    cases += [(path.name, path.read_text(encoding="utf-8"), None) for path in sorted((SHARED / "seeds").glob("*.txt"))]
    cases.append(("als.txt", (SHARED / "seeds" / "001_1fa9777a2a05ca7e.txt").read_text(encoding="utf-8"), "als"))
    cases += [(path.name, path.read_text(encoding="utf-8"), None)
              for path in sorted((SHARED / "corpus" / "ctgov_v2").glob("*.json"))]
    rows = [json.loads(line) for line in (SHARED / "corpus" / "trials.jsonl").read_text(encoding="utf-8").splitlines()]
    raw = [row for row in rows if row.get("criteria_raw")]
    cases += [(f"{row['nct_id']}.txt", row["criteria_raw"], None) for row in raw[::10]]
    return cases


def test_a_stored_trial_screens_byte_for_byte_as_the_compiled_one(
        cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Seeds, registry records and a corpus sample: compiled once and stored, then read back
    without compiling, each gives the same trial, rule files and reports."""
    monkeypatch.setattr(trial_cache, "KEPT_TRIALS", 1000)
    cases = corpus_cases()
    fresh: dict[tuple[str, str | None], tuple[Trial, list[str]]] = {}
    for name, text, condition in cases:
        try:
            trial = trial_cache.load_trial(trial_file(tmp_path, name, text), condition=condition)
        except InputError:  # a corpus text without criteria headings: nothing to store
            continue
        if any(criterion.compiled for criterion in trial.criteria):
            fresh[name, condition] = trial, outputs(trial)
    assert len(fresh) >= 50
    no_compiling(monkeypatch)
    for (name, condition), (expected, expected_outputs) in fresh.items():
        trial = trial_cache.load_trial(tmp_path / name, condition=condition)
        assert trial == expected, name
        assert outputs(trial) == expected_outputs, name


def test_the_key_is_the_bytes_the_file_name_the_condition_and_the_code_and_data(
        cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = trial_file(tmp_path, "trial.txt", TEXT)
    first = trial_cache.load_trial(path)
    assert first.trial == "trial" and first.source == str(path)  # named after the file: the name is in the key

    def key(file: Path, condition: str | None = None) -> str:
        entry = trial_cache._entry(file, str(file), condition)
        assert entry is not None
        return entry[0].key

    keys = {key(path), key(path, "als"), key(trial_file(tmp_path, "other.txt", TEXT))}
    trial_file(tmp_path, "trial.txt", TEXT + "* Epilepsy\n")
    keys.add(key(path))
    assert len(keys) == 4
    for folder in ("grammars", "rules"):
        shutil.copytree(data_file(folder, "x").parent, tmp_path / folder)
    monkeypatch.setattr(trial_cache, "data_dir", lambda folder: tmp_path / folder)
    same = key(path)
    vocabulary = tmp_path / "rules" / "vocabulary.yaml"
    vocabulary.write_text(vocabulary.read_text(encoding="utf-8") + "\n# a comment\n", encoding="utf-8")
    assert key(path) != same
    assert len(trial_cache._versions() or ()) == len(trial_cache._DEPENDENCIES)


def test_a_second_run_reads_the_stored_trial(cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = trial_file(tmp_path, "trial.txt", TEXT)
    compiled = trial_cache.load_trial(path)
    no_compiling(monkeypatch)
    assert trial_cache.load_trial(path) == compiled
    assert trial_cache.load_trial(str(path)) == compiled
    trial_file(tmp_path, "trial.txt", TEXT + "* Epilepsy\n")
    with pytest.raises(AssertionError, match="compiled"):
        trial_cache.load_trial(path)


def test_files_changed_while_the_process_runs_get_no_cache(
        cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for folder in ("grammars", "rules"):
        shutil.copytree(data_file(folder, "x").parent, tmp_path / folder)
    monkeypatch.setattr(trial_cache, "data_dir", lambda folder: tmp_path / folder)
    monkeypatch.setattr(trial_cache, "DATA_EPOCH", time.time() - 60)  # the copies are newer than "this process"
    path = trial_file(tmp_path, "trial.txt", TEXT)
    assert trial_cache._entry(path, str(path), None) is None
    trial_cache.load_trial(path)
    assert not cache.exists()


def test_a_file_changed_while_compiling_is_not_stored(
        cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = trial_file(tmp_path, "trial.txt", TEXT)
    compile_file = compiler.load_trial

    def compile_then_edit(file: str | Path, **options: Any) -> Trial:
        trial = compile_file(file, **options)
        trial_file(tmp_path, "trial.txt", TEXT + "* Epilepsy\n")
        return trial

    monkeypatch.setattr(compiler, "load_trial", compile_then_edit)
    trial_cache.load_trial(path)
    assert not list(cache.glob("trial-*.json"))


@pytest.mark.parametrize("damage", ["garbage", "truncated", "wrong checksum", "not a trial"])
def test_a_damaged_entry_is_compiled_anew(cache: Path, tmp_path: Path, damage: str) -> None:
    path = trial_file(tmp_path, "trial.txt", TEXT)
    expected = trial_cache.load_trial(path)
    entry = trial_cache._entry(path, str(path), None)
    assert entry is not None and entry[0].path is not None
    stored = entry[0].path.read_bytes()
    header, _, payload = stored.partition(b"\n")
    signed = json.dumps({"key": entry[0].key, "sha256": hashlib.sha256(b'{"trial": 1}').hexdigest()}).encode()
    damaged = {
        "garbage": b"\x00\xff not json",
        "truncated": stored[: len(stored) // 2],
        "wrong checksum": header + b"\n" + payload.replace(b"I1", b"I9", 1),
        "not a trial": signed + b'\n{"trial": 1}',
    }[damage]
    entry[0].path.write_bytes(damaged)
    assert trial_cache.load_trial(path) == expected
    assert entry[0].path.read_bytes() == stored, "the entry was written again"


def test_errors_are_not_stored_and_still_name_the_file(cache: Path, tmp_path: Path) -> None:
    path = trial_file(tmp_path, "bad.txt", "no criteria headings here\n")
    for _ in range(2):
        with pytest.raises(InputError) as error:
            trial_cache.load_trial(path)
        assert error.value.source == str(path)
    assert not list(cache.glob("trial-*.json"))
    with pytest.raises(InputError):
        trial_cache.load_trial(tmp_path / "missing.txt")


def test_pipes_devices_and_large_files_are_not_read_for_the_key(tmp_path: Path) -> None:
    assert trial_cache._regular_file_bytes(Path(os.devnull)) is None
    big = tmp_path / "big.txt"
    big.write_bytes(b"x" * (trial_cache._MAX_CACHED_BYTES + 1))
    assert trial_cache._regular_file_bytes(big) is None
    assert trial_cache._regular_file_bytes(tmp_path / "missing.txt") is None


def test_a_disabled_or_unusable_cache_only_costs_time(
        cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = trial_file(tmp_path, "trial.txt", TEXT)
    monkeypatch.setenv("ELIGIBILITY_NO_CACHE", "1")
    expected = trial_cache.load_trial(path)
    assert not cache.exists()
    monkeypatch.delenv("ELIGIBILITY_NO_CACHE")
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    assert trial_cache.load_trial(path) == expected
    assert blocker.read_text() == "not a directory"


def test_old_entries_are_removed(cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(trial_cache, "KEPT_TRIALS", 3)
    for number in range(5):
        trial_cache.load_trial(trial_file(tmp_path, f"trial{number}.txt", TEXT))
    assert len(list(cache.glob("trial-*.json"))) == 3
    assert not list(cache.glob(".trial-*")), "no temporary files left behind"


def test_the_command_line_screens_a_stored_trial_as_a_compiled_one(tmp_path: Path) -> None:
    path = trial_file(tmp_path, "trial.txt", TEXT)
    patient = REPO / "examples" / "needs-review.json"
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "xdg"),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    env.pop("ELIGIBILITY_NO_CACHE", None)
    runs = [subprocess.run([sys.executable, "-m", "eligibility", "screen", str(path), str(patient), "--format", "json",
                            "--as-of", "2026-01-15"], capture_output=True, text=True, env=env, timeout=120)
            for _ in range(2)]
    assert [run.returncode for run in runs] == [0, 0], runs[0].stderr
    assert runs[0].stdout == runs[1].stdout
    uncached = subprocess.run([sys.executable, "-m", "eligibility", "screen", str(path), str(patient), "--format", "json",
                               "--as-of", "2026-01-15"], capture_output=True, text=True,
                              env={**env, "ELIGIBILITY_NO_CACHE": "1"}, timeout=120)
    assert uncached.stdout == runs[0].stdout


# --- the vocabulary's JSON copy ---------------------------------------------------------------------


@pytest.fixture
def yaml_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("ELIGIBILITY_NO_CACHE", raising=False)
    return tmp_path / "xdg" / "eligibility"


def test_the_json_copy_gives_the_yaml_data_exactly(yaml_cache: Path) -> None:
    path = data_file("rules", "vocabulary.yaml")
    expected = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert load_yaml_data(path) == expected
    (copy,) = yaml_cache.glob("yaml-*.json")
    loaded = load_yaml_data(path)
    assert loaded == expected and json.dumps(loaded) == json.dumps(expected), "same values, types and order"


def test_yaml_json_cannot_hold_is_not_copied(yaml_cache: Path, tmp_path: Path) -> None:
    path = tmp_path / "dates.yaml"
    path.write_text("when: 2026-01-15\nkeys: {1: one}\n", encoding="utf-8")
    assert load_yaml_data(path) == {"when": datetime.date(2026, 1, 15), "keys": {1: "one"}}
    assert not list(yaml_cache.glob("yaml-*.json"))
    path.write_text("keys: {1: one}\n", encoding="utf-8")
    assert load_yaml_data(path) == {"keys": {1: "one"}}
    assert not list(yaml_cache.glob("yaml-*.json")), "int keys would come back as strings"


def test_a_changed_or_damaged_yaml_copy_is_not_used(yaml_cache: Path, tmp_path: Path) -> None:
    path = tmp_path / "data.yaml"
    path.write_text("a: 1\n", encoding="utf-8")
    assert load_yaml_data(path) == {"a": 1}
    path.write_text("a: 2\n", encoding="utf-8")
    assert load_yaml_data(path) == {"a": 2}
    for copy in yaml_cache.glob("yaml-*.json"):
        copy.write_bytes(copy.read_bytes().replace(b'"a":', b'"b":'))
    assert load_yaml_data(path) == {"a": 2}
    with pytest.raises(yaml.YAMLError):
        path.write_text("a: [\n", encoding="utf-8")
        load_yaml_data(path)


def test_the_vocabulary_is_the_same_from_the_copy(yaml_cache: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from eligibility import vocabulary

    copy = tmp_path / "vocabulary.yaml"  # a copy: the tree's file may be edited meanwhile
    shutil.copy(data_file("rules", "vocabulary.yaml"), copy)
    monkeypatch.setattr(vocabulary, "data_file", lambda folder, name: copy)
    from_yaml = vocabulary.vocabulary.__wrapped__()  # not the process's vocabulary: loaded here, twice
    assert list(yaml_cache.glob("yaml-*.json"))
    from_copy = vocabulary.vocabulary.__wrapped__()
    assert from_copy.variables == from_yaml.variables
    assert from_copy.names() == from_yaml.names()


def test_a_large_trial_is_compiled_each_time(cache: Path, tmp_path: Path) -> None:
    """An entry is at most 1 MB (KEPT_TRIALS entries, 64 MB): one criterion of 1 MB is not stored."""
    path = trial_file(tmp_path, "long.txt", TEXT + "* " + "very " * 220_000 + "long\n")
    assert not trial_cache.load_trial(path).criteria[-1].compiled
    assert not list(cache.glob("trial-*.json"))


@pytest.mark.parametrize("trial", ["rules/NCT04745299.yaml", "stored text"])
def test_screening_a_rule_file_or_a_stored_trial_never_loads_the_grammar(trial: str, tmp_path: Path) -> None:
    """lark, the parser and the name regex (~0.3 s) are for compiling text only."""
    path = trial_file(tmp_path, "trial.txt", TEXT) if trial == "stored text" else REPO / trial
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "xdg"),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    env.pop("ELIGIBILITY_NO_CACHE", None)
    code = ("import sys; from eligibility.cli import main; "
            f"main(['screen', {str(path)!r}, {str(REPO / 'examples' / 'eligible.json')!r}, '--as-of', '2026-01-15']); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'lark' or m == 'eligibility.grammar'))")
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
            for _ in range(2)]
    for run in runs if trial != "stored text" else runs[1:]:  # a text is compiled the first time
        assert run.returncode == 0, run.stderr
        assert run.stdout.splitlines()[-1] == "[]"
