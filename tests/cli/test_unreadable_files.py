"""A file the file system refuses (unreadable, in a directory without search permission) is
one ``error: FILE: reason`` line and exit 1, not a PermissionError's traceback; nothing is
written.  An OSError that names no file, or a file that is missing, is a bug: traceback."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from taskgraph.cli.app import app
from taskgraph.testing import unavailable

REPO = Path(__file__).resolve().parents[2]
TABLE = REPO / "docs" / "results" / "bioner_transfer_ncbi_disease.csv"
# root reads every file whatever its mode: drop the capabilities that let it.
DROP_ROOT_OVERRIDE = [
    "setpriv",
    "--inh-caps=-all",
    "--bounding-set=-dac_override,-dac_read_search",
]
runner = CliRunner()


def _unprivileged() -> list[str]:
    """Return the prefix that runs a command without root's file-permission override."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        unavailable("running as root without setpriv: no file can be made unreadable")
    return DROP_ROOT_OVERRIDE


def taskgraph(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``taskgraph ARGS`` in ``tmp_path`` without the right to read mode-000 files."""
    prefix = _unprivileged()
    locked = tmp_path / "probe"
    locked.write_text("x")
    locked.chmod(0)
    probe = subprocess.run(
        [*prefix, sys.executable, "-c", f"open({str(locked)!r})"], capture_output=True
    )
    if probe.returncode == 0:
        unavailable("a mode-000 file is still readable here (no way to make one unreadable)")
    return subprocess.run(
        [*prefix, sys.executable, "-m", "taskgraph.cli.app", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )


def unreadable_copy(source: Path, target: Path) -> Path:
    shutil.copyfile(source, target)
    target.chmod(0)
    return target


def assert_one_line(done: subprocess.CompletedProcess[str], file: str) -> None:
    assert (done.returncode, done.stdout, done.stderr) == (
        1,
        "",
        f"error: {file}: permission denied\n",
    )


def test_an_unreadable_spec_is_one_line_and_run_creates_no_database(tmp_path: Path) -> None:
    unreadable_copy(REPO / "searchspaces" / "demo.yaml", tmp_path / "s.yaml")
    assert_one_line(taskgraph(tmp_path, "study", "validate", "s.yaml"), "s.yaml")
    database = tmp_path / "records.db"
    done = taskgraph(tmp_path, "study", "run", "s.yaml", "--storage", f"sqlite:///{database}")
    assert_one_line(done, "s.yaml")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["probe", "s.yaml"]


def test_a_spec_or_data_in_a_directory_without_permission(tmp_path: Path) -> None:
    folder = tmp_path / "specs"
    folder.mkdir()
    shutil.copyfile(REPO / "searchspaces" / "demo.yaml", folder / "s.yaml")
    folder.chmod(0o600)  # listable by its owner, but nothing in it can be opened
    data = tmp_path / "data"
    data.mkdir(mode=0)
    try:
        assert_one_line(taskgraph(tmp_path, "study", "validate", "specs/s.yaml"), "specs/s.yaml")
        done = taskgraph(tmp_path, "tasks", "list", "--data", str(data))
        assert (done.returncode, done.stdout) == (1, "") and done.stderr.count("\n") == 1
        assert done.stderr.startswith(f"error: {data}/")
        assert done.stderr.endswith(": permission denied\n")
    finally:
        folder.chmod(0o700)  # so that pytest can remove them
        data.chmod(0o700)


def test_an_unreadable_table_or_metadata_file(tmp_path: Path) -> None:
    unreadable_copy(TABLE, tmp_path / "t.csv")
    done = taskgraph(tmp_path, "affinity", "top", "--target", "ncbi_disease", "--table", "t.csv")
    assert_one_line(done, "t.csv")
    (tmp_path / "m.json").write_text("{}")
    (tmp_path / "m.json").chmod(0)
    done = taskgraph(
        tmp_path, "bench", "--table", str(TABLE), "--task-metadata", "m.json", "--no-search"
    )
    assert_one_line(done, "m.json")


def test_an_unreadable_results_readme_writes_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "results"
    folder.mkdir()
    readme = folder / "README.md"
    readme.write_text("<!-- results:demo -->\n<!-- /results:demo -->\n")
    readme.chmod(0)
    database = tmp_path / "records.db"
    done = taskgraph(
        tmp_path,
        "records",
        "table",
        "demo",
        "--write",
        "results",
        "--storage",
        f"sqlite:///{database}",
    )
    assert_one_line(done, "results/README.md")
    assert [p.name for p in folder.iterdir()] == ["README.md"] and not database.exists()


def _validate_raising(monkeypatch: pytest.MonkeyPatch, error: OSError) -> Any:
    def refuse(*args: object, **kwargs: object) -> None:
        raise error

    monkeypatch.setattr("taskgraph.cli.study.validate._load_checked", refuse)
    return runner.invoke(app, ["study", "validate", str(REPO / "searchspaces" / "demo.yaml")])


@pytest.mark.parametrize(
    ("error", "code", "line"),
    [
        (
            PermissionError(errno.EACCES, "Permission denied", "x.yaml"),
            1,
            "x.yaml: permission denied",
        ),
        # the path given is the wrong kind: the input, not the environment
        (IsADirectoryError(errno.EISDIR, "Is a directory", "d"), 2, "d: is a directory"),
        (
            OSError(errno.EROFS, "Read-only file system", "a.tmp", None, "a"),
            1,
            "a.tmp -> a: read-only file system",
        ),
    ],
)
def test_a_refused_file_is_one_line_in_process(
    monkeypatch: pytest.MonkeyPatch, error: OSError, code: int, line: str
) -> None:
    result = _validate_raising(monkeypatch, error)
    assert (result.exit_code, result.stdout, result.stderr) == (code, "", f"error: {line}\n")


@pytest.mark.parametrize(
    "error",
    [
        OSError(errno.EACCES, "Permission denied"),  # no file named: where is unknown
        FileNotFoundError(errno.ENOENT, "No such file or directory", "computed.yaml"),
        OSError("something else"),
    ],
)
def test_other_os_errors_keep_their_traceback(
    monkeypatch: pytest.MonkeyPatch, error: OSError
) -> None:
    result = _validate_raising(monkeypatch, error)
    assert result.exception is error and result.stderr == ""
