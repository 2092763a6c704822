"""Finds the data folders (``grammars/``, ``rules/``) in a source checkout or an installed wheel,
and keeps derived data (the built parser, compiled trials) in the user's cache directory.

The wheel ships them inside the package (``eligibility/grammars``, ``eligibility/rules``);
a source checkout or editable install keeps them beside the package.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

_PACKAGE = Path(__file__).resolve().parent

DATA_EPOCH = time.time()
"""When this module was imported: every data file the package reads is read after it."""


@cache
def data_dir(name: str) -> Path:
    """The folder ``name`` (``"grammars"`` or ``"rules"``), shipped or in the checkout."""
    for candidate in (_PACKAGE / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"data folder {name!r} not found beside the eligibility package")


def data_file(folder: str, name: str) -> Path:
    return data_dir(folder) / name


CACHE_DISABLED_VARIABLE = "ELIGIBILITY_NO_CACHE"


def cache_dir() -> Path | None:
    """Where derived data (the built parser, compiled trials, the vocabulary as JSON) is kept
    between runs, or None when caching is off.

    ``$XDG_CACHE_HOME/eligibility`` (default ``~/.cache/eligibility``); setting
    ``ELIGIBILITY_NO_CACHE`` to anything but empty or ``0`` turns it off. Nothing is created here.
    """
    if os.environ.get(CACHE_DISABLED_VARIABLE, "") not in ("", "0"):
        return None
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):  # unset, or relative (which the XDG spec says to ignore)
        base = os.path.join(os.path.expanduser("~"), ".cache")
    # no home directory ("~" left unexpanded): no cache rather than one in the working directory
    return Path(base) / "eligibility" if os.path.isabs(base) else None


_CHANGE_MARGIN = 2.0  # seconds: file timestamps are coarse on some file systems


def unchanged_contents(paths: Iterable[Path], epoch: float = DATA_EPOCH) -> list[tuple[str, bytes]] | None:
    """Each file's ``folder/name`` and bytes, for a cache key; None when one is missing or was
    changed since ``epoch`` (or just before), as the data or code this process loaded may then be
    older than the file and must not be stored under its key."""
    contents = []
    for path in paths:
        try:
            changed = path.stat().st_ctime
            content = path.read_bytes()
        except OSError:
            return None
        if changed >= epoch - _CHANGE_MARGIN:
            return None
        contents.append((f"{path.parent.name}/{path.name}", content))
    return contents


def still_unchanged(paths: Iterable[Path], epoch: float = DATA_EPOCH) -> bool:
    """No file was changed since ``epoch``: checked again after the work a cache entry stores."""
    try:
        return all(path.stat().st_ctime < epoch - _CHANGE_MARGIN for path in paths)
    except OSError:
        return False


class CacheFile:
    """One entry of the cache directory: a payload under a header naming its key and SHA-256.

    A reader gets the payload only when the header matches (any damage, a truncated write or a
    file left by another key reads as absent); a writer replaces the file atomically (a reader
    sees the old file or the whole new one) and removes the oldest entries of the same kind
    beyond ``keep``. Every problem only costs time: nothing is raised.
    """

    def __init__(self, kind: str, key: str, keep: int, directory: Path | None = None) -> None:
        self.kind, self.key, self.keep = kind, key, keep
        self.directory = directory if directory is not None else cache_dir()

    @property
    def path(self) -> Path | None:
        return None if self.directory is None else self.directory / f"{self.kind}-{self.key[:32]}.json"

    def read(self) -> bytes | None:
        """The stored payload, or None (absent, unreadable, damaged, another key)."""
        if self.path is None:
            return None
        try:
            header, _, payload = self.path.read_bytes().partition(b"\n")
            if json.loads(header) != {"key": self.key, "sha256": hashlib.sha256(payload).hexdigest()}:
                return None
        except (OSError, ValueError):
            return None
        return payload

    def write(self, payload: bytes) -> None:
        if self.directory is None or self.path is None:
            return
        import tempfile  # only when writing: imports a cache hit does without

        header = json.dumps({"key": self.key, "sha256": hashlib.sha256(payload).hexdigest()}).encode("utf-8")
        temporary = None
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            descriptor, temporary = tempfile.mkstemp(dir=self.directory, prefix=f".{self.kind}-", suffix=".tmp")
            with os.fdopen(descriptor, "wb") as file:
                file.write(header + b"\n" + payload)
            os.replace(temporary, self.path)
            temporary = None
            self._remove_old()
        except OSError:
            pass
        finally:
            if temporary is not None:
                try:
                    os.unlink(temporary)
                except OSError:
                    pass

    def _remove_old(self) -> None:
        assert self.directory is not None
        entries = []
        for path in self.directory.glob(f"{self.kind}-*.json"):
            try:
                entries.append((path.stat().st_mtime, path))
            except OSError:  # removed meanwhile by another process
                continue
        for _, path in sorted(entries, reverse=True)[self.keep:]:
            try:
                path.unlink()
            except OSError:
                pass


_KEPT_YAML_MIRRORS = 8
_YAML_MIRROR_FORMAT = 1


def load_yaml_data(path: Path) -> Any:
    """A data file's YAML content (safe loader), read from a JSON copy in the cache directory when
    one was written for these exact bytes: JSON reads ``rules/vocabulary.yaml`` ~40x faster.

    The copy is made only when JSON gives the data back exactly (JSON has the types a safe load
    of plain YAML gives; a date or a set is never copied). Errors are the YAML loader's, for the
    caller to report.
    """
    import yaml

    raw = path.read_bytes()
    fast = hasattr(yaml, "CSafeLoader")  # which loader reads the file (libyaml or pure Python) is in the key
    digest = hashlib.sha256(json.dumps([_YAML_MIRROR_FORMAT, yaml.__version__, fast]).encode("utf-8"))
    digest.update(raw)
    mirror = CacheFile("yaml", digest.hexdigest(), _KEPT_YAML_MIRRORS) if cache_dir() is not None else None
    payload = mirror.read() if mirror is not None else None
    if payload is not None:
        try:
            return json.loads(payload)
        except ValueError:  # checksummed, so only a bug would get here: read the YAML instead
            pass
    text = raw.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")  # as Path.read_text reads it
    data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    if mirror is not None:
        try:
            payload = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")
        except (TypeError, ValueError):  # a value JSON cannot hold
            return data
        if json.loads(payload) == data:
            mirror.write(payload)
    return data
