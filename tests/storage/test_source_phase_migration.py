"""Revision 0005 (and 0003's backfill): sequential runs' source scores in the source phase's set."""

from __future__ import annotations

from alembic import command
from sqlalchemy import text

from taskgraph.storage import open_repository
from taskgraph.storage.migrate import alembic_config, upgrade
from taskgraph.storage.repository import open_engine

SEQUENTIAL = {"transfer_mode": "sequential", "hyperparameters": {"source_tasks": ["pos"]}}


def _write_runs(url, make_trial):
    """Write a sequential run (source pos; chunk trains with the target) and a joint run."""
    with open_repository(url) as repo:
        config, result = make_trial("ner", ("pos", "chunk"), seed=0, **SEQUENTIAL)
        repo.add_run_result(study="s", trial_number=0, config=config, result=result)
        config, result = make_trial("ner", ("pos",), seed=1, value=0.6)
        repo.add_run_result(study="s", trial_number=1, config=config, result=result)
        return _layout(repo)


def _layout(repo):
    return sorted(
        (r.run_id, r.task, r.split, r.metric, "+".join(sorted(r.task_set)), r.family)
        for r in repo.score_records(status=None)
    )


def _old_layout(url, *, scores=True):
    """Put the sequential run's source scores under the run's task set, as writers before
    308b546 did (``scores``; below 0003 scores have no task set), and drop the source phase's
    task set that nothing else uses."""
    engine = open_engine(url)
    try:
        with engine.begin() as connection:
            if scores:
                connection.execute(
                    text(
                        "UPDATE tg_scores SET task_set_id = "
                        "(SELECT r.task_set_id FROM tg_runs AS r WHERE r.id = tg_scores.run_id) "
                        "WHERE run_id IN "
                        "(SELECT id FROM tg_runs WHERE transfer_mode = 'sequential')"
                    )
                )
            pos = "(SELECT id FROM tg_task_sets WHERE key = 'pos')"
            connection.execute(text(f"DELETE FROM tg_task_set_members WHERE task_set_id = {pos}"))
            connection.execute(text("DELETE FROM tg_task_sets WHERE key = 'pos'"))
    finally:
        engine.dispose()


def _upgrade(url):
    engine = open_engine(url)
    try:
        return upgrade(engine)
    finally:
        engine.dispose()


def _check_source_set(url, expected):
    with open_repository(url) as repo:
        assert _layout(repo) == expected
        by_task = {(r.run_id, r.task): frozenset(r.task_set) for r in repo.score_records()}
        assert by_task[(1, "pos")] == {"pos"}  # the source, scored at the end of its phase
        assert by_task[(1, "chunk")] == by_task[(1, "ner")] == {"chunk", "ner", "pos"}
        assert by_task[(2, "pos")] == {"ner", "pos"}  # a joint run keeps its own set
        groups = repo.records_containing("pos", split="dev", metric="f1")
        assert sorted(groups) == ["ner+pos", "pos"] and groups["pos"].run_ids == (1,)
        with repo.engine.connect() as connection:
            members = connection.execute(
                text(
                    "SELECT m.task, s.size FROM tg_task_set_members AS m "
                    "JOIN tg_task_sets AS s ON s.id = m.task_set_id WHERE s.key = 'pos'"
                )
            ).all()
        assert [tuple(row) for row in members] == [("pos", 1)]


def test_revision_0005_moves_old_layout_source_scores_to_the_source_phase_set(
    storage_url, make_trial
):
    written = _write_runs(storage_url, make_trial)
    _old_layout(storage_url)
    engine = open_engine(storage_url)
    try:
        with engine.begin() as connection:
            command.stamp(alembic_config(connection), "0004")
    finally:
        engine.dispose()
    assert _upgrade(storage_url) == ("0004", "0005")
    _check_source_set(storage_url, written)


def test_the_backfilling_upgrade_from_0002_keeps_source_scores_in_the_source_phase_set(
    storage_url, make_trial
):
    written = _write_runs(storage_url, make_trial)
    engine = open_engine(storage_url)
    try:
        with engine.begin() as connection:
            command.downgrade(alembic_config(connection), "0002")
    finally:
        engine.dispose()
    _old_layout(storage_url, scores=False)  # no source phase's task set yet
    assert _upgrade(storage_url) == ("0002", "0005")
    _check_source_set(storage_url, written)


def test_0003_alone_backfills_source_scores_into_the_source_phase_set(storage_url, make_trial):
    _write_runs(storage_url, make_trial)
    engine = open_engine(storage_url)
    try:
        with engine.begin() as connection:
            command.downgrade(alembic_config(connection), "0002")
        _old_layout(storage_url, scores=False)
        assert upgrade(engine, "0003") == ("0002", "0003")
        with engine.connect() as connection:
            keys = connection.execute(
                text(
                    "SELECT s.task, t.key FROM tg_scores AS s "
                    "JOIN tg_task_sets AS t ON t.id = s.task_set_id "
                    "WHERE s.run_id = 1 AND s.split = 'dev' AND s.metric = 'f1' ORDER BY s.task"
                )
            ).all()
    finally:
        engine.dispose()
    assert [tuple(row) for row in keys] == [
        ("chunk", "chunk+ner+pos"),
        ("ner", "chunk+ner+pos"),
        ("pos", "pos"),
    ]
