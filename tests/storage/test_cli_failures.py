"""Database states and record filters that must be one ``error:`` line (issue 10, items 9, 11).

A read-only database file, Optuna tables at another schema version, a run id beyond 64 bits,
SQL wildcards in ``--model-config``, a ``--task-set`` that names no task, and read-only
commands on an empty file (which must stay empty).
"""

from __future__ import annotations

import sqlite3
import sqlite3.dbapi2
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from taskgraph.cli.app import app
from taskgraph.errors import StorageError
from taskgraph.storage import open_repository

runner = CliRunner()


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def one_error_line(code: int, err: str, *words: str) -> None:
    lines = [line for line in err.strip().splitlines() if line.startswith("error: ")]
    assert code != 0 and len(lines) == 1, err
    assert "Traceback" not in err and "\n" not in err.strip().split("error: ", 1)[1], err
    for word in words:
        assert word in lines[0], err


@pytest.fixture
def study_db(tmp_path: Path, tabular_spec: Callable[..., Path]) -> tuple[str, Path]:
    """Return (URL, spec) of a SQLite database holding study 'bench' with 2 trials done."""
    url = f"sqlite:///{tmp_path / 'study.db'}"
    spec = tabular_spec(trials=2)
    code, _, err = invoke("study", "run", str(spec), "--storage", url, "--quiet")
    assert code == 0, err
    return url, spec


def test_study_run_on_a_read_only_database_is_one_line(
    study_db: tuple[str, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    url, spec = study_db
    path = str(tmp_path / "study.db")
    connect = sqlite3.dbapi2.connect

    # Tests run as root, whom file permissions do not stop: SQLite is asked to open the file
    # read-only instead, which is what a file the user cannot write gives.
    def read_only(database: Any, *args: Any, **kwargs: Any) -> Any:
        if str(database) == path:
            return connect(f"file:{database}?mode=ro", *args, **{**kwargs, "uri": True})
        return connect(database, *args, **kwargs)

    monkeypatch.setattr(sqlite3.dbapi2, "connect", read_only)
    monkeypatch.setattr(sqlite3, "connect", read_only)
    more = spec.with_name("more.yaml")
    more.write_text(spec.read_text().replace("trials: 2", "trials: 4"))
    for args in (
        ("study", "run", str(more), "--storage", url, "--quiet"),
        ("study", "resume", "bench", "--trials", "5", "--storage", url, "--quiet"),
    ):
        code, _, err = invoke(*args)
        one_error_line(code, err, "readonly database", url)
    code, out, err = invoke("records", "list", "--storage", url, "--json")  # reading works
    assert code == 0 and out.startswith("["), err


def test_optuna_tables_at_another_schema_version_are_one_line(
    study_db: tuple[str, Path], tmp_path: Path
) -> None:
    url, spec = study_db
    with sqlite3.connect(tmp_path / "study.db") as connection:
        connection.execute("UPDATE alembic_version SET version_num = 'v1.2.0.a'")
    for args in (
        ("study", "run", str(spec), "--storage", url, "--quiet"),
        ("study", "status", "bench", "--storage", url),
        ("study", "list", "--storage", url),
    ):
        code, _, err = invoke(*args)
        one_error_line(code, err, "no longer compatible", f"--storage {url}`")


def test_a_run_id_beyond_64_bits_is_one_line(study_db: tuple[str, Path]) -> None:
    url, _ = study_db
    code, _, err = invoke("records", "show", "99999999999999999999999", "--storage", url)
    one_error_line(code, err, "no run with id 99999999999999999999999")


def test_model_config_is_a_literal_prefix(study_db: tuple[str, Path]) -> None:
    url, _ = study_db
    with open_repository(url, create=False) as repo:
        runs = repo.runs()
    assert runs
    prefix = runs[0].model_config_hash[:6]
    for wildcard in ("%", "_", "%%", f"{prefix[:2]}%"):
        code, out, err = invoke(
            "records", "list", "--storage", url, "--model-config", wildcard, "--csv"
        )
        # A wildcard is no prefix of any hash: refused as a hash no run has, not a match.
        assert code == 2 and out == "", wildcard
        assert "no run's model configuration hash starts with it" in err, err
    code, out, _ = invoke("records", "list", "--storage", url, "--model-config", prefix, "--csv")
    assert len(out.strip().splitlines()) == 1 + sum(
        r.model_config_hash.startswith(prefix) for r in runs
    )


@pytest.mark.parametrize("value", ["+++", "+", " + "])
def test_a_task_set_naming_no_task_is_one_line(study_db: tuple[str, Path], value: str) -> None:
    url, _ = study_db
    for command in ("list", "export"):
        extra = ("-o", "-") if command == "export" else ()
        code, _, err = invoke("records", command, "--storage", url, "--task-set", value, *extra)
        one_error_line(code, err, "`--task-set`", "names no task")


@pytest.mark.parametrize(
    "args",
    [
        ("records", "list"),
        ("records", "studies"),
        ("records", "export", "-o", "-"),
        ("db", "current"),
        ("db", "check"),
        ("study", "list"),
        ("affinity", "fit"),
    ],
)
def test_read_only_commands_leave_an_empty_file_empty(tmp_path: Path, args: tuple[str]) -> None:
    path = tmp_path / "empty.db"
    path.touch()
    code, out, err = invoke(*args, "--storage", f"sqlite:///{path}")
    if args == ("db", "current"):  # reports the state: empty
        assert code == 0 and "empty" in out, err
    else:  # "holds no taskgraph records yet" / "has no taskgraph schema yet"
        one_error_line(code, err, "taskgraph")
    assert path.stat().st_size == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.db"]


def test_an_output_in_a_folder_that_takes_no_file_says_so(
    study_db: tuple[str, Path], tmp_path: Path
) -> None:
    # procfs answers "No such file or directory" to a new file beside /proc/version, which
    # exists: the line must blame the folder, not claim the file is missing.
    url, _ = study_db
    for path in ("/proc/version", "/proc/taskgraph-export.csv"):
        code, _, err = invoke("records", "export", "-f", "long", "-o", path, "--storage", url)
        one_error_line(code, err, f"cannot write `--output` {path!r}: its folder '/proc' takes")
    with open_repository(url) as repository, pytest.raises(StorageError) as caught:
        repository.export("/proc/version", format="csv")
    assert str(caught.value).startswith(
        "cannot export to '/proc/version': its folder '/proc' takes"
    )
