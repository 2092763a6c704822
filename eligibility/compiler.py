"""Trial text or registry record -> Trial: splits items, parses each, builds predicates.

Every item becomes a criterion: compiled, or kept verbatim with ``compiled: false`` and a
note saying what stopped it. Nothing is dropped (count in == count out).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from .errors import CriteriaTextError, InputError, RuleFileError
from .items import split_items
from .patient import parse_json_text
from .predicates import All, AnyOf, Comparison, Implies, Manual, Not, PredicateNode, Range, Sex
from .trial import Criterion, CriterionKind, Trial, load_rule_text, trial_from_rule_data
from .vocabulary import vocabulary


MAX_TRIAL_BYTES = 5 * 1024 * 1024
"""A trial file larger than this is refused: registry records are tens of kilobytes."""

_NCT_ID = re.compile(r"\bNCT\d{8}\b")
# "Subjects with severe renal disorder (serum creatinine: not less than 2.0 mg/dL)": the
# parenthesis defines the words before it, so it may compile alone if it is a measurement.
_DEFINING_PARENTHESIS = re.compile(r"\(([^()]*\d[^()]*)\)\s*[.;,]?\s*$")
# A list marker left on an item ("3. Total IgG ...", "(2) ...", "• ..."): not part of the criterion.
_LEADING_MARKER = re.compile(r"^\s*(?:\(\d{1,2}\)|\d{1,2}[.)](?!\d)|[•▪·*](?=\s)|-(?=\s))\s*")
_RULE_FILE_KEY = re.compile(r"(trial|criteria|title|condition|source|healthy_volunteers)\s*:")


def _is_rule_file(text: str) -> bool:
    """A YAML rule file: comments, blank lines or "---" first, then a top-level key of a Trial."""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith(("#", "---")):
            return _RULE_FILE_KEY.match(line) is not None
    return False


# "..., except curatively treated skin cancer", "(other than basal cell carcinoma)"
_EXCEPTION = re.compile(r"\b(?:except(?:\s+for)?|excluding|other\s+than|with\s+the\s+exception\s+of|(?P<waiver>unless))\b(?P<tail>.*)$",
                        re.IGNORECASE | re.DOTALL)
# "in which case it must be ≤ 5x ULN": the exception sets another requirement, so it waives the first
_WAIVER = re.compile(r"\bin\s+which\s+case\b", re.IGNORECASE)
# "Chemotherapy:", "Patients with Major Depressive Disorder (MDD)：": a lead-in to the items after it
_LEAD_IN = re.compile(r"[:：]\s*$")
# Words before the parenthesis that would turn its meaning around or carve out of it
_NEGATED = re.compile(r"(?<![\w])(no|not|non|without|absence|absent|free|never|except|unless|other than|excluding)(?![\w])", re.IGNORECASE)
# A parenthesis after such words is one example or part of a broader condition, not its definition
_LOOSE_DEFINITION = re.compile(r"[(,;]|(?<![\w])(especially|such as|e\.g|including|for example|or|and)(?![\w])", re.IGNORECASE)
_REGISTRY_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(year|month|week|day)s?\s*$", re.IGNORECASE)


def compile_criterion(text: str, kind: CriterionKind, condition: str | None = None) -> tuple[PredicateNode | None, str | None]:
    """The predicate one criterion's text means, or None and a note on what stopped it."""
    # lark is imported here, not at module level: screening a rule file never needs it
    from .grammar import MAX_CRITERION_LENGTH, SyntaxProblem, parse_criterion
    from .transform import CompileContext, CompileProblem, build_predicate

    context = CompileContext(kind, condition)
    if len(text) > MAX_CRITERION_LENGTH:
        return None, f"not compiled: longer than {MAX_CRITERION_LENGTH} characters: not parsed"
    text = _LEADING_MARKER.sub("", text, count=1)
    if _LEAD_IN.search(text):
        return None, "not compiled: ends with a colon: a lead-in to the items after it, not a criterion"
    exception = _EXCEPTION.search(text)
    if exception is not None:
        before = text[: exception.start()]
        head, tail = before.rstrip(" \t\r\n,;("), exception.group("tail")  # "..., except", "(other than"
    if exception is not None and head:
        if "(" in before[len(head):] and ")" in tail:
            # "(excluding placement of vascular access) within 4 weeks": the exception ends at
            # its bracket and what follows belongs to the head
            tail, after = tail.split(")", 1)
            head = f"{head} {after}"
        waives = exception.group("waiver") is not None or _WAIVER.search(tail) is not None
        return _with_exception(head, tail.strip(" ).;"), kind, condition, waives)
    try:
        predicate = build_predicate(parse_criterion(text), context, text)
    except (SyntaxProblem, CompileProblem) as problem:
        inner = _DEFINING_PARENTHESIS.search(text)
        # only in an exclusion: an inclusion compiled from its bracket alone would let in a patient
        # without the condition the words before it require ("ischemic stroke (NIHSS < 16)")
        if (inner is not None and kind == "exclusion" and not _NEGATED.search(text[: inner.start()])
                and not _LOOSE_DEFINITION.search(text[: inner.start()])):
            try:
                predicate = build_predicate(parse_criterion(inner.group(1)), context, inner.group(1))
            except (SyntaxProblem, CompileProblem):
                pass
            else:
                if _is_measurement(predicate):
                    return predicate, "compiled from the parenthesis, which defines the words before it"
        return None, f"not compiled: {problem}"
    if kind == "exclusion" and isinstance(predicate, Not):
        return _negative_exclusion(predicate)
    return predicate, None


def _negative_exclusion(predicate: Not) -> tuple[PredicateNode, str]:
    """"no food allergies" under an exclusion heading: read literally it excludes everyone
    without the condition, which is what a sponsor means by "no informed consent" but not by
    "no food allergies" (an inclusion listed under the wrong heading). The manual part keeps it
    from excluding anyone on its own: where the literal reading would exclude, it is unknown.
    """
    manual = Manual(text="an exclusion written as a negative: excludes only if meant as written, "
                         "not as an inclusion listed under the exclusions")
    return All(items=(predicate, manual)), "a negative exclusion: where it would exclude, kept for manual review"


def _with_exception(head: str, exception: str, kind: CriterionKind, condition: str | None,
                    waives: bool) -> tuple[PredicateNode | None, str | None]:
    """"No history of malignancy except curatively treated skin cancer": compile what is
    certain; the exception stays a manual part, so it can only ever make the answer unknown.

    An exception carves cases out of the condition the head describes: out of "X" it is
    all(X, not-excepted), out of "no X" any(no X, excepted). In an inclusion, an exception
    that waives the requirement ("X unless E", "... in which case ...") or excepts from a
    measurement ("bilirubin ≤ 1.5 x ULN except Gilbert's") lets the patient in either way:
    any(X, excepted).
    """
    predicate, note = compile_criterion(head, kind, condition)
    if predicate is None:
        return None, note
    manual = Manual(text=f"unless the exception applies: {exception}")
    widens = kind == "inclusion" and (waives or _is_measurement(predicate))
    combined = AnyOf(items=(predicate, manual)) if isinstance(predicate, Not) or widens else All(items=(predicate, manual))
    return combined, f"exception kept for manual review: {exception}"


def _is_measurement(predicate: PredicateNode) -> bool:
    if isinstance(predicate, AnyOf) or predicate.type == "all":
        return all(_is_measurement(item) for item in getattr(predicate, "items"))
    return isinstance(predicate, (Comparison, Range))


def _criterion(criterion_id: str, kind: CriterionKind, text: str, condition: str | None,
               group: str | None = None) -> Criterion:
    predicate, note = compile_criterion(text, kind, condition)
    if predicate is not None and group is not None:
        # under "Inclusion Criteria: Parents" a criterion is the parents' only: it never fails another
        # patient (inclusion), nor excludes one (exclusion), on its own
        in_group = Manual(text=f"in group: {group}")
        predicate = Implies(condition=in_group, then=predicate) if kind == "inclusion" else All(items=(in_group, predicate))
        note = f"{note + '; ' if note else ''}applies to the group '{group}' only"
    return Criterion(id=criterion_id, kind=kind, text=text, compiled=predicate is not None, predicate=predicate, note=note)


def compile_trial(text: str, *, trial_id: str | None = None, condition: str | None = None, source: str = "<text>") -> Trial:
    """Compile criteria text (contract section 1.1) into a Trial.

    ``condition`` is the vocabulary id of the trial's condition, which "the disease" means.

    >>> trial = compile_trial("Inclusion Criteria:\\n1. Age 18 to 65 years\\nExclusion Criteria:\\n* Pregnancy")
    >>> [(c.id, c.compiled) for c in trial.criteria]
    [('I1', True), ('E1', True)]
    """
    if condition is not None and condition not in vocabulary():
        raise InputError(f"unknown condition {condition!r}: not in rules/vocabulary.yaml", source=source)
    items = split_items(text, source=source)
    if not items:  # a trial of no criteria would screen every patient "eligible"
        raise CriteriaTextError("headings but no criteria under them", source=source)
    criteria = [
        _criterion(f"{'I' if item.kind == 'inclusion' else 'E'}{item.number}", item.kind, item.text, condition, item.group)
        for item in items
    ]
    found_id = _NCT_ID.search(text)
    return Trial(trial=trial_id or (found_id.group(0) if found_id else "unnamed"), condition=condition,
                 source=source, criteria=tuple(criteria))


def _registry_age(written: object, source: str, field: str) -> tuple[float, str] | None:
    if written is None or str(written).strip().upper() in ("", "N/A", "NA", "NONE"):
        return None
    match = _REGISTRY_AGE.match(str(written))
    if match is None:
        raise RuleFileError(f"{field} {written!r} is not an age such as '18 Years'", source=source,
                            path=f"$.protocolSection.eligibilityModule.{field}")
    return float(match.group(1)), match.group(2).lower()


def _structured_criteria(module: dict[str, Any], source: str) -> list[Criterion]:
    """Registry minimumAge / maximumAge / sex as criteria ``age`` and ``sex`` (bounds inclusive)."""
    criteria: list[Criterion] = []
    low = _registry_age(module.get("minimumAge"), source, "minimumAge")
    high = _registry_age(module.get("maximumAge"), source, "maximumAge")
    age: PredicateNode | None = None
    if low and high and low[1] == high[1]:
        age = Range(variable="age", low=low[0], high=high[0], unit=low[1])
    elif low and high:  # e.g. "6 Months" to "17 Years": each bound in its own unit
        age = All(items=(Comparison(variable="age", op="ge", value=low[0], unit=low[1]),
                         Comparison(variable="age", op="le", value=high[0], unit=high[1])))
    elif low:
        age = Comparison(variable="age", op="ge", value=low[0], unit=low[1])
    elif high:
        age = Comparison(variable="age", op="le", value=high[0], unit=high[1])
    if age is not None:
        text = f"Age {module.get('minimumAge') or 'N/A'} to {module.get('maximumAge') or 'N/A'} (registry)"
        criteria.insert(0, Criterion(id="age", kind="inclusion", text=text, compiled=True, predicate=age))
    sex = str(module.get("sex") or "ALL").upper()
    by_sex: dict[str, PredicateNode] = {
        "FEMALE": Sex(sex="female"), "MALE": Sex(sex="male"),
        "ALL": AnyOf(items=(Sex(sex="female"), Sex(sex="male"))),
    }
    sex_predicate = by_sex.get(sex)
    if sex_predicate is None:
        raise RuleFileError(f"sex {sex!r} is not ALL, FEMALE or MALE", source=source, path="$.protocolSection.eligibilityModule.sex")
    criteria.append(Criterion(id="sex", kind="inclusion", text=f"Sex: {sex} (registry)", compiled=True, predicate=sex_predicate))
    return criteria


def _field(mapping: dict[str, Any], key: str, kind: type, path: str, source: str, default: Any = None) -> Any:
    """A record field of the expected JSON type (absent: ``default``), or RuleFileError at its path."""
    value = mapping.get(key, default)
    if value is not None and not isinstance(value, kind):
        raise RuleFileError(f"{key} is not {_JSON_KIND[kind]}", source=source, path=f"{path}.{key}")
    return value


_JSON_KIND = {dict: "an object", list: "a list", str: "text", bool: "true or false"}


def _trial_condition(protocol: dict[str, Any], source: str) -> str | None:
    """The first registry condition the vocabulary knows as a condition ("the disease")."""
    module = _field(protocol, "conditionsModule", dict, "$.protocolSection", source, {})
    names = _field(module, "conditions", list, "$.protocolSection.conditionsModule", source, [])
    vocab = vocabulary()
    for name in names:
        variable = vocab.by_name(str(name))
        if variable is not None and variable.kind == "condition":
            return variable.id
    return None


def compile_registry_record(record: dict[str, Any], source: str = "<record>") -> Trial:
    """Compile a ClinicalTrials.gov API v2 study record (contract section 1.2)."""
    protocol = record.get("protocolSection")
    if not isinstance(protocol, dict):
        raise RuleFileError("no protocolSection: not a ClinicalTrials.gov study record", source=source, path="$")
    module = protocol.get("eligibilityModule")
    if not isinstance(module, dict):
        raise RuleFileError("the record has no eligibilityModule", source=source, path="$.protocolSection")
    identification = _field(protocol, "identificationModule", dict, "$.protocolSection", source, {})
    where = "$.protocolSection.identificationModule"
    nct_id = _field(identification, "nctId", str, where, source) or "unnamed"
    title = _field(identification, "briefTitle", str, where, source)
    text = _field(module, "eligibilityCriteria", str, "$.protocolSection.eligibilityModule", source) or ""
    condition = _trial_condition(protocol, source)
    structured = _structured_criteria(module, source)
    try:
        compiled = compile_trial(text, condition=condition, source=source).criteria if text.strip() else ()
    except CriteriaTextError as error:
        raise RuleFileError(f"eligibilityCriteria: {error.message}", source=source,
                            path="$.protocolSection.eligibilityModule.eligibilityCriteria") from None
    healthy = module.get("healthyVolunteers")
    return Trial(trial=nct_id, title=title, condition=condition,
                 healthy_volunteers=healthy if isinstance(healthy, bool) else None,
                 source=source, criteria=(*structured, *compiled))


def load_trial(path: str | Path, *, condition: str | None = None) -> Trial:
    """Load a trial from criteria text, a registry record (JSON) or a rule file (JSON/YAML).

    The form is told by content, not only by the file's extension.
    """
    source = str(path)
    try:
        file_path = Path(path)
        if file_path.stat().st_size > MAX_TRIAL_BYTES:
            raise InputError(f"larger than {MAX_TRIAL_BYTES // (1024 * 1024)} MB", source=source)
        raw = file_path.read_bytes()
    except OSError as error:
        raise InputError(error.strerror or "cannot be read", source=source) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise InputError(f"not UTF-8 text (byte {error.start})", source=source) from None
    stripped = text.lstrip()
    if stripped.startswith("{"):
        data = parse_json_text(text, source, RuleFileError)
        if isinstance(data, dict) and "protocolSection" in data:
            return compile_registry_record(data, source)
        return trial_from_rule_data(data, source)
    if _is_rule_file(text):
        return load_rule_text(text, source)
    return compile_trial(text, condition=condition, source=source,
                         trial_id=None if _NCT_ID.search(text) else Path(path).stem)
