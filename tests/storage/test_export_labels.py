"""Exports label each score with its own task set and family, and JSON stays strict JSON."""

from __future__ import annotations

import csv
import json

import pyarrow.parquet as pq

from taskgraph.storage import open_repository
from taskgraph.trial import MixingConfig


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
