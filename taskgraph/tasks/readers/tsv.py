"""Sentence and sentence-pair classification rows in tab-separated files (GLUE style).

Options (columns are 0-based indices, or header names when ``header`` is true):

``text_column`` (required), ``pair_column`` (sentence-pair tasks), ``label_column``
``header``  the first line names the columns (default false)
``quoting``  ``"none"`` (default: split on tabs, quotes are text, as RTE needs) or ``"csv"``
             (double-quoted fields, Python's csv dialect with a tab delimiter)
``label_names``  raw value -> label name; any other value is an error
``unlabeled_value``  a raw label meaning "no label" (RTE's hidden test uses ``-1``)
``positive_label``  the label binary F1 is computed for

Every row must have as many fields as the header (or the first row).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from taskgraph.errors import ConfigError, DataFormatError
from taskgraph.tasks.readers.base import Reader, Record, option, read_lines, show
from taskgraph.tasks.types import TaskType, TextExample

__all__ = ["TsvReader"]

Column = int | str


class TsvReader(Reader):
    """Reads classification TSV files into :class:`TextExample` records."""

    name = "tsv"
    task_types = frozenset(
        {
            TaskType.SENTENCE_CLASSIFICATION,
            TaskType.SENTENCE_PAIR_CLASSIFICATION,
            TaskType.MASKED_LM,
        }
    )
    option_names = frozenset(
        {
            "text_column",
            "pair_column",
            "label_column",
            "header",
            "quoting",
            "label_names",
            "unlabeled_value",
            "positive_label",
        }
    )

    def group_unit(self, options: Mapping[str, Any]) -> str:
        """Return what a group is in this format."""
        return "row"

    def check_options(
        self, task_type: TaskType, label_field: str, options: Mapping[str, Any]
    ) -> None:
        header = option(options, "header", False, kinds=bool)
        option(options, "quoting", "none", kinds=str, choices=("none", "csv"))
        columns = {
            key: option(options, key, None, kinds=(int, str))
            for key in ("text_column", "pair_column", "label_column")
        }
        if columns["text_column"] is None:
            raise ConfigError("`reader_options.text_column` is required for format 'tsv'")
        pair_task = task_type is TaskType.SENTENCE_PAIR_CLASSIFICATION
        if pair_task != (columns["pair_column"] is not None):
            raise ConfigError(
                "`reader_options.pair_column` must be given exactly for sentence-pair tasks "
                f"(type {task_type.value!r})"
            )
        if task_type is not TaskType.MASKED_LM and columns["label_column"] is None:
            raise ConfigError(f"`reader_options.label_column` is required for {task_type.value}")
        for key, value in columns.items():
            if isinstance(value, str) and not header:
                raise ConfigError(
                    f"`reader_options.{key}` names column {value!r} but `header` is false"
                )
            if isinstance(value, int) and value < 0:
                raise ConfigError(f"`reader_options.{key}` must be >= 0, but got {value}")
        if clash := _same_column(columns):  # a label read from the text column is the text
            key, other, value = clash
            raise ConfigError(
                f"`reader_options.{key}` and `reader_options.{other}` must name "
                f"different columns, but both are {value!r}"
            )
        names = option(options, "label_names", None, kinds=Mapping)
        if names is not None and not all(
            isinstance(k, str) and isinstance(v, str) and v for k, v in names.items()
        ):
            raise ConfigError("`reader_options.label_names` must map strings to label names")
        option(options, "unlabeled_value", None, kinds=str)
        positive = option(options, "positive_label", None, kinds=str)
        if positive is not None and names is not None and positive not in names.values():
            raise ConfigError(
                f"`reader_options.positive_label` {positive!r} is not one of the label names "
                f"{', '.join(sorted(names.values()))}"
            )

    def read(
        self,
        path: Path,
        *,
        task_type: TaskType,
        label_field: str,
        options: Mapping[str, Any],
    ) -> Iterator[Record]:
        names: Mapping[str, str] | None = options.get("label_names")
        unlabeled = options.get("unlabeled_value")
        rows = self._rows(path, options.get("quoting", "none") == "csv")
        width: int | None = None
        width_line = 0
        indices: dict[str, int | None] = {}
        header = bool(options.get("header", False))
        for number, fields in rows:
            if width is None:
                width, width_line = len(fields), number
                indices = self._indices(path, number, fields, header, options)
                if header:
                    continue
            elif len(fields) != width:
                raise DataFormatError(
                    path,
                    number,
                    f"{width} tab-separated fields (as on line {width_line})",
                    f"{len(fields)} in {show(chr(9).join(fields))}",
                )
            text = fields[indices["text_column"]]  # type: ignore[index]
            if not text.strip():
                raise DataFormatError(path, number, "a non-empty text", show(text))
            pair: str | None = None
            if indices.get("pair_column") is not None:
                pair = fields[indices["pair_column"]]  # type: ignore[index]
                if not pair.strip():
                    raise DataFormatError(path, number, "a non-empty second text", show(pair))
            label: str | None = None
            if indices.get("label_column") is not None:
                raw = fields[indices["label_column"]]  # type: ignore[index]
                if unlabeled is not None and raw == unlabeled:
                    label = None
                elif names is not None:
                    if raw not in names:
                        known = sorted(names) + ([unlabeled] if unlabeled is not None else [])
                        raise DataFormatError(
                            path, number, f"a label among {', '.join(known)}", show(raw)
                        )
                    label = names[raw]
                elif not raw.strip():
                    raise DataFormatError(path, number, "a non-empty label", show(raw))
                else:
                    label = raw
            example = TextExample(text=text, text_pair=pair, label=label)
            texts = (text,) if pair is None else (text, pair)
            yield Record(example=example, line=number, group="", texts=texts)

    @staticmethod
    def _rows(path: Path, quoted: bool) -> Iterator[tuple[int, list[str]]]:
        lines = read_lines(path)
        if not quoted:
            for number, line in lines:
                yield number, line.split("\t")
            return
        current = [0]

        def feed() -> Iterator[str]:
            for number, line in lines:
                current[0] = number
                yield line + "\n"

        reader = csv.reader(feed(), delimiter="\t", quotechar='"', strict=True)
        start = 1
        try:
            for fields in reader:
                yield start, fields
                start = current[0] + 1
        except csv.Error as error:
            raise DataFormatError(path, current[0], "a well-quoted TSV row", str(error)) from None

    @staticmethod
    def _indices(
        path: Path, number: int, fields: list[str], header: bool, options: Mapping[str, Any]
    ) -> dict[str, int | None]:
        indices: dict[str, int | None] = {}
        for key in ("text_column", "pair_column", "label_column"):
            column: Column | None = options.get(key)
            if column is None:
                indices[key] = None
            elif isinstance(column, str):
                if column not in fields:
                    raise DataFormatError(
                        path,
                        number,
                        f"a header with column {column!r} ({key})",
                        ", ".join(repr(f) for f in fields),
                    )
                if fields.count(column) > 1:
                    places = [str(i) for i, name in enumerate(fields) if name == column]
                    raise DataFormatError(
                        path,
                        number,
                        f"a header naming column {column!r} ({key}) once",
                        f"{column!r} at columns {', '.join(places)}",
                    )
                indices[key] = fields.index(column)
            elif column >= len(fields):
                raise DataFormatError(
                    path,
                    number,
                    f"at least {column + 1} fields ({key} = {column})",
                    str(len(fields)),
                )
            else:
                indices[key] = column
        if clash := _same_column(indices):  # one by name, one by number
            key, other, index = clash
            raise DataFormatError(
                path,
                number,
                f"different columns for `reader_options.{key}` and `reader_options.{other}`",
                f"both are column {index} ({fields[index]!r})",
            )
        return indices


def _same_column(columns: Mapping[str, Any]) -> tuple[str, str, Any] | None:
    """Return the first two options (and their column) that name the same column, if any."""
    given = [(key, value) for key, value in columns.items() if value is not None]
    for i, (key, value) in enumerate(given):
        for other, same in given[i + 1 :]:
            if value == same:
                return key, other, value
    return None


TSV = TsvReader()
