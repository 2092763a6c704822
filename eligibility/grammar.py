"""Criterion text -> parse tree, with the LALR grammar in ``grammars/criterion.lark``.

The grammar file holds the structure and the keyword terminals; the terminals that name
things the vocabulary knows (variables, category values) and the units are appended here
at load time from ``rules/``, so adding a synonym is a data change, not a grammar change.
"""

from __future__ import annotations

import re
import threading
from functools import cache

from typing import Any

from lark import Lark, Token, Tree
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedEOF, UnexpectedToken
from lark.lexer import BasicLexer, Scanner, TerminalDef, _create_unless

from .resources import data_file
from .units import units
from .vocabulary import Vocabulary, name_key, vocabulary

MAX_CRITERION_LENGTH = 1000
"""Longer items are kept as text for review without parsing (real criteria are far shorter)."""

_TIME_DIMENSION = "[time]"
_ONE_HOUR = 3600.0  # hours and longer are TIME_UNIT words in the grammar; seconds, ms are units
_SHORT_UNIT_WORDS = frozenset({"in", "m", "g", "l", "a", "d", "h", "s", "y", "1", "mo", "wk", "yr", "min"})


_SUPERSCRIPTS = str.maketrans({"²": "2", "³": "3"})  # "kg/m²" is read as the listed "kg/m2"


class SyntaxProblem(Exception):
    """The grammar cannot read a criterion; ``str()`` says where, for the compile note."""


# A space and a hyphen are one separator in names ("ALS-FRS", "ALS FRS", "ALSFRS"), so that
# spellings differing only there share one path of the trie instead of competing branches.
_SEPARATOR = r"[-‐–\s]*"

Trie = dict[str, "Trie"]


def _symbols(phrase: str) -> list[str]:
    """A phrase as regex pieces: separators (spaces, hyphens) unified, characters escaped."""
    symbols: list[str] = []
    for char in re.sub(r"[\s\-‐–]+", " ", phrase.strip()):
        symbols.append(_SEPARATOR if char == " " else re.escape(char))
    return symbols


def _trie_regex(node: Trie, ends: str) -> tuple[str, int]:
    """The trie as a regex, and its depth; branches reaching the longest phrase come first.

    Branch order is fixed (depth, then symbol), so the pattern, and what it matches, is the
    same in every run whatever the hash seed.
    """
    children = [(symbol, *_trie_regex(child, ends)) for symbol, child in node.items() if symbol != ends]
    children.sort(key=lambda child: (-child[2], child[0]))
    branches = [symbol + regex for symbol, regex, _ in children]
    depth = 1 + max((child[2] for child in children), default=-1)
    if not branches:
        return "", depth
    body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
    if ends in node:
        return (("(?:" + body + ")?") if len(branches) == 1 else body + "?"), depth
    return body, depth


def _alternation(phrases: list[str]) -> str:
    """One regex matching any of the phrases, as a trie: far smaller and faster than a|b|c."""
    trie: Trie = {}
    ends = "\x00"
    for phrase in sorted(set(phrases)):
        node = trie
        for symbol in _symbols(phrase):
            node = node.setdefault(symbol, {})
        node[ends] = {}
    return _trie_regex(trie, ends)[0]


def _unit_pattern(key: str) -> str:
    """A regex for a unit spelling key (lowercase, no spaces): any spacing, µ or u, x or ×."""
    parts = []
    for char in key:
        if char == "u":
            parts.append("[uµμ]")
        elif char == "x":
            parts.append("[x×*]")
        elif char == "^":
            parts.append(r"(\^|\*\*?)?")
        else:
            parts.append(re.escape(char))
    return r"\s*".join(parts)


def _terminals(vocab: Vocabulary) -> str:
    names = [n for n in vocab.names() if len(n) >= 2 and not n.isdigit()]
    category_values = [
        name
        for variable in vocab.variables.values()
        for value in variable.values
        for name in (value.value, *value.synonyms)
    ]
    table = units()
    unit_keys = [
        key
        for key in table.spelling_keys()
        if key not in _SHORT_UNIT_WORDS and (info := table.info(key)) is not None and not (info.dimension == _TIME_DIMENSION and info.scale >= _ONE_HOUR)
    ]
    unit_keys += ["seconds", "second", "sec"]
    unit_regex = "|".join(_unit_pattern(k) for k in sorted(set(unit_keys), key=lambda k: (-len(k), k)))
    # a name never ends inside a number: "HAMD 24.5" is HAMD and 24.5, not "HAMD 24" and .5
    boundary = r"(?<![\w])(?:{})(?![\w]|[.,]\d)"
    terminals = {
        "VARIABLE.5": boundary.format(_alternation(names)),
        "CATEGORY_VALUE.6": boundary.format(_alternation(category_values)),
        # A unit may follow its number with no space ("40%of", "2mg/dL").
        "UNIT.3": f"(?:{unit_regex})(?![a-zA-Z])",
    }
    # lark's /regex/ literals end at an unescaped slash
    return "\n".join(f"{name}: /{body.replace('/', chr(92) + '/')}/i" for name, body in terminals.items())


# The terminals built from the vocabulary and the unit table are large regexes (the names
# alone are ~20 kB). lark's contextual lexer builds one scanner per group of parser states,
# each compiling one alternation of all its terminals: the names were compiled again for
# each of ~28 scanners (~1.2 s). Here each large terminal is a regex of its own, compiled
# once and shared; the others stay in per-scanner alternations. Trying the regexes in lark's
# terminal order keeps its first-match semantics.
_LARGE_PATTERN = 300  # characters: the vocabulary and unit terminals, FILLER and a few keyword lists


def _is_large(terminal: TerminalDef) -> bool:
    return len(terminal.pattern.to_regexp()) > _LARGE_PATTERN


_shared_patterns: dict[tuple[str, int], Any] = {}
_shared_lock = threading.Lock()


class _SharedScanner(Scanner):
    def _build_mres(self, terminals: list[TerminalDef], max_size: int) -> list[Any]:
        groups: list[list[TerminalDef]] = []
        for terminal in terminals:
            if _is_large(terminal) or not groups or _is_large(groups[-1][0]):
                groups.append([terminal])
            else:
                groups[-1].append(terminal)
        compiled = []
        for group in groups:
            if _is_large(group[0]):  # the terminal's own regex: lark compiled it already to validate it
                pattern, name = group[0].pattern.to_regexp(), group[0].name
            else:
                pattern, name = "|".join(f"(?P<{t.name}>{t.pattern.to_regexp()})" for t in group), None
            key = (pattern, self.g_regex_flags)
            with _shared_lock:
                if key not in _shared_patterns:
                    _shared_patterns[key] = self.re_.compile(pattern, self.g_regex_flags)
                compiled.append((_shared_patterns[key], name))
        return compiled

    def match(self, text: Any, pos: int) -> tuple[str, str] | None:
        for pattern, name in self._mres:
            found = pattern.match(text.text, pos, text.end)
            if found:
                return found.group(0), name or found.lastgroup
        return None

    def fullmatch(self, text: str) -> str | None:
        for pattern, name in self._mres:
            found = pattern.fullmatch(text)
            if found:
                return str(name or found.lastgroup)
        return None


class _SharedScannerLexer(BasicLexer):
    def _build_scanner(self) -> Scanner:
        # lark's BasicLexer._build_scanner, with our Scanner (the grammar sets no callbacks)
        terminals, self.callback = _create_unless(self.terminals, self.g_regex_flags, self.re, self.use_bytes)  # type: ignore[no-untyped-call]
        return _SharedScanner(terminals, self.g_regex_flags, self.re, self.use_bytes)  # type: ignore[no-untyped-call]


class CriterionParser:
    """A thread-safe LALR parser for one criterion (lark parsers keep per-parse state)."""

    def __init__(self) -> None:
        grammar = data_file("grammars", "criterion.lark").read_text(encoding="utf-8")
        self._grammar = grammar + "\n" + _terminals(vocabulary()) + "\n"
        self._local = threading.local()

    def _lark(self) -> Lark:
        parser = getattr(self._local, "parser", None)
        if parser is None:
            parser = Lark(self._grammar, parser="lalr", lexer="contextual", propagate_positions=False,
                          maybe_placeholders=False)
            contextual = parser.parser.lexer
            for lexer in (*contextual.lexers.values(), contextual.root_lexer):
                lexer.__class__ = _SharedScannerLexer
            self._local.parser = parser
        return parser

    def parse(self, text: str) -> Tree[Token]:
        """The parse tree of one criterion, or SyntaxProblem saying what was not understood."""
        if len(text) > MAX_CRITERION_LENGTH:
            raise SyntaxProblem(f"longer than {MAX_CRITERION_LENGTH} characters: not parsed")
        parser = self._lark()
        try:
            return parser.parse(text.translate(_SUPERSCRIPTS))
        except UnexpectedCharacters as error:
            raise SyntaxProblem(f"did not understand {_word_at(text, error.pos_in_stream)!r}") from None
        except UnexpectedToken as error:
            if error.token.type == "$END":
                raise SyntaxProblem("the sentence ended before the criterion was complete") from None
            raise SyntaxProblem(f"did not expect {str(error.token)!r} here") from None
        except UnexpectedEOF:
            raise SyntaxProblem("the sentence ended before the criterion was complete") from None
        except LarkError as error:  # any other parser failure still means "not understood"
            raise SyntaxProblem(str(error).splitlines()[0]) from None


def _word_at(text: str, position: int | None) -> str:
    if position is None:
        return text[:30]
    match = re.compile(r"\S+").search(text, position)
    return match.group(0)[:40] if match else text[position:position + 30]


@cache
def criterion_parser() -> CriterionParser:
    return CriterionParser()


def parse_criterion(text: str) -> Tree[Token]:
    """Parse one criterion's text (see ``grammars/criterion.lark``)."""
    return criterion_parser().parse(text)


__all__ = ["SyntaxProblem", "parse_criterion", "criterion_parser", "name_key"]
