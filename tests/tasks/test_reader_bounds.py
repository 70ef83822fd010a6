"""Every reader bounds the characters of a line and of a word: one DataFormatError with file:line.

A data file holding one 50 MB token once took 10.6 GB in the tokenizer; these files are a
little over the bounds (a few MB), which is enough to show the bound holds and keeps the
tests fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from taskgraph.errors import DataFormatError
from taskgraph.tasks import get_reader
from taskgraph.tasks.readers.base import MAX_LINE_CHARS, MAX_WORD_CHARS
from taskgraph.tasks.types import TaskType

LONG_WORD = "x" * (MAX_WORD_CHARS + 1)
LONG_LINE = " ".join(["word"] * (MAX_LINE_CHARS // 5 + 1))  # short words, too many of them


def read_all(path: Path, fmt: str, task_type: TaskType, label_field: str, **options: Any) -> int:
    reader = get_reader(fmt)
    reader.check(task_type, label_field, options)
    records = reader.read(path, task_type=task_type, label_field=label_field, options=options)
    return sum(1 for _ in records)


def tsv(text: str) -> tuple[str, TaskType, str, dict[str, Any]]:
    return (
        f"good sentence\t1\n{text}\t0\n",
        TaskType.SENTENCE_CLASSIFICATION,
        "label",
        {"text_column": 0, "label_column": 1},
    )


def iob(token: str) -> tuple[str, TaskType, str, dict[str, Any]]:
    return f"Token\tO\n{token}\tO\n", TaskType.TOKEN_TAGGING, "ner", {}


def conllu(form: str) -> tuple[str, TaskType, str, dict[str, Any]]:
    rows = ["1\tA\ta\tDET\t_\t_\t2\tdet\t_\t_", f"2\t{form}\tx\tNOUN\t_\t_\t0\troot\t_\t_"]
    return "\n".join(rows) + "\n\n", TaskType.TOKEN_TAGGING, "upos", {}


@pytest.mark.parametrize(
    ("make", "fmt"), [(tsv, "tsv"), (iob, "iob"), (conllu, "conllu")], ids=["tsv", "iob", "conllu"]
)
@pytest.mark.parametrize(
    ("text", "expected"),
    [(LONG_WORD, f"words of at most {MAX_WORD_CHARS}"), (LONG_LINE, f"at most {MAX_LINE_CHARS}")],
    ids=["word", "line"],
)
def test_line_based_readers_refuse_a_long_word_or_line_naming_its_line(
    tmp_path: Path, make: Any, fmt: str, text: str, expected: str
) -> None:
    content, task_type, label_field, options = make(text)
    path = tmp_path / "data.txt"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataFormatError) as caught:
        read_all(path, fmt, task_type, label_field, **options)
    assert caught.value.line == 2
    message = str(caught.value)
    assert message.startswith(f"{path}:2: expected ") and expected in message
    assert "\n" not in message


def test_an_endless_line_is_not_read_past_its_bound(tmp_path: Path) -> None:
    # 5 MB without a line break: the reader stops after 4 bytes per allowed character.
    path = tmp_path / "data.txt"
    path.write_bytes(b"Token\tO\n" + b"y" * (5 * MAX_LINE_CHARS))
    with pytest.raises(DataFormatError, match=f"{path}:2: expected a line of at most"):
        read_all(path, "iob", TaskType.TOKEN_TAGGING, "ner")


def test_squad_bounds_the_context_and_question(tmp_path: Path) -> None:
    def squad(context: str, question: str) -> dict[str, Any]:
        qa = {"id": "q1", "question": question, "answers": [{"text": "a", "answer_start": 0}]}
        return {"data": [{"title": "t", "paragraphs": [{"context": context, "qas": [qa]}]}]}

    path = tmp_path / "squad.json"
    for data, where in (
        (squad("a " + LONG_WORD, "q?"), "data[0].paragraphs[0].context"),
        (squad("a context", "why " + LONG_WORD), "data[0].paragraphs[0].qas[0].question"),
    ):
        path.write_text(json.dumps(data, indent=1), encoding="utf-8")
        with pytest.raises(DataFormatError) as caught:
            read_all(path, "squad", TaskType.EXTRACTIVE_QA, "answers")
        assert f"words of at most {MAX_WORD_CHARS} characters in the {where}" in str(caught.value)
        assert caught.value.line is not None and caught.value.line > 1


def test_text_within_the_bounds_still_reads(tmp_path: Path) -> None:
    path = tmp_path / "data.txt"
    path.write_text(f"Token\tO\n{'z' * MAX_WORD_CHARS}\tO\n", encoding="utf-8")
    assert read_all(path, "iob", TaskType.TOKEN_TAGGING, "ner") == 1
