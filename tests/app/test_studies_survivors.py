"""Behaviours of :mod:`taskgraph.app.studies` that a mutation audit showed no test pinned.

Each test names what it pins: the label a bad resumed runner is blamed on, a relative table
read from the spec file's folder, a runner switch and its table blamed together, the label of
an invocation's wall time, the spec's own storage, and which splits of an inline task are read.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import taskgraph
from taskgraph.app.studies.running import _read_inline_data, invocation_wall_time, resumable_spec
from taskgraph.app.studies.specs import load_study_spec
from taskgraph.errors import DataFormatError, SpecError
from taskgraph.spec import StudySpec, load_spec
from taskgraph.spec.checks import inline_task_defs
from tests.app import test_python_api
from tests.app.test_inline_data_full_read import SPEC as INLINE_SPEC

# The finished tabular study `api` (target a, candidates b and c) of test_python_api.
studied = test_python_api.studied
table = test_python_api.table

DEMO = Path(__file__).resolve().parents[2] / "searchspaces" / "demo.yaml"


def test_a_resumed_runner_nobody_labelled_is_blamed_on_the_runner_keyword(studied: str) -> None:
    with pytest.raises(SpecError) as caught:
        resumable_spec("api", storage_url=studied, runner="no_such_runner")
    assert str(caught.value).startswith("runner: "), caught.value


def test_a_relative_table_is_read_from_the_spec_files_folder(
    tabular_demo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tabular_demo.parent / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "tab.csv").write_text("not the table\n")
    monkeypatch.chdir(elsewhere)
    spec = load_study_spec(tabular_demo, {"runner": {"name": "tabular", "table": "tab.csv"}})
    assert spec.runner.table == str(tabular_demo.parent / "tab.csv")


def test_an_invocation_wall_time_error_names_its_label() -> None:
    spec = load_study_spec(DEMO)
    with pytest.raises(SpecError) as caught:
        invocation_wall_time(spec, "soon", source="spec", label="--wall-time")
    assert str(caught.value).startswith("--wall-time: "), caught.value
    assert invocation_wall_time(spec, "10m", source="spec") == 600


def _inline_spec(root: Path, *, objective_split: str) -> StudySpec:
    """The inline-task spec of ``test_inline_data_full_read`` whose ``my_x`` has a malformed
    line in its ``test`` split only; the objective is read on ``objective_split``."""
    data = root / "my_x"
    data.mkdir()
    for split in ("train", "dev", "test"):
        lines = ["sentence\tlabel", *(f"sentence {i}\tpos" for i in range(6))]
        if split == "test":
            lines.append("only one field here")
        (data / f"{split}.tsv").write_text("\n".join(lines) + "\n")
    path = root / "spec.yaml"
    text = INLINE_SPEC.format(data=data) + f"objective: {{split: {objective_split}}}\n"
    path.write_text(text)
    return load_spec(path)


def test_the_objectives_split_of_an_inline_task_is_read_in_full(tmp_path: Path) -> None:
    spec = _inline_spec(tmp_path, objective_split="test")
    with pytest.raises(DataFormatError, match=r"task 'my_x' \(split test\)"):
        _read_inline_data(spec, inline_task_defs(spec), source="spec")


def test_a_split_the_study_never_reads_is_not_read(tmp_path: Path) -> None:
    spec = _inline_spec(tmp_path, objective_split="dev")
    _read_inline_data(spec, inline_task_defs(spec), source="spec")  # `test` is not read


def test_a_runner_switch_and_its_table_are_blamed_together(tabular_demo: Path) -> None:
    # The error (the target has no rows in the table) is neither option's field: both named.
    other = tabular_demo.parent / "other.csv"
    other.write_text("target,task_set,split,value,higher_is_better\nzz,zz,val,0.5,1\n")
    labels = {"runner.name": "--runner", "runner.table": "--set runner.table"}
    with pytest.raises(SpecError) as caught:
        load_study_spec(
            tabular_demo, {"runner.name": "tabular", "runner.table": str(other)}, labels=labels
        )
    assert str(caught.value).startswith("--runner, --set runner.table: target: "), caught.value


def test_run_study_writes_to_the_specs_own_storage(
    table: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TASKGRAPH_STORAGE", raising=False)
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'own.db'}"
    spec = load_study_spec(DEMO).model_copy(
        update={"name": "own", "target": "a", "candidates": ("b", "c"), "storage": url}
    )
    taskgraph.run_study(spec, budget__trials=1, runner={"name": "tabular", "table": str(table)})
    assert [study["name"] for study in taskgraph.list_studies(storage=url)] == ["own"]
    assert not (tmp_path / "taskgraph.db").exists()


def test_a_spec_objects_runner_of_another_type_is_refused_as_a_files_is(tmp_path: Path) -> None:
    # A spec file's `runner=5` was refused by name; a spec object's crashed with TypeError.
    spec = taskgraph.load_study_spec("searchspaces/demo.yaml")
    url = f"sqlite:///{tmp_path / 'x.db'}"
    with pytest.raises(
        SpecError, match=r"^spec: runner: must be a runner name or a mapping, got int$"
    ):
        taskgraph.run_study(spec, storage=url, runner=5)
    with pytest.raises(SpecError, match=r"runner: must be a runner name or a mapping, got int$"):
        taskgraph.run_study("searchspaces/demo.yaml", storage=url, runner=5)
    assert not (tmp_path / "x.db").exists()  # nothing written
