"""The text -> items stage: cuts eligibility-criteria text into numbered inclusion/exclusion items.

Handles the layouts registries publish (ClinicalTrials.gov API v2 markdown, the older XML text
block, one item a line) and scraped trial pages, whose text around the criteria is ignored.
The words it recognises (headings, page sections, bullets) live in ``rules/layout.yaml``.

Inside a criteria section no text is dropped: every non-blank line that is not a heading ends
up in exactly one item. Wrapped lines are joined and sub-items stay with their parent, because
the report's ``I<n>``/``E<n>`` ids count the trial's own items.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import yaml
from pydantic import BaseModel

from .errors import CriteriaTextError
from .resources import data_file

__all__ = ["Item", "split_items"]

Kind = Literal["inclusion", "exclusion"]
Marker = Literal["bullet", "number", "letter"]

MAX_ITEMS = 1000
"""Criteria text with more items than this is refused, not cut: it is not one trial's list (the
largest in the corpus of 1,170 trials has 82), and compiling it all would take minutes."""


class Item(BaseModel, frozen=True):
    """One criterion as the trial wrote it, with its place in the text."""

    kind: Kind
    number: int
    """1-based, counting within its own list: the n of the report's ``I<n>`` / ``E<n>``."""
    text: str
    """Wrapped lines joined with one space, marker removed, sub-items appended ``"; "``-separated."""
    line: int
    """1-based line of the input where the item starts."""
    group: str | None = None
    """The group a labelled section's items apply to ("Inclusion Criteria: Parents"), or None."""


def split_items(text: str, *, source: str = "<text>") -> list[Item]:
    """The criteria of ``text`` in the text's order, numbered within their list.

    Raises CriteriaTextError when the text has no inclusion or exclusion heading.

    >>> [(i.kind, i.number, i.text) for i in split_items("Inclusion Criteria:\\n* Age \\\\>= 18\\nExclusion Criteria:\\n* Pregnancy")]
    [('inclusion', 1, 'Age >= 18'), ('exclusion', 1, 'Pregnancy')]
    """
    counts = {"inclusion": 0, "exclusion": 0}
    items: list[Item] = []
    sections = _sections(text.splitlines(), source)
    for section in sections:
        group = _group(section, sections)
        for draft in _drafts(section.lines):
            item_text = draft.text()
            if item_text:
                counts[section.kind] += 1
                items.append(Item(kind=section.kind, number=counts[section.kind], text=item_text, line=draft.line, group=group))
                if len(items) > MAX_ITEMS:
                    raise CriteriaTextError(f"more than {MAX_ITEMS} criteria: not one trial's criteria (nothing was screened)",
                                            source=source, line=draft.line)
    return items


def _load_layout() -> dict[str, Any]:
    text = data_file("rules", "layout.yaml").read_text(encoding="utf-8")
    layout: dict[str, Any] = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # C: faster CLI start
    return layout


def _line_key(line: str) -> str:
    """The lookup form of a short line: lower case, '&' read as 'and', punctuation as spaces."""
    return " ".join(_NON_WORD.sub(" ", line.replace("&", " and ")).lower().split())


def _alternation(words: list[str]) -> str:
    """A regex matching any of ``words``, longest first; a space or hyphen in a word matches either."""
    patterns = (re.sub(r"(?:\\ |\\-)+", r"[\\s-]*", re.escape(word)) for word in words)
    return "|".join(sorted(patterns, key=len, reverse=True))


_NON_WORD = re.compile(r"[\W_]+")
_LAYOUT = _load_layout()
_HEADING_WORDS = _LAYOUT["headings"]
_INCLUSION_KEYS = frozenset(_line_key(word) for word in _HEADING_WORDS["inclusion"])
_SENTENCE_WORDS = frozenset(word.lower() for word in _HEADING_WORDS["sentence_words"])
_TAIL_WORDS = frozenset(word.lower() for word in _HEADING_WORDS["tail_words"])
_MAX_TAIL_CHARACTERS: int = _HEADING_WORDS["max_tail_characters"]
_COMBINED_HEADINGS = frozenset(_line_key(line) for line in _HEADING_WORDS["combined"])
_PAGE_SECTIONS = frozenset(_line_key(line) for line in _LAYOUT["page_sections"])
_LONGEST_NAMED_LINE = max(map(len, _COMBINED_HEADINGS | _PAGE_SECTIONS)) + 8  # room for brackets, colon, indent
_PREAMBLE_MAX_LINES: int = _LAYOUT["preamble_max_lines"]
_CONTINUATION_WORDS = frozenset(word.lower() for word in _LAYOUT["continuation_words"])
_CONTINUATION_CHARACTERS = tuple(_LAYOUT["continuation_characters"])
_WRAP_WIDTH: int = _LAYOUT["wrap_width"]
_TERMINAL_PUNCTUATION = (".", ";", ":", "!", "?")

_BULLETS = re.escape("".join(_LAYOUT["bullets"]))
_BULLETS_TOUCHING_TEXT = re.escape("".join(_LAYOUT["bullets_touching_text"]))
_ENUMERATOR = r"\d{1,3}|[A-Za-z]|[ivxIVX]{2,5}"
_KEYWORDS = _alternation(_HEADING_WORDS["inclusion"] + _HEADING_WORDS["exclusion"])
_NOUNS = _alternation(_HEADING_WORDS["nouns"])
# A cheap test before the heading pattern (substring tests beat a regex here, ~5x): the first
# letters of each keyword's longest word.
_KEYWORD_STEMS = tuple(
    sorted({max(re.findall(r"[a-z]+", word.lower()), key=len)[:5] for word in _HEADING_WORDS["inclusion"] + _HEADING_WORDS["exclusion"]})
)
# The start of a heading, after any list marker ("-  INCLUSION CRITERIA:" in the old registry text
# block); what follows the keyword (tail, colon, content) is read in _whole_heading.
_HEADING_START = re.compile(
    rf"""(?:(?P<open>[\[(])\s*)?
    (?P<qualifier>(?:[^\s:\[\]()]+\s+){{0,{_HEADING_WORDS["max_qualifier_words"]}}}?)
    (?P<keyword>{_KEYWORDS})\b
    (?:\s*(?P<noun>{_NOUNS})\b)?""",
    re.IGNORECASE | re.VERBOSE,
)
_HEADING_SEPARATOR = re.compile(r":|--|—")
# A capitalised heading at the end of an item's line: "-  Signed informed consent Exclusion criteria:".
_GLUED_HEADING = re.compile(rf"\s(?P<keyword>{_KEYWORDS})\s+(?:{_NOUNS})\s*:\Z", re.IGNORECASE)

_MARKER = re.compile(
    rf"""(?P<indent>\s*)
    (?:(?P<bullet>[{_BULLETS_TOUCHING_TEXT}](?=[^\W\d_])|[{_BULLETS}](?=\s|$))\s*)?
    (?:(?P<enumerator>(?:{_ENUMERATOR})[.)](?=\s+\S)|\((?:{_ENUMERATOR})\)(?=\s+\S)|\d{{1,3}}[.)](?=[^\W\d_]))\s*)?
    (?P<text>.*)""",
    re.VERBOSE,
)
# Backslash escapes of API v2 markdown: "\>=" is ">=", "=\<" is "=<", "\*" is "*".
_MARKDOWN_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")


@dataclass(slots=True)
class _Line:
    number: int
    indent: int
    marker: Marker | None
    text: str
    """The line after its indentation and marker."""
    width: int
    """The whole line's length: a long line was probably cut at a fixed width."""


@dataclass(slots=True)
class _Heading:
    kind: Kind
    content: _Line | None = None
    """Text after the heading's colon on the same line: the start of a first item."""
    before: _Line | None = None
    """An item written before the heading on the same line ("-  Signed consent Exclusion criteria:")."""


@dataclass(slots=True)
class _Section:
    kind: Kind
    lines: list[_Line | None] = field(default_factory=list)
    """Body lines in order; None for a blank line."""
    label: str | None = None
    """A short name after the heading's colon ("Inclusion Criteria:Parents"): a group, or a first item."""


# "Parents", "Adolescent", "Healthy controls": a few words naming a group of participants
_GROUP_LABEL = re.compile(r"[^\W\d_][^\d.,;:()\[\]]{0,40}")


def _group(section: _Section, sections: list[_Section]) -> str | None:
    """The group a section's items apply to: its label, when another section of its kind has one too
    ("Inclusion Criteria: Adolescents" ... "Inclusion Criteria: Parents"). One label alone may be the
    first item ("Inclusion Criteria: Pregnant women"), so it names no group."""
    if section.label is None:
        return None
    return section.label if sum(other.kind == section.kind and other.label is not None for other in sections) > 1 else None


@dataclass(slots=True)
class _Draft:
    """An item being assembled: its own lines, then its sub-items'."""

    line: int
    marker_indent: int | None
    """None for an item written without a marker (a preamble or a paragraph)."""
    parts: list[str]
    last: _Line
    """The line added last, to itself or to a sub-item: the one a wrapped line goes on."""
    subs: list[_Draft] = field(default_factory=list)

    @classmethod
    def start(cls, line: _Line) -> _Draft:
        return cls(line.number, line.indent if line.marker else None, [line.text], line)

    def add_sub(self, line: _Line) -> None:
        self.subs.append(_Draft.start(line))
        self.last = line

    def add_wrapped(self, line: _Line) -> None:
        (self.subs[-1] if self.subs else self).parts.append(line.text)
        self.last = line

    def text(self) -> str:
        own = _clean(self.parts)
        sub_texts = [text for text in (_clean(sub.parts).rstrip(";").rstrip() for sub in self.subs) if text]
        if not sub_texts:
            return own
        return f"{own} {'; '.join(sub_texts)}" if own else "; ".join(sub_texts)


def _clean(parts: list[str]) -> str:
    text = " ".join(" ".join(parts).split())
    return _MARKDOWN_ESCAPE.sub(r"\1", text) if "\\" in text else text


def _sections(lines: list[str], source: str) -> list[_Section]:
    """The criteria sections of ``lines``, each with its body lines.

    Text before the first heading is kept, as inclusion items, when it follows a combined
    heading ("Eligibility criteria:"), when the first heading is an exclusion heading (the
    inclusion list was written without one) or when it is short ("For community patients:");
    otherwise, or after a page-section heading, it is the rest of a scraped page. A page-section
    heading ("Trial design") also ends a section: the text after it waits for the next heading.
    """
    sections: list[_Section] = []
    preamble: list[_Line | None] | None = []
    preamble_origin: Literal["combined", "page"] | None = None
    body = preamble
    for number, raw in enumerate(lines, start=1):
        raw = raw.rstrip()
        if not raw:
            if body is not None:
                body.append(None)
            continue
        if "\t" in raw:
            raw = raw.expandtabs(4)
        key = _line_key(raw) if len(raw) <= _LONGEST_NAMED_LINE and _is_written_as_heading(raw) else ""
        if key in _COMBINED_HEADINGS:
            if preamble is not None:
                preamble.clear()
                preamble_origin, body = "combined", preamble
            continue
        if key in _PAGE_SECTIONS:
            if preamble is not None:
                preamble.clear()
                preamble_origin = "page"
            body = None
            continue
        line = _line(number, raw)
        heading = _heading(line)
        if heading is None:
            if body is not None:
                body.append(line)
            continue
        if heading.before and body is not None:
            body.append(heading.before)
        if preamble is not None:
            if _keep_preamble(preamble, preamble_origin, heading.kind):
                sections.append(_Section("inclusion", preamble))
            preamble = None
        sections.append(_Section(heading.kind))
        body = sections[-1].lines
        if heading.content:
            body.append(heading.content)
            if len(heading.content.text.split()) <= 3 and _GROUP_LABEL.fullmatch(heading.content.text):
                sections[-1].label = heading.content.text
    if preamble is not None:
        raise CriteriaTextError(
            "expected an 'Inclusion Criteria' or 'Exclusion Criteria' heading (any case, with or"
            " without a colon or brackets, e.g. 'Inclusion Criteria:' or '[Exclusion Criteria]'), found none",
            source=source,
            line=1,
        )
    return sections


def _keep_preamble(preamble: list[_Line | None], origin: Literal["combined", "page"] | None, first_kind: Kind) -> bool:
    if origin is not None:
        return origin == "combined"
    return first_kind == "exclusion" or sum(line is not None for line in preamble) <= _PREAMBLE_MAX_LINES


def _heading(line: _Line) -> _Heading | None:
    """The inclusion or exclusion heading ``line`` is or ends with, if any."""
    lowered = line.text.lower()
    if not any(stem in lowered for stem in _KEYWORD_STEMS):
        return None
    match = _HEADING_START.match(line.text)
    if match is not None and (heading := _whole_heading(match, line)) is not None:
        return heading
    glued = _GLUED_HEADING.search(line.text) if line.text.endswith(":") else None
    if glued is None or not glued["keyword"][0].isupper():
        return None
    before = line.text[: glued.start()].rstrip()
    if _line_key(before) in _COMBINED_HEADINGS:  # "Criteria: Inclusion Criteria:"
        return _Heading(_kind(glued["keyword"]))
    return _Heading(_kind(glued["keyword"]), before=replace(line, text=before))


def _whole_heading(match: re.Match[str], line: _Line) -> _Heading | None:
    """The heading a line starting like one is, unless it reads as a sentence or an item about criteria."""
    rest = line.text[match.end() :]
    separator = _HEADING_SEPARATOR.search(rest)
    tail = (rest[: separator.start()] if separator else rest).strip()
    if match["open"]:
        tail = tail.removesuffix("]" if match["open"] == "[" else ")").rstrip()
    qualifier = match["qualifier"].split()
    if line.marker and (qualifier or tail):
        return None  # "-  Exclusion criteria for all participants: ..." is an item
    if any(word.lower() in _SENTENCE_WORDS for word in qualifier):
        return None
    if tail and not _is_heading_tail(tail, has_noun=bool(match["noun"]), has_separator=bool(separator)):
        return None
    content = rest[separator.end() :].strip() if separator else ""
    if not content:
        return _Heading(_kind(match["keyword"]))
    first_item = _line(line.number, content)
    return _Heading(_kind(match["keyword"]), content=replace(first_item, indent=line.width - len(content), width=line.width))


def _kind(keyword: str) -> Kind:
    return "inclusion" if _line_key(keyword) in _INCLUSION_KEYS else "exclusion"


def _is_heading_tail(tail: str, *, has_noun: bool, has_separator: bool) -> bool:
    """Whether ``tail``, the text after "Inclusion criteria", still names a group, not a sentence.

    "(PTA group)", "for controls", "- cohort A", or up to three words before a colon ("are:").
    """
    if len(tail) > _MAX_TAIL_CHARACTERS or ". " in tail or ";" in tail:
        return False
    if tail.startswith("("):
        return True
    if not has_noun:
        return False
    words = tail.split()
    return tail[0] in "-–" or words[0].lower() in _TAIL_WORDS or (has_separator and len(words) <= 3)


def _is_written_as_heading(raw: str) -> bool:
    """Whether ``raw`` is capitalised and has no full stop: "results." or "eligibility criteria" is a wrapped line."""
    return raw.lstrip(" [")[:1].isupper() and not raw.endswith(".")


def _line(number: int, raw: str) -> _Line:
    match = _MARKER.fullmatch(raw)
    assert match is not None  # every part of the pattern is optional
    marker: Marker | None = None
    if match["bullet"]:
        marker = "bullet"
    elif enumerator := match["enumerator"]:
        marker = "number" if enumerator.lstrip("(")[0].isdigit() else "letter"
    return _Line(number, len(match["indent"]), marker, match["text"], len(raw))


def _drafts(lines: list[_Line | None]) -> list[_Draft]:
    """The items of one section's body lines."""
    drafts: list[_Draft] = []
    paragraphs = _has_inner_blank(lines)
    top: _Draft | None = None
    list_indent: int | None = None
    list_marker: Marker | None = None
    blank_before = False
    for line in lines:
        if line is None:
            blank_before = True
            continue
        if top is not None and line.marker is not None and _is_sub_item(line, top, list_indent, list_marker):
            top.add_sub(line)
        elif top is not None and line.marker is None and _continues(top, line, blank_before, paragraphs):
            top.add_wrapped(line)
        else:
            top = _Draft.start(line)
            drafts.append(top)
            if list_indent is None and line.marker is not None:
                list_indent, list_marker = line.indent, line.marker
        blank_before = False
    return drafts


def _is_sub_item(line: _Line, top: _Draft, list_indent: int | None, list_marker: Marker | None) -> bool:
    """Whether a marked ``line`` is a sub-item of ``top``: indented deeper, or lettered under a numbered list."""
    reference = top.marker_indent if top.marker_indent is not None else list_indent
    if reference is None:
        return False  # the first list after a preamble is a list of items
    return line.indent >= reference + 2 or (line.marker == "letter" and list_marker != "letter" and line.indent >= reference - 1)


def _has_inner_blank(lines: list[_Line | None]) -> bool:
    """Whether a blank line stands between two content lines: items are then paragraphs."""
    seen_content = pending_blank = False
    for line in lines:
        if line is None:
            pending_blank = seen_content
        elif pending_blank:
            return True
        else:
            seen_content = True
    return False


def _continues(top: _Draft, line: _Line, blank_before: bool, paragraphs: bool) -> bool:
    """Whether an unmarked ``line`` goes on the item ``top`` (or its last sub-item)."""
    if blank_before:
        return top.marker_indent is not None and line.indent > top.marker_indent
    if top.marker_indent is not None and line.indent >= top.marker_indent:
        return True
    return paragraphs or _wraps(top.last, line.text)


def _wraps(previous: _Line, text: str) -> bool:
    """Whether ``text`` reads as the rest of ``previous``'s sentence, in a list of one item a line.

    A wrapped line follows a connective ("and", "of", ","), or does not start with a capital after
    a line long enough to have been cut at a fixed width ("good oral hygiene" after a short line
    is an item of its own).
    """
    if previous.text.endswith(_CONTINUATION_CHARACTERS) or text[:1] in ")]},;%":
        return True
    last_word = previous.text.rsplit(None, 1)[-1:]  # none after a marker alone ("INCLUSION CRITERIA:-")
    if last_word and last_word[0].lower() in _CONTINUATION_WORDS:
        return True
    return (
        not text[:1].isupper()
        and previous.width >= _WRAP_WIDTH
        and not previous.text.endswith(_TERMINAL_PUNCTUATION)
    )
