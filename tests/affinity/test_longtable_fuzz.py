"""Hypothesis fuzzing of the long-CSV reader: a valid LongTable or exactly one DataFormatError line.

Two generators, each ``FUZZ_EXAMPLES`` examples (200 by default; set
TASKGRAPH_FUZZ_EXAMPLES for a deeper run): arbitrary bytes, and CSV texts written by the
``csv`` module from rows whose cells are drawn from plausible and hostile values (task sets
joined by ``+``, splits, numbers such as ``1e999``, ``nan``, ``-0``, flags, quotes, NUL, line
breaks inside quoted cells), under the right or a wrong header.  ``read_long_csv`` must return
a table whose rows satisfy the format, or raise a TaskgraphError whose message is one line
naming the file; any other exception fails the test.
"""

from __future__ import annotations

import csv
import io
import math
import os
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from taskgraph.affinity.longtable import LONG_HEADER, SPLITS, LongTable, read_long_csv
from taskgraph.errors import TaskgraphError

FUZZ_EXAMPLES = int(os.environ.get("TASKGRAPH_FUZZ_EXAMPLES", "200"))
FUZZ = settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

TASKS = st.sampled_from(["a", "b", "c", " a", "", "a b", "é", "+", "a+"])
CELL = st.one_of(
    st.lists(TASKS, min_size=1, max_size=3).map("+".join),
    st.sampled_from([*SPLITS, "train", "VAL", ""]),
    st.sampled_from(["0", "1", "2", "true", "", "1.0"]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["1e999", "-1e999", "nan", "inf", "-0", "0x10", "1_000", "١", "1e308"]),
    st.text(max_size=8),
)
ROW = st.lists(CELL, min_size=0, max_size=6)
HEADER = st.one_of(
    st.just(list(LONG_HEADER)),
    st.just([f" {h} " for h in LONG_HEADER]),
    st.lists(st.sampled_from([*LONG_HEADER, "x", ""]), max_size=6),
)


def outcome(data: bytes) -> LongTable | None:
    """Read ``data`` as a long CSV file; return the table, or None after a clean error."""
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "table.csv"
        path.write_bytes(data)
        try:
            table = read_long_csv(path)
        except TaskgraphError as error:
            message = str(error)
            assert "\n" not in message and "\r" not in message, message
            assert str(path) in message, message
            return None
    assert len(table) >= 1
    for row in table:
        assert row.target in row.task_set and all(row.task_set)
        assert row.split in SPLITS and math.isfinite(row.value)
    return table


def csv_text(header: list[str], rows: list[list[str]], terminator: str) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=terminator)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8", errors="surrogatepass")


@FUZZ
@given(st.binary(max_size=400))
def test_arbitrary_bytes_give_a_table_or_one_error_line(data: bytes) -> None:
    outcome(data)


@FUZZ
@given(HEADER, st.lists(ROW, max_size=8), st.sampled_from(["\n", "\r\n", "\r"]))
def test_generated_csv_gives_a_table_or_one_error_line(
    header: list[str], rows: list[list[str]], terminator: str
) -> None:
    outcome(csv_text(header, rows, terminator))


def test_a_well_formed_generated_table_reads_back() -> None:
    text = csv_text(list(LONG_HEADER), [["a", "a+b", "val", "0.5", "1"]], "\n")
    table = outcome(text)
    assert table is not None and table.get("a", ["b"], "val") is not None
