"""The long CSV format of published task-combination results, and its reader and writer.

One row per (target, task set, split)::

    target,task_set,split,value,higher_is_better
    depth,depth,val,0.1739,0
    depth,depth+normal,val,0.1695,0

``task_set`` lists the tasks trained together joined by ``+``, the target included; the row
whose task set is the target alone is its single-task baseline.  ``split`` is ``val`` or
``test``; ``higher_is_better`` is ``1`` or ``0``.  A :class:`LongTable` turns into
:class:`~taskgraph.affinity.records.ScoreRecord` values, so everything that learns from the
records database learns from a published table the same way.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from taskgraph.affinity.records import ScoreRecord
from taskgraph.errors import DataFormatError, DataNotFoundError
from taskgraph.files import replace_file
from taskgraph.vocabulary import task_set_key

__all__ = [
    "LONG_HEADER",
    "MAX_BENCH_VALUE",
    "SPLITS",
    "TABLE_LOSS_METRIC",
    "TABLE_METRIC",
    "LongRow",
    "LongTable",
    "check_magnitudes",
    "read_long_csv",
    "write_long_csv",
]

LONG_HEADER = ("target", "task_set", "split", "value", "higher_is_better")
SPLITS = ("val", "test")
#: the metric names of a table's records (:meth:`LongTable.to_records`): a row names no
#: metric, so a higher-is-better one is a "score" and a lower-is-better one a "loss", the names
#: the tabular runner records a table's rows under (``taskgraph.runners.tabular.TABULAR_METRIC``
#: and ``TABULAR_LOSS_METRIC``; this layer cannot import that one)
TABLE_METRIC = "score"
TABLE_LOSS_METRIC = "loss"


@dataclass(frozen=True, slots=True)
class LongRow:
    """One published number: the score of ``target`` trained with ``task_set`` on ``split``."""

    target: str
    task_set: frozenset[str]
    split: str
    value: float
    higher_is_better: bool

    @property
    def auxiliaries(self) -> frozenset[str]:
        """Return the task set without the target."""
        return self.task_set - {self.target}

    @property
    def task_set_key(self) -> str:
        """Return the task set as written in the file: sorted names joined by ``+``."""
        return task_set_key(self.task_set)


@dataclass
class LongTable:
    """Published results in the long format, indexed by (target, task set, split)."""

    rows: list[LongRow]
    source: str = ""
    #: (target, task set, split) -> the row's line in the file it was read from (if any)
    lines: dict[tuple[str, frozenset[str], str], int] = field(
        default_factory=dict, repr=False, compare=False
    )
    _index: dict[tuple[str, frozenset[str], str], LongRow] = field(
        default_factory=dict, init=False, repr=False
    )

    def __post_init__(self) -> None:
        for row in self.rows:
            self._index[(row.target, row.task_set, row.split)] = row

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[LongRow]:
        return iter(self.rows)

    def get(self, target: str, task_set: Iterable[str], split: str) -> LongRow | None:
        """Return the row of ``target`` with ``task_set`` (target added if missing) on ``split``."""
        key = (target, frozenset(task_set) | {target}, split)
        return self._index.get(key)

    def target_fingerprints(self) -> dict[str, str]:
        """Return each target's fingerprint: a sha256 of its rows (task set, split, value,
        direction), so two tables, or two versions of one file, that publish other numbers
        for a target give it other fingerprints (the records store it as the target's data
        version, see :meth:`RecordWriter <taskgraph.search.recording.RecordWriter>`)."""
        import hashlib
        import json

        rows: dict[str, list[tuple[str, str, float, bool]]] = {}
        for row in self.rows:
            rows.setdefault(row.target, []).append(
                (row.task_set_key, row.split, row.value, row.higher_is_better)
            )
        return {
            target: hashlib.sha256(
                json.dumps(["long-table", sorted(published)]).encode("utf-8")
            ).hexdigest()
            for target, published in rows.items()
        }

    @property
    def targets(self) -> list[str]:
        """Return the tasks that have rows as targets, sorted."""
        return sorted({row.target for row in self.rows})

    @property
    def tasks(self) -> list[str]:
        """Return every task named anywhere in the table, sorted."""
        return sorted({task for row in self.rows for task in row.task_set})

    @property
    def splits(self) -> list[str]:
        """Return the splits present, in the order val, test."""
        present = {row.split for row in self.rows}
        return [split for split in SPLITS if split in present]

    def task_sets(self, target: str, *, split: str) -> list[frozenset[str]]:
        """Return the task sets with a row for ``target`` on ``split`` (file order)."""
        return [r.task_set for r in self.rows if r.target == target and r.split == split]

    def networks(self, split: str) -> dict[frozenset[str], dict[str, float]]:
        """Return ``task set -> {target: value}`` of the rows of ``split`` (Standley's network table)."""
        result: dict[frozenset[str], dict[str, float]] = {}
        for row in self.rows:
            if row.split == split:
                result.setdefault(row.task_set, {})[row.target] = row.value
        return result

    def to_records(self, *, split: str | None = None, family: str = "") -> list[ScoreRecord]:
        """Return the rows (of ``split`` only when given) as score records of one family.

        A row names no metric: its record's metric is named after its direction,
        :data:`TABLE_METRIC` or :data:`TABLE_LOSS_METRIC` (what outputs say the gains are
        scored by, e.g. ``loss on val``).
        """
        return [
            ScoreRecord(
                task=row.target,
                task_set=row.task_set,
                value=row.value,
                higher_is_better=row.higher_is_better,
                split=row.split,
                metric=TABLE_METRIC if row.higher_is_better else TABLE_LOSS_METRIC,
                family=family or self.source,
                study=self.source or None,
            )
            for row in self.rows
            if split is None or row.split == split
        ]


def read_long_csv(path: str | os.PathLike[str]) -> LongTable:
    """Return the table in ``path``; a malformed row raises ``DataFormatError`` with file:line."""
    file = Path(path)
    if file.is_dir():
        raise DataNotFoundError(f"table file is a directory, not a CSV file: {file}")
    if file.exists() and not file.is_file():
        # A device or FIFO: /dev/null exists, and reading a FIFO would wait for a writer.
        raise DataNotFoundError(
            f"table file is not a regular file (a device, FIFO or socket): {file}"
        )
    if not file.is_file():
        raise DataNotFoundError(f"table file does not exist: {file}")
    rows: list[LongRow] = []
    seen: dict[tuple[str, frozenset[str], str], int] = {}
    # target -> (line, higher_is_better) of its first row: gains need one direction per target
    direction: dict[str, tuple[int, bool]] = {}
    reader = csv.reader(io.StringIO(_read_text(file), newline=""))
    try:
        header = next(reader, None)
        if header is None or tuple(h.strip() for h in header) != LONG_HEADER:
            raise DataFormatError(
                file, 1, f"header {','.join(LONG_HEADER)!r}", repr(",".join(header or []))
            )
        start = reader.line_num + 1
        for cells in reader:
            # The row's first line: a quote left open runs the row on to the end of the file.
            line, start = start, reader.line_num + 1
            if not cells or all(not c.strip() for c in cells):
                continue
            row = _parse_row(cells, file=file, line=line)
            key = (row.target, row.task_set, row.split)
            if key in seen:
                raise DataFormatError(
                    file,
                    line,
                    "one row per (target, task_set, split)",
                    f"a repeat of line {seen[key]}",
                )
            first_line, higher = direction.setdefault(row.target, (line, row.higher_is_better))
            if higher != row.higher_is_better:
                raise DataFormatError(
                    file,
                    line,
                    f"higher_is_better {int(higher)} for target {row.target!r} as on line "
                    f"{first_line}",
                    str(int(row.higher_is_better)),
                )
            seen[key] = line
            rows.append(row)
    except csv.Error as error:  # a NUL byte, an unclosed quote, an oversized field
        raise DataFormatError(file, reader.line_num, "CSV", str(error)) from None
    if not rows:
        raise DataFormatError(file, None, "at least one data row", "none")
    return LongTable(rows=rows, source=file.stem, lines=seen)


def _read_text(file: Path) -> str:
    """Return the file's text; bytes that are not UTF-8 are a DataFormatError naming the line.

    A byte-order mark is dropped: Excel's "CSV UTF-8" starts the file with one.
    """
    try:
        data = file.read_bytes()
    except OSError as error:
        # A read that fails (EIO) names no file, unlike an open that fails: name it, so the
        # command line says it in one line with the exit status of its errno.
        raise OSError(error.errno, error.strerror, str(file)) from None
    try:
        # not "utf-8-sig": its error offsets would not count the mark's three bytes
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise DataFormatError(
            file, line, "UTF-8 text", f"byte {data[error.start : error.start + 1]!r}"
        ) from None


def _parse_row(cells: Sequence[str], *, file: Path, line: int) -> LongRow:
    if len(cells) != len(LONG_HEADER):
        raise DataFormatError(
            file, line, f"{len(LONG_HEADER)} fields", f"{len(cells)}: {','.join(cells)!r}"
        )
    target, task_set_text, split, value_text, hib_text = (c.strip() for c in cells)
    if not target:
        raise DataFormatError(file, line, "a target name", "an empty field")
    tasks = [t.strip() for t in task_set_text.split("+")]
    if not task_set_text or any(not t for t in tasks):
        raise DataFormatError(file, line, "task_set as names joined by '+'", repr(task_set_text))
    repeated = next((t for i, t in enumerate(tasks) if t in tasks[:i]), None)
    if repeated is not None:
        # A set names each task once: `a+a` read as the baseline would be a guess.
        raise DataFormatError(
            file,
            line,
            "task_set naming each task once",
            f"{repeated!r} repeated in {task_set_text!r}",
        )
    if target not in tasks:
        raise DataFormatError(
            file, line, f"task_set containing the target {target!r}", repr(task_set_text)
        )
    if split not in SPLITS:
        raise DataFormatError(file, line, f"split in {list(SPLITS)}", repr(split))
    try:
        if "_" in value_text:  # float() reads `1_000` as 1000, which no table means
            raise ValueError(value_text)
        value = float(value_text)
    except ValueError:
        raise DataFormatError(file, line, "a number in 'value'", repr(value_text)) from None
    if not math.isfinite(value):
        raise DataFormatError(file, line, "a finite number in 'value'", repr(value_text))
    if hib_text not in ("0", "1"):
        raise DataFormatError(file, line, "higher_is_better 1 or 0", repr(hib_text))
    return LongRow(
        target=target,
        task_set=frozenset(tasks),
        split=split,
        value=value,
        higher_is_better=hib_text == "1",
    )


def write_long_csv(
    table: LongTable | Iterable[LongRow], path: str | os.PathLike[str] | IO[str]
) -> int:
    """Write ``table`` in the long format; return the row count.

    ``path``: a file, written atomically (by :func:`~taskgraph.files.replace_file`: a hidden
    temporary sibling of its own renamed into place, removed when the write fails: the
    ``OSError`` propagates and the file is as it was), or an open text stream (``newline=""``),
    written as is, for a caller that stages several files.
    """
    rows = list(table)
    if not isinstance(path, str | os.PathLike):
        _write_rows(rows, path)
        return len(rows)

    def write(temporary: Path) -> None:
        with temporary.open("w", newline="", encoding="utf-8") as handle:
            _write_rows(rows, handle)

    replace_file(Path(path), write)
    return len(rows)


def _write_rows(rows: Sequence[LongRow], handle: IO[str]) -> None:
    writer = csv.writer(handle, lineterminator="\n")
    writer.writerow(LONG_HEADER)
    for row in rows:
        writer.writerow(
            [
                row.target,
                row.task_set_key,
                row.split,
                repr(float(row.value)),
                int(row.higher_is_better),
            ]
        )


#: Largest magnitude of a table value: squares of differences of such values stay finite.
MAX_BENCH_VALUE = 1e100


def check_magnitudes(table: LongTable, *, path: object = None) -> None:
    """Raise ``DataFormatError`` for a value beyond :data:`MAX_BENCH_VALUE` in magnitude.

    Gains are differences and the estimators fit squared errors: values near the float range
    (``1e308``) overflow to ``inf``/``nan`` and every Spearman would be ``nan``.
    """
    for row in table:
        if abs(row.value) > MAX_BENCH_VALUE:
            line = table.lines.get((row.target, row.task_set, row.split))
            where = "" if line is None else f" on line {line}"
            raise DataFormatError(
                table.source if path is None else path,
                None,
                f"values of magnitude at most {MAX_BENCH_VALUE:g} (larger ones overflow the "
                "gains and the estimators' fits; rescale the table)",
                f"{row.value:g}{where} (target {row.target!r}, task set {row.task_set_key}, "
                f"split {row.split})",
            )
