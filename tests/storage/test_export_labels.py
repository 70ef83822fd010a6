"""Exports label each score with its own task set and family, and JSON stays strict JSON."""

from __future__ import annotations

import csv
import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from taskgraph.storage import open_repository
from taskgraph.storage.export import FLAT_COLUMNS
from taskgraph.testing import complete_result
from taskgraph.trial import MixingConfig, TrialConfig


def _stored(repo):
    """Return (run, task) -> (task set key, family) as the affinity code reads the scores."""
    return {
        (r.run_id, r.task): ("+".join(sorted(r.task_set)), r.family)
        for r in repo.score_records(status=None)
    }


def _write(url, make_trial):
    with open_repository(url) as repo:
        capped, result = make_trial(
            "ner", ("pos",), seed=0, mixing=MixingConfig(max_examples={"pos": 100})
        )
        repo.add_run_result(study="s", trial_number=0, config=capped, result=result)
        sequential, result = make_trial("ner", ("chunk",), seed=1, transfer_mode="sequential")
        repo.add_run_result(study="s", trial_number=1, config=sequential, result=result)
        stored = _stored(repo)
    # The cases the fix is about: a capped auxiliary's family and a sequential source's task
    # set differ from their run's.
    assert stored[(1, "pos")][1] != stored[(1, "ner")][1]
    assert stored[(2, "chunk")][0] == "chunk" != stored[(2, "ner")][0]
    return stored


def _labels(rows):
    return {(int(row["run_id"]), row["task"]): (row["task_set"], row["family"]) for row in rows}


def test_csv_and_parquet_rows_carry_each_scores_own_task_set_and_family(
    storage_url, make_trial, tmp_path
):
    stored = _write(storage_url, make_trial)
    with open_repository(storage_url) as repo:
        repo.export(tmp_path / "r.csv", format="csv")
        repo.export(tmp_path / "r.parquet", format="parquet")
        runs = {run.id: run for run in repo.runs()}
    with open(tmp_path / "r.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert _labels(rows) == stored
    assert _labels(pq.read_table(tmp_path / "r.parquet").to_pylist()) == stored
    for row in rows:  # the run's own labels stay beside the score's
        run = runs[int(row["run_id"])]
        assert (row["run_task_set"], row["run_family"]) == (run.task_set_key, run.family)


def test_json_lists_each_scored_tasks_task_set_and_family(storage_url, make_trial, tmp_path):
    stored = _write(storage_url, make_trial)
    with open_repository(storage_url) as repo:
        repo.export(tmp_path / "r.json", format="json")
    objects = json.loads((tmp_path / "r.json").read_text())
    found = {
        (run["id"], task): (label["task_set"], label["family"])
        for run in objects
        for task, label in run["measured_in"].items()
    }
    assert found == stored


def test_parquet_times_are_timezone_aware_timestamps(tmp_path):
    # the docs call Parquet typed; the times were ISO strings
    url = f"sqlite:///{tmp_path / 'r.db'}"
    started = datetime(2024, 5, 1, 12, 0, 0, 700000, tzinfo=timezone.utc)
    config = TrialConfig(target="ner", seed=0)
    with open_repository(url) as repo:
        repo.add_run_result(
            study="s",
            trial_number=0,
            config=config,
            result=complete_result(config),
            started_at=started,
            finished_at=started + timedelta(seconds=0.6),
        )
        repo.add_run_result(
            study="s", trial_number=1, config=config, result=complete_result(config)
        )
        repo.export(tmp_path / "r.parquet", format="parquet")
    table = pq.read_table(tmp_path / "r.parquet")
    for name in ("started_at", "finished_at"):
        assert table.schema.field(name).type == pa.timestamp("us", tz="UTC")
    frame = table.to_pandas()
    assert str(frame["finished_at"].dtype) == "datetime64[us, UTC]"
    rows = table.to_pylist()
    assert {(row["started_at"], row["finished_at"]) for row in rows} == {
        (started, started + timedelta(seconds=0.6)),
        (None, None),
    }


def test_the_docs_list_the_flat_columns_as_written():
    # docs/storage.md said `cost_*, device`, leaving out the step counts
    docs = (Path(__file__).parents[2] / "docs" / "storage.md").read_text()
    listed = re.search(r"run's columns \(`([^`]*)`", docs)
    assert listed is not None
    assert tuple(listed.group(1).split(", ")) == FLAT_COLUMNS
