"""Checks of a spec's data before a study exists: its inline tasks' files and its data directory.

What can never train (an empty split the study reads, a folder given as a file, a file it may
not read) is one error line from ``study validate`` and from ``study run``, and no database.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from taskgraph.app.studies.specs import load_study_spec
from taskgraph.cli.app import app
from taskgraph.errors import ConfigError, SpecError, TaskgraphError
from taskgraph.spec.checks import check_data

runner = CliRunner()

SENTENCES = "The\tO\ncat\tB-ANIMAL\nsat\tO\n\n" * 3

SPEC = """\
name: t
target: my_ner
tasks: [{{name: my_ner, format: iob, type: token_tagging, label_field: ner, files: {files}}}]
candidates: [synth_related]
encoder: {{name: tiny-bert, max_length: 16}}
search: {{max_steps: 2, batch_size: 4}}
budget: {{trials: 1}}
"""


def write_spec(tmp_path: Path, files: dict[str, str], extra: str = "") -> Path:
    """Write ``data/<split>.iob`` for each split (its text) and a spec whose task reads them."""
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    for split, text in files.items():
        (data / f"{split}.iob").write_text(text, encoding="utf-8")
    listed = ", ".join(f"{split}: data/{split}.iob" for split in files)
    spec = tmp_path / "s.yaml"
    spec.write_text(SPEC.format(files="{" + listed + "}") + extra, encoding="utf-8")
    return spec


def spec_error(spec: Path) -> str:
    with pytest.raises(SpecError) as info:
        load_study_spec(spec)  # what `study validate` and `study run` check first
    return str(info.value)


def test_an_empty_objective_split_is_refused_by_validate_and_run(tmp_path: Path) -> None:
    # It was scored 0.0 and recorded as a complete baseline.
    spec = write_spec(tmp_path, {"train": SENTENCES, "dev": ""})
    says = f"{spec}: tasks[0] (my_ner): split dev ({tmp_path / 'data' / 'dev.iob'}) has no examples"
    result = runner.invoke(app, ["study", "validate", str(spec)])
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr == f"error: {says}\n"
    db = tmp_path / "e.db"
    result = runner.invoke(app, ["study", "run", str(spec), "--storage", f"sqlite:///{db}"])
    assert result.exit_code == 2 and result.stderr == f"error: {says}\n"
    assert not db.exists()


@pytest.mark.parametrize(
    "text", ["", "\n\n\n", "-DOCSTART-\tO\n\n"], ids=["empty", "blank-lines", "docstart-only"]
)
def test_a_training_split_without_examples_is_refused(tmp_path: Path, text: str) -> None:
    # Each trial failed with "task 'my_ner' has no training examples".
    spec = write_spec(tmp_path, {"train": text, "dev": SENTENCES})
    assert spec_error(spec).endswith(
        f"tasks[0] (my_ner): split train ({tmp_path / 'data' / 'train.iob'}) has no examples"
    )


def test_an_empty_squad_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "train.json").write_text('{"version": "v2.0", "data": []}', encoding="utf-8")
    spec = tmp_path / "s.yaml"
    spec.write_text(
        SPEC.replace("my_ner", "my_qa")
        .replace(
            "format: iob, type: token_tagging, label_field: ner",
            "format: squad, type: extractive_qa, label_field: answers",
        )
        .format(files="{train: train.json, dev: train.json}"),
        encoding="utf-8",
    )
    assert spec_error(spec).endswith(f"split train ({tmp_path / 'train.json'}) has no examples")


def test_only_the_splits_the_study_reads_must_have_examples(tmp_path: Path) -> None:
    files = {"train": SENTENCES, "dev": SENTENCES, "test": ""}
    assert load_study_spec(write_spec(tmp_path, files)).target == "my_ner"  # test: never read
    spec = write_spec(tmp_path, files, extra="training: {eval_splits: [dev, test]}\n")
    assert spec_error(spec).endswith(
        f"split test ({tmp_path / 'data' / 'test.iob'}) has no examples"
    )


def test_an_inline_task_without_a_train_split_is_refused(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, {"dev": SENTENCES})
    assert (
        spec_error(spec) == f"{spec}: tasks[0] (my_ner): no train split to train on (splits: dev)"
    )


def test_a_directory_given_as_a_file_says_so(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, {"train": SENTENCES, "dev": SENTENCES})
    (tmp_path / "data" / "dev.iob").unlink()
    (tmp_path / "data" / "dev.iob").mkdir()
    assert spec_error(spec) == (
        f"{spec}: tasks[0].files.dev: is a directory, not a file: {tmp_path / 'data' / 'dev.iob'}"
    )


def test_a_device_given_as_a_file_says_so(tmp_path: Path) -> None:
    # It said "file not found: /dev/zero".
    spec = write_spec(tmp_path, {"train": SENTENCES, "dev": SENTENCES})
    (tmp_path / "data" / "dev.iob").unlink()
    (tmp_path / "data" / "dev.iob").symlink_to("/dev/zero")
    assert spec_error(spec) == (
        f"{spec}: tasks[0].files.dev: not a regular file (a device, FIFO or socket): /dev/zero"
    )


def test_a_file_given_as_the_task_folder_says_so(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, {"train": SENTENCES})
    text = spec.read_text(encoding="utf-8").replace(
        "files: {train: data/train.iob}", "path: data/train.iob"
    )
    spec.write_text(text, encoding="utf-8")
    assert spec_error(spec) == (
        f"{spec}: tasks[0].path: is a file, not a directory: {tmp_path / 'data' / 'train.iob'}"
    )


def test_an_unreadable_data_file_is_refused_by_validate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = write_spec(tmp_path, {"train": SENTENCES, "dev": SENTENCES})
    locked = tmp_path / "data" / "dev.iob"
    # chmod 000 does not stop root (the usual CI user): refuse the read itself.
    real_open = Path.open

    def guarded_open(path: Path, *args: object, **kwargs: object) -> object:
        if path == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(Path, "open", guarded_open)
    says = f"{spec}: tasks[0] (task 'my_ner', split dev): cannot read {locked}: Permission denied"
    # The environment refused the read (README "Exit status"): exit 1, not a bad spec's 2.
    with pytest.raises(TaskgraphError) as info:
        load_study_spec(spec)
    assert not isinstance(info.value, SpecError) and info.value.exit_code == 1
    assert str(info.value) == says
    result = runner.invoke(app, ["study", "validate", str(spec)])
    assert (result.exit_code, result.stdout, result.stderr) == (1, "", f"error: {says}\n")
    db = tmp_path / "e.db"
    result = runner.invoke(app, ["study", "run", str(spec), "--storage", f"sqlite:///{db}"])
    assert (result.exit_code, result.stderr) == (1, f"error: {says}\n")
    assert not db.exists()


def test_a_data_file_that_turned_into_a_directory_is_still_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What the spec names is wrong (a folder where a file was expected): the user's, exit 2.
    spec = write_spec(tmp_path, {"train": SENTENCES, "dev": SENTENCES})
    folder = tmp_path / "data" / "dev.iob"
    real_open = Path.open

    def guarded_open(path: Path, *args: object, **kwargs: object) -> object:
        if path == folder:
            raise IsADirectoryError(21, "Is a directory", str(path))
        return real_open(path, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(Path, "open", guarded_open)
    result = runner.invoke(app, ["study", "validate", str(spec)])
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == (
        f"error: {spec}: tasks[0] (task 'my_ner', split dev): cannot read {folder}: "
        "Is a directory\n"
    )


def test_a_data_directory_that_is_a_file_says_so(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, {"train": SENTENCES, "dev": SENTENCES})
    not_a_folder = tmp_path / "data" / "train.iob"
    with pytest.raises(ConfigError) as option:
        check_data(load_study_spec(spec), data_dir=not_a_folder, source=str(spec))
    # named as run_study's keyword (`study run --data` on the command line)
    assert str(option.value) == f"data: data directory is a file, not a directory: {not_a_folder}"
    checked = load_study_spec(spec, {"data_dir": str(not_a_folder)})
    with pytest.raises(SpecError) as field:
        check_data(checked, source=str(spec))
    assert str(field.value) == (
        f"{spec}: data_dir: data directory is a file, not a directory: {not_a_folder}"
    )
    # The Python API's `data=""` (the command line refuses it while parsing) read the working
    # directory.
    with pytest.raises(ConfigError, match=r"^data: is empty: give the data directory$"):
        check_data(load_study_spec(spec), data_dir="", source=str(spec))


def test_a_spec_objects_relative_files_are_the_data_directorys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `define_task` reads a relative path from the data directory; the checks looked for it
    # in the working directory (and read it from the default data directory).
    from taskgraph.search.checks import check_spec
    from taskgraph.spec import spec_from_dict

    data = tmp_path / "my_data"
    (data / "mine").mkdir(parents=True)
    (data / "mine" / "train.iob").write_text(SENTENCES, encoding="utf-8")
    (data / "mine" / "dev.iob").write_text(SENTENCES, encoding="utf-8")
    monkeypatch.chdir(tmp_path)  # no mine/ here
    task = {"name": "my_ner", "format": "iob", "type": "token_tagging", "label_field": "ner"}
    task["files"] = {"train": "mine/train.iob", "dev": "mine/dev.iob"}
    spec = spec_from_dict(
        {"name": "t", "target": "my_ner", "tasks": [task], "candidates": ["synth_related"],
         "encoder": {"name": "tiny-bert", "max_length": 16}}
    )  # fmt: skip
    check_spec(spec)
    assert check_data(spec, data_dir=data) == data.resolve()
    (data / "mine" / "dev.iob").write_text("", encoding="utf-8")
    check_spec(spec)  # relative files are read where the data directory is known
    with pytest.raises(
        SpecError, match=r"tasks\[0\] \(my_ner\): split dev \(mine/dev.iob\) has no"
    ):
        check_data(spec, data_dir=data)
