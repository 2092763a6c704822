"""The errors `eligibility` raises: one base class, each error with structured fields.

Bad criteria text, bad records and bad rule files are errors; missing or unusable
*data inside* a valid record is not an error, it is an ``unknown`` verdict.
"""

from __future__ import annotations


class EligibilityError(Exception):
    """Base of every error raised on purpose by this package."""

    def __init__(self, message: str, *, source: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.source = source

    def __str__(self) -> str:
        return f"{self.source}: {self.message}" if self.source else self.message


class InputError(EligibilityError, ValueError):
    """A file or text given to the engine cannot be read as what it claims to be.

    ``line``/``column`` point into text input (1-based); ``path`` is a JSON path such as
    ``$.observations[2].value`` for structured input.
    """

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        line: int | None = None,
        column: int | None = None,
        path: str | None = None,
    ) -> None:
        super().__init__(message, source=source)
        self.line = line
        self.column = column
        self.path = path

    def __str__(self) -> str:
        where = self.source or ""
        if self.line is not None:
            where += f":{self.line}" + (f":{self.column}" if self.column is not None else "")
        if self.path:
            where += f" at {self.path}" if where else self.path
        return f"{where}: {self.message}" if where else self.message


class CriteriaTextError(InputError):
    """Criteria text has no recognisable inclusion/exclusion layout."""


class PatientRecordError(InputError):
    """A patient record is not valid JSON or breaks the record schema."""


class RuleFileError(InputError):
    """A compiled rule file is malformed or holds an invalid predicate."""


class VocabularyError(EligibilityError):
    """The vocabulary or unit data under ``rules/`` is inconsistent (a packaging bug)."""
