"""The long CSV format: round trip, and one clear line with file:line for bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from taskgraph.affinity.longtable import LongRow, LongTable, read_long_csv, write_long_csv
from taskgraph.errors import DataFormatError, DataNotFoundError

HEADER = "target,task_set,split,value,higher_is_better\n"


def test_round_trip_and_records(tmp_path: Path) -> None:
    rows = [
        LongRow("a", frozenset({"a"}), "val", 0.5, True),
        LongRow("a", frozenset({"a", "b"}), "val", 0.55, True),
        LongRow("a", frozenset({"a", "b"}), "test", 0.52, True),
    ]
    path = tmp_path / "t.csv"
    assert write_long_csv(LongTable(rows=rows), path) == 3
    table = read_long_csv(path)
    assert table.rows == rows and table.splits == ["val", "test"] and table.source == "t"
    assert table.get("a", {"b"}, "test").value == 0.52
    records = table.to_records(split="val")
    assert [r.is_baseline for r in records] == [True, False]
    assert path.read_text().splitlines()[2] == "a,a+b,val,0.55,1"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("a,a+b,val,0.5", "t.csv:3: expected 5 fields"),
        ("a,b+c,val,0.5,1", "t.csv:3: expected task_set containing the target 'a'"),
        ("a,a+b,dev,0.5,1", "t.csv:3: expected split in ['val', 'test']"),
        ("a,a+b,val,high,1", "t.csv:3: expected a number in 'value'"),
        ("a,a+b,val,0.5,yes", "t.csv:3: expected higher_is_better 1 or 0"),
        ("a,a++b,val,0.5,1", "t.csv:3: expected task_set as names joined by '+'"),
        ("a,a+a,test,0.5,1", "t.csv:3: expected task_set naming each task once, got 'a' repeated"),
        ("a,a+b+b,val,0.5,1", "t.csv:3: expected task_set naming each task once, got 'b' repeated"),
        (
            "a,a,val,0.7,1",
            "t.csv:3: expected one row per (target, task_set, split), got a repeat of line 2",
        ),
        (
            "a,a+b,test,0.5,0",
            "t.csv:3: expected higher_is_better 1 for target 'a' as on line 2, got 0",
        ),
    ],
)
def test_malformed_row_names_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "t.csv"
    path.write_text(HEADER + "a,a,val,0.5,1\n" + line + "\n")
    with pytest.raises(DataFormatError) as caught:
        read_long_csv(path)
    assert str(caught.value).startswith(str(tmp_path / message.split(":")[0]))
    assert message.split(":", 1)[1] in str(caught.value)
    assert "\n" not in str(caught.value)


def test_missing_file_and_bad_header(tmp_path: Path) -> None:
    with pytest.raises(DataNotFoundError, match="does not exist"):
        read_long_csv(tmp_path / "nope.csv")
    with pytest.raises(DataNotFoundError, match="is a directory, not a CSV file"):
        read_long_csv(tmp_path)
    path = tmp_path / "h.csv"
    path.write_text("target,set,split,value\n")
    with pytest.raises(DataFormatError, match=r"h.csv:1: expected header"):
        read_long_csv(path)


def test_bytes_that_are_not_utf8_name_their_line(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes(
        (HEADER + "a,a,val,0.5,1\n").encode() + "b\u00e9,b\u00e9,val,1,1\n".encode("latin-1")
    )
    with pytest.raises(DataFormatError, match=r"latin.csv:3: expected UTF-8 text, got byte"):
        read_long_csv(path)


def test_an_oversized_field_is_a_format_error(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    path.write_text(HEADER + 'a,"' + "x" * 200_000 + '",val,0.5,1\n')
    with pytest.raises(DataFormatError, match=r"big.csv:2: expected CSV, got field larger"):
        read_long_csv(path)


def test_a_byte_order_mark_is_read_past(tmp_path: Path) -> None:
    # Excel's "CSV UTF-8" starts the file with a BOM: the header read '\ufefftarget' and failed.
    path = tmp_path / "excel.csv"
    path.write_bytes(("\ufeff" + HEADER + "a,a,val,0.5,1\na,a+b,val,0.55,1\n").encode("utf-8"))
    table = read_long_csv(path)
    assert [r.value for r in table] == [0.5, 0.55] and table.targets == ["a"]
    # a bad byte after the mark still names its line and the byte itself
    path.write_bytes(b"\xef\xbb\xbf" + HEADER.encode() + b"a,a,val,0.5,1\na,a+b,val,\xff,1\n")
    with pytest.raises(
        DataFormatError, match=r"excel.csv:3: expected UTF-8 text, got byte b'\\xff'"
    ):
        read_long_csv(path)


def test_an_unclosed_quote_names_the_line_it_opens_on(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text(HEADER + 'a,a,val,0.5,1\na,"a+c,val,0.45,1\na,a+d,val,0.6,1\na,a+e,val,0.7,1\n')
    with pytest.raises(DataFormatError, match=r"t.csv:3: expected 5 fields, got 2"):
        read_long_csv(path)


@pytest.mark.parametrize("value", ["1_000", "0.5_5", "_1"])
def test_underscores_in_a_value_are_refused(tmp_path: Path, value: str) -> None:
    # float() reads `1_000` as 1000: a typo became a number.
    path = tmp_path / "t.csv"
    path.write_text(f"{HEADER}a,a,val,0.5,1\na,a+b,val,{value},1\n")
    with pytest.raises(
        DataFormatError, match=rf"t.csv:3: expected a number in 'value', got '{value}'"
    ):
        read_long_csv(path)


def test_a_value_too_large_for_the_bench_names_its_line(tmp_path: Path) -> None:
    from taskgraph.affinity.longtable import check_magnitudes

    path = tmp_path / "t.csv"
    path.write_text(f"{HEADER}a,a,val,0.5,1\n\na,a+b,val,1e101,1\na,a+c,val,0.4,1\n")
    with pytest.raises(DataFormatError, match=r"got 1e\+101 on line 4 \(target 'a', task set a\+b"):
        check_magnitudes(read_long_csv(path), path=path)
