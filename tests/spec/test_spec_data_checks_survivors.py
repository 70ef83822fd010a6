"""The data checks before a study exists, where a mutation audit found them untested.

Each test pins what a user sees from ``study validate`` / ``study run`` (through
:func:`~taskgraph.app.studies.specs.load_study_spec` and
:func:`~taskgraph.spec.checks.check_data`): which file and which spec field a refusal names,
where the data directory came from, which splits and examples are read.  Data is a few lines
written under ``tmp_path``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from taskgraph.app.studies.specs import load_study_spec
from taskgraph.errors import DataNotFoundError, SpecError
from taskgraph.spec import StudySpec, spec_from_dict
from taskgraph.spec.checks import INLINE_HEAD, check_data
from taskgraph.testing import write_sst2_data

SENTENCES = "The\tO\ncat\tB-ANIMAL\nsat\tO\n\n" * 3
IOB = "format: iob, type: token_tagging, label_field: ner"


def write_iob(folder: Path, texts: dict[str, str]) -> dict[str, Path]:
    """Write ``folder/<name>.iob`` for each text and return the paths by name."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {name: folder / f"{name}.iob" for name in texts}
    for name, text in texts.items():
        paths[name].write_text(text, encoding="utf-8")
    return paths


def spec_file(tmp_path: Path, body: str) -> Path:
    """Write a one-trial spec of tiny-bert with ``body`` (target, candidates, tasks...)."""
    spec = tmp_path / "s.yaml"
    spec.write_text(
        "name: t\n"
        f"{body}"
        "encoder: {name: tiny-bert, max_length: 16}\n"
        "search: {max_steps: 2, batch_size: 4}\n"
        "budget: {trials: 1}\n",
        encoding="utf-8",
    )
    return spec


def spec_object(target: str, candidates: list[Any], **fields: Any) -> StudySpec:
    """Return a spec object (as the Python API builds one) of tiny-bert."""
    return spec_from_dict(
        {"name": "t", "target": target, "candidates": candidates,
         "encoder": {"name": "tiny-bert", "max_length": 16}, **fields}
    )  # fmt: skip


def test_a_missing_file_is_named_by_its_spec_field(tmp_path: Path) -> None:
    # Without the check, the reading of the head refused it as "cannot read ...: data file of
    # task 'my_ner' split 'dev' does not exist", naming the path twice and not the field.
    files = write_iob(tmp_path / "data", {"train": SENTENCES})
    missing = tmp_path / "data" / "dev.iob"
    spec = spec_file(
        tmp_path,
        "target: my_ner\ncandidates: [synth_related]\n"
        f"tasks: [{{name: my_ner, {IOB}, files: {{train: {files['train']}, dev: {missing}}}}}]\n",
    )
    with pytest.raises(SpecError) as info:
        load_study_spec(spec)
    assert str(info.value) == f"{spec}: tasks[0].files.dev: file not found: {missing}"


def test_a_missing_task_folder_is_named_by_its_spec_field(tmp_path: Path) -> None:
    gone = tmp_path / "gone"
    spec = spec_file(
        tmp_path,
        f"target: my_ner\ncandidates: [synth_related]\ntasks: [{{name: my_ner, {IOB}, path: {gone}}}]\n",
    )
    with pytest.raises(SpecError) as info:
        load_study_spec(spec)
    assert str(info.value) == f"{spec}: tasks[0].path: not found: {gone}"


def test_the_objective_split_is_read_when_it_is_no_eval_split(tmp_path: Path) -> None:
    # An empty objective split scored 0.0 in every trial, recorded as a complete baseline.
    files = write_iob(tmp_path / "data", {"train": SENTENCES, "dev": SENTENCES, "test": ""})
    listed = ", ".join(f"{split}: {path}" for split, path in files.items())
    spec = spec_file(
        tmp_path,
        "target: my_ner\ncandidates: [synth_related]\nobjective: {split: test}\n"
        f"tasks: [{{name: my_ner, {IOB}, files: {{{listed}}}}}]\n",
    )
    with pytest.raises(SpecError) as info:
        load_study_spec(spec)
    assert (
        str(info.value)
        == f"{spec}: tasks[0] (my_ner): split test ({files['test']}) has no examples"
    )


def test_a_split_of_one_example_is_accepted(tmp_path: Path) -> None:
    files = write_iob(tmp_path / "data", {"train": "The\tO\n\n", "dev": "cat\tB-ANIMAL\n"})
    spec = spec_file(
        tmp_path,
        "target: my_ner\ncandidates: [synth_related]\n"
        f"tasks: [{{name: my_ner, {IOB}, files: {{train: {files['train']}, dev: {files['dev']}}}}}]\n",
    )
    assert load_study_spec(spec).target == "my_ner"


@pytest.mark.parametrize(
    ("empty", "field"),
    [("my_aux", "candidates[1]"), ("my_ner", "tasks[0]"), ("my_pos", "tasks[1]")],
)
def test_each_inline_task_is_named_by_its_own_field(tmp_path: Path, empty: str, field: str) -> None:
    # Inline tasks come from `candidates` (first) and from `tasks`: each error names the entry
    # to fix, counted in its own list.
    def task(name: str) -> str:
        files = write_iob(
            tmp_path / name, {"train": SENTENCES, "dev": "" if name == empty else SENTENCES}
        )
        return f"{{name: {name}, {IOB}, files: {{train: {files['train']}, dev: {files['dev']}}}}}"

    spec = spec_file(
        tmp_path,
        f"target: my_ner\ncandidates: [synth_related, {task('my_aux')}, my_pos]\n"
        f"tasks: [{task('my_ner')}, {task('my_pos')}]\n",
    )
    with pytest.raises(SpecError) as info:
        load_study_spec(spec)
    dev = tmp_path / empty / "dev.iob"
    assert str(info.value) == f"{spec}: {field} ({empty}): split dev ({dev}) has no examples"


def test_a_runner_that_trains_nothing_gets_no_data_directory(tmp_path: Path) -> None:
    # `study validate --json` reports "data_dir": null when no task reads files.
    spec = spec_object("sst2", ["synth_related"])
    assert check_data(spec, data_dir=tmp_path, trains=False) is None


def test_a_missing_file_says_where_the_data_directory_came_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    expected = (
        f"spec: target: data file of task 'sst2' split 'train' does not exist: "
        f"{empty.resolve() / 'sst2' / 'train.tsv'} (data directory {empty.resolve()}, from "
    )
    with pytest.raises(DataNotFoundError) as info:
        check_data(spec_object("sst2", ["synth_related"], data_dir=str(empty)))
    assert str(info.value) == expected + "the spec's data_dir)"
    monkeypatch.setenv("TASKGRAPH_DATA", str(empty))
    with pytest.raises(DataNotFoundError) as info:
        check_data(spec_object("sst2", ["synth_related"]))
    assert str(info.value) == expected + "TASKGRAPH_DATA)"


def test_a_candidate_with_a_missing_file_is_named_by_its_position(tmp_path: Path) -> None:
    data = write_sst2_data(tmp_path / "data")
    with pytest.raises(DataNotFoundError) as info:
        check_data(spec_object("sst2", ["synth_related", "rte"]), data_dir=data)
    assert str(info.value).startswith(
        "spec: candidates[1]: data file of task 'rte' split 'train' does not exist: "
    )


def test_every_split_file_of_a_task_is_looked_for(tmp_path: Path) -> None:
    # A missing test.tsv was found only when the study fingerprinted the task.
    data = write_sst2_data(tmp_path / "data")
    (data / "sst2" / "test.tsv").unlink()
    with pytest.raises(DataNotFoundError) as info:
        check_data(spec_object("sst2", ["synth_related"]), data_dir=data)
    assert str(info.value).startswith(
        "spec: target: data file of task 'sst2' split 'test' does not exist: "
        f"{data.resolve() / 'sst2' / 'test.tsv'} "
    )


def test_a_home_or_relative_data_directory_is_resolved(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = write_sst2_data(tmp_path / "d")
    spec = spec_object("sst2", ["synth_related"])
    monkeypatch.setenv("HOME", str(tmp_path))
    assert check_data(spec, data_dir="~/d") == data.resolve()
    monkeypatch.chdir(tmp_path)
    # the study keeps it: trials run elsewhere (a Ray worker) read from it
    assert check_data(spec, data_dir="d") == data.resolve()


def test_each_of_the_first_examples_of_a_scored_split_needs_a_label(tmp_path: Path) -> None:
    # The last example read (not only the first) is checked.
    folder = tmp_path / "data" / "rte"
    folder.mkdir(parents=True)
    header = "sentence1\tsentence2\tlabel\tidx\n"
    rows = [f"a premise {i}\ta hypothesis {i}\t{i % 2}\t{i}\n" for i in range(INLINE_HEAD)]
    for split in ("train", "dev"):
        (folder / f"{split}.tsv").write_text(header + "".join(rows), encoding="utf-8")
    last = INLINE_HEAD - 1
    rows[last] = f"a premise\ta hypothesis\t-1\t{last}\n"  # GLUE's unlabeled value
    (folder / "test.tsv").write_text(header + "".join(rows), encoding="utf-8")
    spec = spec_object(
        "rte", ["synth_related"], training={"eval_splits": ["dev", "test_unlabeled"]}
    )
    with pytest.raises(SpecError) as info:
        check_data(spec, data_dir=tmp_path / "data")
    assert f"(example {last} of rte/test.tsv has no label)" in str(info.value)
