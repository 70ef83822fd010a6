"""A tabular runner's table is read once for as long as the file is unchanged."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import taskgraph.runners.tabular as tabular
from taskgraph.affinity.longtable import LongRow, LongTable, read_long_csv, write_long_csv
from taskgraph.errors import DataNotFoundError
from taskgraph.runners.tabular import TabularEvaluator, read_table


def _table(value: float) -> LongTable:
    return LongTable(
        rows=[
            LongRow("a", frozenset({"a"}), "val", value, True),
            LongRow("a", frozenset({"a", "b"}), "val", 0.55, True),
        ],
        source="toy",
    )


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Return the paths read by the tabular runner's reader, in order."""
    seen: list[str] = []

    def counting(path: str | os.PathLike[str]) -> LongTable:
        seen.append(os.fspath(path))
        return read_long_csv(path)

    monkeypatch.setattr(tabular, "read_long_csv", counting)
    return seen


def test_an_unchanged_table_is_read_once(tmp_path: Path, reads: list[str]) -> None:
    path = tmp_path / "toy.csv"
    write_long_csv(_table(0.5), path)
    first = read_table(path)
    assert read_table(str(path)) is read_table(path) is first
    assert TabularEvaluator(table=path).table is first
    assert reads == [str(path)]


def test_an_edited_table_is_read_again(tmp_path: Path, reads: list[str]) -> None:
    path = tmp_path / "toy.csv"
    write_long_csv(_table(0.5), path)
    assert read_table(path).rows[0].value == 0.5
    write_long_csv(_table(0.25), path)
    assert read_table(path).rows[0].value == 0.25
    assert len(reads) == 2


def test_a_missing_table_is_not_remembered(tmp_path: Path, reads: list[str]) -> None:
    path = tmp_path / "toy.csv"
    with pytest.raises(DataNotFoundError, match="table file does not exist"):
        read_table(path)
    write_long_csv(_table(0.5), path)
    assert len(read_table(path)) == 2
