"""Finds the data folders (``grammars/``, ``rules/``) in a source checkout or an installed wheel.

The wheel ships them inside the package (``eligibility/grammars``, ``eligibility/rules``);
a source checkout or editable install keeps them beside the package.
"""

from __future__ import annotations

import os
import time
from functools import cache
from pathlib import Path

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
    """Where derived data (the built parser) is kept between runs, or None when caching is off.

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
