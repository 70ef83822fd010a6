"""What a run's write stores and what its records give back (each once let a mutation of
``taskgraph.storage.writes`` or ``taskgraph.storage.records`` pass)."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from taskgraph.errors import ConfigError
from taskgraph.storage import open_repository
from taskgraph.storage.records import RecordColumns, TaskSetRecords
from taskgraph.trial import TrialStatus


def test_a_later_run_does_not_change_the_studys_target(sqlite_url: str, make_trial: Any) -> None:
    with open_repository(sqlite_url) as repo:
        repo.ensure_study("s", target="ner")
        for number in (0, 1):
            config, result = make_trial("pos", ("ner",), seed=number)
            repo.add_run_result(study="s", trial_number=number, config=config, result=result)
        (summary,) = repo.studies()
    assert summary.target == "ner"
    assert (dict(summary.counts), summary.n_runs) == ({"complete": 2}, 2)


def test_a_studys_stored_spec_never_holds_the_storage_password(sqlite_url: str) -> None:
    storage = "postgresql://alice:s3cret@db.example:5432/records"
    with open_repository(sqlite_url) as repo:
        repo.ensure_study("s", spec={"storage": storage, "target": "ner"})
        specs = repo.study_specs()
    assert "s3cret" not in str(specs["s"])
    assert specs["s"]["target"] == "ner"


def test_a_study_direction_other_than_maximize_or_minimize_is_refused(sqlite_url: str) -> None:
    with open_repository(sqlite_url) as repo:
        with pytest.raises(ConfigError, match=r"'maximize' or 'minimize'.*'up'"):
            repo.ensure_study("s", direction="up")
        assert repo.studies() == []


def stored_tasks(url: str) -> list[tuple[str, str | None, str | None]]:
    """Return (name, type, fingerprint) of every task in ``tg_tasks``, by name."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text("select name, type, fingerprint from tg_tasks order by name")
            ).all()
    finally:
        engine.dispose()
    return [(str(name), kind, fingerprint) for name, kind, fingerprint in rows]


def test_tg_tasks_keeps_the_dataset_fingerprint_last_seen(sqlite_url: str, make_trial: Any) -> None:
    # docs/storage.md: tg_tasks holds the fingerprint of the dataset files last seen.
    with open_repository(sqlite_url) as repo:
        for seed, fingerprint in enumerate(["a" * 64, "b" * 64]):
            config, result = make_trial("ner", seed=seed)
            repo.add_run_result(
                study="s",
                trial_number=seed,
                config=config,
                result=result,
                task_fingerprints={"ner": fingerprint},
                task_types={"ner": "token_tagging"},
            )
        runs = repo.runs(study="s")
    assert stored_tasks(sqlite_url) == [("ner", "token_tagging", "b" * 64)]
    # Each run keeps the fingerprint of the data it trained on.
    assert [run.task_fingerprints for run in runs] == [{"ner": "a" * 64}, {"ner": "b" * 64}]


def test_skip_repeat_keeps_a_run_of_the_same_task_set_for_another_target(
    sqlite_url: str, make_trial: Any
) -> None:
    with open_repository(sqlite_url) as repo:
        ids = []
        for number, (target, auxiliaries) in enumerate([("ner", ("pos",)), ("pos", ("ner",))]):
            config, result = make_trial(target, auxiliaries, seed=0)
            ids.append(
                repo.add_run_result(
                    study="s", trial_number=number, config=config, result=result, skip_repeat=True
                )
            )
        runs = repo.runs(study="s")
    assert ids[0] != ids[1]
    assert [(run.trial_number, run.target) for run in runs] == [(0, "ner"), (1, "pos")]


def test_infinite_scores_objective_and_curve_points_are_stored_as_not_measured(
    sqlite_url: str, make_trial: Any
) -> None:
    config, result = make_trial("ner", ("pos",))
    result = replace(
        result,
        scores={"ner": {"dev": {"f1": math.inf, "loss": -math.inf}}, "pos": {"dev": {"f1": 0.4}}},
        objective=math.inf,
        intermediate=[(10, -math.inf), (20, 0.5)],
    )
    with open_repository(sqlite_url) as repo:
        repo.add_run_result(study="s", trial_number=0, config=config, result=result)
        (run,) = repo.runs(study="s")
    assert run.scores == {"ner": {"dev": {"f1": None, "loss": None}}, "pos": {"dev": {"f1": 0.4}}}
    assert run.objective is None
    assert [tuple(point) for point in run.intermediate] == [(20, 0.5)]
    # The outcome a search reads back leaves the unmeasured scores out.
    assert run.trial_result().scores == {"ner": {"dev": {}}, "pos": {"dev": {"f1": 0.4}}}


def _two_runs(url: str, make_trial: Any) -> None:
    """Write ner+pos (trial 3, seed 7) and ner alone (trial 4, seed 2) to study ``s``."""
    with open_repository(url) as repo:
        for number, auxiliaries, seed, value in [(3, ("pos",), 7, 0.6), (4, (), 2, 0.5)]:
            config, result = make_trial("ner", auxiliaries, seed=seed, value=value)
            repo.add_run_result(study="s", trial_number=number, config=config, result=result)


def test_score_records_carry_the_runs_seed_not_its_trial_number(
    sqlite_url: str, make_trial: Any
) -> None:
    _two_runs(sqlite_url, make_trial)
    with open_repository(sqlite_url) as repo:
        records = repo.score_records(target="ner", split="dev", metric="f1")
        groups = repo.records_containing("ner", split="dev", metric="f1")
    assert sorted((sorted(r.task_set), r.seed) for r in records) == [
        (["ner"], 2),
        (["ner", "pos"], 7),
    ]
    assert {key: group.seeds for key, group in groups.items()} == {"ner+pos": (7,), "ner": (2,)}


def test_records_of_each_task_set_are_only_its_own(sqlite_url: str, make_trial: Any) -> None:
    _two_runs(sqlite_url, make_trial)
    with open_repository(sqlite_url) as repo:
        groups = repo.records_containing("ner", include_auxiliaries=True)
    joint, alone = groups["ner+pos"], groups["ner"]
    # ner+pos: dev f1, dev loss, test f1 of each task; ner alone: its three.
    assert (len(joint), len(alone)) == (6, 3)
    assert len(list(joint)) == len(joint.values) == 6
    assert set(alone.tasks) == {"ner"} and set(alone.seeds) == {2}
    assert joint[0].seed == 7 and alone[len(alone) - 1].task == "ner"
    # Two groups of the same records are equal only when of the same task set.
    empty = RecordColumns((), (), (), (), (), (), (), ())
    assert TaskSetRecords("ner", empty, 0, 0) == TaskSetRecords("ner", empty, 0, 0)
    assert TaskSetRecords("ner", empty, 0, 0) != TaskSetRecords("ner+pos", empty, 0, 0)


def test_a_records_affinity_form_keeps_its_task_set_and_direction(
    sqlite_url: str, make_trial: Any
) -> None:
    _two_runs(sqlite_url, make_trial)
    with open_repository(sqlite_url) as repo:
        groups = repo.records_containing("ner", split="dev")
    by_metric = {r.metric: r for r in groups["ner+pos"].score_records()}
    # f1 is better higher, a loss lower.
    assert by_metric["f1"].higher_is_better and not by_metric["loss"].higher_is_better
    assert by_metric["f1"].task_set == frozenset({"ner", "pos"})
    record = next(iter(groups["ner+pos"]))
    assert record.score_record("ner+pos").task_set == frozenset({"ner", "pos"})
    assert record.score_record("ner+pos").seed == 7


def test_an_infinite_lookahead_entry_reads_back_as_not_measured(
    sqlite_url: str, make_trial: Any
) -> None:
    config, result = make_trial("ner", ("pos",), lookahead=True)
    assert result.lookahead is not None
    matrix = replace(result.lookahead, values=[[0.0, math.inf], [0.2, 0.0]])
    with open_repository(sqlite_url) as repo:
        repo.add_run_result(
            study="s", trial_number=0, config=config, result=replace(result, lookahead=matrix)
        )
        (stored,) = repo.lookahead_matrices(study="s")
    assert math.isnan(stored.matrix.values[0][1])
    assert [stored.matrix.values[0][0], *stored.matrix.values[1]] == [0.0, 0.2, 0.0]


def test_a_failed_runs_outcome_read_back_keeps_why_it_failed(
    sqlite_url: str, make_trial: Any
) -> None:
    config, result = make_trial("ner", status=TrialStatus.FAILED)
    with open_repository(sqlite_url) as repo:
        repo.add_run_result(study="s", trial_number=0, config=config, result=result)
        (run,) = repo.runs(study="s")
    outcome = run.trial_result()
    assert outcome.status is TrialStatus.FAILED
    assert outcome.failure_reason == "CUDA out of memory"
