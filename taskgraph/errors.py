"""The project's own exceptions.

The CLI turns every :class:`TaskgraphError`, a database failure and a file the file system
refuses (unreadable, a directory, a read-only or full disk) into one line on stderr and a
non-zero exit; any other exception is a bug and keeps its traceback.  Messages name what was wrong and where:
the file and line, the field path, or the argument and its value.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DataFormatError",
    "DataNotFoundError",
    "SchemaMismatchError",
    "SpecError",
    "StorageError",
    "TaskgraphError",
    "UnknownNameError",
]


class TaskgraphError(Exception):
    """Base class: an error caused by the user's input or environment, not by a bug."""

    exit_code = 1


class ConfigError(TaskgraphError, ValueError):
    """An argument or option has a value outside what is allowed."""

    exit_code = 2


class UnknownNameError(ConfigError, KeyError):
    """A registry lookup by name failed; the message lists the known names."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class DataNotFoundError(TaskgraphError, FileNotFoundError):
    """A data directory or data file does not exist."""


class DataFormatError(TaskgraphError, ValueError):
    """A data file is malformed: ``file:line: expected ..., got ...``."""

    def __init__(self, path: object, line: int | None, expected: str, got: str) -> None:
        self.path = str(path)
        self.line = line
        self.expected = expected
        self.got = got
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: expected {expected}, got {got}")


class SpecError(TaskgraphError, ValueError):
    """A study spec is invalid: the message names the file, the field path and allowed values."""

    exit_code = 2


class StorageError(TaskgraphError):
    """The records database could not be reached or a write failed (password masked)."""


class SchemaMismatchError(StorageError):
    """The database schema is older or newer than this code; the message names the fix."""
