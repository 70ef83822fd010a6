"""One-line messages found by an audit: `db upgrade --revision base`, `records table --metrics`,
a `--table` that is not a regular file, and `affinity groups --budget`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from taskgraph.affinity.longtable import LongRow, LongTable, write_long_csv
from taskgraph.cli.app import app
from taskgraph.testing import SHARING_SPACES, run_fake_study

runner = CliRunner()


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def error_line(*args: str) -> str:
    """Return the one ``error:`` line a refused command prints (nothing on stdout)."""
    code, out, err = invoke(*args)
    assert code != 0 and out == "", (args, out, err)
    assert err.startswith("error: ") and err.count("\n") == 1, (args, err)
    return err.strip()


@pytest.fixture
def table_file(tmp_path: Path) -> Path:
    """A long table of two tasks with their baselines and their pair."""
    rows = [
        LongRow("a", frozenset("a"), "val", 0.5, True),
        LongRow("b", frozenset("b"), "val", 0.6, True),
        LongRow("a", frozenset("ab"), "val", 0.55, True),
        LongRow("b", frozenset("ab"), "val", 0.58, True),
    ]
    path = tmp_path / "table.csv"
    write_long_csv(LongTable(rows=rows), path)
    return path


@pytest.fixture
def study_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A records database with one study ('tiny', target tgt, metric accuracy) of one run."""
    import taskgraph.search.sharing_space as sharing_space

    monkeypatch.setattr(sharing_space, "registry_spaces", lambda names, **_: SHARING_SPACES)
    url = f"sqlite:///{tmp_path / 'records.db'}"
    spec = {
        "name": "tiny",
        "target": "tgt",
        "objective": {"metric": "accuracy"},
        "candidates": ["good"],
        "search": {"sharing": ["hard"]},
        "sampler": {"name": "random", "seed": 0},
        "budget": {"trials": 1},
        "seeds": 1,
    }
    return run_fake_study(spec, url)


def test_upgrade_of_a_missing_database_to_base_creates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    url = "sqlite:///new.db"
    code, out, err = invoke("db", "upgrade", "--storage", url, "--revision", "base")
    assert (code, err) == (0, "")
    assert out == f"{url} does not exist and revision base has no tables: nothing to do\n"
    code, out, _ = invoke("db", "upgrade", "--storage", url, "--revision", "base", "--json")
    assert code == 0
    assert json.loads(out) == {"storage": url, "before": None, "after": None, "missing": True}
    assert list(tmp_path.iterdir()) == []  # no empty new.db left behind


def test_upgrade_of_an_empty_database_to_base_names_no_none(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    path.touch()
    url = f"sqlite:///{path}"
    code, out, _ = invoke("db", "upgrade", "--storage", url, "--revision", "base")
    assert code == 0 and out == f"{url} is already at revision base (no taskgraph tables)\n"


@pytest.mark.parametrize("metrics", ["", ",", " , "])
def test_records_table_refuses_an_empty_metrics_list(study_url: str, metrics: str) -> None:
    line = error_line("records", "table", "tiny", "--storage", study_url, "--metrics", metrics)
    assert line == (
        f"error: `--metrics` names no metric (got {metrics!r}): give the target's metrics, "
        "comma-separated, or leave it out for the objective metric"
    )


def test_records_table_shows_a_metric_named_twice_once(study_url: str) -> None:
    args = ("records", "table", "tiny", "--storage", study_url, "--metrics", "accuracy,accuracy")
    code, out, _ = invoke(*args)
    header = out.splitlines()[0].split("|")
    assert code == 0 and [c.strip() for c in header].count("accuracy") == 1, out
    code, out, _ = invoke(*args, "--json")
    table = json.loads(out)
    assert code == 0 and table["metrics"] == ["accuracy"]
    assert list(table["rows"][0]["cells"]) == ["accuracy"]


@pytest.mark.parametrize(
    "command",
    [("bench",), ("affinity", "top", "--target", "a"), ("affinity", "groups", "--budget", "2")],
)
def test_a_table_that_is_not_a_regular_file_is_named_so(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    fifo = tmp_path / "fifo.csv"
    os.mkfifo(fifo)
    for table in ("/dev/null", str(fifo)):
        line = error_line(*command, "--table", table)
        assert (
            line == f"error: table file is not a regular file (a device, FIFO or socket): {table}"
        )


@pytest.mark.parametrize(("budget", "shown"), [("0", "0"), ("-1.5", "-1.5")])
def test_groups_budget_not_above_zero_names_the_option(
    table_file: Path, budget: str, shown: str
) -> None:
    line = error_line("affinity", "groups", "--table", str(table_file), "--budget", budget)
    assert line == f"error: `--budget` must be > 0, but got {shown}"
