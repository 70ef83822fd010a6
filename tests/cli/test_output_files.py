"""``-o``/``--output`` of `records export` and `affinity graph` (issue 10, items 6 and 9).

A regular file or a new path is written atomically; a symlink is written through (the link
stays); a FIFO, a device or a directory is refused with one ``error:`` line and left as it
was; ``-o -`` is standard output.  Only FIFOs and symlinks in a temporary directory are used,
never a real device node.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from taskgraph.cli.app import app
from taskgraph.cli.output import resolve_output, write_output
from taskgraph.errors import ConfigError
from taskgraph.storage import open_repository

runner = CliRunner()


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def table(tmp_path: Path) -> Path:
    path = tmp_path / "table.csv"
    path.write_text(
        "target,task_set,split,value,higher_is_better\n"
        "a,a,val,0.5,1\na,a+b,val,0.6,1\nb,b,val,0.5,1\nb,a+b,val,0.4,1\n"
    )
    return path


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "pipe"
    os.mkfifo(path)
    return path


def _export(one_run_url: str, output: str) -> tuple[int, str, str]:
    return invoke("records", "export", "--storage", one_run_url, "-o", output)


def _graph(table: Path, output: str, fmt: str = "json") -> tuple[int, str, str]:
    return invoke("affinity", "graph", "--table", str(table), "--format", fmt, "-o", output)


def _one_error_line(code: int, err: str, *words: str) -> None:
    assert code != 0
    assert err.startswith("error: ") and err.strip().count("\n") == 0, err
    for word in words:
        assert word in err


def test_a_fifo_is_refused_and_left_a_fifo(
    one_run_url: str, table: Path, fifo: Path, tmp_path: Path
) -> None:
    for code, _, err in (_export(one_run_url, str(fifo)), _graph(table, str(fifo))):
        _one_error_line(code, err, "is a FIFO", str(fifo))
        assert stat.S_ISFIFO(fifo.lstat().st_mode)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_a_symlink_to_a_fifo_is_refused(one_run_url: str, table: Path, fifo: Path) -> None:
    link = fifo.with_name("link")
    link.symlink_to(fifo)
    for code, _, err in (_export(one_run_url, str(link)), _graph(table, str(link))):
        _one_error_line(code, err, "is a FIFO", f"{link} -> {fifo}")
        assert link.is_symlink() and stat.S_ISFIFO(fifo.lstat().st_mode)


def test_a_directory_is_refused(one_run_url: str, tmp_path: Path) -> None:
    code, _, err = _export(one_run_url, str(tmp_path))
    _one_error_line(code, err, "is a directory")
    assert tmp_path.is_dir()


def test_a_symlink_to_a_regular_file_is_written_through(
    one_run_url: str, table: Path, tmp_path: Path
) -> None:
    real = tmp_path / "real.csv"
    real.write_text("old\n")
    real.chmod(0o640)
    link = tmp_path / "latest.csv"
    link.symlink_to(real.name)
    code, _, err = _export(one_run_url, str(link))
    assert code == 0, err
    assert link.is_symlink() and os.readlink(link) == real.name  # the link stays a link
    assert real.read_text().startswith("run_id,study")
    assert stat.S_IMODE(real.stat().st_mode) == 0o640  # the file keeps its permissions

    graph_real = tmp_path / "graph.json"
    graph_link = tmp_path / "graph-latest.json"
    graph_link.symlink_to(graph_real)  # dangling: the target is created
    code, _, err = _graph(table, str(graph_link))
    assert code == 0, err
    assert graph_link.is_symlink() and json.loads(graph_real.read_text())["directed"] is True


def test_dash_is_standard_output(one_run_url: str, table: Path, tmp_path: Path) -> None:
    code, out, err = _export(one_run_url, "-")
    assert code == 0 and out.startswith("run_id,study"), err
    code, out, err = _graph(table, "-", fmt="dot")
    assert code == 0 and out.startswith("digraph"), err
    assert not (tmp_path / "-").exists()


def test_a_regular_file_is_replaced(one_run_url: str, table: Path, tmp_path: Path) -> None:
    out = tmp_path / "g.json"
    out.write_text("old")
    code, _, err = _graph(table, str(out))
    assert code == 0, err
    assert json.loads(out.read_text())["directed"] is True


def test_a_write_that_fails_is_one_line(
    table: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Running as root, no directory is unwritable: the rename into place is made to fail.
    def denied(*_: object, **__: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "replace", denied)
    monkeypatch.setattr(Path, "replace", denied)
    out = tmp_path / "g.json"
    code, _, err = _graph(table, str(out))
    _one_error_line(code, err, "Permission denied", str(out))
    assert not out.exists()


def test_a_path_under_a_file_is_one_line(table: Path, tmp_path: Path) -> None:
    code, _, err = _graph(table, str(table / "g.json"))
    _one_error_line(code, err, "is not a directory")


def test_resolve_and_write_output(tmp_path: Path, fifo: Path) -> None:
    assert resolve_output("-") is None
    with pytest.raises(ConfigError, match="standard output"):
        resolve_output("-", stdout_ok=False)
    with pytest.raises(ConfigError, match="is a FIFO"):
        resolve_output(fifo)
    target = resolve_output(tmp_path / "new.txt")
    assert target == (tmp_path / "new.txt").resolve()
    write_output(target, "hello\n")
    assert (tmp_path / "new.txt").read_text() == "hello\n"


# A records database is never an output file: `-o` naming the database the
# command reads, any other SQLite file, or a SQLite companion file is refused before anything
# is written, and the database stays byte for byte what it was.


def _unchanged(path: Path, before: bytes) -> None:
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir() if p.name.startswith(".")] == []


def test_export_over_its_own_database_is_refused(one_run_url: str) -> None:
    database = Path(one_run_url.removeprefix("sqlite:///"))
    before = database.read_bytes()
    code, _, err = _export(one_run_url, str(database))
    _one_error_line(code, err, "`--output`", str(database), "is a SQLite database")
    _unchanged(database, before)


def test_graph_over_the_database_it_reads_is_refused(one_run_url: str) -> None:
    database = Path(one_run_url.removeprefix("sqlite:///"))
    before = database.read_bytes()
    for fmt in ("png", "json", None):  # None: the suffix .db names no format, said second
        chosen = [] if fmt is None else ["--format", fmt]
        code, _, err = invoke(
            "affinity", "graph", "--storage", one_run_url, *chosen, "-o", str(database)
        )
        _one_error_line(code, err, "`--output`", str(database), "is a SQLite database")
        _unchanged(database, before)


def test_another_sqlite_file_or_a_companion_is_refused(
    one_run_url: str, table: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other.sqlite"
    other.write_bytes(Path(one_run_url.removeprefix("sqlite:///")).read_bytes())
    before = other.read_bytes()
    for output in (other, other.with_name("other.sqlite-wal"), other.with_name("other.sqlite-shm")):
        for code, _, err in (_export(one_run_url, str(output)), _graph(table, str(output))):
            _one_error_line(code, err, "`--output`", output.name, "SQLite database")
        assert not output.with_name("other.sqlite-wal").exists()
    journal = other.with_name("other.sqlite-journal")
    journal.write_text("old")
    code, _, err = _graph(table, str(journal))
    _one_error_line(code, err, "is the -journal file of the SQLite database", str(other))
    assert journal.read_text() == "old"
    _unchanged(other, before)


def test_the_default_database_is_refused(
    one_run_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TASKGRAPH_STORAGE", raising=False)
    monkeypatch.chdir(tmp_path)
    Path("taskgraph.db").write_bytes(Path(one_run_url.removeprefix("sqlite:///")).read_bytes())
    before = Path("taskgraph.db").read_bytes()
    code, _, err = invoke("records", "export", "-o", "taskgraph.db")
    _one_error_line(code, err, "'taskgraph.db'", "is a SQLite database")
    _unchanged(tmp_path / "taskgraph.db", before)


def test_the_storage_file_is_refused_while_still_empty(tmp_path: Path) -> None:
    # Not yet a SQLite file by its header: refused as the storage in use.
    empty = tmp_path / "empty.db"
    empty.touch()
    code, _, err = invoke(
        "affinity", "graph", "--storage", f"sqlite:///{empty}", "--format", "json", "-o", str(empty)
    )
    _one_error_line(code, err, "`--output`", "is the records database this command reads")
    assert empty.read_bytes() == b""


def test_resolve_output_refuses_databases(one_run_url: str, tmp_path: Path) -> None:
    database = Path(one_run_url.removeprefix("sqlite:///"))
    with pytest.raises(ConfigError, match="is a SQLite database"):
        resolve_output(database)
    with pytest.raises(ConfigError, match="records database this command reads"):
        resolve_output(tmp_path / "new.db", storage=f"sqlite:///{tmp_path / 'new.db'}")
    assert resolve_output(tmp_path / "new.db", storage="sqlite://") == tmp_path / "new.db"
    with pytest.raises(ConfigError, match="is a SQLite database"):
        write_output(database, "run_id\n")
    with (
        open_repository(one_run_url, create=False) as repo,
        pytest.raises(ConfigError, match="is a SQLite database"),
    ):
        repo.export(database, format="csv")
