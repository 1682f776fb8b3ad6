"""One exception hierarchy for everything a user can get wrong or run into.

Every error says what was wrong and, in ``hint``, what to do about it. The CLI prints
``str(error)`` without a traceback; ``--debug`` shows the traceback.
"""

from __future__ import annotations


class LakehouseError(Exception):
    """Base of every error the platform raises on purpose."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(message if not hint else f"{message}\n  hint: {hint}")


class InvalidNameError(LakehouseError, ValueError):
    """A table name that is not ``layer.name``."""


class TableNotFoundError(LakehouseError, LookupError):
    """A table the catalog does not know."""

    def __init__(self, name: str, suggestions: list[str] | None = None) -> None:
        self.name = name
        self.suggestions = suggestions or []
        hint = (
            "did you mean " + ", ".join(self.suggestions) + "?"
            if self.suggestions
            else "run `lakehouse tables` to list the tables"
        )
        super().__init__(f"table {name} does not exist", hint)


class VersionNotFoundError(LakehouseError, LookupError):
    """Time travel to a version or timestamp the table does not have (any more)."""


class SchemaMismatchError(LakehouseError, TypeError):
    """Data whose columns do not fit the table's schema."""

    def __init__(
        self,
        table: str,
        column: str,
        expected: str | None,
        given: str | None,
        hint: str | None = None,
    ) -> None:
        self.table = table
        self.column = column
        self.expected = expected
        self.given = given
        if expected is None:
            message = f"{table}: column {column!r} ({given}) is not in the table"
            hint = hint or "pass evolve=True to add the column to the table"
        elif given is None:
            message = f"{table}: column {column!r} ({expected}, not nullable) is missing"
            hint = hint or "provide a value for the column"
        else:
            message = f"{table}: column {column!r} expects {expected}, got {given}"
            hint = hint or "cast the column, or pass evolve=True to widen the table's type"
        super().__init__(message, hint)


class InvalidDataError(LakehouseError, TypeError):
    """Data the platform cannot turn into a table (wrong kind of object, ragged rows)."""


class ConcurrentWriteError(LakehouseError):
    """A write that kept conflicting with other writers and was given up."""


class TableBusyError(ConcurrentWriteError):
    """A table being written, which an operation that needs it alone (a format
    conversion) did not wait for."""


class ConstraintViolationError(LakehouseError):
    """A write that breaks a CHECK or NOT NULL constraint of the table."""


class SQLError(LakehouseError):
    """A query the SQL engine refused; the message carries the engine's position marker."""


class CatalogError(LakehouseError):
    """The catalog database could not be read or written."""


class AccessDeniedError(LakehouseError, PermissionError):
    """A principal asking for something its role and grants do not allow."""


class AuthenticationError(LakehouseError):
    """No token, or a token the warehouse does not know (or revoked)."""


class QueryRefusedError(SQLError):
    """A statement the read-only SQL sandbox does not run: it names what was refused."""


class QueryTimeoutError(SQLError):
    """A statement stopped at its time limit."""
