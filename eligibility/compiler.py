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
# "Anemia defined as hemoglobin < 10 g/dL", "renal insufficiency (defined as creatinine > 2 x ULN)",
# "Adequate renal function, as defined by GFR > 60 mL/min": the writer says the words before it ARE
# the clause, so the clause may compile alone (in an inclusion too) if all of it is a measurement.
# A sentence "Severe anemia is defined as ..." is a note on a term used elsewhere, not a criterion.
_DEFINED_AS = re.compile(r"\s*(?:,\s*|\(\s*)?(?P<sentence>(?:is|are|was|were|will\s+be)\s+)?(?:as\s+)?defined\s+(?:as|by)\s+(?P<clause>[^:]+?)\s*[.;,]?\s*$",
                         re.IGNORECASE)
# "Adequate renal function (GFR > 60 mL/min)": an adequacy the bracket states in full, so the bracket
# is what the inclusion requires
_ADEQUACY = re.compile(r"^\s*(?:patients?\s+with\s+|has\s+|have\s+)?adequate\s+[\w\s-]*?(?:function|control|reserve)\s*$",
                       re.IGNORECASE)
# Words in a label that set a requirement of their own ("Women with hyperandrogenism defined as ...",
# "history of anemia (...)": a past, the measurement is today's), or a sentence before it: the
# definition alone would drop them
_LABEL_REQUIREMENT = re.compile(r"\d|[.:;!?]|(?<![\w])(women|woman|men|man|females?|males?|girls?|boys?|age|aged|years?|"
                                r"children|adults?|pregnant|if|when|while|after|before|during|within|"
                                r"history|prior|previous|previously|past|recent|recently|ever|had)(?![\w])", re.IGNORECASE)
# "Cerebrovascular disease (e.g. stroke, TIA) within 6 months": a bracket of names after a name. Not
# after "i.e.", which says the names are all the words before it mean; one name alone, unless said
# to be an example, may say which one is meant ("surgery (CABG)").
_EXAMPLES = re.compile(r"\(\s*(?P<marker>e\.\s*g\.?|for example|such as|including|like)?[\s,:]*(?P<names>[^()]+?)\s*(?:,?\s*etc\.?)?\s*\)")
_EXAMPLE_SEPARATOR = re.compile(r"\s*(?:,|;|/|(?<![\w])(?:and\s*/\s*or|or|and)(?![\w]))\s*", re.IGNORECASE)
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
        definition = _definition(text, kind)
        if definition is not None:
            clause, how = definition
            try:
                predicate = build_predicate(parse_criterion(clause), context, clause)
            except (SyntaxProblem, CompileProblem):
                pass
            else:
                if _is_measurement(predicate):
                    return predicate, f"compiled from the {how}, which defines the words before it"
        examples = _without_examples(text, context)
        if examples is not None:
            return examples
        return None, f"not compiled: {problem}"
    if kind == "exclusion" and isinstance(predicate, Not):
        return _negative_exclusion(predicate)
    return predicate, None


def _definition(text: str, kind: CriterionKind) -> tuple[str, str] | None:
    """The clause that defines the words before it, and what it is, or None.

    The label must be a plain name: negated, it means the opposite ("no severe renal disorder
    (...)"); loose ("especially", "or", a list), the clause is one example of it; with a requirement
    of its own (a sex, an age, a sentence), the clause alone would drop it. A bracket without
    "defined" defines its label only in an exclusion (an inclusion compiled from "ischemic stroke
    (NIHSS < 16)" would let in a patient without the stroke) or when the label is an adequacy.
    """
    defined = _DEFINED_AS.search(text)
    if defined is not None and defined.group("sentence"):
        return None
    if defined is not None and "(" in text[defined.start(): defined.start("clause")]:
        # "(defined as ...)": the clause ends at the bracket, which must end the text
        clause, closed, after = defined.group("clause").rpartition(")")
        found: tuple[str, str, str] | None = (text[: defined.start()], clause, "definition") if closed and not after.strip(" .;,") else None
    elif defined is not None:
        found = (text[: defined.start()], defined.group("clause"), "definition")
    elif (inner := _DEFINING_PARENTHESIS.search(text)) is not None:
        label = text[: inner.start()]
        found = (label, inner.group(1), "parenthesis") if kind == "exclusion" or _ADEQUACY.match(label) else None
    else:
        found = None
    if found is None:
        return None
    label, clause, how = found
    if (not label.strip() or _NEGATED.search(label) or _LOOSE_DEFINITION.search(label)
            or _LABEL_REQUIREMENT.search(label) or "defined" in clause.lower()):
        return None
    return clause.strip(), how


def _without_examples(text: str, context: Any) -> tuple[PredicateNode, str] | None:
    """"Cerebrovascular disease (stroke, TIA) within 6 months" without its bracket, when every name
    in it is narrower than the name just before it in the vocabulary: the examples add nothing to
    the broader name. One that is not ("anticancer treatment (chemotherapy, radiotherapy)") may
    widen or narrow it: not compiled.
    """
    from .grammar import SyntaxProblem, parse_criterion
    from .transform import CompileProblem, build_predicate

    found = _EXAMPLES.search(text)
    if found is None:
        return None
    vocab = vocabulary()
    named = [vocab.by_name(name) for name in _EXAMPLE_SEPARATOR.split(found.group("names")) if name]
    words = text[: found.start()].split()
    # the name the bracket follows: the longest run of words before it the vocabulary knows
    broader = next((v for n in range(min(len(words), 6), 0, -1) if (v := vocab.by_name(" ".join(words[-n:]))) is not None), None)
    if (broader is None or not (len(named) > 1 or found.group("marker")) or _NEGATED.search(text[: found.start()])
            or any(v is None or v.id not in vocab.narrower[broader.id] for v in named)):
        return None
    rest = f"{text[: found.start()]} {text[found.end():]}"
    try:
        predicate = build_predicate(parse_criterion(rest), context, rest)
    except (SyntaxProblem, CompileProblem):
        return None
    return predicate, f"the names in brackets are examples of {broader.label}: compiled as {broader.label}"


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
