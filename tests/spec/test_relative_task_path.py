"""A relative ``path`` of a spec object's inline task is listed where the rest of the study's
data is read, or refused; it was listed in the default folder whatever data directory the
study was given (``data_dir``, ``--data``), so the files of another folder could be trained on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from taskgraph.errors import SpecError
from taskgraph.search.checks import check_spec
from taskgraph.spec import StudySpec, spec_from_dict
from taskgraph.spec.checks import check_data, inline_task_defs

IOB = "The\tO\ncat\tB-ANIMAL\nsat\tO\n\n" * 3


def write_task(root: Path, folder: str = "mine") -> Path:
    """Write ``root/folder/{train,dev}.iob`` and return ``root``."""
    (root / folder).mkdir(parents=True)
    for split in ("train", "dev"):
        (root / folder / f"{split}.iob").write_text(IOB, encoding="utf-8")
    return root


def spec(path: str, **fields: Any) -> StudySpec:
    task = {"name": "my_ner", "format": "iob", "type": "token_tagging", "label_field": "ner"}
    return spec_from_dict(
        {"name": "t", "target": "my_ner", "tasks": [{**task, "path": path}],
         "candidates": ["synth_related"], "encoder": {"name": "tiny-bert", "max_length": 16},
         **fields}
    )  # fmt: skip


@pytest.mark.parametrize("path", ["mine", "mine/{split}.iob"])
def test_a_relative_path_is_listed_in_the_specs_data_dir(tmp_path: Path, path: str) -> None:
    root = write_task(tmp_path / "my_data")
    study = spec(path, data_dir=str(root))
    check_spec(study)
    assert check_data(study) == root.resolve()
    task = inline_task_defs(study)["my_ner"]
    assert {split: Path(source.file) for split, source in task.splits.items()} == {
        "train": root / "mine" / "train.iob",
        "dev": root / "mine" / "dev.iob",
    }


def test_a_relative_path_with_another_data_option_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The same folder under TASKGRAPH_DATA (where the path is listed) and under --data: the
    # task's files would have come from TASKGRAPH_DATA's, the catalog's from --data.
    listed = write_task(tmp_path / "env_data")
    given = write_task(tmp_path / "given")
    monkeypatch.setenv("TASKGRAPH_DATA", str(listed))
    study = spec("mine")
    with pytest.raises(SpecError) as caught:
        check_data(study, data_dir=given)
    assert str(caught.value) == (
        f"spec: tasks[0].path: 'mine' is relative, and its split files are listed in "
        f"{listed.resolve()}, not in the `data` directory {given.resolve()}; give the spec's "
        "`data_dir` instead, an absolute `path`, or `files` (relative files are read from the "
        "`data` directory)"
    )
    # The folder it is listed in, given as --data too, is no conflict.
    assert check_data(study, data_dir=listed) == listed.resolve()


def test_a_relative_path_that_is_not_there_says_where_it_was_looked_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TASKGRAPH_DATA", str(tmp_path))
    with pytest.raises(SpecError) as caught:
        check_spec(spec("mine"))
    assert str(caught.value) == (
        f"spec: tasks[0]: `path` 'mine': directory does not exist: {tmp_path / 'mine'} "
        "(a relative `path` is listed in the spec's data_dir, else TASKGRAPH_DATA, else the "
        "default folder)"
    )


def test_an_absolute_path_needs_no_data_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = write_task(tmp_path / "d")
    monkeypatch.setenv("TASKGRAPH_DATA", str(tmp_path / "no_such_folder"))
    task = inline_task_defs(spec(str(root / "mine")))["my_ner"]
    assert Path(task.splits["train"].file) == root / "mine" / "train.iob"


def test_a_relative_path_without_any_folder_to_list_it_in_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No spec data_dir, no TASKGRAPH_DATA, no default folder: the advice was "pass data_dir or
    # set TASKGRAPH_DATA", and a --data given already could not help.
    import taskgraph.tasks.datadir

    monkeypatch.delenv("TASKGRAPH_DATA", raising=False)
    monkeypatch.setattr(taskgraph.tasks.datadir, "_default_candidates", lambda: [tmp_path / "no"])
    given = write_task(tmp_path / "given")
    unlisted = (
        "'mine' is relative, and no folder is there to list its split files in (no spec "
        "`data_dir`, no TASKGRAPH_DATA, no ../shared/data): give the spec's `data_dir`, an "
        "absolute `path`, or `files`"
    )
    with pytest.raises(SpecError) as caught:
        check_data(spec("mine"), data_dir=given)
    assert str(caught.value) == f"spec: tasks[0].path: {unlisted}"
    with pytest.raises(SpecError) as caught:
        check_spec(spec("mine"))
    assert str(caught.value) == f"spec: tasks[0].path: {unlisted}"
