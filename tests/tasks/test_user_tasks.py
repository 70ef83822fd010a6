"""User-defined tasks (define_task), lookups, loading errors, fingerprints and the count cache."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from taskgraph.errors import ConfigError, DataNotFoundError, UnknownNameError
from taskgraph.tasks import (
    TaggedSentence,
    TaskDef,
    TaskType,
    count_examples,
    dataset_fingerprints,
    define_task,
    get_task,
    has_unanswerable,
    iter_examples,
    label_vocabulary,
    list_tasks,
    load_examples,
    loading,
    task_fingerprint,
)
from taskgraph.tasks.fingerprints import file_sha256
from taskgraph.tasks.splits import format_carve
from taskgraph.tasks.synthetic import synthetic_task_names
from taskgraph.tasks.types import SplitSource

IOB = "John\tB-PER\nran\tO\n\nMary\tB-PER\n"


def _corpus(root: Path, names: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, text in names.items():
        (root / name).write_text(text, encoding="utf-8")
    return root


def test_define_task_from_files_relative_to_base_dir(tmp_path: Path) -> None:
    _corpus(tmp_path / "corpus", {"a.tsv": IOB, "b.tsv": "x\tO\n"})
    task = define_task(
        "my_ner",
        format="iob",
        type="token_tagging",
        label_field="ner",
        files={"train": "corpus/a.tsv", "dev": str(tmp_path / "corpus" / "b.tsv")},
        metrics=["f1", "precision", "recall", "f1_PER"],
        base_dir=tmp_path,
    )
    assert task.type is TaskType.TOKEN_TAGGING and task.primary_metric == "f1"
    assert load_examples(task, "train") == [
        TaggedSentence(tokens=("John", "ran"), tags=("B-PER", "O")),
        TaggedSentence(tokens=("Mary",), tags=("B-PER",)),
    ]
    assert count_examples(task, "train") == 2 and count_examples(task, "dev") == 1
    assert label_vocabulary(task) == ["B-PER", "O"]
    assert get_task("my_ner", extra={"my_ner": task}) is task


def test_define_task_from_directory_and_pattern(tmp_path: Path) -> None:
    root = _corpus(
        tmp_path / "d", {"train.tsv": IOB, "devel.tsv": IOB, "test.tsv": IOB, "README": "x"}
    )
    task = define_task(
        "dir_task", format="iob", type="token_tagging", label_field="ner", path=str(root)
    )
    assert sorted(task.splits) == ["dev", "test", "train"]
    _corpus(root, {"part-train.iob": IOB, "part-valid.iob": IOB})
    task = define_task(
        "pat_task",
        format="iob",
        type="token_tagging",
        label_field="ner",
        path="d/part-{split}.iob",
        base_dir=tmp_path,
    )
    assert sorted(task.splits) == ["dev", "train"]
    assert len(load_examples(task, "dev")) == 2


def test_relative_files_without_base_dir_resolve_in_the_data_dir(tmp_path: Path) -> None:
    _corpus(tmp_path / "mine", {"t.tsv": IOB})
    task = define_task(
        "data_rel",
        format="iob",
        type="token_tagging",
        label_field="ner",
        files={"train": "mine/t.tsv"},
    )
    assert count_examples(task, "train", data_dir=tmp_path) == 2
    with pytest.raises(DataNotFoundError, match=r"data_rel.*train.*does not exist"):
        # another data directory that exists but lacks mine/t.tsv
        load_examples(task, "train", data_dir=tmp_path / "mine")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "Bad-Name"}, "`name` must be lowercase snake_case"),
        ({"name": "bc2gm"}, "taken by a built-in task"),
        ({"type": "ner"}, "`type` must be one of token_tagging"),
        ({"format": "xml"}, "unknown task format 'xml'; known: conllu, iob, squad, tsv"),
        ({"label_field": ""}, "`label_field` must be a non-empty string"),
        ({"metrics": ["bleu"]}, "`metrics` entry 'bleu' is not available for token_tagging"),
        ({"metrics": "f1"}, "`metrics` must be a non-empty list"),
        ({"files": None}, "give exactly one of `files` and `path`"),
        ({"files": {"Train": "a"}}, "`files` key 'Train'"),
        ({"reader_options": {"scheme": "x"}}, "`reader_options.scheme` must be one of"),
        ({"files": None, "path": "nowhere"}, "directory does not exist"),
    ],
)
def test_define_task_errors_name_the_field(
    tmp_path: Path, kwargs: dict[str, object], message: str
) -> None:
    arguments: dict[str, object] = {
        "name": "ok_task",
        "format": "iob",
        "type": "token_tagging",
        "label_field": "ner",
        "files": {"train": "a.tsv"},
        "base_dir": tmp_path,
    }
    arguments.update(kwargs)
    with pytest.raises((ConfigError, DataNotFoundError)) as caught:
        define_task(**arguments)  # type: ignore[arg-type]
    assert message in str(caught.value)


def test_classification_f1_needs_a_positive_label(tmp_path: Path) -> None:
    options = {"text_column": 0, "label_column": 1}
    with pytest.raises(ConfigError, match="positive_label"):
        define_task(
            "cls",
            format="tsv",
            type="sentence_classification",
            label_field="label",
            files={"train": "x.tsv"},
            metrics=["f1"],
            reader_options=options,
        )
    task = define_task(
        "cls",
        format="tsv",
        type="sentence_classification",
        label_field="label",
        files={"train": "x.tsv"},
        metrics=["macro_f1"],
        reader_options=options,
    )
    assert task.metrics == ("macro_f1",)


@pytest.mark.parametrize("metric", ["f1", "precision", "recall", "f1_PER", "recall_NN"])
def test_entity_scores_need_an_iob_scheme(tmp_path: Path, metric: str) -> None:
    # With scheme none the tags are plain labels (POS, IOBES): the study was created and every
    # trial failed at scoring ("entity scores need IOB tags ..."), so validation refuses it.
    arguments: dict[str, Any] = {
        "format": "iob",
        "type": "token_tagging",
        "label_field": "ner",
        "files": {"train": "x.tsv"},
        "base_dir": tmp_path,
    }
    with pytest.raises(ConfigError) as caught:
        define_task(
            "tags", metrics=["accuracy", metric], reader_options={"scheme": "none"}, **arguments
        )
    assert str(caught.value) == (
        f"`metrics` has entity score {metric!r}, but `reader_options.scheme` is 'none' (tags "
        "are plain labels, not IOB spans): use 'accuracy', or set `reader_options.scheme` to "
        "'iob2' or 'iob1'"
    )
    plain = define_task("tags", reader_options={"scheme": "none"}, **arguments)
    assert plain.metrics == ("accuracy",)
    scored = define_task(
        "tags", metrics=["accuracy"], reader_options={"scheme": "none"}, **arguments
    )
    assert scored.metrics == ("accuracy",)
    for scheme in ("iob2", "iob1"):
        entities = define_task(
            "tags", metrics=[metric], reader_options={"scheme": scheme}, **arguments
        )
        assert entities.metrics == (metric,)
    assert define_task("tags", metrics=[metric], **arguments).metrics == (metric,)


@pytest.mark.parametrize("label_field", ["upos", "xpos"])
def test_entity_scores_of_conllu_tags_are_refused(tmp_path: Path, label_field: str) -> None:
    # CoNLL-U tags are POS labels: entity scores failed every trial at scoring.
    arguments: dict[str, Any] = {
        "format": "conllu",
        "type": "token_tagging",
        "label_field": label_field,
        "files": {"train": "x.conllu"},
        "base_dir": tmp_path,
    }
    with pytest.raises(ConfigError, match=r"entity score 'f1', but CoNLL-U tags .* 'accuracy'"):
        define_task("pos", metrics=["accuracy", "f1"], **arguments)
    assert define_task("pos", metrics=["accuracy"], **arguments).metrics == ("accuracy",)


def test_unknown_names_splits_and_files(tmp_path: Path) -> None:
    with pytest.raises(UnknownNameError, match="unknown task 'nope'; known: anatem, bc2gm"):
        get_task("nope")
    task = get_task("cola")
    with pytest.raises(
        ConfigError, match="task 'cola' has no split 'test'; its splits: train, dev, dev_ood"
    ):
        iter_examples(task, "test")
    with pytest.raises(
        DataNotFoundError, match=f"does not exist: {tmp_path}/cola/in_domain_train.tsv"
    ):
        iter_examples(task, "train", data_dir=tmp_path)
    with pytest.raises(DataNotFoundError, match=r"^data directory from data_dir does not exist"):
        iter_examples(task, "train", data_dir=tmp_path / "missing")
    with pytest.raises(ConfigError, match="`limit` must be >= 0"):
        iter_examples(task, "train", limit=-1)


def test_synthetic_names_resolve_lazily() -> None:
    from taskgraph.tasks import synthetic  # part of the package: never a reason to skip

    name = synthetic.synthetic_task_names()[0]
    task = get_task(name)
    assert task.format == "synthetic"
    examples = load_examples(task, "train", limit=3)
    assert len(examples) == 3 and count_examples(task, "train") >= 3
    assert label_vocabulary(task)
    assert task_fingerprint(task) == task_fingerprint(get_task(name))


def test_catalog_shape() -> None:
    tasks = list_tasks()
    assert len(tasks) >= 30
    assert [t.name for t in tasks] == sorted(t.name for t in tasks)
    for task in tasks:
        assert task.name == task.name.lower() and " " not in task.name
        assert task.metrics and {"train", "dev"} <= set(task.splits), task.name
        assert set(task.splits) <= {"train", "dev", "test", "dev_ood", "test_unlabeled"}
    names = {t.name for t in tasks}
    for expected in (
        "ud_tr_imst_upos",
        "ud_tr_imst_deps",
        "tr_ner_tur2003",
        "cs_cnec2_ner",
        "cs_chnec_ner",
        "wikiann_en_ner",
        "bc2gm",
        "squad2",
        "bioasq_factoid",
        "bioasq_yesno",
        "cola",
        "sst2",
        "rte",
        "mrpc",
        "genia_pos",
    ):
        assert expected in names
    assert get_task("squad2").metrics == ("f1", "exact")
    assert get_task("ud_en_ewt_deps").metrics == ("las", "uas")
    assert get_task("cola").primary_metric == "mcc" and get_task("mrpc").primary_metric == "f1"


def test_builtin_options_pass_their_readers_checks() -> None:
    from taskgraph.tasks import get_reader

    for task in list_tasks():
        get_reader(task.format).check(task.type, task.label_field, task.reader_options)


def test_fingerprints_follow_file_contents(tmp_path: Path) -> None:
    _corpus(tmp_path, {"t.tsv": IOB})
    task = define_task(
        "fp_task",
        format="iob",
        type="token_tagging",
        label_field="ner",
        files={"train": "t.tsv"},
        base_dir=tmp_path,
    )
    before = task_fingerprint(task)
    files = dataset_fingerprints(task)
    assert list(files) == [str(tmp_path / "t.tsv")] and len(before) == 64
    assert count_examples(task, "train") == 2
    (tmp_path / "t.tsv").write_text(IOB + "\nAnn\tB-PER\n", encoding="utf-8")
    stat = (tmp_path / "t.tsv").stat()
    os.utime(tmp_path / "t.tsv", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert task_fingerprint(task) != before
    assert count_examples(task, "train") == 3  # the cached count belonged to the old contents


def _fp_task(tmp_path: Path, text: str) -> tuple[TaskDef, Path]:
    path = tmp_path / "t.tsv"
    path.write_text(text, encoding="utf-8")
    task = define_task(
        "fp_task",
        format="iob",
        type="token_tagging",
        label_field="ner",
        files={"train": str(path)},
    )
    return task, path


def test_same_size_edit_with_restored_mtime_is_seen(tmp_path: Path) -> None:
    # cp -p, rsync -t and tar restore the modification time; the size stays the same here
    task, path = _fp_task(tmp_path, "a\tB-PER\nb\tO\n\nc\tO\n")
    before = (task_fingerprint(task), count_examples(task, "train"), label_vocabulary(task))
    assert before[1:] == (2, ["B-PER", "O"])
    stat = path.stat()
    path.write_text("a\tB-LOC\nb\tO\nc\tO\n\n", encoding="utf-8")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert path.stat().st_size == stat.st_size and path.stat().st_mtime_ns == stat.st_mtime_ns
    assert file_sha256(path) == hashlib.sha256(path.read_bytes()).hexdigest()
    assert task_fingerprint(task) != before[0]
    assert count_examples(task, "train") == 1
    assert label_vocabulary(task) == ["B-LOC", "O"]


def test_task_fingerprint_covers_the_reader_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    task, _ = _fp_task(tmp_path, IOB)
    # recorded before the version counted: version 1 keeps the same fingerprint
    assert task_fingerprint(task) == (
        "d49b8ee0d9c1ffc98a70d0218d21a1e59b81ebf3f4100dead62ebb17004e4891"
    )
    synthetic = get_task(synthetic_task_names()[0])
    before = task_fingerprint(synthetic)
    monkeypatch.setattr(loading, "_READER_VERSION", 2)
    # the feature cache is keyed by the fingerprint: features of the old reading must go
    assert (
        task_fingerprint(task) != "d49b8ee0d9c1ffc98a70d0218d21a1e59b81ebf3f4100dead62ebb17004e4891"
    )
    assert task_fingerprint(synthetic) == before  # generated, not read


def test_label_set_follows_an_edited_file_in_the_same_process(tmp_path: Path) -> None:
    task, path = _fp_task(tmp_path, "a\tB-PER\nb\tO\n")
    assert label_vocabulary(task) == ["B-PER", "O"]
    path.write_text("a\tB-ORG\nb\tO\nc\tO\n", encoding="utf-8")
    assert label_vocabulary(task) == ["B-ORG", "O"]
    path.write_text("a\tB-PER\nb\tO\n", encoding="utf-8")  # back to the first contents
    assert label_vocabulary(task) == ["B-PER", "O"]


def test_labels_read_from_a_file_edited_while_read_are_not_kept_under_its_old_digest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The labels of a file edited between its digest and its reading belong to no digest:
    kept under the old one, they came back once the file was restored."""
    monkeypatch.setenv("TASKGRAPH_CACHE", str(tmp_path / "cache"))
    root = _corpus(tmp_path / "d", {"train.tsv": IOB, "dev.tsv": IOB})
    task = define_task(
        "edited_ner", format="iob", type="token_tagging", label_field="ner", path=str(root)
    )
    edited = IOB + "\nParis\tB-LOC\n"
    real_records = loading._records

    def records_after_an_edit(task: Any, path: Any) -> Any:
        Path(path).write_text(edited, encoding="utf-8")  # the edit lands as it is read
        return real_records(task, path)

    monkeypatch.setattr(loading, "_records", records_after_an_edit)
    assert "B-LOC" in label_vocabulary(task)
    monkeypatch.setattr(loading, "_records", real_records)
    for name in ("train.tsv", "dev.tsv"):  # back to the first version
        (root / name).write_text(IOB, encoding="utf-8")
    assert label_vocabulary(task) == ["B-PER", "O"]


def carved_rows(tmp_path: Path, name: str, parts: tuple[tuple[str, float], ...]) -> TaskDef:
    """A 100-row TSV task whose splits are carved from one file by ``parts``."""
    path = tmp_path / "rows.tsv"
    if not path.exists():
        path.write_text("".join(f"sentence {i}\t{'ab'[i % 2]}\n" for i in range(100)))
    task = define_task(
        name,
        format="tsv",
        type="sentence_classification",
        label_field="label",
        files={"train": str(path)},
        reader_options={"text_column": 0, "label_column": 1},
    )
    splits = {part: SplitSource(str(path), format_carve(parts, part)) for part, _ in parts}
    return dataclasses.replace(task, splits=MappingProxyType(splits))


def test_two_carves_of_one_file_keep_their_own_counts_and_parts(tmp_path: Path) -> None:
    # every row is its own group, so the parts are exactly the fractions of 100
    a = carved_rows(tmp_path, "carve_a", (("train", 0.9), ("dev", 0.1)))
    b = carved_rows(tmp_path, "carve_b", (("train", 0.5), ("dev", 0.5)))
    assert count_examples(a, "train") == 90 and len(load_examples(a, "train")) == 90
    # the same file and reader: only the fractions tell the cached count and allocation apart
    assert count_examples(b, "train") == 50
    assert len(load_examples(b, "train")) == 50
    assert count_examples(a, "dev") == 10 and count_examples(b, "dev") == 50
    assert task_fingerprint(a) != task_fingerprint(b)  # the carve rule is part of the data


def test_a_limit_reads_exactly_that_many_examples(tmp_path: Path) -> None:
    carved = carved_rows(tmp_path, "carve_limit", (("train", 0.9), ("dev", 0.1)))
    whole = define_task(
        "whole_limit",
        format="tsv",
        type="sentence_classification",
        label_field="label",
        files={"train": str(tmp_path / "rows.tsv")},
        reader_options={"text_column": 0, "label_column": 1},
    )
    for task in (whole, carved):
        for limit in (0, 3):
            assert len(load_examples(task, "train", limit=limit)) == limit
        assert len(list(iter_examples(task, "train", limit=3))) == 3


def squad_json(*impossible: bool) -> str:
    qas = [
        {"id": f"q{i}", "question": "What?", "answers": [], "is_impossible": True}
        if flag
        else {"id": f"q{i}", "question": "What?", "answers": [{"text": "x", "answer_start": 0}]}
        for i, flag in enumerate(impossible)
    ]
    return json.dumps({"data": [{"title": "t", "paragraphs": [{"context": "x y", "qas": qas}]}]})


def test_unanswerable_questions_in_any_file_count(tmp_path: Path) -> None:
    # the files are read in sorted order: the unanswerable question is in the first one only
    root = _corpus(
        tmp_path / "qa", {"a.json": squad_json(False, True), "b.json": squad_json(False)}
    )
    task = define_task(
        "qa_two_files",
        format="squad",
        type="extractive_qa",
        label_field="answers",
        files={"train": str(root / "a.json"), "dev": str(root / "b.json")},
    )
    assert has_unanswerable(task)
    only_b = define_task(
        "qa_one_file",
        format="squad",
        type="extractive_qa",
        label_field="answers",
        files={"train": str(root / "b.json")},
    )
    assert not has_unanswerable(only_b)
