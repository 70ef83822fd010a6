"""The records a study starts from: other studies' scores on one split, each task's primary
metric when no metric is named."""

from __future__ import annotations

from pathlib import Path

import pytest

from taskgraph.search.recording import RecordWriter
from taskgraph.storage import open_repository
from taskgraph.trial import Cost, TrialConfig, TrialResult, TrialStatus


def _result(scores: dict[str, dict[str, dict[str, float]]], objective: float) -> TrialResult:
    return TrialResult(
        status=TrialStatus.COMPLETE, scores=scores, objective=objective, cost=Cost(seconds=0.1)
    )


def test_records_of_tasks_the_catalog_does_not_know_are_kept_whole(tmp_path: Path) -> None:
    # A benchmark table's tasks (tbl_*) are not in the catalog and report one metric: with no
    # metric named they are kept; a catalog task (mrpc: primary f1) keeps its primary metric.
    url = f"sqlite:///{tmp_path / 'prior.db'}"
    table = TrialConfig(target="tbl_t", auxiliaries=("tbl_a",))
    table_scores = {"tbl_t": {"dev": {"acc": 0.7}}, "tbl_a": {"dev": {"acc": 0.6}}}
    glue = TrialConfig(target="mrpc")
    glue_scores = {"mrpc": {"dev": {"f1": 0.8, "accuracy": 0.85}, "test": {"f1": 0.75}}}
    with open_repository(url) as repo:
        repo.add_run_result(
            study="bench", trial_number=0, config=table, result=_result(table_scores, 0.7)
        )
        repo.add_run_result(
            study="glue", trial_number=0, config=glue, result=_result(glue_scores, 0.8)
        )
        own = {"tbl_t": {"dev": {"acc": 0.9}}}
        repo.add_run_result(
            study="new",
            trial_number=0,
            config=TrialConfig(target="tbl_t"),
            result=_result(own, 0.9),
        )
        writer = RecordWriter(repository=repo, study="new", task_defs={})
        prior = writer.prior_records(split="dev", metric=None)
        named = writer.prior_records(split="dev", metric="acc")
        # a metric named is kept for every task, a catalog task's other metrics too
        accuracy = writer.prior_records(split="dev", metric="accuracy")
    assert sorted((r.study, r.task, r.metric, r.value) for r in prior) == [
        ("bench", "tbl_a", "acc", pytest.approx(0.6)),
        ("bench", "tbl_t", "acc", pytest.approx(0.7)),
        ("glue", "mrpc", "f1", pytest.approx(0.8)),
    ]
    assert sorted((r.study, r.task) for r in named) == [("bench", "tbl_a"), ("bench", "tbl_t")]
    assert [(r.task, r.metric, r.value) for r in accuracy] == [
        ("mrpc", "accuracy", pytest.approx(0.85))
    ]
