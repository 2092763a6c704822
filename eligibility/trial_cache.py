"""Trials compiled by the command line, kept between runs in the user's cache directory.

The command line starts a fresh process for each screening; compiling criteria text needs the
grammar (lark, the parser, the name regex: ~0.3 s), reading a stored trial back does not. An
entry is the trial as pydantic writes it as JSON, under a key hashing everything the trial is
made from: the file's bytes and the name it was given (a trial's ``source``, and its id when
the text names none), the ``--condition`` option, every module of the package and every file
of ``grammars/`` and ``rules/``, the versions of Python and of the libraries compiling depends
on. Only successful loads are stored (an error is raised afresh, naming the file), and only
when JSON gives the same trial back. ``ELIGIBILITY_NO_CACHE=1`` or a cache directory that
cannot be used only costs time.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import stat
import sys
from functools import cache
from pathlib import Path

from .resources import DATA_EPOCH, CacheFile, cache_dir, data_dir, still_unchanged, unchanged_contents
from .trial import Trial

KEPT_TRIALS = 64
"""Entries kept; older ones are removed when a new one is written."""

_CACHE_FORMAT = 1  # raise when the stored layout changes
_MAX_CACHED_BYTES = 1024 * 1024  # of a trial file, and of an entry: registry records are tens of kB
# The libraries whose behaviour a compiled trial depends on (parsing, unit resolution, validation,
# YAML): distribution name as in its .dist-info folder -> the module it installs.
_DEPENDENCIES = {"lark": "lark", "pint": "pint", "pydantic": "pydantic", "pydantic_core": "pydantic_core",
                 "pyyaml": "yaml"}


def load_trial(path: str | Path, *, condition: str | None = None) -> Trial:
    """``eligibility.compiler.load_trial``, through the cache: the same file (bytes and name)
    compiled before by the same code and data is read back instead of compiled again."""
    source = str(path)
    entry = _entry(Path(path), source, condition)
    if entry is not None:
        payload = entry[0].read()
        if payload is not None:
            try:
                return Trial.model_validate_json(payload)
            except ValueError:  # a stored trial this code cannot read: compile anew
                pass
    from .compiler import load_trial as load_uncached  # the grammar is imported only on a miss

    trial = load_uncached(path, condition=condition)
    if entry is not None:
        _store(entry[0], entry[1], Path(path), trial)
    return trial


def _entry(path: Path, source: str, condition: str | None) -> tuple[CacheFile, bytes] | None:
    """The cache entry for this file as it is now, and its bytes; None when it is not cached
    (caching off, not a regular file, too large, unreadable, inputs changed while running)."""
    if cache_dir() is None:
        return None
    raw = _regular_file_bytes(path)
    inputs = unchanged_contents(_inputs(), DATA_EPOCH)
    versions = _versions()
    if raw is None or inputs is None or versions is None:
        return None
    digest = hashlib.sha256(json.dumps([_CACHE_FORMAT, sys.version, versions, source, condition]).encode("utf-8"))
    for name, content in [*inputs, ("<trial>", raw)]:
        digest.update(f"\n{name}\n{len(content)}\n".encode())
        digest.update(content)
    return CacheFile("trial", digest.hexdigest(), KEPT_TRIALS), raw


def _regular_file_bytes(path: Path) -> bytes | None:
    """The file's bytes; None for a pipe or device (reading would consume what the compiler
    must read), a file over the size limit (compiled each time), or any error (the compiler
    reports it)."""
    try:
        with path.open("rb") as file:
            if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
                return None
            raw = file.read(_MAX_CACHED_BYTES + 1)
    except OSError:
        return None
    return raw if len(raw) <= _MAX_CACHED_BYTES else None


def _store(entry: CacheFile, raw: bytes, path: Path, trial: Trial) -> None:
    """Writes the trial if it was compiled from the inputs hashed and JSON restores it exactly."""
    if not still_unchanged(_inputs(), DATA_EPOCH) or _regular_file_bytes(path) != raw:
        return  # a file changed while compiling: the trial may not be what the key describes
    payload = trial.model_dump_json().encode("utf-8")
    if len(payload) > _MAX_CACHED_BYTES:  # KEPT_TRIALS entries stay within 64 MB
        return
    try:
        if Trial.model_validate_json(payload) != trial:
            return
    except ValueError:
        return
    entry.write(payload)


def _inputs() -> list[Path]:
    """The package's modules and every data file: what a trial is compiled from."""
    package = Path(__file__).resolve().parent
    files = sorted(package.glob("*.py"))
    for folder in ("grammars", "rules"):
        files += sorted(path for path in data_dir(folder).iterdir() if path.is_file())
    return files


@cache
def _versions() -> list[str] | None:
    """The installed dependencies' .dist-info folder names (name and version), found without
    importing them or ``importlib.metadata`` (~10 ms); None if one is not found."""
    found = []
    for distribution, module in _DEPENDENCIES.items():
        spec = importlib.util.find_spec(module)
        locations = spec.submodule_search_locations if spec is not None else None
        if not locations:
            return None
        names = [name for name in _listing(str(Path(locations[0]).parent))
                 if name.endswith(".dist-info") and name.partition("-")[0].lower().replace(".", "_") == distribution]
        if len(names) != 1:
            return None
        found.append(names[0])
    return found


@cache
def _listing(folder: str) -> tuple[str, ...]:
    try:
        return tuple(sorted(os.listdir(folder)))
    except OSError:
        return ()
