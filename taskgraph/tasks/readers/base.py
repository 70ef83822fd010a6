"""What every reader shares: the :class:`Record` it yields, line decoding, option checks.

A reader turns one data file into a stream of :class:`Record` objects, never holding the whole
file in memory (the SQuAD JSON reader is the exception: JSON has to be parsed as a whole).  Every
malformed line raises :class:`~taskgraph.errors.DataFormatError` as ``file:line: expected ...,
got ...``; nothing is skipped silently.

Lines and words are bounded (:data:`MAX_LINE_CHARS`, :data:`MAX_WORD_CHARS`): a file holding one
50 MB token once made the tokenizer take 10.6 GB and abort the process, leaving the trial
running.  A line is read at most up to its bound, so an endless line costs no more memory than
that.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from taskgraph.errors import ConfigError, DataFormatError
from taskgraph.tasks.types import Example, TaskType

__all__ = [
    "MAX_LINE_CHARS",
    "MAX_WORD_CHARS",
    "Reader",
    "Record",
    "check_known_options",
    "check_text",
    "option",
    "read_lines",
    "show",
]

#: Characters in one line of a line-based file, or in one text field of a JSON file (the
#: longest line in the 33 shipped data sets has 10,134 characters).
MAX_LINE_CHARS = 1_000_000
#: Characters in one word (a run without whitespace) of any text; the longest word in the
#: shipped data sets has 542.  Tokenizers hold several copies of a word per character.
MAX_WORD_CHARS = 10_000
# A UTF-8 character takes at most 4 bytes: reading this many bytes of a line is enough to know
# whether it is within MAX_LINE_CHARS, and never more.
_MAX_LINE_BYTES = 4 * MAX_LINE_CHARS + 2


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
    order mark at the start of a line is dropped (MRPC's first line has one; files joined with
    ``cat`` carry one at the start of each joined file).  One inside a line is kept: it is part
    of the text as published (WNUT-17 has a token ending in one).  A line longer than
    :data:`MAX_LINE_CHARS` or with a word longer than :data:`MAX_WORD_CHARS` is a
    DataFormatError, raised before more than the bound is read.
    """
    with path.open("rb") as handle:
        number = 0
        while raw := handle.readline(_MAX_LINE_BYTES):
            number += 1
            if len(raw) == _MAX_LINE_BYTES and not raw.endswith(b"\n"):
                raise DataFormatError(
                    path,
                    number,
                    f"a line of at most {MAX_LINE_CHARS} characters",
                    f"a longer one (more than {_MAX_LINE_BYTES} bytes)",
                )
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise DataFormatError(
                    path, number, "UTF-8 text", f"undecodable byte at column {error.start + 1}"
                ) from None
            if text.startswith("\ufeff"):
                text = text[1:]
            text = text.rstrip("\r\n")
            check_text(path, number, text, what="line")
            yield number, text


def check_text(path: Path, line: int | None, text: str, *, what: str) -> None:
    """Raise DataFormatError when ``text`` exceeds :data:`MAX_LINE_CHARS` or a word in it
    exceeds :data:`MAX_WORD_CHARS`; ``what`` names the text in the message (``line``,
    ``context``)."""
    if len(text) > MAX_LINE_CHARS:
        raise DataFormatError(
            path, line, f"a {what} of at most {MAX_LINE_CHARS} characters", f"{len(text)}"
        )
    if len(text) > MAX_WORD_CHARS:  # only then can a word be too long: shorter text is not split
        longest = max(map(len, text.split()), default=0)
        if longest > MAX_WORD_CHARS:
            raise DataFormatError(
                path,
                line,
                f"words of at most {MAX_WORD_CHARS} characters in the {what}",
                f"a word of {longest} characters",
            )


def show(text: str, limit: int = 60) -> str:
    """Return ``text`` quoted and shortened for an error message."""
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")
