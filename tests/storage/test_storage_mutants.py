"""Storage behaviours that no other test pinned down (each once let a mutation of its code pass):
the study filter of score_records, complete_run_data's complete runs, the data-selection filter,
each row's data version in the exports, the ``/data:?`` family, the Parquet row count, the
refusal to export over a SQLite database, which errors are connection errors, the run filters'
checks and the source phase of a string ``source_tasks``."""

from __future__ import annotations

import csv
import io
import sqlite3
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.exc import OperationalError

from taskgraph.errors import ConfigError
from taskgraph.storage import open_repository
from taskgraph.storage.export import in_family
from taskgraph.storage.migrations.source_phase import source_phase_tasks
from taskgraph.storage.retry import is_connection_error
from taskgraph.trial import DataSelectionConfig, TrialConfig, TrialStatus


def test_score_records_of_a_study_are_only_that_studys(sqlite_url, make_trial):
    with open_repository(sqlite_url) as repo:
        config, result = make_trial("ner", value=0.7)
        repo.add_run_result(study="s", trial_number=0, config=config, result=result)
        config, result = make_trial("ner", seed=1, value=0.3)
        repo.add_run_result(study="t", trial_number=0, config=config, result=result)
        records = repo.score_records(study="s")
    assert records and {record.study for record in records} == {"s"}
    assert {
        record.value for record in records if record.split == "dev" and record.metric == "f1"
    } == {0.7}


def test_complete_run_data_leaves_out_failed_runs(sqlite_url, make_trial):
    with open_repository(sqlite_url) as repo:
        for seed, status in enumerate(
            (TrialStatus.COMPLETE, TrialStatus.COMPLETE, TrialStatus.FAILED)
        ):
            config, result = make_trial("ner", seed=seed, status=status)
            repo.add_run_result(
                study="s",
                trial_number=seed,
                config=config,
                result=result,
                task_fingerprints={"ner": f"print{seed}"},
            )
        data = repo.complete_run_data("s")
    assert sorted(seed for _, _, _, seed in data) == [0, 1]
    assert sorted(prints[0]["ner"] for prints in data.values()) == ["print0", "print1"]


def test_runs_filter_on_data_selection_both_ways(sqlite_url, make_trial):
    selection = DataSelectionConfig(features=("jsd",), weights={"jsd": 0.5}, keep=0.3)
    with open_repository(sqlite_url) as repo:
        config, result = make_trial("ner", ("pos",))
        plain = repo.add_run_result(study="s", trial_number=0, config=config, result=result)
        config, result = make_trial("ner", ("pos",), seed=1, data_selection=selection)
        selected = repo.add_run_result(study="s", trial_number=1, config=config, result=result)
        without = [run.id for run in repo.runs(data_selection=False)]
        with_ = [run.id for run in repo.runs(data_selection=True)]
        every = [run.id for run in repo.runs()]
    assert without == [plain]
    assert with_ == [selected]
    assert every == [plain, selected]


def test_csv_rows_carry_their_own_tasks_data_version(sqlite_url, make_trial):
    with open_repository(sqlite_url) as repo:
        config, result = make_trial("ner", ("pos",))
        repo.add_run_result(
            study="s",
            trial_number=0,
            config=config,
            result=result,
            task_fingerprints={"ner": "aaaa1111aaaa1111", "pos": "bbbb2222bbbb2222"},
        )
        buffer = io.StringIO()
        repo.export(buffer, format="csv")
    rows = list(csv.DictReader(io.StringIO(buffer.getvalue())))
    versions = {
        row["task"]: {r["data_version"] for r in rows if r["task"] == row["task"]} for row in rows
    }
    assert versions == {"ner": {"aaaa1111aaaa"}, "pos": {"bbbb2222bbbb"}}


def test_a_failed_run_is_picked_by_its_targets_data_version(sqlite_url, make_trial):
    with open_repository(sqlite_url) as repo:
        config, result = make_trial("ner", ("pos",))
        repo.add_run_result(
            study="s",
            trial_number=0,
            config=config,
            result=result,
            task_fingerprints={"ner": "aaaa1111", "pos": "bbbb"},
        )
        config, result = make_trial("ner", seed=1, status=TrialStatus.FAILED)
        failed = repo.add_run_result(
            study="s",
            trial_number=1,
            config=config,
            result=result,
            task_fingerprints={"ner": "cccc3333"},
        )
        family = repo.run(failed).family
        picked = [run.id for run in repo.runs(family=f"{family[:8]}/data:cccc")]
    assert picked == [failed]


def test_data_version_question_mark_is_the_runs_without_a_fingerprint(sqlite_url, make_trial):
    assert in_family("abc/data:?", "abcdef", None)
    assert not in_family("abc/data:?", "abcdef", "1234")
    with open_repository(sqlite_url) as repo:
        config, result = make_trial("ner")
        unprinted = repo.add_run_result(study="s", trial_number=0, config=config, result=result)
        config, result = make_trial("ner", seed=1)
        repo.add_run_result(
            study="s",
            trial_number=1,
            config=config,
            result=result,
            task_fingerprints={"ner": "dddd4444"},
        )
        family = repo.run(unprinted).family
        picked = [run.id for run in repo.runs(family=f"{family[:12]}/data:?")]
    assert picked == [unprinted]


def test_parquet_export_returns_the_rows_it_wrote(sqlite_url, make_trial, tmp_path):
    import pyarrow.parquet as pq  # the parquet extra (the dev environment has it)

    with open_repository(sqlite_url) as repo:
        config, result = make_trial("ner")
        repo.add_run_result(study="s", trial_number=0, config=config, result=result)
        config, result = make_trial("ner", seed=1, status=TrialStatus.FAILED)
        repo.add_run_result(study="s", trial_number=1, config=config, result=result)
        path = tmp_path / "runs.parquet"
        count = repo.export(path, format="parquet")
    # The complete run's three scores (dev f1, dev loss, test f1) and the failed run's row.
    assert count == pq.read_table(path).num_rows == 4


@pytest.mark.parametrize("export_format", ["csv", "json", "parquet"])
def test_export_refuses_to_write_over_the_sqlite_database(
    sqlite_url, make_trial, tmp_path, export_format
):
    database = Path(sqlite_url.removeprefix("sqlite:///"))
    with open_repository(sqlite_url) as repo:
        config, result = make_trial("ner")
        run_id = repo.add_run_result(study="s", trial_number=0, config=config, result=result)
        before = database.read_bytes()
        with pytest.raises(ConfigError, match="it is a SQLite database"):
            repo.export(database, format=export_format)
        assert database.read_bytes() == before
        assert repo.run(run_id).study == "s"
    assert sqlite3.connect(database).execute("pragma integrity_check").fetchone() == ("ok",)


@pytest.mark.parametrize(
    "sqlstate", ["08000", "08001", "08003", "08004", "08006", "57P01", "57P02", "57P03"]
)
def test_connection_sqlstates_are_connection_errors(sqlstate):
    error = psycopg.errors.lookup(sqlstate)("server gone")
    assert is_connection_error(error)
    assert is_connection_error(OperationalError("SELECT 1", {}, error))


def test_statement_sqlstates_are_not_connection_errors():
    # 57014: query canceled (a statement timeout), an OperationalError of another class.
    assert not is_connection_error(psycopg.errors.lookup("57014")("canceling statement"))


def test_an_invalidated_connection_is_a_connection_error():
    error = OperationalError("SELECT 1", {}, Exception("ssl eof"), connection_invalidated=True)
    assert is_connection_error(error)
    assert not is_connection_error(OperationalError("SELECT 1", {}, Exception("ssl eof")))


def test_an_implicitly_chained_connection_error_is_found():
    try:
        try:
            raise psycopg.OperationalError("server closed the connection unexpectedly")
        except psycopg.OperationalError:
            raise RuntimeError("while committing")  # noqa: B904 (the implicit chain is the case)
    except RuntimeError as wrapped:
        assert wrapped.__cause__ is None and wrapped.__context__ is not None
        assert is_connection_error(wrapped)


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        ({"status": "bogus"}, r"`status` must be one of .*'bogus'"),
        ({"task_set": "ner+ner"}, r"`task_set` 'ner\+ner' names ner twice"),
        ({"task_set": "ner+pos+ner"}, r"names ner twice"),
        ({"pretraining": ""}, r"`pretraining` is empty"),
        ({"pretraining": "  "}, r"`pretraining` is empty"),
    ],
)
def test_runs_refuses_a_filter_that_could_match_nothing(sqlite_url, make_trial, filters, message):
    with open_repository(sqlite_url) as repo:
        config, result = make_trial("ner", ("pos",))
        repo.add_run_result(study="s", trial_number=0, config=config, result=result)
        with pytest.raises(ConfigError, match=message):
            repo.runs(**filters)


def test_a_string_source_tasks_moves_nothing_as_the_trial_config_says():
    config = TrialConfig(
        target="ner",
        auxiliaries=("pos", "chunk"),
        transfer_mode="sequential",
        hyperparameters={"source_tasks": "pos"},
    )
    assert source_phase_tasks(config.to_dict()) == config.source_phase_tasks() == ()
    listed = TrialConfig(
        target="ner",
        auxiliaries=("pos", "chunk"),
        transfer_mode="sequential",
        hyperparameters={"source_tasks": ["pos"]},
    )
    assert source_phase_tasks(listed.to_dict()) == listed.source_phase_tasks() == ("pos",)
