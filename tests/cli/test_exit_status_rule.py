"""The exit-status rule, one representative case of each kind (README, "Exit status").

Exit 2: what the user gave is wrong (the command line, a spec, a file, database or name they
named).  Exit 1: the environment or a run failed (a server unreachable, a read-only
database, no Ray cluster at the address).  Each is one ``error:`` line.
"""

from __future__ import annotations

import socket
import sqlite3
import sqlite3.dbapi2
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from taskgraph.cli.app import app
from taskgraph.storage import open_repository
from taskgraph.testing import run_fake_study
from taskgraph.trial import Cost, TrialConfig, TrialResult, TrialStatus

runner = CliRunner()

SPEC = """\
name: fake
target: synth_target
candidates: [synth_related]
"""


def exit_status(*args: str) -> int:
    """Return the exit status of ``taskgraph ARGS``, which must be one ``error:`` line."""
    result = runner.invoke(app, list(args))
    lines = [line for line in result.stderr.splitlines() if not line.startswith("warning:")]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    return result.exit_code


@pytest.fixture
def closed_port() -> Iterator[int]:
    """Yield a port on 127.0.0.1 that is bound but never listens: a connection is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@pytest.fixture
def records_url(tmp_path: Path) -> str:
    """Return a records database with one run of study ``demo`` (target ``ner``)."""
    url = f"sqlite:///{tmp_path / 'records.db'}"
    with open_repository(url) as repo:
        result = TrialResult(
            status=TrialStatus.COMPLETE,
            scores={"ner": {"dev": {"f1": 0.5}}},
            objective=0.5,
            cost=Cost(seconds=1.0),
        )
        repo.add_run_result(
            study="demo", trial_number=0, config=TrialConfig(target="ner"), result=result
        )
    return url


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    """Return paths the cases name: a spec, a malformed table, a directory, a missing file."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC, encoding="utf-8")
    bad_spec = tmp_path / "bad.yaml"
    bad_spec.write_text(SPEC + "budget: {trials: 0}\n", encoding="utf-8")
    table = tmp_path / "table.csv"
    table.write_text(
        "target,task_set,split,value,higher_is_better\na,a,val,x,1\n", encoding="utf-8"
    )
    folder = tmp_path / "folder"
    folder.mkdir()
    not_db = tmp_path / "not.db"
    not_db.write_text("hello\n", encoding="utf-8")
    return {
        "spec": str(spec),
        "bad_spec": str(bad_spec),
        "table": str(table),
        "folder": str(folder),
        "missing": str(tmp_path / "missing.yaml"),
        "no_db": f"sqlite:///{tmp_path / 'none.db'}",
        "not_db": f"sqlite:///{not_db}",
    }


USAGE_ERRORS = [
    pytest.param(("records", "list", "--bogus"), id="unknown option"),
    pytest.param(("study", "validate", "{bad_spec}"), id="invalid spec"),
    pytest.param(("study", "validate", "{missing}"), id="missing spec file"),
    pytest.param(("affinity", "top", "--table", "{folder}", "--target", "a"), id="table is a dir"),
    pytest.param(("affinity", "top", "--table", "{table}", "--target", "a"), id="malformed table"),
    pytest.param(
        ("study", "run", "{spec}", "--storage", "{no_db}", "--data", "{folder}/nope"),
        id="missing data directory",
    ),
    pytest.param(("records", "list", "--storage", "bogus://x"), id="bad storage URL"),
    pytest.param(("records", "list", "--storage", "{no_db}"), id="missing SQLite file"),
    pytest.param(("records", "list", "--storage", "{not_db}"), id="a file that is no database"),
    pytest.param(("study", "show", "nope", "--storage", "{records}"), id="unknown study"),
    pytest.param(
        ("records", "table", "nope", "--storage", "{records}"), id="unknown study (table)"
    ),
    pytest.param(
        ("records", "list", "--target", "zz", "--storage", "{records}"), id="unknown target"
    ),
    pytest.param(("records", "show", "99", "--storage", "{records}"), id="unknown run id"),
]


@pytest.mark.parametrize("args", USAGE_ERRORS)
def test_what_the_user_gave_is_wrong_exits_2(
    args: tuple[str, ...], files: dict[str, str], records_url: str
) -> None:
    named = {**files, "records": records_url}
    assert exit_status(*(arg.format(**named) for arg in args)) == 2


def test_a_study_without_a_screen_or_not_taskgraphs_exits_2(tmp_path: Path) -> None:
    import optuna

    url = run_fake_study(
        {"name": "fake", "target": "synth_target", "candidates": ["synth_related"]},
        f"sqlite:///{tmp_path / 'study.db'}",
    )
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC, encoding="utf-8")
    assert exit_status("study", "screen", str(spec), "--show", "--storage", url) == 2
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    optuna.create_study(study_name="plain", storage=url)
    assert exit_status("study", "show", "plain", "--storage", url) == 2


def test_an_unreachable_database_server_exits_1(
    closed_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TASKGRAPH_DB_RETRY_S", "0")
    url = f"postgresql+psycopg://me:pw@127.0.0.1:{closed_port}/db"
    assert exit_status("records", "list", "--storage", url) == 1


def test_a_read_only_database_exits_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "ro.db"
    sqlite3.connect(path).close()  # an empty file, which `db upgrade` must write to
    connect = sqlite3.dbapi2.connect

    # Tests run as root, whom file permissions do not stop: SQLite opens the file read-only,
    # as it would a file the user cannot write.
    def read_only(database: Any, *args: Any, **kwargs: Any) -> Any:
        if str(database) == str(path):
            return connect(f"file:{database}?mode=ro", *args, **{**kwargs, "uri": True})
        return connect(database, *args, **kwargs)

    monkeypatch.setattr(sqlite3.dbapi2, "connect", read_only)
    monkeypatch.setattr(sqlite3, "connect", read_only)
    assert exit_status("db", "upgrade", "--storage", f"sqlite:///{path}") == 1


def test_no_ray_cluster_at_the_address_exits_1(tmp_path: Path, closed_port: int) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC, encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'r.db'}"
    address = f"127.0.0.1:{closed_port}"
    assert exit_status("study", "run", str(spec), "--storage", url, "--address", address) == 1
    # a malformed address is the input's
    assert exit_status("study", "run", str(spec), "--storage", url, "--address", "ray://x:1") == 2
    assert not (tmp_path / "r.db").exists()
