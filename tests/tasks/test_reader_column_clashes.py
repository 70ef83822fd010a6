"""One column read as two fields is refused: an IOB token column that is its tag column once
negative indices are resolved, a TSV label read from the text column, a header naming the
chosen column twice.  Each used to give examples whose labels were their own text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from taskgraph.errors import ConfigError, DataFormatError
from taskgraph.tasks import get_reader
from taskgraph.tasks.types import TaskType


def _read(fmt: str, path: Path, kind: TaskType, options: dict[str, Any]) -> list[Any]:
    reader = get_reader(fmt)
    reader.check(kind, "label", options)
    return [
        r.example for r in reader.read(path, task_type=kind, label_field="label", options=options)
    ]


def test_iob_token_and_tag_columns_that_resolve_to_one_column_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "pos.tsv"
    path.write_text("The\tDT\ndog\tNN\n")
    options = {"scheme": "none", "tag_column": -2}
    with pytest.raises(DataFormatError, match=r"pos\.tsv:1: .*token_column.*tag_column.*"
                       r"0 and -2 are both column 0 of the 2 columns"):  # fmt: skip
        _read("iob", path, TaskType.TOKEN_TAGGING, options)
    # on three columns the same options name two columns, and read
    path.write_text("The\tx\tDT\ndog\tx\tNN\n")
    (sentence,) = _read("iob", path, TaskType.TOKEN_TAGGING, options)
    assert sentence.tokens == ("The", "dog") and sentence.tags == ("x", "x")


@pytest.mark.parametrize(
    ("columns", "clash"),
    [
        ({"text_column": 0, "label_column": 0}, "text_column` and .*label_column` .* both are 0"),
        (
            {"text_column": "s", "pair_column": "s", "label_column": "y"},
            "text_column` and .*pair_column` .* both are 's'",
        ),
    ],
)
def test_tsv_columns_named_twice_in_the_options_are_refused(
    columns: dict[str, Any], clash: str
) -> None:
    kind = (
        TaskType.SENTENCE_PAIR_CLASSIFICATION
        if "pair_column" in columns
        else TaskType.SENTENCE_CLASSIFICATION
    )
    with pytest.raises(ConfigError, match=clash):
        get_reader("tsv").check(kind, "label", {"header": True, **columns})


def test_tsv_a_column_chosen_by_name_and_by_number_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.tsv"
    path.write_text("sentence\tlabel\ngood film\tpos\n")
    options = {"header": True, "text_column": "sentence", "label_column": 0}
    with pytest.raises(DataFormatError, match=r"c\.tsv:1: .*text_column.*label_column.*"
                       r"both are column 0 \('sentence'\)"):  # fmt: skip
        _read("tsv", path, TaskType.SENTENCE_CLASSIFICATION, options)


def test_tsv_a_header_naming_a_chosen_column_twice_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "h.tsv"
    path.write_text("label\tsentence\tlabel\n1\tgood film\tneg\n")
    options = {"header": True, "text_column": "sentence", "label_column": "label"}
    with pytest.raises(DataFormatError, match=r"h\.tsv:1: .*naming column 'label' "
                       r"\(label_column\) once.*'label' at columns 0, 2"):  # fmt: skip
        _read("tsv", path, TaskType.SENTENCE_CLASSIFICATION, options)
    # a repeated name the options do not use is no obstacle
    path.write_text("x\tsentence\tx\tlabel\n1\tgood film\t2\tneg\n")
    (example,) = _read("tsv", path, TaskType.SENTENCE_CLASSIFICATION, options)
    assert (example.text, example.label) == ("good film", "neg")
