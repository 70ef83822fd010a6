"""Survivors of the mutation audit of ``tasks/loading.py`` and ``tasks/catalog.py``.

Each test pins what a user sees: what a refusal says about a data file, that a carve and the
unanswerable flag follow an edited file, that label sets of tasks reading one file stay apart.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from taskgraph.errors import DataNotFoundError, UnknownNameError
from taskgraph.tasks import (
    TextExample,
    count_examples,
    define_task,
    describe_split,
    get_task,
    has_unanswerable,
    label_vocabulary,
    load_examples,
    split_file,
)
from taskgraph.testing import write_sst2_data
from tests.tasks.test_user_tasks import carved_rows, squad_json

# one sentence whose UPOS and XPOS columns differ in every word
CONLLU = (
    "1\tJohn\tjohn\tPROPN\tNNP\t_\t2\tnsubj\t_\t_\n2\truns\trun\tVERB\tVBZ\t_\t0\troot\t_\t_\n\n"
)


def test_a_named_pipe_in_place_of_a_data_file_is_named_as_one(tmp_path: Path) -> None:
    # A reader opening a FIFO blocks until a writer comes: refused up front, and not called
    # a directory (the user would look for a folder that is not there).
    data = write_sst2_data(tmp_path / "data")
    train = data / "sst2" / "train.tsv"
    train.unlink()
    os.mkfifo(train)
    with pytest.raises(DataNotFoundError) as caught:
        split_file(get_task("sst2"), "train", data_dir=data)
    assert str(caught.value) == (
        f"data file of task 'sst2' split 'train' is not a regular file: {train}"
    )


def test_a_task_of_absolute_files_needs_no_data_directory(tmp_path: Path) -> None:
    # A user task naming its files by absolute path reads them whatever the data directory.
    data = write_sst2_data(tmp_path / "data")
    task = define_task(
        "abs_sst",
        format="tsv",
        type="sentence_classification",
        label_field="label",
        files={"train": str(data / "sst2" / "train.tsv")},
        reader_options={"header": True, "text_column": "sentence", "label_column": "label"},
    )
    missing = tmp_path / "no-data-here"
    assert len(load_examples(task, "train", data_dir=missing)) == 16
    assert count_examples(task, "train", data_dir=missing) == 16


def test_carved_parts_follow_an_edited_file(tmp_path: Path) -> None:
    # The 90/10 carve of 100 rows, then the file grows to 120 rows: the parts are carved
    # anew (108/12), not the old 100-row allocation laid over the new rows.
    task = carved_rows(tmp_path, "carve_edited", (("train", 0.9), ("dev", 0.1)))
    assert count_examples(task, "train") == 90 and len(load_examples(task, "dev")) == 10
    rows = "".join(f"line {i}\t{'ab'[i % 2]}\n" for i in range(120))
    (tmp_path / "rows.tsv").write_text(rows, encoding="utf-8")
    train, dev = load_examples(task, "train"), load_examples(task, "dev")
    assert (len(train), len(dev)) == (108, 12)
    assert (count_examples(task, "train"), count_examples(task, "dev")) == (108, 12)
    texts = {e.text for e in train + dev if isinstance(e, TextExample)}
    assert texts == {f"line {i}" for i in range(120)}


def test_a_carved_split_is_described_by_its_file() -> None:
    # `taskgraph tasks show` prints this rule: it names the file the part is carved from.
    rule = describe_split(get_task("squad2"), "dev")
    assert rule.startswith("part 'dev' of a deterministic group split (train 70%, dev 15%, ")
    assert " of squad2_dev_half/dev-v2.0.cs224n-half.json; unit: article (title); " in rule


def test_upos_and_xpos_tasks_of_one_file_keep_their_own_label_sets(tmp_path: Path) -> None:
    # Same file, type and reader: only the label field tells the two label sets apart.
    path = tmp_path / "one.conllu"
    path.write_text(CONLLU, encoding="utf-8")
    upos, xpos = (
        define_task(
            f"tags_{field}",
            format="conllu",
            type="token_tagging",
            label_field=field,
            files={"train": str(path)},
        )
        for field in ("upos", "xpos")
    )
    assert label_vocabulary(upos) == ["PROPN", "VERB"]
    assert label_vocabulary(xpos) == ["NNP", "VBZ"]


def test_an_unanswerable_question_added_to_a_file_is_seen(tmp_path: Path) -> None:
    # Whether a model may answer "" follows the file as it is now, in the same process.
    path = tmp_path / "qa.json"
    path.write_text(squad_json(False), encoding="utf-8")
    task = define_task(
        "qa_edited",
        format="squad",
        type="extractive_qa",
        label_field="answers",
        files={"train": str(path)},
    )
    assert not has_unanswerable(task)
    path.write_text(squad_json(False, True), encoding="utf-8")
    assert has_unanswerable(task)


def test_wikiann_tokens_lose_their_language_prefix(data_dir: Path) -> None:
    # WikiANN writes every token as `en:word`; the encoder must see the word.
    (first, *_) = load_examples(get_task("wikiann_en_ner"), "train", data_dir=data_dir, limit=1)
    assert first.tokens[:2] == ("R.H.", "Saunders")  # type: ignore[union-attr]


def test_an_unknown_name_lists_the_user_tasks_too(tmp_path: Path) -> None:
    task = carved_rows(tmp_path, "my_rows", (("train", 0.5), ("dev", 0.5)))
    with pytest.raises(UnknownNameError) as caught:
        get_task("my_row", extra={"my_rows": task})
    assert "'my_row'" in str(caught.value) and ", my_rows, " in str(caught.value)
