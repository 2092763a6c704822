"""Finds the data folders (``grammars/``, ``rules/``) in a source checkout or an installed wheel.

The wheel ships them inside the package (``eligibility/grammars``, ``eligibility/rules``);
a source checkout or editable install keeps them beside the package.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


@cache
def data_dir(name: str) -> Path:
    """The folder ``name`` (``"grammars"`` or ``"rules"``), shipped or in the checkout."""
    for candidate in (_PACKAGE / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"data folder {name!r} not found beside the eligibility package")


def data_file(folder: str, name: str) -> Path:
    return data_dir(folder) / name
