"""Deleting a study (``delete_study``), and a study recreated under an old name by Optuna.

Records are keyed by study name: a study deleted with ``optuna.delete_study`` and run again
under its name would keep the old study's runs and spec and drop the new one's runs (one run
per study, trial and seed).  The Optuna study is tied to its records study, so such a study is
refused before anything is written; ``delete_study`` removes both sides at once.
"""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from sqlalchemy import delete, func, select

from taskgraph.app.studies.running import run_study
from taskgraph.app.studies.stored import delete_study
from taskgraph.errors import NotFoundError, SpecError
from taskgraph.storage import open_repository
from taskgraph.storage.migrate import schema_differences
from taskgraph.storage.repository import RECORDS_IDENTITY_ATTR
from taskgraph.storage.schema import LookaheadRow, RunRow, ScoreRow, StudyRow, TaskSetRow
from taskgraph.testing import optuna_trial_counts


@pytest.fixture
def demo(tabular_demo: Path) -> Path:
    return tabular_demo  # tests/conftest.py


def run(demo: Path, url: str, name: str = "demo", trials: int = 3, **overrides: object) -> None:
    runner = {"name": "tabular", "table": str(demo.parent / "tab.csv")}
    run_study(demo, storage=url, runner=runner, name=name, budget__trials=trials, **overrides)


def record_counts(url: str) -> dict[str, tuple[int, int]]:
    """Return study name -> (runs, scores) in the records."""
    with open_repository(url, create=False) as repo, repo.engine.connect() as connection:
        names = dict(connection.execute(select(StudyRow.id, StudyRow.name)).all())
        runs = dict(
            connection.execute(
                select(RunRow.study_id, func.count()).group_by(RunRow.study_id)
            ).all()
        )
        scores = dict(
            connection.execute(
                select(ScoreRow.study_id, func.count()).group_by(ScoreRow.study_id)
            ).all()
        )
    return {name: (runs.get(i, 0), scores.get(i, 0)) for i, name in names.items()}


def test_delete_removes_that_study_and_its_optuna_trials_and_nothing_else(storage_url, demo):
    run(demo, storage_url, "demo")
    run(demo, storage_url, "other", trials=4)
    before = record_counts(storage_url)
    assert before["demo"][0] > 0 and before["other"][0] > 0
    with open_repository(storage_url, create=False) as repo, repo.engine.connect() as c:
        task_sets = c.execute(select(func.count()).select_from(TaskSetRow)).scalar_one()

    deleted = delete_study("demo", storage=storage_url)

    assert deleted["runs"] == before["demo"][0] and deleted["scores"] == before["demo"][1]
    assert deleted["optuna_trials"] == 3
    assert record_counts(storage_url) == {"other": before["other"]}
    assert optuna_trial_counts(storage_url) == {"other": 4}
    with open_repository(storage_url, create=False) as repo, repo.engine.connect() as c:
        assert schema_differences(c) == []  # what `taskgraph db check` compares
        assert c.execute(select(func.count()).select_from(TaskSetRow)).scalar_one() == task_sets
        orphans = (
            select(func.count())
            .select_from(ScoreRow)
            .where(ScoreRow.run_id.not_in(select(RunRow.id)))
        )
        assert c.execute(orphans).scalar_one() == 0
        assert c.execute(select(func.count()).select_from(LookaheadRow)).scalar_one() == 0
    with pytest.raises(NotFoundError, match=r"no study 'demo'.*known studies: other"):
        delete_study("demo", storage=storage_url)


def test_a_study_deleted_by_optuna_and_run_again_is_refused_before_anything_is_written(
    storage_url, demo
):
    run(demo, storage_url, "demo", trials=3)
    old = record_counts(storage_url)
    optuna.delete_study(study_name="demo", storage=storage_url)

    with pytest.raises(SpecError) as refused:
        run(demo, storage_url, "demo", trials=2, sampler__seed=7)
    message = str(refused.value)
    assert "study 'demo' has records" in message and "delete_study('demo'" in message
    assert optuna_trial_counts(storage_url) == {}  # no Optuna study was created
    assert record_counts(storage_url) == old

    # Deleted through taskgraph, the name starts afresh: the new study's runs are recorded.
    assert delete_study("demo", storage=storage_url)["optuna_trials"] == 0
    assert record_counts(storage_url) == {}
    run(demo, storage_url, "demo", trials=2, sampler__seed=7)
    assert optuna_trial_counts(storage_url) == {"demo": 2}
    with open_repository(storage_url, create=False) as repo:
        assert {r.trial_number for r in repo.runs(study="demo", status=None)} <= {0, 1}
        assert repo.runs(study="demo", status=None)
        assert repo.study_specs()["demo"]["sampler"]["seed"] == 7


def test_a_plain_optuna_study_made_under_an_old_name_is_refused(storage_url, demo):
    run(demo, storage_url, "demo")
    optuna.delete_study(study_name="demo", storage=storage_url)
    optuna.create_study(study_name="demo", storage=storage_url, direction="maximize")
    with pytest.raises(SpecError, match="another study of that name than the Optuna study"):
        run(demo, storage_url, "demo", trials=4)
    assert optuna_trial_counts(storage_url) == {"demo": 0}


def test_a_study_written_before_the_tie_adopts_its_records(storage_url, demo):
    from optuna.storages._rdb.models import StudySystemAttributeModel

    run(demo, storage_url, "demo", trials=2)
    with open_repository(storage_url, create=False) as repo:
        identity = repo.study_identity("demo")
        with repo.engine.begin() as connection:  # as a database written before the tie
            connection.execute(
                delete(StudySystemAttributeModel).where(
                    StudySystemAttributeModel.key == RECORDS_IDENTITY_ATTR
                )
            )
    run(demo, storage_url, "demo", trials=3)  # continues: the records are adopted
    assert optuna_trial_counts(storage_url) == {"demo": 3}
    storage = optuna.storages.RDBStorage(storage_url, skip_table_creation=True)
    study_id = storage.get_study_id_from_name("demo")
    assert storage.get_study_system_attrs(study_id)[RECORDS_IDENTITY_ATTR] == identity
    storage.engine.dispose()
    assert record_counts(storage_url)["demo"][0] >= 3


def test_delete_removes_the_local_runners_checkpoint_folder_of_the_study(sqlite_url, demo):
    from taskgraph.runners.local import study_checkpoint_folder
    from taskgraph.search.progress import SPEC_ATTR
    from taskgraph.storage.urls import parse_storage_url, sqlite_path

    run(demo, sqlite_url, "demo", trials=2)
    storage = optuna.storages.RDBStorage(sqlite_url, skip_table_creation=True)
    study_id = storage.get_study_id_from_name("demo")
    spec = storage.get_study_user_attrs(study_id)[SPEC_ATTR]
    base = demo.parent / "checkpoints"
    spec["runner"] = {"name": "local", "checkpoint_dir": str(base)}
    storage.set_study_user_attr(study_id, SPEC_ATTR, spec)  # as a local runner's study
    storage.engine.dispose()
    database = f"{sqlite_path(parse_storage_url(sqlite_url))}#{study_id}"
    folder = study_checkpoint_folder(base, study="demo", database=database)
    (folder / "trial-1" / "seed-0").mkdir(parents=True)
    (folder / "trial-1" / "seed-0" / "state.pt").write_bytes(b"x")
    (base / "another-study").mkdir()

    deleted = delete_study("demo", storage=sqlite_url)

    assert deleted["checkpoints"] == str(folder)
    assert not folder.exists() and (base / "another-study").is_dir()


def test_records_no_study_ran_on_are_taken_by_the_first_study_of_their_name(storage_url, demo):
    from taskgraph.testing import complete_result, optuna_trial_counts
    from taskgraph.trial import TrialConfig

    # Written through the Repository alone (as a screen stored before its study runs).
    config = TrialConfig(target="synth_target", auxiliaries=("synth_related",), seed=0)
    with open_repository(storage_url) as repo:
        repo.add_run_result(
            study="demo", trial_number=-1, config=config, result=complete_result(config)
        )
        identity = repo.study_identity("demo")
    run(demo, storage_url, "demo", trials=2)
    assert optuna_trial_counts(storage_url) == {"demo": 2}
    storage = optuna.storages.RDBStorage(storage_url, skip_table_creation=True)
    study_id = storage.get_study_id_from_name("demo")
    assert storage.get_study_system_attrs(study_id)[RECORDS_IDENTITY_ATTR] == identity
    storage.engine.dispose()


def test_delete_removes_the_ray_runners_persisted_checkpoints_only(sqlite_url, demo):
    """The Ray runner's checkpoints persisted under experiment_dir (a trial's
    taskgraph:ray_checkpoint) go with the study; a path that is no Tune checkpoint stays."""
    from taskgraph.search.progress import RAY_CHECKPOINT_ATTR

    run(demo, sqlite_url, "demo", trials=2)
    tune = demo.parent / "tune" / "demo-run" / "trial_x"
    persisted, other = tune / "checkpoint_000003", tune / "not_a_checkpoint"
    for folder in (persisted, other):
        (folder / "trial-1" / "seed-0").mkdir(parents=True)
    study = optuna.load_study(study_name="demo", storage=sqlite_url)
    for path in (persisted, other):  # interrupted Ray trials, their checkpoints noted
        study.add_trial(
            optuna.trial.create_trial(
                state=optuna.trial.TrialState.FAIL, system_attrs={RAY_CHECKPOINT_ATTR: str(path)}
            )
        )

    deleted = delete_study("demo", storage=sqlite_url)

    assert deleted["tune_checkpoints"] == [str(persisted)]
    assert not persisted.exists() and other.is_dir()


def test_an_optuna_study_taskgraph_did_not_create_is_refused(storage_url, demo):
    """Every other command refuses another program's Optuna study; delete must not destroy
    it (a half-created study of taskgraph's, no attribute and no trial, is deleted)."""
    run(demo, storage_url, "demo", trials=2)
    mine = optuna.create_study(study_name="mine", storage=storage_url)
    mine.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=3)
    with pytest.raises(NotFoundError, match=r"'mine' .* was not created by taskgraph") as raised:
        delete_study("mine", storage=storage_url)
    assert raised.value.exit_code == 2
    assert optuna_trial_counts(storage_url)["mine"] == 3
    optuna.create_study(study_name="half", storage=storage_url)  # a kill while creating it
    assert delete_study("half", storage=storage_url)["optuna_trials"] == 0
    assert "half" not in optuna_trial_counts(storage_url) and "demo" in optuna_trial_counts(
        storage_url
    )
