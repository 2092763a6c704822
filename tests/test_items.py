"""The text -> items stage (eligibility/items.py): registry layouts, scraped pages, properties.

Fixture pairs in tests/fixtures/items/: ``<name>.txt`` is criteria text, ``<name>.expected``
lists the items it must give, one a line: ``<I|E><number> <line> <text>``.
The seed and corpus tests read /work/shared (beside the repository) and skip without it.
"""

from __future__ import annotations

import collections
import json
import re
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from eligibility.errors import CriteriaTextError
from eligibility.items import Item, split_items
from eligibility.resources import data_file

FIXTURES = Path(__file__).parent / "fixtures" / "items"
SHARED = Path(__file__).resolve().parents[2] / "shared"


def rendered(items: list[Item]) -> list[str]:
    return [f"{item.kind[0].upper()}{item.number} {item.line} {item.text}" for item in items]


def kinds_and_texts(text: str) -> list[tuple[str, str]]:
    return [(item.kind, item.text) for item in split_items(text)]


# --- fixture pairs, one per layout ----------------------------------------------------------


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("*.txt")), ids=lambda path: path.stem)
def test_fixture(path: Path) -> None:
    expected = [line for line in path.with_suffix(".expected").read_text(encoding="utf-8").splitlines() if line and not line.startswith("#")]
    assert rendered(split_items(path.read_text(encoding="utf-8"), source=path.name)) == expected


def test_every_fixture_has_an_expected_file() -> None:
    inputs = {path.stem for path in FIXTURES.glob("*.txt")}
    assert inputs and inputs == {path.stem for path in FIXTURES.glob("*.expected")}


# --- errors and empty lists -----------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Age: between 25 and 75 years\nGender: both",
        "Subjects who fulfil inclusion/exclusion criteria will undergo a bone marrow aspiration.",
        "Inclusion and exclusion criteria\n\n- age over 18",  # a combined heading opens no list
    ],
)
def test_text_without_a_criteria_heading_is_an_error(text: str) -> None:
    with pytest.raises(CriteriaTextError) as raised:
        split_items(text, source="trial.txt")
    assert raised.value.source == "trial.txt"
    assert raised.value.line == 1
    assert "expected an 'Inclusion Criteria' or 'Exclusion Criteria' heading" in str(raised.value)


def test_headings_without_items_give_no_items() -> None:
    assert split_items("Inclusion Criteria:\n\nExclusion Criteria:\n") == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Inclusion Criteria:\n* Age over 18", [("inclusion", "Age over 18")]),
        ("Exclusion Criteria:\n* Pregnancy", [("exclusion", "Pregnancy")]),
    ],
)
def test_a_text_may_have_one_list_only(text: str, expected: list[tuple[str, str]]) -> None:
    assert kinds_and_texts(text) == expected


# --- headings -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("heading", "kind"),
    [
        ("Inclusion Criteria:", "inclusion"),
        ("INCLUSION CRITERIA", "inclusion"),
        ("inclusion criteria", "inclusion"),
        ("[Inclusion Criteria]", "inclusion"),
        ("Key Inclusion Criteria:", "inclusion"),
        ("Inclusion criteria for patients:", "inclusion"),
        ("Inclusion Criteria (PTA group)", "inclusion"),
        ("Inclusion criteria stage 2", "inclusion"),
        ("Inclusions:", "inclusion"),
        ("Inclution Criteria:", "inclusion"),
        ("-  INCLUSION CRITERIA:", "inclusion"),
        ("1. Inclusion Criteria:", "inclusion"),
        ("Exclusion Criteria (any of the following)", "exclusion"),
        ("Exclusion criteria :", "exclusion"),
        ("Subject Exclusion", "exclusion"),
        ("Non-inclusion criteria:", "exclusion"),
        ("Non inclusion criteria for control subjects", "exclusion"),
    ],
)
def test_heading_variants(heading: str, kind: str) -> None:
    assert kinds_and_texts(f"{heading}\n- Age over 18") == [(kind, "Age over 18")]


def test_text_on_a_heading_line_is_the_first_item() -> None:
    assert split_items("Inclusion Criteria: age over 18\nExclusion Criteria:\n- Pregnancy") == [
        Item(kind="inclusion", number=1, text="age over 18", line=1),
        Item(kind="exclusion", number=1, text="Pregnancy", line=3),
    ]


@pytest.mark.parametrize(
    "sentence",
    [
        "Not meeting all of the inclusion criteria",
        "Other protocol-defined inclusion/exclusion criteria may apply.",
        "Exclusion of patients with a pacemaker",
        "The following exclusion criteria apply to all subjects:",
        "Exclusion criteria for all participants: prior experience on the simulator",
    ],
)
def test_sentences_about_criteria_are_items(sentence: str) -> None:
    items = split_items(f"Inclusion Criteria:\n-  Age over 18\n-  {sentence}")
    assert [(item.kind, item.text) for item in items] == [("inclusion", "Age over 18"), ("inclusion", sentence)]


def test_a_heading_written_at_the_end_of_an_item_starts_a_list() -> None:
    text = "Inclusion Criteria:\n  -  Aged 18 or more\n  -  Signed informed consent Exclusion criteria:\n  -  Pregnancy"
    assert kinds_and_texts(text) == [
        ("inclusion", "Aged 18 or more"),
        ("inclusion", "Signed informed consent"),
        ("exclusion", "Pregnancy"),
    ]


def test_numbers_count_within_each_list_across_group_headings() -> None:
    text = "Resident Inclusion Criteria:\n- a1\nResident Exclusion Criteria:\n- b1\nStaff Inclusion Criteria:\n- a2\n- a3"
    assert [(item.kind, item.number) for item in split_items(text)] == [
        ("inclusion", 1),
        ("exclusion", 1),
        ("inclusion", 2),
        ("inclusion", 3),
    ]


# --- text before the first heading and after the last item ------------------------------------


def test_a_short_preamble_before_the_first_heading_is_kept_as_inclusion_items() -> None:
    text = "For community patients:\nInclusion Criteria:\n- age over 18\nExclusion Criteria:\n- None"
    assert kinds_and_texts(text)[:2] == [("inclusion", "For community patients:"), ("inclusion", "age over 18")]


def test_page_text_before_the_first_heading_is_ignored() -> None:
    page = "\n".join(f"Page line {n}" for n in range(12))
    assert kinds_and_texts(f"{page}\nInclusion Criteria:\n- age over 18") == [("inclusion", "age over 18")]


def test_text_after_a_page_section_heading_before_the_criteria_is_ignored() -> None:
    assert kinds_and_texts("Trial design\nRandomised\nInclusion Criteria:\n- age over 18") == [("inclusion", "age over 18")]


def test_text_after_a_combined_heading_is_kept_as_inclusion_items() -> None:
    text = "Eligibility criteria:\n\nFor adolescents:\n\n* Enrolled in grades 9-12\n\nExclusion criteria:\n\n* Not providing assent"
    assert kinds_and_texts(text) == [
        ("inclusion", "For adolescents:"),
        ("inclusion", "Enrolled in grades 9-12"),
        ("exclusion", "Not providing assent"),
    ]


def test_items_before_a_lone_exclusion_heading_are_inclusion_items() -> None:
    long_list = "\n".join(f"  {n}. criterion {n}" for n in range(1, 11))
    items = split_items(f"Subjects should fulfil the following criteria:\n{long_list}\nExclusion criteria:\n  1. Pregnancy")
    assert collections.Counter(item.kind for item in items) == {"inclusion": 11, "exclusion": 1}


@pytest.mark.parametrize("gap", ["\n\n", "\n"])
def test_a_page_section_heading_ends_the_criteria(gap: str) -> None:
    text = f"Exclusion Criteria\n- Pregnancy{gap}Study & Design\n- Study Type\n- INTERVENTIONAL"
    assert kinds_and_texts(text) == [("exclusion", "Pregnancy")]


def test_a_wrapped_word_that_names_a_page_section_is_not_a_heading() -> None:
    text = "Exclusion Criteria:\n  -  Anticoagulation with abnormal coagulation panel\n     results."
    assert kinds_and_texts(text) == [("exclusion", "Anticoagulation with abnormal coagulation panel results.")]


def test_a_trailing_note_after_a_blank_line_is_an_item() -> None:
    text = "Exclusion Criteria:\n\n1. Pregnancy\n2. Smoking\n\nThe information listed above is not complete."
    assert [item.text for item in split_items(text)] == ["Pregnancy", "Smoking", "The information listed above is not complete."]


# --- markers, wrapped lines, sub-items, escapes ----------------------------------------------


@pytest.mark.parametrize("marker", ["*", "-", "•", "·", "1.", "1)", "(1)", "a.", "a)", "(iv)", "-  1."])
def test_marker_is_removed(marker: str) -> None:
    assert kinds_and_texts(f"Inclusion Criteria:\n{marker} Age over 18") == [("inclusion", "Age over 18")]


def test_wrapped_lines_are_joined_with_one_space() -> None:
    text = "Inclusion Criteria:\n\n  -  Persistent presence of an antibody, as defined by\n     one or both of the following criteria:\n\n  -  Age 18 or over"
    assert [item.text for item in split_items(text)] == [
        "Persistent presence of an antibody, as defined by one or both of the following criteria:",
        "Age 18 or over",
    ]


def test_sub_items_belong_to_their_parent() -> None:
    text = (
        "Inclusion Criteria:\n\n"
        "* Active disease at screening as defined by\n\n"
        "  * Activity score \\>= 4\n"
        "  * Pain score \\>= 4;\n"
        "    * measured twice\n"
        "* Able to consent"
    )
    assert split_items(text) == [
        Item(kind="inclusion", number=1, text="Active disease at screening as defined by Activity score >= 4; Pain score >= 4; measured twice", line=3),
        Item(kind="inclusion", number=2, text="Able to consent", line=8),
    ]


def test_lettered_items_under_a_numbered_item_are_its_sub_items() -> None:
    text = "Exclusion Criteria:\n1. Renal impairment, either:\na) eGFR < 30\nb) dialysis\n2. Pregnancy"
    assert [item.text for item in split_items(text)] == ["Renal impairment, either: eGFR < 30; dialysis", "Pregnancy"]


@pytest.mark.parametrize(
    ("written", "meant"),
    [
        (r"Age \>= 18", "Age >= 18"),
        (r"eGFR =\< 60", "eGFR =< 60"),
        (r"m\*\*2", "m**2"),
        (r"\[CKD-EPI\]", "[CKD-EPI]"),
        (r"HbA1c\_value", "HbA1c_value"),
    ],
)
def test_markdown_escapes_are_removed(written: str, meant: str) -> None:
    assert kinds_and_texts(f"Inclusion Criteria:\n\n* {written}") == [("inclusion", meant)]


def test_an_escaped_star_starts_no_item() -> None:
    assert kinds_and_texts("Inclusion Criteria:\n* Age over 18\n\\* as reported") == [("inclusion", "Age over 18 * as reported")]


def test_each_line_is_an_item_in_a_list_without_markers() -> None:
    text = "Inclusion criteria\nAge 18-65\nHealthy\nBMI 18-30 and\nno chronic illness"
    assert [item.text for item in split_items(text)] == ["Age 18-65", "Healthy", "BMI 18-30 and no chronic illness"]


def test_item_is_frozen() -> None:
    item = split_items("Inclusion Criteria:\n- Age over 18")[0]
    with pytest.raises(ValidationError):
        item.text = "changed"  # type: ignore[misc]


def test_layout_words_are_strings() -> None:
    """YAML reads a bare no/on/yes as a boolean: every word in layout.yaml must still be a string."""

    def leaves(node: object) -> list[object]:
        if isinstance(node, dict):
            return [leaf for value in node.values() for leaf in leaves(value)]
        if isinstance(node, list):
            return [leaf for value in node for leaf in leaves(value)]
        return [node]

    layout = yaml.safe_load(data_file("rules", "layout.yaml").read_text(encoding="utf-8"))
    assert all(isinstance(leaf, str) or type(leaf) is int for leaf in leaves(layout))


# --- properties: every item written in any layout comes back, once, with its text -----------

WORDS = st.sampled_from(
    "patients with type 2 diabetes HbA1c >= 7% < 30 mL/min eGFR prior therapy, (confirmed) not pregnant "
    "signed consent history of stroke and or within 6 months Age years older than 18 treated at baseline".split()
)
TEXTS = st.lists(WORDS, min_size=1, max_size=40).map(" ".join)
LISTS = st.tuples(st.lists(TEXTS, min_size=1, max_size=8), st.lists(TEXTS, max_size=8))


def wrap(text: str, first: str, rest: str) -> str:
    return textwrap.fill(text, width=80, initial_indent=first, subsequent_indent=rest, break_on_hyphens=False, break_long_words=False)


def api_v2_markdown(inclusion: list[str], exclusion: list[str]) -> str:
    def escaped(text: str) -> str:
        return text.replace(">", "\\>").replace("<", "\\<")

    return "Inclusion Criteria:\n\n" + "\n".join(f"* {escaped(t)}" for t in inclusion) + "\n\nExclusion Criteria:\n\n" + "\n".join(f"{n}. {escaped(t)}" for n, t in enumerate(exclusion, 1))


def xml_textblock(inclusion: list[str], exclusion: list[str]) -> str:
    def block(texts: list[str]) -> str:
        return "".join(wrap(t, "          -  ", " " * 13) + "\n\n" for t in texts)

    return f"\n        Inclusion Criteria:\n\n{block(inclusion)}        Exclusion Criteria:\n\n{block(exclusion)}      "


def one_item_per_line(inclusion: list[str], exclusion: list[str]) -> str:
    def block(texts: list[str]) -> str:
        return "".join(wrap(t, "  -  ", " " * 5) + "\n" for t in texts)

    return f"Inclusion Criteria:\n{block(inclusion)}Exclusion Criteria:\n{block(exclusion)}"


def scraped_page(inclusion: list[str], exclusion: list[str]) -> str:
    def block(texts: list[str]) -> str:
        return "".join(f"  {n}. {t}\n" for n, t in enumerate(texts, 1))

    noise = "Menu\n\nAbout\n\nA study of drug X.\n\nEnrollment\n\n60 patients\n\nSex\n\nAll\n\nInclusion and exclusion criteria\n\n"
    return f"{noise}[Inclusion Criteria]\n\n{block(inclusion)}\n[Exclusion Criteria]\n\n{block(exclusion)}\nTrial design\n\nRandomised\n- Drug: X"


def plain_lines(inclusion: list[str], exclusion: list[str]) -> str:
    return "inclusion criteria\n" + "".join(f"{t}.\n" for t in inclusion) + "EXCLUSION CRITERIA\n" + "".join(f"{t}.\n" for t in exclusion)


@pytest.mark.parametrize("layout", [api_v2_markdown, xml_textblock, one_item_per_line, scraped_page], ids=lambda f: f.__name__)
@given(lists=LISTS)
def test_every_written_item_comes_back(layout: Callable[[list[str], list[str]], str], lists: tuple[list[str], list[str]]) -> None:
    inclusion, exclusion = lists
    expected = [("inclusion", t) for t in inclusion] + [("exclusion", t) for t in exclusion]
    assert kinds_and_texts(layout(inclusion, exclusion)) == expected


@given(lists=LISTS)
def test_every_line_of_a_list_without_markers_comes_back(lists: tuple[list[str], list[str]]) -> None:
    inclusion, exclusion = lists
    expected = [("inclusion", f"{t}.") for t in inclusion] + [("exclusion", f"{t}.") for t in exclusion]
    assert kinds_and_texts(plain_lines(inclusion, exclusion)) == expected


@given(parents=st.lists(st.tuples(TEXTS, st.lists(TEXTS, max_size=4)), min_size=1, max_size=6))
def test_sub_items_never_make_items_of_their_own(parents: list[tuple[str, list[str]]]) -> None:
    text = "Inclusion Criteria:\n\n" + "\n".join(f"* {parent}" + "".join(f"\n  * {sub}" for sub in subs) for parent, subs in parents)
    expected = [" ".join([parent, "; ".join(subs)]) if subs else parent for parent, subs in parents]
    assert [item.text for item in split_items(text)] == expected


# --- the seed pages and the corpus in /work/shared (optional) --------------------------------


def shared_path(*parts: str) -> Path:
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} not found: the shared seeds and corpus live beside the repository, in ../shared")
    return path


@pytest.mark.parametrize(
    ("prefix", "counts"),
    [("000", None), ("001", (5, 13)), ("002", (4, 12)), ("003", (5, 5)), ("004", None)],
)
def test_seed_page(prefix: str, counts: tuple[int, int] | None) -> None:
    (path,) = shared_path("seeds").glob(f"{prefix}_*.txt")
    text = path.read_text(encoding="utf-8")
    if counts is None:
        with pytest.raises(CriteriaTextError):
            split_items(text, source=path.name)
        return
    items = split_items(text, source=path.name)
    kinds = collections.Counter(item.kind for item in items)
    assert (kinds["inclusion"], kinds["exclusion"]) == counts
    assert not any(word in item.text for item in items for word in ("Trial design", "Study Type", "INTERVENTIONAL"))


def test_seed_items_keep_their_wording() -> None:
    (path,) = shared_path("seeds").glob("001_*.txt")
    items = {f"{item.kind[0].upper()}{item.number}": item.text for item in split_items(path.read_text(encoding="utf-8"))}
    assert items["I5"] == "Subjects whose ALSFRS-R scores are in the range of 31~46 at the time of screening (P-V0)."
    assert items["E7"] == "Subjects with severe renal disorder (serum creatinine: not less than 2.0 mg/dL)."


_LEADING_MARKERS = re.compile(r"^\s*(?:[-*•·–]\s*)?(?:\(?\w{1,3}[.)]\s*)?")
_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")
_ABOUT_CRITERIA = re.compile(r"inclu|exclu|criteri", re.IGNORECASE)
_STARTS_LIKE_A_HEADING = re.compile(r"\W*(?:[A-Z]|(?i:(?:key\s+|non[\s-]*)?(?:inclu|exclu)))")


def looks_like_heading(fragment: str, max_words: int) -> bool:
    """A few words about inclusion, exclusion or criteria, capitalised or starting with the keyword.

    Looser than the splitter's own rules, and independent of them: "criteria:" alone, in lower
    case, is the end of a wrapped sentence and must be kept.
    """
    starts_like_a_heading = _STARTS_LIKE_A_HEADING.match(fragment)
    return bool(_ABOUT_CRITERIA.search(fragment) and len(fragment.split()) <= max_words and starts_like_a_heading)


def lost_lines(raw: str, items: list[Item]) -> list[str]:
    """The lines of ``raw`` whose text, marker and heading words removed, is in no item.

    Wrapped lines are joined with one space and sub-items with "; ", so each line's text must
    appear as it is inside one item's text.
    """
    kept = "\n".join(item.text for item in items)
    lost = []
    for line in raw.splitlines():
        text = " ".join(_ESCAPE.sub(r"\1", _LEADING_MARKERS.sub("", line)).split())
        while ":" in text and looks_like_heading(text.split(":", 1)[0], max_words=16):
            text = text.split(":", 1)[1].strip()
        if ":" not in text and looks_like_heading(text, max_words=12):
            continue
        text = text.rstrip(";")
        if re.search(r"\w", text) and text not in kept:
            lost.append(line)
    return lost


@pytest.fixture(scope="module")
def corpus() -> list[dict[str, Any]]:
    with shared_path("corpus", "trials.jsonl").open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def test_corpus_splits_without_error_or_lost_text(corpus: list[dict[str, Any]]) -> None:
    problems = []
    for trial in corpus:
        raw = trial["criteria_raw"]
        if not isinstance(raw, str):
            continue
        try:
            items = split_items(raw, source=str(trial["nct_id"]))
        except CriteriaTextError:
            if trial["sections"] != "no_headers":
                problems.append(f"{trial['nct_id']}: raised although the corpus found headings")
            continue
        if lost := lost_lines(raw, items):
            problems.append(f"{trial['nct_id']}: lost {lost}")
    assert not problems, "\n".join(problems[:20])


def test_api_v2_records_split_without_lost_text() -> None:
    problems = []
    for path in sorted(shared_path("corpus", "ctgov_v2").glob("*.json")):
        module = json.loads(path.read_text(encoding="utf-8"))["protocolSection"].get("eligibilityModule", {})
        if raw := module.get("eligibilityCriteria"):
            if lost := lost_lines(raw, split_items(raw, source=path.name)):
                problems.append(f"{path.name}: lost {lost}")
    assert not problems, "\n".join(problems)


# Floors, not targets: the corpus's own split counts every line of a wrapped item, every
# sub-item and some headings as items, so full agreement is neither expected nor wanted.
AGREEMENT_FLOORS = {"lct_one_item_per_line": 0.75, "ctgov_xml_textblock": 0.65, "ctgov_api_v2_markdown": 0.6}


def test_corpus_agreement_with_the_corpus_split(corpus: list[dict[str, Any]]) -> None:
    """Prints, per layout, how often the item counts equal the corpus's own (run with -s)."""
    tally: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for trial in corpus:
        raw, layout = trial["criteria_raw"], str(trial["text_format"])
        if not isinstance(raw, str) or trial["sections"] == "no_headers":
            continue
        kinds = collections.Counter(item.kind for item in split_items(raw))
        inclusion_agrees = kinds["inclusion"] == len(trial["inclusion"])
        exclusion_agrees = kinds["exclusion"] == len(trial["exclusion"])
        tally[layout].update(trials=1, inclusion=inclusion_agrees, exclusion=exclusion_agrees, both=inclusion_agrees and exclusion_agrees)
    print("\nlayout                  trials  both   inclusion  exclusion")
    for layout, counts in sorted(tally.items()):
        share = {key: counts[key] / counts["trials"] for key in ("both", "inclusion", "exclusion")}
        print(f"{layout:<24}{counts['trials']:>6}  {share['both']:6.1%} {share['inclusion']:9.1%} {share['exclusion']:10.1%}")
        assert share["both"] >= AGREEMENT_FLOORS[layout], layout


GROUPED = """Inclusion Criteria:Adolescents
  1. Age 12-18
  2. Fluent in English
Inclusion Criteria:Parents
  1. Age >18
Exclusion Criteria: Adolescent
  1. Use of anti-psychotic medication
Exclusion Criteria: Parents
  1. Use of anti-psychotic medication
"""


def test_items_under_group_labels_carry_their_group() -> None:
    """NCT03928028: "Inclusion Criteria:Parents" heads the parents' criteria; the label stays an item."""
    items = split_items(GROUPED)
    assert [(i.kind, i.group, i.text) for i in items] == [
        ("inclusion", "Adolescents", "Adolescents"), ("inclusion", "Adolescents", "Age 12-18"),
        ("inclusion", "Adolescents", "Fluent in English"), ("inclusion", "Parents", "Parents"),
        ("inclusion", "Parents", "Age >18"), ("exclusion", "Adolescent", "Adolescent"),
        ("exclusion", "Adolescent", "Use of anti-psychotic medication"), ("exclusion", "Parents", "Parents"),
        ("exclusion", "Parents", "Use of anti-psychotic medication")]


def test_one_label_alone_is_a_first_item_not_a_group() -> None:
    items = split_items("Inclusion Criteria: Pregnant women\n1. Age 18-45\nExclusion Criteria:\n1. Smoking")
    assert [i.group for i in items] == [None, None, None]
