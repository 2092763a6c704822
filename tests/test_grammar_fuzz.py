"""Grammar fuzzing: sentences generated from grammars/criterion.lark itself (hypothesis.extra.lark).

``from_lark`` writes sentences of the grammar's context-free language, one terminal at a time.
Each terminal is drawn with a tag naming it, so a test knows the tokens it meant to write and
can tell two kinds of failure apart:

- the lexer read the words as other tokens than the ones written ("men and women" is the
  ignored ANY_SEX, not SEX_VALUE AND SEX_VALUE; "and below" is LE_POST, not AND LT): a
  lexical overlap between terminals, which the grammar resolves on purpose by priorities;
- the lexer read exactly the tokens written and the parser still refused them: a sentence of
  the grammar that its parser does not accept, which is a grammar bug.

The names and units terminals (VARIABLE, CATEGORY_VALUE, UNIT) are regexes of thousands of
alternatives; they are drawn from the vocabulary and unit lists instead.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from functools import cache
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra.lark import from_lark
from lark import Lark, Token
from lark.exceptions import UnexpectedInput

from eligibility import PredicateAdapter, compile_criterion
from eligibility.grammar import MAX_CRITERION_LENGTH, SyntaxProblem, criterion_parser, parse_criterion
from eligibility.render import _pretty_unit
from eligibility.transform import CompileContext, CompileProblem, build_predicate
from eligibility.units import units
from eligibility.vocabulary import vocabulary

# Tags around each drawn terminal: START name SEP text END. Control characters no terminal matches.
START, SEP, END = "\x02", "\x03", "\x04"
TAGGED = re.compile(f"{START}([A-Z_0-9]+){SEP}(.*?){END}", re.DOTALL)
# Characters for the terminals drawn from their regexes: printable ASCII, the grammar's own symbols
# and two non-ASCII digits (a NUMBER may be written in any script's digits).
ALPHABET = st.characters(min_codepoint=32, max_codepoint=126) | st.sampled_from("≥≤＜＞～–—×µ٣४")
SHORT_UNIT_WORDS = {"in", "m", "g", "l", "a", "d", "h", "s", "y", "1", "mo", "wk", "yr", "min"}
PARSE_SECONDS = 1.0  # a criterion is parsed in well under a millisecond; LALR cannot go exponential


def examples(n: int) -> int:
    """``n`` examples under the "ci" profile (50 a test), scaled with the profile loaded (HYPOTHESIS_PROFILE=long)."""
    return max(1, n * settings.default.max_examples // 50)


@dataclass(frozen=True)
class Sentence:
    text: str
    tokens: tuple[tuple[str, str], ...]  # (terminal, text) as drawn, ignored terminals included


DRAWN_FROM_LISTS = ("VARIABLE", "CATEGORY_VALUE", "UNIT")


def lark_grammar() -> Lark:
    """The parser itself (eligibility.grammar's lark object: its lexer states share the large terminals)."""
    return criterion_parser()._lark()


@cache
def generating_grammar() -> Lark:
    """The same grammar with the vocabulary's terminals as placeholders: from_lark would otherwise
    build a regex strategy for each of their thousands of alternatives before it draws anything."""
    placeholders = "|".join(DRAWN_FROM_LISTS)
    text = re.sub(rf"^({placeholders})(\.\d+)?:.*$", lambda m: f"{m.group(1)}{m.group(2) or ''}: /{m.group(1).lower()}/",
                  criterion_parser()._grammar, flags=re.MULTILINE)
    return Lark(text, parser="lalr", lexer="contextual", maybe_placeholders=False)


def terminal_strategy(name: str, pattern: str) -> st.SearchStrategy[str]:
    vocab = vocabulary()
    if name == "VARIABLE":
        return st.sampled_from([n for n in vocab.names() if len(n) >= 2 and not n.isdigit()])
    if name == "CATEGORY_VALUE":
        return st.sampled_from(sorted({n for v in vocab.variables.values() for value in v.values
                                       for n in (value.value, *value.synonyms)}))
    if name == "UNIT":
        table = units()
        keys = [k for k in table.spelling_keys() if k not in SHORT_UNIT_WORDS and (info := table.info(k)) is not None
                and info.dimension != "[time]"]
        return st.sampled_from(sorted(keys)).map(_pretty_unit)
    return st.from_regex(re.compile(pattern), fullmatch=True, alphabet=ALPHABET)


@cache
def sentences() -> st.SearchStrategy[Sentence]:
    grammar = generating_grammar()
    explicit = {
        t.name: terminal_strategy(t.name, t.pattern.to_regexp()).map(lambda s, n=t.name: f"{START}{n}{SEP}{s}{END}")
        for t in grammar.terminals
    }

    def untag(raw: str) -> Sentence:
        tokens = tuple((m.group(1), m.group(2)) for m in TAGGED.finditer(raw))
        return Sentence(" ".join(text for _, text in tokens), tokens)

    return from_lark(grammar, explicit=explicit).map(untag).filter(lambda s: len(s.text) <= MAX_CRITERION_LENGTH)


def lexed_until_failure(text: str) -> tuple[list[Token], UnexpectedInput | None]:
    """The tokens the parser's lexer read, up to a parse error if there is one."""
    parser = lark_grammar().parse_interactive(text)
    read: list[Token] = []
    try:
        for token in parser.iter_parse():
            read.append(token)
        parser.feed_eof()
    except UnexpectedInput as error:
        token = getattr(error, "token", None)
        # iter_parse yields a token before feeding it: a token the parser refused may be in ``read`` already
        already = bool(read) and token is not None and (read[-1].type, read[-1].start_pos) == (token.type, token.start_pos)
        if token is not None and token.type != "$END" and not already:
            read.append(token)
        return read, error
    return read, None


def read_as_written(sentence: Sentence, read: list[Token]) -> bool:
    """Whether the lexer read the sentence as the tokens it was written with (ignored ones aside)."""
    ignored = set(lark_grammar().lexer_conf.ignore)  # a parser loaded from the cache has no ignore_tokens
    written = [(name, re.sub(r"\s+", " ", text).strip()) for name, text in sentence.tokens if name not in ignored]
    got = [(token.type, re.sub(r"\s+", " ", str(token)).strip()) for token in read]
    return written[: len(got)] == got


LIST_SEPARATORS = {"AND", "OR", "AND_OR", "SLASH"}
NAMES = {"VARIABLE", "CATEGORY_VALUE"}


def known_conflict(read: list[Token], error: UnexpectedInput) -> str | None:
    """The LALR conflicts the grammar resolves by shifting, which make some of its sentences unparsable.

    - After a list separator the parser continues the list ("definite or probable ALS and ALSFRS-R
      ≥ 30": "and" joins category values, so a clause cannot follow). By design: grammars/criterion.lark
      says lists are read greedily.
    - After a name, "(" opens the name's alias ("ALT (SGPT)"), so an alternative threshold in
      brackets is unreachable after a clause ending in a name. A bracketed window is not: "(" before
      "within" is a terminal of its own (see test_a_bracketed_window_after_a_name below).
    """
    expected = set(getattr(error, "expected", None) or getattr(error, "allowed", None) or ())
    token = getattr(error, "token", None)
    accepted = read[:-1] if token is not None and token.type != "$END" else read  # the tokens the parser took
    before = [t.type for t in accepted[-2:]]
    if before[-1:] and before[-1] in LIST_SEPARATORS and expected and expected <= NAMES:
        return "a list read greedily"
    if before == ["VARIABLE", "LPAR"] and expected == {"VARIABLE"}:
        return "a bracket after a name read as its alias"
    return None


@settings(max_examples=examples(100), deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                                                 HealthCheck.data_too_large])
@given(data=st.data())
def test_a_sentence_of_the_grammar_read_as_written_parses(data: Any) -> None:
    """Every sentence from_lark writes parses when the lexer reads it as written, but for the known LALR conflicts."""
    sentence = data.draw(sentences())
    lark_grammar()  # built once, not timed
    started = time.perf_counter()
    read, error = lexed_until_failure(sentence.text)
    assert time.perf_counter() - started < PARSE_SECONDS
    if error is None:
        event("parsed")
        return
    if not read_as_written(sentence, read):
        event("lexical overlap: the lexer read other tokens than were written")
        return
    conflict = known_conflict(read, error)
    if conflict is not None:
        event(f"known conflict: {conflict}")
        return
    pytest.fail(f"a sentence of the grammar, read as written, does not parse: {sentence.text!r}\n"
                f"tokens: {sentence.tokens}\nerror: {error}")


def test_a_bracketed_window_after_a_name() -> None:
    """"history of stroke (within the past 6 months)" reads as the windowed presence it says."""
    predicate, note = compile_criterion("history of stroke (within the past 6 months)", "exclusion")
    assert predicate == PredicateAdapter.validate_python(
        {"type": "presence", "variable": "stroke", "within": {"amount": 6, "unit": "month"}}), note


@settings(max_examples=examples(100), deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                                                 HealthCheck.data_too_large])
@given(data=st.data(), kind=st.sampled_from(["inclusion", "exclusion"]), condition=st.sampled_from([None, "als"]))
def test_the_transformer_raises_only_compile_problems(data: Any, kind: str, condition: str | None) -> None:
    """A parse tree of any generated sentence becomes a predicate or a CompileProblem: never another exception."""
    sentence = data.draw(sentences())
    try:
        tree = parse_criterion(sentence.text)
    except SyntaxProblem:
        event("syntax problem")
        return
    try:
        predicate = build_predicate(tree, CompileContext(kind, condition), sentence.text)  # type: ignore[arg-type]
    except CompileProblem:
        event("compile problem")
        return
    event("compiled")
    assert PredicateAdapter.validate_json(PredicateAdapter.dump_json(predicate)) == predicate


@settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                                                 HealthCheck.data_too_large])
@given(data=st.data(), kind=st.sampled_from(["inclusion", "exclusion"]))
def test_every_generated_criterion_compiles_or_is_flagged(data: Any, kind: str) -> None:
    """compile_criterion of any generated sentence gives a valid predicate and no note, or no predicate and a note."""
    sentence = data.draw(sentences())
    predicate, note = compile_criterion(sentence.text, kind)  # type: ignore[arg-type]
    if predicate is None:
        assert note and note.startswith("not compiled"), note
    else:
        assert PredicateAdapter.validate_python(PredicateAdapter.dump_python(predicate)) == predicate


def test_the_fuzzer_writes_every_terminal() -> None:
    """The explicit strategies cover every terminal of the grammar, ignored ones included."""
    grammar = generating_grammar()
    names = {t.name for t in grammar.terminals}
    assert names == {t.name for t in lark_grammar().terminals}
    assert {"VARIABLE", "CATEGORY_VALUE", "UNIT", "FILLER", "NUMBER"} <= names
    assert set(grammar.ignore_tokens) <= names
