"""Backend contract suite: every test runs against SQLite and PostgreSQL (``storage_url``)."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from taskgraph.errors import ConfigError, StorageError
from taskgraph.storage import open_repository
from taskgraph.trial import MixingConfig, TrialResult, TrialStatus


def test_run_round_trips_config_result_and_provenance(storage_url, make_trial):
    config, result = make_trial("ner", ("pos", "chunk"), seed=3, lookahead=True)
    started = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
    with open_repository(storage_url) as repo:
        run_id = repo.add_run_result(
            study="s1",
            trial_number=7,
            config=config,
            result=result,
            started_at=started,
            finished_at=started + timedelta(minutes=5),
            task_fingerprints={"ner": "sha256:aa", "pos": "sha256:bb"},
            task_types={"ner": "token_tagging"},
            host="node-1",
            code_version="0.1.0+abc",
        )
        run = repo.run(run_id)
    assert run.study == "s1" and run.trial_number == 7 and run.seed == 3
    assert run.task_set == ("chunk", "ner", "pos") and run.task_set_key == "chunk+ner+pos"
    assert run.trial_config() == config
    assert run.model_config_hash == config.model_config_hash()
    assert run.family == config.family_key()
    assert run.trial_result().scores == result.scores
    assert run.trial_result().lookahead == result.lookahead
    assert run.intermediate == result.intermediate
    assert (run.cost_seconds, run.cost_examples, run.cost_tokens, run.device) == (
        12.5,
        1000,
        64000,
        "cuda:0",
    )
    # Both step counts (revision 0004): the target's own steps and every optimizer step.
    assert (run.target_steps, run.total_steps) == (40, 75)
    assert run.trial_result().cost.target_steps == 40
    assert run.started_at == started and run.finished_at == started + timedelta(minutes=5)
    assert run.task_fingerprints == {"ner": "sha256:aa", "pos": "sha256:bb"}
    assert (run.host, run.code_version) == ("node-1", "0.1.0+abc")


def test_retried_write_returns_the_same_run_and_never_duplicates(storage_url, make_trial):
    config, result = make_trial("ner", ("pos",))
    with open_repository(storage_url) as repo:
        first = repo.add_run_result(study="s", trial_number=0, config=config, result=result)
        second = repo.add_run_result(study="s", trial_number=0, config=config, result=result)
        other_seed = repo.add_run_result(
            study="s", trial_number=0, config=config.with_seed(1), result=result
        )
        assert first == second != other_seed
        assert len(repo.runs()) == 2
        assert len(repo.score_records(status=None)) == 2 * 2 * 3  # runs x tasks x scores
        assert repo.trial_numbers("s") == {0}


def test_filters_select_by_study_target_task_set_status_and_model(storage_url, make_trial):
    with open_repository(storage_url) as repo:
        cfg, res = make_trial("ner", ("pos",))
        a = repo.add_run_result(study="a", trial_number=0, config=cfg, result=res)
        soft, res = make_trial("pos", ("chunk",), sharing="soft")
        b = repo.add_run_result(study="a", trial_number=1, config=soft, result=res)
        cfg, res = make_trial("ner", status=TrialStatus.FAILED)
        c = repo.add_run_result(study="b", trial_number=0, config=cfg, result=res)
        ids = lambda runs: [r.id for r in runs]  # noqa: E731
        assert ids(repo.runs(study="a")) == [a, b]
        assert ids(repo.runs(target="ner")) == [a, c]
        assert ids(repo.runs(task_set="pos+ner")) == [a]
        assert ids(repo.runs(task_set=["ner", "pos"])) == [a]
        assert ids(repo.runs(contains="pos")) == [a, b]
        assert ids(repo.runs(status="failed")) == [c]
        assert ids(repo.runs(model_config=soft.model_config_hash()[:8])) == [b]
        assert ids(repo.runs(model_config=cfg.model_config_hash())) == [a, c]  # same M
        assert ids(repo.runs(limit=2, newest_first=True)) == [c, b]
        with pytest.raises(ConfigError, match="known studies: a, b"):
            repo.runs(study="nobody")


def test_score_records_of_a_target_come_from_every_task_set_that_contains_it(
    storage_url, make_trial
):
    with open_repository(storage_url) as repo:
        for number, aux in enumerate([(), ("pos",), ("pos", "chunk"), ("chunk",)]):
            config, result = make_trial("ner", aux, value=0.5 + 0.1 * number)
            repo.add_run_result(study="s", trial_number=number, config=config, result=result)
        config, result = make_trial("pos", ("chunk",))
        repo.add_run_result(study="s", trial_number=9, config=config, result=result)
        records = repo.score_records(target="ner", split="dev", metric="f1")
        assert {r.task for r in records} == {"ner"}
        assert sorted("+".join(sorted(r.task_set)) for r in records) == [
            "chunk+ner",
            "chunk+ner+pos",
            "ner",
            "ner+pos",
        ]
        assert all(r.higher_is_better and r.study == "s" for r in records)
        losses = repo.score_records(target="ner", metric="loss")
        assert losses and not any(r.higher_is_better for r in losses)
        grouped = repo.records_containing("ner", split="dev", metric="f1")
        assert set(grouped) == {"ner", "ner+pos", "chunk+ner+pos", "chunk+ner"}
        assert [r.value for r in grouped["ner"]] == [pytest.approx(0.5)]
        as_score_records = sorted(
            (r.score_record(key) for key, rows in grouped.items() for r in rows),
            key=lambda r: r.run_id or 0,
        )
        # The hot query's records carry no settings (ScoreRecord.settings: read by the
        # affinity commands through score_records); otherwise the two are the same records.
        assert all(r.settings for r in records)
        assert as_score_records == [replace(r, settings=()) for r in records]
        every_metric = repo.records_containing("ner")
        assert sorted((r.split, r.metric) for r in every_metric["ner+pos"]) == [
            ("dev", "f1"),
            ("dev", "loss"),
            ("test", "f1"),
        ]
        with_aux = repo.records_containing(
            "pos", split="dev", metric="f1", include_auxiliaries=True
        )
        assert {r.task for r in with_aux["chunk+ner+pos"]} == {"chunk", "ner", "pos"}
        assert set(with_aux) == {"ner+pos", "chunk+ner+pos", "chunk+pos"}
        assert [r.task_set for r in repo.baselines(target="ner")] == [("ner",)]


def test_family_of_an_auxiliary_score_matches_its_single_task_baseline(storage_url, make_trial):
    mixing = MixingConfig(max_examples={"pos": 100})
    joint, joint_result = make_trial("ner", ("pos",), mixing=mixing)
    baseline, baseline_result = make_trial("pos", mixing=mixing)
    with open_repository(storage_url) as repo:
        repo.add_run_result(study="s", trial_number=0, config=joint, result=joint_result)
        repo.add_run_result(study="s", trial_number=1, config=baseline, result=baseline_result)
        records = repo.score_records(target="pos", split="dev", metric="f1")
    assert {r.family for r in records} == {baseline.family_key()}
    assert joint.family_key() != baseline.family_key()  # the target's own cap differs


@pytest.mark.parametrize(
    ("source_tasks", "source_set"),
    [(None, {"chunk", "pos"}), (["pos"], {"pos"})],
)
def test_a_sequential_runs_sources_are_recorded_with_the_source_phases_task_set(
    storage_url, make_trial, source_tasks, source_set
):
    """The sources are scored when their phase ends, trained without the target (and without
    the auxiliaries that join the target phase): a record of the full set would credit the
    target with a gain it never gave."""
    hyper = {} if source_tasks is None else {"source_tasks": source_tasks}
    config, result = make_trial(
        "ner", ("pos", "chunk"), transfer_mode="sequential", hyperparameters=hyper
    )
    with open_repository(storage_url) as repo:
        repo.add_run_result(study="s", trial_number=0, config=config, result=result)
        records = repo.score_records(split="dev", metric="f1")
        run = repo.runs(study="s")[0]
    measured_in = {r.task: r.task_set for r in records}
    for task in ("ner", "pos", "chunk"):
        expected = source_set if task in source_set else {"ner", "pos", "chunk"}
        assert measured_in[task] == expected, task
    pos = next(r for r in records if r.task == "pos")
    alone = [t for t in sorted(source_set) if t != "pos"]
    assert pos.family == make_trial("pos", tuple(alone))[0].family_key()
    assert run.task_set == ("chunk", "ner", "pos")  # the run itself trained all three


def test_failed_and_non_finite_results_are_kept_but_not_scored(storage_url, make_trial):
    config, _ = make_trial("ner", ("pos",))
    failed = TrialResult.failed("NaN loss at step 40")
    nan_result = TrialResult(
        status=TrialStatus.COMPLETE,
        scores={"ner": {"dev": {"f1": math.nan}}, "pos": {"dev": {"f1": 0.7}}},
        objective=math.nan,
    )
    with open_repository(storage_url) as repo:
        failed_id = repo.add_run_result(study="s", trial_number=0, config=config, result=failed)
        nan_id = repo.add_run_result(study="s", trial_number=1, config=config, result=nan_result)
        run = repo.run(failed_id)
        assert run.status == "failed" and run.failure_reason == "NaN loss at step 40"
        assert run.trial_result().status is TrialStatus.FAILED and run.scores == {}
        assert repo.run(nan_id).scores["ner"]["dev"]["f1"] is None
        assert repo.run(nan_id).objective is None
        assert [(r.task, r.value) for r in repo.score_records(status=None)] == [("pos", 0.7)]
        summary = {s.name: dict(s.counts) for s in repo.studies()}
        assert summary == {"s": {"failed": 1, "complete": 1}}


def test_scores_outside_the_task_set_are_rejected_and_nothing_is_written(storage_url, make_trial):
    config, _ = make_trial("ner", ("pos",))
    bad = TrialResult(status=TrialStatus.COMPLETE, scores={"squad": {"dev": {"f1": 0.1}}})
    with open_repository(storage_url) as repo:
        with pytest.raises(ConfigError, match=r"\['squad'\] are not in its task set 'ner\+pos'"):
            repo.add_run_result(study="new-study", trial_number=0, config=config, result=bad)
        assert repo.studies() == [] and repo.runs() == []


def test_study_direction_conflict_and_spec(storage_url):
    with open_repository(storage_url) as repo:
        first = repo.ensure_study("s", spec={"name": "s", "tasks": ["ner"]}, target="ner")
        assert repo.ensure_study("s") == first
        with pytest.raises(ConfigError, match="direction 'maximize', but got 'minimize'"):
            repo.ensure_study("s", direction="minimize")
        [study] = repo.studies()
        assert (study.name, study.target, study.n_runs) == ("s", "ner", 0)
        with pytest.raises(ConfigError, match="`spec` must be plain JSON data"):
            repo.ensure_study("t", spec={"path": object()})
        assert [s.name for s in repo.studies()] == ["s"]


def test_missing_run_is_a_storage_error_naming_the_id(storage_url):
    with (
        open_repository(storage_url) as repo,
        pytest.raises(StorageError, match="no run with id 42"),
    ):
        repo.run(42)


def test_lookahead_matrices_and_affinity_edges(storage_url, make_trial):
    config, result = make_trial("ner", ("pos",), lookahead=True)
    with open_repository(storage_url) as repo:
        run_id = repo.add_run_result(study="s", trial_number=0, config=config, result=result)
        [stored] = repo.lookahead_matrices(study="s")
        assert stored.run_id == run_id and stored.matrix == result.lookahead
        assert repo.lookahead_matrices(study="other") == []
        repo.save_affinity_edges([{"source": "pos", "target": "ner", "gain": 0.5}], method="gain")
        repo.save_affinity_edges(
            [
                {
                    "source": "pos",
                    "target": "ner",
                    "gain": 0.02,
                    "std": 0.01,
                    "n_evidence": 4,
                    "p": 0.03,
                }
            ],
            method="gain",
        )
        repo.save_affinity_edges(
            [{"source": "ner", "target": "pos", "gain": -0.1}], method="lookahead"
        )
        edges = repo.affinity_edges(method="gain")
        assert [(e.gain, e.std, e.n_evidence, dict(e.details)) for e in edges] == [
            (0.02, 0.01, 4, {"p": 0.03})
        ]
        assert {e.method for e in repo.affinity_edges()} == {"gain", "lookahead"}
        with pytest.raises(StorageError, match="lacks"):
            repo.save_affinity_edges([{"source": "a"}], method="gain")


def test_reads_that_fail_are_masked_storage_errors(storage_url, make_trial):
    config, result = make_trial("ner")
    with open_repository(storage_url) as repo:
        repo.add_run_result(study="s", trial_number=0, config=config, result=result)
        with repo.engine.begin() as connection:  # the database loses a table under us
            connection.exec_driver_sql("DROP TABLE tg_lookahead_matrices")
            connection.exec_driver_sql("DROP TABLE tg_scores")
        for read in (
            lambda: repo.records_containing("ner", split="dev", metric="f1"),
            lambda: repo.score_records(),
            lambda: repo.runs(),
        ):
            # Which missing table a read meets first is SQLAlchemy's loading order (a run's
            # scores and lookahead matrix are both loaded after the runs): it varied between
            # suite runs, so either dropped table may be named.
            with pytest.raises(StorageError, match=r"tg_scores|tg_lookahead_matrices"):
                read()


def test_skip_repeat_keeps_one_record_of_a_configuration_and_seed(storage_url, make_trial):
    config, result = make_trial("ner", ("pos",))
    other_seed, other_result = make_trial("ner", ("pos",), seed=1)
    failed_config, failed = make_trial("ner", ("pos",), status=TrialStatus.FAILED)
    with open_repository(storage_url) as repo:
        first = repo.add_run_result(study="s", trial_number=0, config=config, result=result)
        again = repo.add_run_result(
            study="s", trial_number=3, config=config, result=result, skip_repeat=True
        )
        seed_1 = repo.add_run_result(
            study="s", trial_number=3, config=other_seed, result=other_result, skip_repeat=True
        )
        # another study, or a failure, is its own record
        elsewhere = repo.add_run_result(
            study="t", trial_number=3, config=config, result=result, skip_repeat=True
        )
        failure = repo.add_run_result(
            study="s", trial_number=4, config=failed_config, result=failed, skip_repeat=True
        )
        runs = {(r.study, r.trial_number, r.seed): r.id for r in repo.runs()}
    assert again == first and seed_1 != first
    assert runs == {
        ("s", 0, 0): first, ("s", 3, 1): seed_1, ("t", 3, 0): elsewhere, ("s", 4, 0): failure,
    }  # fmt: skip


def test_skip_repeat_does_not_count_a_failed_run_as_a_repeat(storage_url, make_trial):
    # Only a complete run is a measurement: the same configuration and seed failed in an
    # earlier trial must not swallow the later complete one.
    config, failed = make_trial("ner", ("pos",), status=TrialStatus.FAILED)
    _, result = make_trial("ner", ("pos",), value=0.6)
    with open_repository(storage_url) as repo:
        failed_id = repo.add_run_result(
            study="s", trial_number=0, config=config, result=failed, skip_repeat=True
        )
        complete_id = repo.add_run_result(
            study="s", trial_number=1, config=config, result=result, skip_repeat=True
        )
        complete = repo.runs(status="complete")
        records = repo.score_records(split="dev", metric="f1")
    assert complete_id != failed_id
    assert [(r.id, r.trial_number) for r in complete] == [(complete_id, 1)]
    assert complete[0].trial_result().scores == result.scores
    assert sorted((r.task, r.value) for r in records) == [
        ("ner", pytest.approx(0.6)),
        ("pos", pytest.approx(0.61)),
    ]


def test_scores_of_a_failed_result_keep_its_status(storage_url, make_trial):
    # A run that failed after an evaluation still stores what it measured, as failed scores:
    # the records (complete by default) must not read them as measurements.
    config, _ = make_trial("ner", ("pos",))
    failed = TrialResult(
        status=TrialStatus.FAILED,
        scores={"ner": {"dev": {"f1": 0.4}}, "pos": {"dev": {"f1": 0.3}}},
        failure_reason="diverged after the first evaluation",
    )
    with open_repository(storage_url) as repo:
        run_id = repo.add_run_result(study="s", trial_number=0, config=config, result=failed)
        assert repo.run(run_id).status == "failed"
        assert repo.score_records() == []
        assert repo.score_records(status="complete") == []
        stored = repo.score_records(status="failed")
        assert sorted((r.run_id, r.task, r.value) for r in stored) == [
            (run_id, "ner", pytest.approx(0.4)),
            (run_id, "pos", pytest.approx(0.3)),
        ]
