"""What a second write of a study or a task keeps (each once let a mutation of its code pass):
a study's first stored spec, and a task's type and dataset fingerprint when a later run
records neither."""

from __future__ import annotations

from taskgraph.storage import open_repository
from tests.storage.test_writes_records_survivors import stored_tasks


def test_a_second_spec_does_not_replace_the_first(sqlite_url: str) -> None:
    with open_repository(sqlite_url) as repo:
        repo.ensure_study("s", spec={"v": 1})
        repo.ensure_study("s", spec={"v": 2})
        specs = repo.study_specs()
    assert specs["s"] == {"v": 1}


def test_a_run_without_fingerprints_keeps_the_tasks_stored_ones(
    sqlite_url: str, make_trial
) -> None:
    prints = {"ner": "a" * 64, "pos": "p" * 64}
    types = {"ner": "token_tagging", "pos": "token_tagging"}
    with open_repository(sqlite_url) as repo:
        # The first run records the tasks' fingerprints and types, the second neither.
        for seed, (fingerprints, task_types) in enumerate([(prints, types), ({}, {})]):
            config, result = make_trial("ner", ("pos",), seed=seed)
            repo.add_run_result(
                study="s",
                trial_number=seed,
                config=config,
                result=result,
                task_fingerprints=fingerprints,
                task_types=task_types,
            )
    assert stored_tasks(sqlite_url) == [
        ("ner", "token_tagging", "a" * 64),
        ("pos", "token_tagging", "p" * 64),
    ]
