"""Migrations: empty database to head, the committed old-schema file to head, Optuna beside us."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from alembic import command
from sqlalchemy import create_engine, inspect, text

from taskgraph.errors import SchemaMismatchError, StorageError
from taskgraph.storage import VERSION_TABLE, head_revision, open_repository
from taskgraph.storage.migrate import alembic_config, schema_differences, schema_state, upgrade
from taskgraph.storage.repository import open_engine
from taskgraph.trial import TrialStatus

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_empty_database_is_created_at_head_and_matches_the_models(storage_url):
    with open_repository(storage_url) as repo, repo.engine.connect() as connection:
        state = schema_state(connection)
        assert state.current == head_revision() == "0005"
        assert schema_differences(connection) == []
        tables = set(inspect(connection).get_table_names())
    assert VERSION_TABLE in tables and "alembic_version" not in tables
    assert {t for t in tables if not t.startswith("tg_")} == set()


def test_migrations_downgrade_to_base_and_upgrade_again(storage_url):
    engine = open_engine(storage_url)
    try:
        assert upgrade(engine) == (None, "0005")
        with engine.begin() as connection:
            command.downgrade(alembic_config(connection), "base")
        with engine.connect() as connection:
            assert schema_state(connection).is_empty
        assert upgrade(engine, "0001") == (None, "0001")
        assert upgrade(engine) == ("0001", "0005")
    finally:
        engine.dispose()


def test_scores_keep_every_record_through_a_downgrade_and_the_backfilling_upgrade(
    storage_url, make_trial
):
    with open_repository(storage_url) as repo:
        for number, aux in enumerate([(), ("pos",), ("pos", "chunk")]):
            config, result = make_trial("ner", aux, seed=number, value=0.4 + number / 10)
            repo.add_run_result(study="s", trial_number=number, config=config, result=result)
        config, result = make_trial("pos", status=TrialStatus.PRUNED)
        repo.add_run_result(study="t", trial_number=0, config=config, result=result)
        before = repo.score_records(status=None)
        grouped = repo.records_containing("ner", split="dev", metric="f1")
        with repo.engine.begin() as connection:
            command.downgrade(alembic_config(connection), "0002")
    engine = open_engine(storage_url)
    try:
        assert upgrade(engine) == ("0002", "0005")  # backfills study, task set, seed, status
    finally:
        engine.dispose()
    with open_repository(storage_url) as repo:
        assert repo.score_records(status=None) == before
        assert repo.records_containing("ner", split="dev", metric="f1") == grouped
        assert {r.study for r in repo.score_records(status="pruned")} == {"t"}
        with repo.engine.connect() as connection:
            assert schema_differences(connection) == []


def test_old_schema_file_names_the_upgrade_command_then_upgrades_with_its_data(
    schema_v1_db, tmp_path
):
    path = tmp_path / "old.db"
    shutil.copy(schema_v1_db, path)
    url = f"sqlite:///{path}"
    with pytest.raises(SchemaMismatchError) as error:
        open_repository(url)
    assert str(error.value) == (
        f"{url} is at schema revision 0001, this taskgraph needs 0005: "
        f"run `taskgraph db upgrade --storage {url}`"
    )
    engine = open_engine(url)
    try:
        assert upgrade(engine) == ("0001", "0005")
    finally:
        engine.dispose()
    with open_repository(url) as repo:
        runs = repo.runs(study="legacy")
        assert [r.task_set_key for r in runs] == ["ner", "ner+pos", "chunk+ner+pos"]
        records = repo.score_records(target="ner")
        assert [(r.value, r.seed, r.study) for r in records] == [
            (pytest.approx(0.6), 0, "legacy"),
            (pytest.approx(0.65), 1, "legacy"),
            (pytest.approx(0.7), 2, "legacy"),
        ]
        grouped = repo.records_containing("pos", include_auxiliaries=True)
        assert {key: len(rows) for key, rows in grouped.items()} == {
            "ner+pos": 2,
            "chunk+ner+pos": 3,
        }
        assert len(repo.lookahead_matrices()) == 1
        repo.save_affinity_edges([{"source": "pos", "target": "ner", "gain": 0.05}], method="gain")
        assert [e.source for e in repo.affinity_edges()] == ["pos"]
        with repo.engine.connect() as connection:
            assert schema_differences(connection) == []


def test_newer_schema_says_to_upgrade_taskgraph(sqlite_url):
    open_repository(sqlite_url).close()
    engine = create_engine(sqlite_url)
    with engine.begin() as connection:
        connection.execute(text(f"UPDATE {VERSION_TABLE} SET version_num = '9999'"))
    engine.dispose()
    with pytest.raises(SchemaMismatchError, match="revision 9999, newer than this taskgraph knows"):
        open_repository(sqlite_url)


def test_create_false_creates_nothing(tmp_path, storage_url):
    missing = tmp_path / "absent.db"
    with pytest.raises(StorageError, match="no records database at"):
        open_repository(f"sqlite:///{missing}", create=False)
    assert not missing.exists()
    engine = open_engine(storage_url)
    try:
        with engine.connect():  # an existing but empty database (a new SQLite file)
            pass
        with pytest.raises(StorageError, match="holds no taskgraph records yet"):
            open_repository(storage_url, create=False)
        with engine.connect() as connection:
            assert inspect(connection).get_table_names() == []
    finally:
        engine.dispose()


def test_optuna_and_taskgraph_share_one_database(storage_url):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name="shared", storage=storage_url, direction="maximize")
    study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=2)
    with open_repository(storage_url) as repo, repo.engine.connect() as connection:
        assert schema_differences(connection) == []  # Optuna's tables are not ours to diff
        tables = set(inspect(connection).get_table_names())
        assert {"alembic_version", VERSION_TABLE, "trials", "tg_runs"} <= tables
    again = optuna.load_study(study_name="shared", storage=storage_url)
    assert len(again.trials) == 2


def test_alembic_command_line_reaches_the_packaged_scripts(sqlite_url, tmp_path):
    # A subprocess: the alembic CLI configures logging from the ini file, globally.
    def alembic(*args: str) -> str:
        argv = [sys.executable, "-m", "alembic", "-c", str(REPO_ROOT / "db" / "alembic.ini")]
        done = subprocess.run(
            [*argv, "-x", f"url={sqlite_url}", *args], capture_output=True, text=True, cwd=tmp_path
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    alembic("upgrade", "head")
    assert "0005 (head)" in alembic("current")
    assert "No new upgrade operations detected" in alembic("check")


def test_migration_scripts_are_declared_as_package_data():
    # `pip install .` (not editable) ships only what package-data names: every script must match.
    from taskgraph.storage.migrate import migrations_dir

    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10: pytest itself depends on tomli there
        import tomli as tomllib  # type: ignore[no-redef]

    patterns = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]["taskgraph"]
    package = REPO_ROOT / "taskgraph"
    declared = {path for pattern in patterns for path in package.glob(pattern) if path.is_file()}
    scripts = {
        path
        for path in migrations_dir().rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    assert {p.name for p in scripts} >= {"env.py", "script.py.mako", "0003_scores_hot_index.py"}
    assert scripts <= declared


def test_a_schema_committed_between_the_two_reads_is_read_again_under_the_lock(
    storage_url, monkeypatch
):
    # Four openers of a new database race to create it: one may read "no version table",
    # then see the tables another opener has just committed with their version.  That is no
    # schema without migrations; reading again under the lock finds it at head.
    from taskgraph.storage import migrate

    with open_repository(storage_url):
        pass  # created at head
    real = migrate.schema_state
    calls = []

    def straddled(connection):
        calls.append(1)
        state = real(connection)
        if len(calls) == 1:
            return migrate.SchemaState(current=None, head=state.head, has_tables=True)
        return state

    monkeypatch.setattr(migrate, "schema_state", straddled)
    engine = open_engine(storage_url)
    try:
        assert migrate.ensure_schema(engine, create=True).at_head
    finally:
        engine.dispose()
    assert len(calls) == 2
