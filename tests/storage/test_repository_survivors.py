"""What the records repository's writes promise, beyond the contract suite: tests written for
the mutants of ``taskgraph/storage/repository.py`` that no other test killed."""

from __future__ import annotations

import math
import time
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import select

from taskgraph.errors import NotFoundError, StorageError
from taskgraph.storage import open_repository
from taskgraph.storage.schema import AffinityFitRow
from taskgraph.storage.urls import resolve_storage_url
from taskgraph.trial import Objective


def test_a_missing_database_the_spec_named_is_blamed_on_the_spec(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TASKGRAPH_STORAGE", raising=False)
    url = resolve_storage_url(spec_storage=f"sqlite:///{tmp_path / 'gone.db'}")
    with pytest.raises(NotFoundError) as caught:
        open_repository(url, create=False)
    assert "the spec's storage field): run a study first, or point it at an existing database" in (
        str(caught.value)
    )
    assert not (tmp_path / "gone.db").exists()


def test_non_finite_standard_errors_of_a_screen_read_back_as_not_measured(storage_url, make_trial):
    # PostgreSQL's JSON refuses Infinity; SQLite would keep it and hand it back as a measured
    # (infinitely uncertain) value.
    config, result = make_trial("ner", ("pos",), lookahead=True)
    matrix = replace(result.lookahead, stderr=[[math.inf, 0.01], [-math.inf, math.nan]])
    with open_repository(storage_url) as repo:
        screen = repo.add_screen(
            study="s", config=config, result=replace(result, lookahead=matrix), details={}
        )
    stderr = screen.matrix.stderr
    assert stderr is not None and stderr[0][1] == 0.01
    assert all(math.isnan(v) for v in (stderr[0][0], stderr[1][0], stderr[1][1]))


def test_a_studys_identity_does_not_depend_on_the_local_time_zone(sqlite_url: str) -> None:
    # SQLite hands the creation time back naive; read as local time, a driver in another time
    # zone would take the study for one deleted and created again, and refuse it.
    identities = set()
    with open_repository(sqlite_url) as repo:
        repo.ensure_study("s")
        try:
            for zone in ("UTC0", "EST+5", "IST-5:30"):
                with pytest.MonkeyPatch.context() as patch:
                    patch.setenv("TZ", zone)
                    time.tzset()
                    identities.add(repo.study_identity("s"))
        finally:
            time.tzset()
    assert len(identities) == 1


def test_deleting_a_study_takes_its_lookahead_matrices_only_and_counts_them(
    storage_url, make_trial
):
    config, result = make_trial("ner", ("pos",), lookahead=True)
    with open_repository(storage_url) as repo:
        for study in ("gone", "kept"):
            repo.add_run_result(study=study, trial_number=0, config=config, result=result)
            repo.add_screen(study=study, config=config, result=result, details={})
        counts = repo.delete_study("gone")
        assert counts["lookahead_matrices"] == 2  # the trial's and the screen's
        assert [s.study for s in repo.screens("kept")] == ["kept"]
        assert len(repo.lookahead_matrices(study="kept")) == 2


def test_a_study_first_written_by_a_run_takes_the_runs_direction_and_target(
    storage_url, make_trial
):
    objective = Objective(metric="loss", direction="minimize")
    config, result = make_trial("ner", ("pos",), objective=objective)
    with open_repository(storage_url) as repo:
        repo.add_run_result(study="s", trial_number=0, config=config, result=result)
        [study] = repo.studies()
    assert (study.direction, study.target) == ("minimize", "ner")


def test_a_repeat_that_recorded_no_data_version_is_not_the_run_on_known_data(
    storage_url, make_trial
):
    # Without fingerprints the data are unknown: a run that recorded some is not the same
    # measurement, so the repeat is written beside it.
    config, result = make_trial("ner", ("pos",))
    with open_repository(storage_url) as repo:
        known = repo.add_run_result(
            study="s",
            trial_number=0,
            config=config,
            result=result,
            task_fingerprints={"ner": "sha256:aa"},
        )
        unknown = repo.add_run_result(
            study="s", trial_number=1, config=config, result=result, skip_repeat=True
        )
        assert unknown != known
        assert sorted(r.trial_number for r in repo.runs(study="s")) == [0, 1]


def test_a_screen_gets_a_negative_number_when_the_studys_trials_start_above_zero(
    storage_url, make_trial
):
    config, result = make_trial("ner", ("pos",), lookahead=True)
    with open_repository(storage_url) as repo:
        repo.add_run_result(study="s", trial_number=5, config=config, result=result)
        screen = repo.add_screen(study="s", config=config, result=result, details={})
        # A screen numbered 4 would take trial 4's (trial, seed) key: that trial's run would
        # come back as the screen's id and never be written.
        trial_4 = repo.add_run_result(study="s", trial_number=4, config=config, result=result)
        assert screen.number == -1 and trial_4 != screen.run_id
        assert len(repo.runs(study="s")) == 3


def test_screens_are_numbered_per_study(storage_url, make_trial):
    config, result = make_trial("ner", ("pos",), lookahead=True)
    with open_repository(storage_url) as repo:
        first = repo.add_screen(study="a", config=config, result=result, details={})
        other = repo.add_screen(study="b", config=config, result=result, details={})
    assert (first.number, other.number) == (-1, -1)


def test_a_study_deleted_and_created_again_has_another_identity(sqlite_url: str) -> None:
    # SQLite gives the new row the old id: only the creation time tells the two apart.
    with open_repository(sqlite_url) as repo:
        repo.ensure_study("s")
        before = repo.study_identity("s")
        repo.delete_study("s")
        repo.ensure_study("s")
        after = repo.study_identity("s")
    assert before is not None and after is not None
    assert before.split("@")[0] == after.split("@")[0] and before != after


def test_only_the_named_studys_spec_counts(storage_url, make_trial):
    config, result = make_trial("ner", ("pos",))
    with open_repository(storage_url) as repo:
        repo.ensure_study("opened", spec={"name": "opened"})
        repo.add_run_result(study="written", trial_number=0, config=config, result=result)
        assert repo.study_has_spec("opened")
        assert not repo.study_has_spec("written") and not repo.study_has_spec("absent")


def test_an_affinity_edge_keeps_its_direction_and_what_it_was_not_given(storage_url):
    bare = {"source": "pos", "target": "ner", "gain": 0.5}
    full = {"source": "ner", "target": "pos", "gain": -0.1, "std": 0.02, "n_evidence": 3}
    with open_repository(storage_url) as repo:
        repo.save_affinity_edges([bare, full], method="gain")
        edges = repo.affinity_edges(method="gain")
        with repo.engine.connect() as connection:
            [n_edges] = connection.execute(select(AffinityFitRow.n_edges)).scalars().all()
    assert [(e.source, e.target, e.gain, e.std, e.n_evidence) for e in edges] == [
        ("pos", "ner", 0.5, None, 0),  # no std is no std, not a certain 0; no evidence counted
        ("ner", "pos", -0.1, 0.02, 3),
    ]
    assert n_edges == 2


def test_an_affinity_edge_without_a_gain_is_refused_by_name(storage_url):
    with open_repository(storage_url) as repo:
        with pytest.raises(StorageError, match=r"affinity edge 0 lacks \['gain'\]"):
            repo.save_affinity_edges([{"source": "pos", "target": "ner"}], method="gain")
        assert repo.affinity_edges() == []
