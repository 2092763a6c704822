"""Criterion text -> parse tree, with the LALR grammar in ``grammars/criterion.lark``.

The grammar file holds the structure and the keyword terminals; the terminals that name
things the vocabulary knows (variables, category values) and the units are appended here
at load time from ``rules/``, so adding a synonym is a data change, not a grammar change.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
import threading
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

import lark
from lark import Lark, Token, Tree
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedEOF, UnexpectedToken
from lark.grammar import Rule
from lark.lexer import BasicLexer, Scanner, TerminalDef, _create_unless

from .resources import DATA_EPOCH, CacheFile, cache_dir, data_file, unchanged_contents
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
# The dashes are the range U+2010-U+2013 (hyphen to en dash): a class with a range compiles
# ~4x faster than one listing the two characters, and the name regex holds ~1,400 of them.
_SEPARATOR = "[-\\s\u2010-\u2013]*"

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
            if _is_large(group[0]):  # the terminal's own regex (re's cache has it when lark validated it)
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


_LARK_OPTIONS: dict[str, Any] = {"parser": "lalr", "lexer": "contextual", "propagate_positions": False,
                                  "maybe_placeholders": False}
_CACHE_FORMAT = 1  # raise when the stored layout changes
_KEPT_PARSERS = 4  # parsers of recent grammars kept in the cache directory; older ones are removed
# What the parser is built from: the grammar, the data its terminals come from, and the code
# turning that data into terminals (this module, the vocabulary's and the unit table's).
_PARSER_DATA = (("grammars", "criterion.lark"), ("rules", "vocabulary.yaml"), ("rules", "units.yaml"),
                ("rules", "unit_table.json"))
_PARSER_CODE = ("grammar.py", "vocabulary.py", "units.py", "resources.py")


class CriterionParser:
    """A thread-safe LALR parser for one criterion (lark parsers keep per-parse state)."""

    def __init__(self) -> None:
        self._grammar_text: str | None = None
        self._local = threading.local()
        self._lock = threading.Lock()
        self._saved: dict[str, Any] | None = None  # lark's serialised parser: each thread loads its own
        self._cache = _parser_cache()

    @property
    def _grammar(self) -> str:
        """The grammar file with the vocabulary and unit terminals appended; making the terminals
        takes ~0.1 s, so it is done only when the parser is not in the cache."""
        if self._grammar_text is None:
            grammar = data_file("grammars", "criterion.lark").read_text(encoding="utf-8")
            self._grammar_text = grammar + "\n" + _terminals(vocabulary()) + "\n"
        return self._grammar_text

    def _lark(self) -> Lark:
        parser = getattr(self._local, "parser", None)
        if parser is None:
            parser = self._new_lark()
            contextual = parser.parser.lexer
            for lexer in (*contextual.lexers.values(), contextual.root_lexer):
                lexer.__class__ = _SharedScannerLexer
            self._local.parser = parser
        return parser

    def _new_lark(self) -> Lark:
        """Loaded from the serialised parser (this process's, else the cache's), else built (~0.5 s)."""
        with self._lock:
            if self._saved is None:
                saved = self._cache.read() if self._cache is not None else None
                if saved is not None:
                    try:
                        parser = Lark.load(saved)
                    except Exception:  # a damaged entry, whatever lark raises about it: build anew
                        pass
                    else:
                        self._saved = saved
                        return parser
                parser = Lark(self._grammar, **_LARK_OPTIONS)
                data, memo = parser.memo_serialize([TerminalDef, Rule])
                self._saved = {"data": data, "memo": memo}
                if self._cache is not None:
                    self._cache.write(self._saved)
                return parser
            saved = self._saved
        return Lark.load(saved)

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


def _parser_cache() -> ParserCache | None:
    """The cache entry for the parser of the files as they are on disk, or None (no caching).

    The key is a hash of the files themselves, so that a cached parser is used without building
    the terminals. It must describe the vocabulary and unit table this process has loaded: a
    file changed since the process began reading its data (or just before) gets no caching.
    So does a missing file (without ``unit_table.json`` unit spellings come from pint).
    """
    if cache_dir() is None:
        return None
    inputs = unchanged_contents(_parser_inputs(), DATA_EPOCH)
    return None if inputs is None else ParserCache(inputs)


def _parser_inputs() -> list[Path]:
    """The files the parser is built from (see ``_PARSER_DATA``, ``_PARSER_CODE``)."""
    paths = [data_file(folder, name) for folder, name in _PARSER_DATA]
    return paths + [Path(__file__).with_name(name) for name in _PARSER_CODE]


class ParserCache:
    """The built parser, kept between runs in the user's cache directory.

    Building the LALR tables and the contextual lexer takes ~0.5 s, loading them ~10 ms: the
    command line reads a criteria file in a fresh process each time. The entry is named by a
    hash of everything the parser is built from (the inputs: the grammar, vocabulary and unit
    files and the code making terminals of them; the lark options, lark and Python versions),
    so a changed grammar or vocabulary gets a new entry and a stale parser is never used.
    It is JSON holding lark's serialised parser (tables, terminal regexes), not lark's own
    cache format (Python object serialisation, which can run code when loaded): reading JSON
    creates only plain data, so a damaged or planted file cannot run code; it is
    checked against a SHA-256 of its content (``resources.CacheFile``), and any problem reading
    it means the parser is built in memory (and written again). A missing, read-only or disabled
    (``ELIGIBILITY_NO_CACHE=1``) cache directory only costs time.
    """

    def __init__(self, inputs: Iterable[tuple[str, bytes]], directory: Path | None = None) -> None:
        digest = hashlib.sha256(json.dumps([_CACHE_FORMAT, lark.__version__, sys.version_info[:2],
                                            _LARK_OPTIONS]).encode("utf-8"))
        for name, content in inputs:
            digest.update(f"\n{name}\n{len(content)}\n".encode())
            digest.update(content)
        self.key = digest.hexdigest()
        self._file = CacheFile("parser", self.key, _KEPT_PARSERS, directory)

    @property
    def path(self) -> Path | None:
        return self._file.path

    def read(self) -> dict[str, Any] | None:
        """The stored serialised parser, or None (absent, unreadable, damaged, another key)."""
        payload = self._file.read()
        if payload is None:
            return None
        try:
            saved = json.loads(payload, object_hook=_from_json_object)
        except (ValueError, TypeError, KeyError):
            return None
        return saved if isinstance(saved, dict) else None

    def write(self, saved: dict[str, Any]) -> None:
        """Stores the parser if JSON restores it exactly; best effort."""
        try:
            payload = json.dumps(_to_json_data(saved), separators=(",", ":")).encode("utf-8")
        except TypeError:  # a lark version serialising something JSON cannot hold: no cache
            return
        if json.loads(payload, object_hook=_from_json_object) == saved:  # else not restored exactly: no cache
            self._file.write(payload)


# lark's serialised parser holds dicts with int keys, tuples and frozensets, which JSON has
# not: they are stored as {"__t": kind, "v": [...]} and restored exactly.
_TAG = "__t"


def _to_json_data(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, float)):
        return value
    if isinstance(value, list):
        return [_to_json_data(item) for item in value]
    if isinstance(value, (tuple, frozenset)):
        return {_TAG: type(value).__name__, "v": [_to_json_data(item) for item in value]}
    if isinstance(value, dict):
        if _TAG not in value and all(type(key) is str for key in value):
            return {key: _to_json_data(item) for key, item in value.items()}
        return {_TAG: "dict", "v": [[_to_json_data(key), _to_json_data(item)] for key, item in value.items()]}
    raise TypeError(f"{type(value).__name__} is not stored in the parser cache")


_RESTORE: dict[str, Any] = {"tuple": tuple, "frozenset": frozenset, "dict": dict}


def _from_json_object(value: dict[str, Any]) -> Any:
    kind = value.get(_TAG)
    return value if kind is None else _RESTORE[kind](value["v"])


@cache
def criterion_parser() -> CriterionParser:
    return CriterionParser()


def parse_criterion(text: str) -> Tree[Token]:
    """Parse one criterion's text (see ``grammars/criterion.lark``)."""
    return criterion_parser().parse(text)


__all__ = ["SyntaxProblem", "parse_criterion", "criterion_parser", "name_key"]
