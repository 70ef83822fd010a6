"""Records answered by a published table carry the table's data version, so gains never
compare a task's numbers from two tables, or from a table and trained runs.

Before, a tabular run recorded the spec's encoder as its model family and the catalog's (or
no) dataset fingerprint: two tables publishing other numbers for one target were read as one
family, and a baseline from one table was averaged with the other's.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import taskgraph
from taskgraph.app.affinity import load_records
from taskgraph.storage import open_repository

#: target a's val score per auxiliary set; table two publishes every number 0.1 higher
ROWS = {(): 0.5, ("b",): 0.55, ("c",): 0.47, ("b", "c"): 0.52}


def _table(path: Path, shift: float) -> Path:
    lines = ["target,task_set,split,value,higher_is_better"]
    for aux, value in ROWS.items():
        lines.append(f"a,{'+'.join(sorted({'a', *aux}))},val,{value + shift:.4f},1")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _study(name: str, table: Path, url: str) -> None:
    spec = taskgraph.load_study_spec(Path(__file__).parents[2] / "searchspaces/demo.yaml")
    spec = spec.model_copy(update={"name": name, "target": "a", "candidates": ("b", "c")})
    rows = [{"name": "+".join(aux), "auxiliaries": list(aux)} for aux in ROWS if aux]
    taskgraph.run_study(  # the baseline, then every set as a row
        spec,
        storage=url,
        budget__trials=4,
        rows=rows,
        runner={"name": "tabular", "table": str(table)},
    )


@pytest.fixture
def url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'records.db'}"
    _study("one", _table(tmp_path / "one.csv", 0.0), url)
    _study("two", _table(tmp_path / "two.csv", 0.1), url)
    return url


def test_two_tables_of_one_target_are_two_data_versions(url: str) -> None:
    with open_repository(url) as repo:
        fingerprints = {name: repo.study_fingerprints(name) for name in ("one", "two")}
    assert fingerprints["one"]["a"] != fingerprints["two"]["a"]
    records = [r for r in load_records(storage=url) if r.task == "a"]
    families = {r.family for r in records}
    assert len(families) == 2  # one per table, not both tables' scores in one family
    for family in families:
        baselines = [r.value for r in records if r.family == family and r.task_set == {"a"}]
        assert len(baselines) == 1  # each table's own baseline, never their mean


def test_the_measured_gain_is_the_mean_of_each_tables_own(url: str) -> None:
    # Both tables publish +0.05 for {a, b} over their own baseline (0.5 and 0.6): relative
    # gains of 0.1 and 0.0833, whose mean is 0.0917; the tables mixed into one family gave
    # 0.0909 (their mean score 0.60 against their mean baseline 0.55).
    top = taskgraph.recommend("a", storage=url, k=3)
    b = next(r for r in top if r.auxiliaries == ("b",))
    assert b.measured_gain == pytest.approx((0.05 / 0.5 + 0.05 / 0.6) / 2, abs=1e-9)


def test_a_catalog_task_answered_by_a_table_carries_the_tables_version(tmp_path: Path) -> None:
    # A table that scores a catalog task (synth_target) was not trained on its dataset: its
    # records must not share the catalog's fingerprint with the task's trained runs.
    from taskgraph.search.recording import RecordWriter

    with open_repository(f"sqlite:///{tmp_path / 'r.db'}") as repo:
        catalog = RecordWriter(repository=repo, study="s")
        table = RecordWriter(repository=repo, study="s", source_fingerprints={"synth_target": "t"})
        tasks = ("synth_related", "synth_target")
        trained, types = catalog.task_metadata(tasks)
        answered, table_types = table.task_metadata(tasks)
    assert set(trained) == set(tasks)
    assert answered == {"synth_target": "t"}  # and none for a task the table does not score
    assert table_types == types  # the task types still come from the catalog
