"""A data file edited while it is read leaves nothing under its old digest.

Counts, a carve's parts, the unanswerable flag and the unseen labels are kept by file contents
(in memory and on disk). What was read from a file that changed during the read is of neither
version: kept under the digest taken before the read, it came back once the file was restored
(found by the mutation audit of ``tasks/loading.py``). A carve read against an allocation of
other contents is one data error naming the file, not a bare ``zip()`` error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from taskgraph.errors import DataFormatError
from taskgraph.tasks import (
    count_examples,
    define_task,
    has_unanswerable,
    load_examples,
    loading,
)
from taskgraph.tasks.loading import unseen_labels
from taskgraph.tasks.types import TaskDef
from tests.tasks.test_user_tasks import carved_rows, squad_json


def _rows(n: int) -> str:
    return "".join(f"sentence {i}\t{'ab'[i % 2]}\n" for i in range(n))


def _edit_on_read(
    monkeypatch: pytest.MonkeyPatch, path: Path, edited: str, *, on_call: int = 1
) -> Callable[[], None]:
    """Make the ``on_call``-th read of any file write ``edited`` to ``path`` as it starts;
    return what puts the real reader back."""
    real = loading._records
    calls = 0

    def records(task: TaskDef, read: Path) -> Iterator[Any]:
        nonlocal calls
        calls += 1
        if calls == on_call:
            path.write_text(edited, encoding="utf-8")
        return real(task, read)

    monkeypatch.setattr(loading, "_records", records)
    return lambda: monkeypatch.setattr(loading, "_records", real)


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The files' contents repeat across tests (and test files): what an earlier test left in
    # the process's memos would answer without reading, and the edit would never land.
    monkeypatch.setenv("TASKGRAPH_CACHE", str(tmp_path / "cache"))
    for memo in ("_ALLOCATIONS", "_UNANSWERABLE", "_LABELS"):
        monkeypatch.setattr(loading, memo, {})


def test_a_carve_of_a_file_edited_while_it_is_read_is_refused_and_not_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    task = carved_rows(tmp_path, "carve_race", (("train", 0.9), ("dev", 0.1)))
    path = tmp_path / "rows.tsv"
    restore = _edit_on_read(monkeypatch, path, _rows(120))
    with pytest.raises(DataFormatError, match="changed while it was read") as error:
        count_examples(task, "train")
    assert error.value.path == str(path)
    restore()
    path.write_text(_rows(100), encoding="utf-8")  # back to the first contents
    # Before: the 120-row parts were kept under the 100-row digest (108 / 12, in memory and
    # in the disk cache of counts), and loading the split was a bare zip() ValueError.
    assert count_examples(task, "train") == 90 and count_examples(task, "dev") == 10
    assert len(load_examples(task, "train")) == 90


def test_a_carve_read_after_an_edit_of_its_file_is_one_data_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    task = carved_rows(tmp_path, "carve_grown", (("train", 0.9), ("dev", 0.1)))
    path = tmp_path / "rows.tsv"
    assert count_examples(task, "train") == 90  # the allocation of the 100 rows, in memory
    for rows in (120, 80):  # more records than the allocation has parts, then fewer
        # The allocation is found in memory; the records' own read then meets the edit.
        restore = _edit_on_read(monkeypatch, path, _rows(rows))
        with pytest.raises(DataFormatError, match="changed while it was read"):
            load_examples(task, "train")  # before: ValueError: zip() argument 2 is longer
        restore()
        path.write_text(_rows(100), encoding="utf-8")
    assert len(load_examples(task, "train")) == 90


def test_a_whole_file_count_of_a_file_edited_while_it_is_read_is_not_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "rows.tsv"
    path.write_text(_rows(100), encoding="utf-8")
    task = define_task(
        "whole_race",
        format="tsv",
        type="sentence_classification",
        label_field="label",
        files={"train": str(path)},
        reader_options={"text_column": 0, "label_column": 1},
    )
    restore = _edit_on_read(monkeypatch, path, _rows(120))
    assert count_examples(task, "train") == 120  # what was read
    restore()
    path.write_text(_rows(100), encoding="utf-8")
    assert count_examples(task, "train") == 100


def test_the_unanswerable_flag_of_a_file_edited_while_it_is_read_is_not_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "qa.json"
    path.write_text(squad_json(False), encoding="utf-8")
    task = define_task(
        "qa_race",
        format="squad",
        type="extractive_qa",
        label_field="answers",
        files={"train": str(path)},
    )
    restore = _edit_on_read(monkeypatch, path, squad_json(False, True))
    assert has_unanswerable(task)  # what was read
    restore()
    path.write_text(squad_json(False), encoding="utf-8")  # back to the first contents
    # Before: True, from memory and from the disk cache (a new process too).
    assert not has_unanswerable(task)
    monkeypatch.setattr(loading, "_UNANSWERABLE", {})  # a new process: only the disk cache
    assert not has_unanswerable(task)


def test_unseen_labels_of_a_file_edited_while_it_is_read_are_not_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    iob = "John\tB-PER\nran\tO\n"
    train, dev = tmp_path / "train.tsv", tmp_path / "dev.tsv"
    train.write_text(iob, encoding="utf-8")
    dev.write_text(iob, encoding="utf-8")
    task = define_task(
        "ner_race",
        format="iob",
        type="token_tagging",
        label_field="ner",
        files={"train": str(train), "dev": str(dev)},
    )
    restore = _edit_on_read(monkeypatch, dev, iob + "\nParis\tB-LOC\n")
    assert unseen_labels(task) == {"dev": ["B-LOC"]}  # what was read
    restore()
    dev.write_text(iob, encoding="utf-8")  # back to the first contents
    # Before: {"dev": ["B-LOC"]}, kept on disk under the fingerprint of the first contents.
    assert unseen_labels(task) == {}
