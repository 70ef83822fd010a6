"""What every reader shares: the :class:`Record` it yields, line decoding, option checks.

A reader turns one data file into a stream of :class:`Record` objects, never holding the whole
file in memory (the SQuAD JSON reader is the exception: JSON has to be parsed as a whole).  Every
malformed line raises :class:`~taskgraph.errors.DataFormatError` as ``file:line: expected ...,
got ...``; nothing is skipped silently.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from taskgraph.errors import ConfigError, DataFormatError
from taskgraph.tasks.types import Example, TaskType

__all__ = ["Reader", "Record", "check_known_options", "option", "read_lines", "show"]


@dataclass(frozen=True, slots=True)
class Record:
    """One example with where it came from.

    ``group`` is the unit of deterministic split carving (a document, an article, a question id;
    ``""`` when the file has no such unit, then the example is its own group).  ``texts`` are the
    strings that must never appear on both sides of a carved split: examples sharing one of them
    are kept together.
    """

    example: Example
    line: int
    group: str
    texts: tuple[str, ...]


class Reader(abc.ABC):
    """Reads one file format into :class:`Record` objects for the task types it supports."""

    #: the format name used in :attr:`TaskDef.format`
    name: str = ""
    #: task types this reader can produce examples for
    task_types: frozenset[TaskType] = frozenset()
    #: reader options understood by this reader (anything else is a ConfigError)
    option_names: frozenset[str] = frozenset()

    def check(self, task_type: TaskType, label_field: str, options: Mapping[str, Any]) -> None:
        """Return nothing; raise :class:`ConfigError` naming the field that is not usable."""
        if task_type not in self.task_types:
            allowed = ", ".join(sorted(t.value for t in self.task_types))
            raise ConfigError(
                f"`type` {task_type.value!r} cannot be read from format {self.name!r}; "
                f"this format gives: {allowed}"
            )
        check_known_options(self.name, options, self.option_names)
        self.check_options(task_type, label_field, options)

    def group_unit(self, options: Mapping[str, Any]) -> str:
        """Return what a ``group`` of this format is, for describing carved splits."""
        return "example"

    @abc.abstractmethod
    def check_options(
        self, task_type: TaskType, label_field: str, options: Mapping[str, Any]
    ) -> None:
        """Return nothing; raise ConfigError for a format-specific option or label field."""

    @abc.abstractmethod
    def read(
        self,
        path: Path,
        *,
        task_type: TaskType,
        label_field: str,
        options: Mapping[str, Any],
    ) -> Iterator[Record]:
        """Yield the records of ``path`` in file order."""


def check_known_options(
    format_name: str, options: Mapping[str, Any], known: frozenset[str]
) -> None:
    """Return nothing; raise ConfigError for an option the format does not understand."""
    for key in options:
        if key not in known:
            allowed = ", ".join(sorted(known)) or "(none)"
            raise ConfigError(
                f"`reader_options.{key}` is not an option of format {format_name!r}; "
                f"known: {allowed}"
            )


def option(
    options: Mapping[str, Any],
    key: str,
    default: Any,
    *,
    kinds: type | tuple[type, ...],
    choices: Sequence[Any] | None = None,
) -> Any:
    """Return ``options[key]`` (or ``default``), raising ConfigError when it has the wrong kind."""
    value = options.get(key, default)
    if value is default:
        return value
    # bool is an int subclass; a column index given as true/false is a mistake
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in _as_tuple(kinds)):
        names = " or ".join(k.__name__ for k in _as_tuple(kinds))
        raise ConfigError(f"`reader_options.{key}` must be {names}, but got {value!r}")
    if choices is not None and value not in choices:
        allowed = ", ".join(repr(c) for c in choices)
        raise ConfigError(f"`reader_options.{key}` must be one of {allowed}, but got {value!r}")
    return value


def _as_tuple(kinds: type | tuple[type, ...]) -> tuple[type, ...]:
    return kinds if isinstance(kinds, tuple) else (kinds,)


def read_lines(path: Path) -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, text)`` for each line of a UTF-8 file, without the line ending.

    Decoding happens line by line so that a bad byte is reported with its line; a UTF-8 byte
    order mark on the first line is dropped (MRPC has one).
    """
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise DataFormatError(
                    path, number, "UTF-8 text", f"undecodable byte at column {error.start + 1}"
                ) from None
            if number == 1 and text.startswith("\ufeff"):
                text = text[1:]
            yield number, text.rstrip("\r\n")


def show(text: str, limit: int = 60) -> str:
    """Return ``text`` quoted and shortened for an error message."""
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")
