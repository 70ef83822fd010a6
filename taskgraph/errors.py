"""The project's own exceptions.

The CLI turns every :class:`TaskgraphError`, a database failure and a file the file system
refuses (unreadable, a directory, a read-only or full disk) into one line on stderr and a
non-zero exit; any other exception is a bug and keeps its traceback.  Messages name what was wrong and where:
the file and line, the field path, or the argument and its value.

The same functions serve the command line and Python callers, so a message names an argument
through :func:`option_name`: ``option_name("split")`` is ``split`` from Python (the keyword)
and ``--split`` inside :func:`command_line_wording`, which the CLI enters around every command
(``option_name("metric", metavar="NAME")``: ``metric=NAME`` or ``--metric NAME``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = [
    "ConfigError",
    "DataFormatError",
    "DataNotFoundError",
    "NotFoundError",
    "SchemaMismatchError",
    "SpecError",
    "StorageError",
    "StorageURLError",
    "TaskgraphError",
    "UnknownNameError",
    "command_line_wording",
    "option_name",
    "worded_for_command_line",
]

#: whether messages are worded for the command line (``--split``) or for Python (``split``)
_COMMAND_LINE: ContextVar[bool] = ContextVar("taskgraph_command_line_wording", default=False)


@contextmanager
def command_line_wording() -> Iterator[None]:
    """Within the block, :func:`option_name` names the command line's options (the CLI's
    commands run inside it); outside, the Python API's keywords."""
    token = _COMMAND_LINE.set(True)
    try:
        yield
    finally:
        _COMMAND_LINE.reset(token)


def worded_for_command_line() -> bool:
    """Return whether messages are worded for the command line (inside
    :func:`command_line_wording`) rather than for the Python API."""
    return _COMMAND_LINE.get()


def option_name(
    keyword: str, value: object = None, *, flag: str | None = None, metavar: str | None = None
) -> str:
    """Return how a message names the argument ``keyword``, with ``value`` or ``metavar``.

    From Python: ``keyword``, ``keyword=<repr of value>`` or ``keyword=METAVAR``
    (``task_metadata=FILE``).  On the command line (:func:`command_line_wording`): the option,
    ``flag`` where its spelling is not ``--`` and the keyword with dashes (``keyword="search"``,
    ``flag="--no-search"``), followed by the value or metavar (``--metric NAME``); a bool
    value is the flag itself (``option_name("text_embeddings", True)``: ``--text-embeddings``).
    """
    given = os.fspath(value) if isinstance(value, os.PathLike) else value  # a path as text
    if _COMMAND_LINE.get():
        spelled = flag or "--" + keyword.replace("_", "-")
        if metavar is not None:
            return f"{spelled} {metavar}"
        return spelled if given is None or isinstance(given, bool) else f"{spelled} {given}"
    if metavar is not None:
        return f"{keyword}={metavar}"
    return keyword if given is None else f"{keyword}={given!r}"


class TaskgraphError(Exception):
    """Base class: an error caused by the user's input or environment, not by a bug.

    Its :attr:`exit_code` is the CLI's exit status: 2 when what the user gave is wrong (the
    command line, a spec, a file, database or name they named: :class:`ConfigError` and its
    kin), 1 when the environment or a run failed (this class, :class:`StorageError`).
    """

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

    exit_code = 2  # a path the user gave (an option, a spec, the data directory)


class DataFormatError(TaskgraphError, ValueError):
    """A data file is malformed: ``file:line: expected ..., got ...``."""

    exit_code = 2  # the content of a file the user gave

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


class NotFoundError(StorageError, ConfigError):
    """The database has no such study, target, run or screen, the study was not created by
    taskgraph, or the SQLite file named does not exist.

    A :class:`StorageError` for the handlers of the storage layer's failures, but a name or a
    file the user gave (exit 2), not a failure of the database (exit 1).
    """


class StorageURLError(StorageError, ConfigError):
    """A storage URL is malformed or names what taskgraph cannot use (an unsupported
    database or driver, an in-memory database, a SQLite file in a missing directory or a
    directory itself): exit 2, where an unreachable server is a :class:`StorageError`."""


class SchemaMismatchError(StorageError):
    """The database schema is older or newer than this code; the message names the fix."""
