"""Criterion text -> predicate (grammars/criterion.lark, eligibility/grammar.py, transform.py, compiler.py).

The cases are data: tests/fixtures/grammar/*.yaml, a list of
``{text, kind, predicate}`` (the predicate a criterion must compile to, in the rule-file form)
or ``{text, kind, compiled: false}`` (text that must be kept for manual review). Optional:
``condition`` (the trial's condition, which "the disease" means), ``note`` (words the compile
note must contain), ``source`` (where the phrasing comes from) and ``xfail`` (a known bug, run
as a strict expected failure so that fixing it is noticed).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from eligibility import Comparison, PredicateAdapter, compile_criterion
from eligibility.grammar import MAX_CRITERION_LENGTH, SyntaxProblem, parse_criterion
from eligibility.vocabulary import vocabulary

FIXTURES = Path(__file__).parent / "fixtures" / "grammar"
FIELDS = {"text", "kind", "predicate", "compiled", "condition", "note", "source", "xfail"}


def load_cases() -> list[Any]:
    cases = []
    for path in sorted(FIXTURES.glob("*.yaml")):
        for index, case in enumerate(yaml.safe_load(path.read_text(encoding="utf-8"))):
            marks = [pytest.mark.xfail(reason=case["xfail"], strict=True)] if "xfail" in case else []
            cases.append(pytest.param(case, id=f"{path.stem}-{index + 1}", marks=marks))
    return cases


CASES = load_cases()


def test_fixtures_are_well_formed() -> None:
    assert len(CASES) > 150
    for param in CASES:
        case = param.values[0]
        assert set(case) <= FIELDS, case
        assert case["kind"] in ("inclusion", "exclusion"), case
        assert isinstance(case["text"], str), case
        assert ("predicate" in case) != (case.get("compiled") is False), f"give a predicate or compiled: false: {case}"
        if "predicate" in case:
            PredicateAdapter.validate_python(case["predicate"])  # the expected predicate is itself valid
        if "condition" in case:
            assert case["condition"] in vocabulary()


@pytest.mark.parametrize("case", CASES)
def test_criterion_compiles_to(case: dict[str, Any]) -> None:
    predicate, note = compile_criterion(case["text"], case["kind"], case.get("condition"))
    if case.get("compiled") is False:
        assert predicate is None, f"compiled to {predicate!r}"
        assert note, "a criterion kept for review says why"
        assert case.get("note", "") in note
        return
    expected = PredicateAdapter.validate_python(case["predicate"])
    assert predicate == expected
    if "note" in case:
        assert note is not None and case["note"] in note


# --- the parser itself ---------------------------------------------------------------------------


def test_compiling_is_deterministic() -> None:
    text = "Subjects whose ALSFRS-R scores are in the range of 31~46 at the time of screening (P-V0)."
    assert compile_criterion(text, "inclusion") == compile_criterion(text, "inclusion")


def test_the_same_text_means_the_same_thing_in_any_case() -> None:
    assert compile_criterion("SERUM CREATININE NOT LESS THAN 2.0 MG/DL", "exclusion") == \
        compile_criterion("serum creatinine not less than 2.0 mg/dL", "exclusion")


def test_a_word_inside_a_longer_word_is_not_a_keyword() -> None:
    # "over" is >, "overall" is not; "pt" (prothrombin time) is not inside "aPTT" or "patients"
    assert compile_criterion("ALSFRS-R over 30", "inclusion")[0] == Comparison(variable="alsfrs_r", op="gt", value=30, unit="point")
    assert compile_criterion("ALSFRS-R overall 30", "inclusion")[0] is None
    predicate, _ = compile_criterion("patients with aPTT > 1.5 x ULN", "exclusion")
    assert predicate == Comparison(variable="aptt", op="gt", value=1.5, unit="x ULN")


def test_a_syntax_problem_names_the_word_not_understood() -> None:
    with pytest.raises(SyntaxProblem, match="Something"):
        parse_criterion("serum creatinine Something < 2.0 mg/dL")


def test_an_overlong_criterion_is_not_parsed() -> None:
    text = "serum creatinine < 2.0 mg/dL " + "and more words " * (MAX_CRITERION_LENGTH // 10)
    predicate, note = compile_criterion(text, "inclusion")
    assert predicate is None and note is not None and str(MAX_CRITERION_LENGTH) in note


def test_an_unknown_trial_condition_leaves_the_disease_unresolved() -> None:
    predicate, note = compile_criterion("duration of disease no more than 2 years from diagnosis", "inclusion", None)
    assert predicate is None and note is not None and "condition" in note


def test_a_leading_list_marker_is_not_part_of_the_criterion() -> None:
    assert compile_criterion("3. serum creatinine < 2.0 mg/dL", "inclusion") == \
        compile_criterion("serum creatinine < 2.0 mg/dL", "inclusion")


def test_compiling_does_not_depend_on_the_hash_seed() -> None:
    code = ("import eligibility\n"
            "for text in ('ALSFRS-R total score >= 30', 'ALSFRS-R respiratory insufficiency >= 3'):\n"
            "    print(eligibility.compile_criterion(text, 'inclusion'))\n")
    outputs = set()
    for seed in ("0", "1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
        assert result.returncode == 0, result.stderr
        outputs.add(result.stdout)
    assert len(outputs) == 1, outputs



def test_a_criterion_under_a_group_label_never_decides_alone() -> None:
    """Under "Inclusion Criteria:Parents" (NCT03928028), "Age >18" is the parents' age: an adolescent must
    not fail it. Inclusion: implies(in group, X); exclusion: all(in group, X)."""
    from eligibility import compile_trial
    from eligibility.predicates import All, Implies, Manual

    text = "Inclusion Criteria:Adolescents\n 1. Age 12-18\nInclusion Criteria:Parents\n 1. Age >18\n" \
           "Exclusion Criteria: Adolescent\n 1. Pregnancy\nExclusion Criteria: Parents\n 1. Pregnancy\n"
    criteria = {c.id: c for c in compile_trial(text).criteria}
    age = criteria["I4"].predicate
    assert isinstance(age, Implies) and age.condition == Manual(text="in group: Parents")
    assert age.then == Comparison(variable="age", op="gt", value=18, unit="year")
    pregnancy = criteria["E2"].predicate
    assert isinstance(pregnancy, All) and pregnancy.items[0] == Manual(text="in group: Adolescent")
    assert "group 'Parents'" in (criteria["I4"].note or "")
