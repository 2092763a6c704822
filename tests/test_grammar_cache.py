"""The built parser kept between runs (eligibility.grammar.ParserCache): used when it matches
the grammar and vocabulary exactly, rebuilt whenever it does not or cannot be read."""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from lark import Tree

from eligibility import grammar
from eligibility.grammar import CriterionParser, ParserCache, SyntaxProblem, _from_json_object, _to_json_data
from eligibility.resources import cache_dir, data_file

Parsed = list["Tree[Any] | str"]
Reference = tuple[str, list[str], Parsed]

FIXTURES = Path(__file__).parent / "fixtures" / "grammar"


def criterion_texts() -> list[str]:
    """Every criterion of the grammar fixtures: the parser's whole surface, readable or not."""
    return [case["text"] for path in sorted(FIXTURES.glob("*.yaml"))
            for case in yaml.safe_load(path.read_text(encoding="utf-8")) or () if isinstance(case.get("text"), str)]


def parses(parser: CriterionParser, texts: list[str]) -> Parsed:
    results: Parsed = []
    for text in texts:
        try:
            results.append(parser.parse(text))
        except SyntaxProblem as problem:
            results.append(f"problem: {problem}")
    return results


def parser_with_cache(cache: ParserCache | None) -> CriterionParser:
    parser = CriterionParser()
    parser._cache = cache
    return parser


@pytest.fixture(scope="module")
def reference() -> Reference:
    """The grammar text and what a parser built in memory (no cache) makes of every fixture."""
    parser = parser_with_cache(None)
    texts = criterion_texts()
    return parser._grammar, texts, parses(parser, texts)


def test_a_stored_parser_is_loaded_and_reads_every_criterion_as_a_built_one(
        tmp_path: Path, reference: Reference) -> None:
    grammar_text, texts, expected = reference
    inputs = [("grammar", grammar_text.encode())]
    first = parser_with_cache(ParserCache(inputs, tmp_path))
    first._lark()
    assert [path.name for path in tmp_path.iterdir()] == [f"parser-{first._cache.key[:32]}.json"]  # type: ignore[union-attr]

    second = parser_with_cache(ParserCache(inputs, tmp_path))
    assert parses(second, texts) == expected
    assert second._grammar_text is None, "a cache hit needs neither the grammar text nor the terminals"


def test_the_key_changes_with_the_grammar_the_vocabulary_and_the_code(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for folder in ("grammars", "rules"):
        shutil.copytree(data_file(folder, "x").parent, tmp_path / folder)
    monkeypatch.setattr(grammar, "data_file", lambda folder, name: tmp_path / folder / name)
    monkeypatch.setattr(grammar, "DATA_EPOCH", time.time() + 60)  # the copies are older than "this process"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("ELIGIBILITY_NO_CACHE", raising=False)

    def key() -> str:
        cache = grammar._parser_cache()
        assert cache is not None
        return cache.key

    keys = [key()]
    assert key() == keys[0], "the same files give the same key"
    lark_file = tmp_path / "grammars" / "criterion.lark"
    lark_file.write_text(lark_file.read_text(encoding="utf-8") + "\n// a comment\n", encoding="utf-8")
    keys.append(key())
    vocabulary_file = tmp_path / "rules" / "vocabulary.yaml"
    vocabulary_file.write_text(vocabulary_file.read_text(encoding="utf-8") + "\n# a comment\n", encoding="utf-8")
    keys.append(key())
    assert len(set(keys)) == 3
    assert ParserCache([("grammar.py", b"x = 1")]).key != ParserCache([("grammar.py", b"x = 2")]).key
    assert ParserCache([("a", b"bc")]).key != ParserCache([("ab", b"c")]).key


def test_files_changed_while_the_process_runs_get_no_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The vocabulary in memory may be older than the file: its parser must not be stored under the new key."""
    for folder in ("grammars", "rules"):
        shutil.copytree(data_file(folder, "x").parent, tmp_path / folder)
    monkeypatch.setattr(grammar, "data_file", lambda folder, name: tmp_path / folder / name)
    monkeypatch.setattr(grammar, "DATA_EPOCH", time.time() - 60)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("ELIGIBILITY_NO_CACHE", raising=False)
    assert grammar._parser_cache() is None
    (tmp_path / "rules" / "unit_table.json").unlink()  # unit spellings would come from pint: no cache either
    monkeypatch.setattr(grammar, "DATA_EPOCH", time.time() + 60)
    assert grammar._parser_cache() is None


@pytest.mark.parametrize("damage", ["garbage", "truncated", "wrong checksum", "wrong key", "not a parser", "bad tag"])
def test_a_damaged_cache_file_is_rebuilt(tmp_path: Path, damage: str,
                                         reference: Reference) -> None:
    grammar_text, texts, expected = reference
    cache = ParserCache([("grammar", grammar_text.encode())], tmp_path)
    parser_with_cache(cache)._lark()
    assert cache.path is not None
    content = cache.path.read_bytes()
    header, _, payload = content.partition(b"\n")

    def signed(body: bytes) -> bytes:
        return json.dumps({"key": cache.key, "sha256": hashlib.sha256(body).hexdigest()}).encode() + b"\n" + body

    damaged = {
        "garbage": b"\x00\xff not json at all",
        "truncated": content[: len(content) // 2],
        "wrong checksum": header + b"\n" + payload.replace(b"VARIABLE", b"VARIABLF", 1),
        "wrong key": signed(payload).replace(cache.key.encode(), b"0" * 64),
        "not a parser": signed(b'{"data": {"rules": 1}, "memo": {}}'),
        "bad tag": signed(b'{"__t": "eval", "v": []}'),
    }[damage]
    cache.path.write_bytes(damaged)
    assert parses(parser_with_cache(ParserCache([("grammar", grammar_text.encode())], tmp_path)), texts) == expected
    assert cache.path.read_bytes() != damaged
    assert cache.read() is not None, "the entry was written again"


def test_a_cache_directory_that_cannot_be_written_only_costs_time(
        tmp_path: Path, reference: Reference) -> None:
    grammar_text, texts, expected = reference
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")  # works as root too, where permissions would not stop a write
    cache = ParserCache([("grammar", grammar_text.encode())], blocker / "eligibility")
    assert parses(parser_with_cache(cache), texts[:50]) == expected[:50]
    assert cache.read() is None
    assert blocker.read_text() == "not a directory"


def test_old_entries_are_removed(tmp_path: Path) -> None:
    saved = {"data": {"x": (1, 2)}, "memo": {}}
    for number in range(grammar._KEPT_PARSERS + 3):
        ParserCache([("grammar", str(number).encode())], tmp_path).write(saved)
    assert len(list(tmp_path.glob("parser-*.json"))) == grammar._KEPT_PARSERS
    assert not list(tmp_path.glob(".parser-*")), "no temporary files left behind"


def test_the_stored_form_restores_lark_data_exactly() -> None:
    data = {"data": {1: (2, "x", frozenset({3})), "s": [None, True, 1.5, {"__t": "kept"}], (1, 2): {}}, "memo": {}}
    assert json.loads(json.dumps(_to_json_data(data)), object_hook=_from_json_object) == data
    with pytest.raises(TypeError):
        _to_json_data({"x": object()})


def test_the_cache_directory_follows_xdg_and_can_be_disabled(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("ELIGIBILITY_NO_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache_dir() == tmp_path / "eligibility"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/path")  # the XDG spec: ignored
    assert cache_dir() == Path("~").expanduser() / ".cache" / "eligibility"
    monkeypatch.setenv("ELIGIBILITY_NO_CACHE", "1")
    assert cache_dir() is None
    monkeypatch.setenv("ELIGIBILITY_NO_CACHE", "0")
    assert cache_dir() is not None
