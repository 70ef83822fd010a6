"""``taskgraph records``: list/show/studies/export with filters, JSON/CSV, one-line errors."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from taskgraph.cli.app import app
from taskgraph.storage import open_repository
from taskgraph.trial import Cost, TrialConfig, TrialResult, TrialStatus

runner = CliRunner()


@pytest.fixture
def records_url(tmp_path: Path) -> str:
    """Return a SQLite database with three runs: two complete, one failed."""
    url = f"sqlite:///{tmp_path / 'records.db'}"
    with open_repository(url) as repo:
        for number, (target, aux) in enumerate(
            [("ner", ()), ("ner", ("pos",)), ("pos", ("chunk",))]
        ):
            config = TrialConfig(target=target, auxiliaries=aux, seed=number)
            result = TrialResult(
                status=TrialStatus.COMPLETE,
                scores={t: {"dev": {"f1": 0.5 + number / 10}} for t in config.task_set},
                objective=0.5 + number / 10,
                cost=Cost(seconds=60.0),
            )
            repo.add_run_result(study="demo", trial_number=number, config=config, result=result)
        failed = TrialConfig(target="ner", auxiliaries=("chunk",))
        repo.add_run_result(
            study="other", trial_number=0, config=failed, result=TrialResult.failed("OOM")
        )
    return url


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_list_filters_and_json(records_url):
    code, out, _ = invoke("records", "list", "--storage", records_url, "--target", "ner", "--json")
    assert code == 0
    rows = json.loads(out)
    assert [(r["study"], r["task_set"], r["status"]) for r in rows] == [
        ("other", ["chunk", "ner"], "failed"),
        ("demo", ["ner", "pos"], "complete"),
        ("demo", ["ner"], "complete"),
    ]
    code, out, _ = invoke(
        "records", "list", "--storage", records_url, "--task-set", "pos+ner", "--json"
    )
    assert [r["trial_number"] for r in json.loads(out)] == [1]
    code, out, _ = invoke(
        "records", "list", "--storage", records_url, "--study", "demo", "--limit", "1", "--json"
    )
    assert [r["trial_number"] for r in json.loads(out)] == [2]
    code, out, _ = invoke(
        "records",
        "list",
        "--storage",
        records_url,
        "--contains",
        "chunk",
        "--status",
        "failed",
        "--json",
    )
    assert [r["study"] for r in json.loads(out)] == ["other"]


def test_list_csv_and_table(records_url):
    code, out, _ = invoke("records", "list", "--storage", records_url, "--csv", "--study", "demo")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["task_set"] for r in rows] == ["chunk+pos", "ner+pos", "ner"]
    assert rows[0]["objective"] == "0.7"
    code, out, _ = invoke("records", "list", "--storage", records_url)
    assert code == 0 and "4 runs" in out


def test_show_and_studies(records_url):
    code, out, _ = invoke("records", "show", "2", "--storage", records_url, "--json")
    run = json.loads(out)
    assert code == 0 and run["scores"] == {"ner": {"dev": {"f1": 0.6}}, "pos": {"dev": {"f1": 0.6}}}
    code, out, _ = invoke("records", "show", "2", "--storage", records_url)
    assert code == 0 and "task set ner+pos" in out
    # the configuration it trained, one setting per line, as the --json output has it
    assert "configuration" in out and re.search(r'│ auxiliaries +│ \["pos"\]', out), out
    code, out, _ = invoke("records", "studies", "--storage", records_url, "--json")
    assert [(s["name"], s["runs"], s["complete"], s["failed"]) for s in json.loads(out)] == [
        ("demo", 3, 3, 0),
        ("other", 1, 0, 1),
    ]


def test_export_formats(records_url, tmp_path):
    target = tmp_path / "out.csv"
    code, _, err = invoke(
        "records", "export", "--storage", records_url, "-o", str(target), "--study", "demo"
    )
    assert code == 0 and "wrote 5 rows" in err
    rows = list(csv.DictReader(target.open()))
    assert {(r["task_set"], r["task"], r["value"]) for r in rows} >= {
        ("ner", "ner", "0.5"),
        ("chunk+pos", "chunk", "0.7"),
    }
    code, out, _ = invoke(
        "records", "export", "--storage", records_url, "-o", "-", "-f", "json", "--status", "failed"
    )
    assert code == 0 and [r["failure_reason"] for r in json.loads(out)] == ["OOM"]
    parquet = tmp_path / "out.parquet"
    code, _, _ = invoke(
        "records", "export", "--storage", records_url, "-o", str(parquet), "-f", "parquet"
    )
    table = pq.read_table(parquet)
    assert code == 0 and table.num_rows == 6  # 5 score rows + the failed run's row
    assert table.schema.field("value").type == "double"
    # without -f the extension says the format (CSV in a .parquet file would not read back)
    inferred = tmp_path / "inferred.parquet"
    code, _, _ = invoke("records", "export", "--storage", records_url, "-o", str(inferred))
    assert code == 0 and pq.read_table(inferred).num_rows == 6
    as_json = tmp_path / "runs.json"
    code, _, _ = invoke("records", "export", "--storage", records_url, "-o", str(as_json))
    assert code == 0 and isinstance(json.loads(as_json.read_text()), list)


def test_an_extension_that_names_no_format_needs_format(records_url, tmp_path):
    # `-o out.xlsx` wrote CSV into out.xlsx and said nothing, exit 0.
    xlsx = tmp_path / "out.xlsx"
    code, out, err = invoke("records", "export", "--storage", records_url, "-o", str(xlsx))
    assert (code, out) == (2, "") and err == (
        f"error: `--output` {str(xlsx)!r} ends in .xlsx, which names no export format: give "
        "`--format` (csv, json, parquet, long) or a file ending in .csv, .json or .parquet\n"
    )
    assert not xlsx.exists()
    code, _, err = invoke(
        "records", "export", "--storage", records_url, "-o", str(xlsx), "--format", "json"
    )
    assert code == 0, err
    assert isinstance(json.loads(xlsx.read_text()), list)
    # No extension, or standard output: CSV, as before.
    plain = tmp_path / "records"
    code, _, err = invoke("records", "export", "--storage", records_url, "-o", str(plain))
    assert code == 0 and plain.read_text().startswith("run_id,"), err
    code, out, err = invoke("records", "export", "--storage", records_url, "-o", "-")
    assert code == 0 and out.startswith("run_id,"), err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("records", "list", "--status", "done"), "`--status` must be one of"),
        (("records", "export", "-o", "x.csv", "-f", "xlsx"), "`--format` must be one of"),
        (("records", "export", "-o", "-", "-f", "parquet"), "needs a file"),
        (("records", "show", "99"), "no run with id 99"),
        (
            ("records", "list", "--pretraining", "adaptiv"),
            "`--pretraining` must be one of none, adaptive, random",
        ),
        (("records", "list", "--json", "--csv"), "`--json` and `--csv` exclude each other"),
    ],
)
def test_bad_arguments_are_one_line(records_url, args, message):
    code, _, err = invoke(*args, "--storage", records_url)
    assert code != 0 and err.startswith("error: ") and message in err and err.count("\n") == 1


def test_bad_storage_is_one_masked_line_and_creates_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = invoke("records", "list", "--storage", "sqlite:///missing/dir/x.db")
    assert code == 2 and "directory" in err and err.count("\n") == 1
    code, _, err = invoke("records", "list", "--storage", "postgresql://me:hunter2@127.0.0.1:1/db")
    assert code == 1 and "me:***@" in err and "hunter2" not in err
    monkeypatch.setenv("TASKGRAPH_STORAGE", f"sqlite:///{tmp_path / 'env.db'}")
    code, _, err = invoke("records", "list")
    assert code == 2 and "env.db" in err
    assert list(tmp_path.iterdir()) == []


def test_every_command_and_option_has_help():
    for command in ("list", "show", "studies", "export"):
        code, out, _ = invoke("records", command, "--help")
        assert code == 0 and "--storage" in out
    code, out, _ = invoke("records", "--help")
    assert all(name in out for name in ("list", "show", "studies", "export"))


def test_csv_keeps_every_digit_and_the_table_aligns_decimals() -> None:
    from taskgraph.cli.output import _cell, _csv_cell

    assert _csv_cell(0.123456789) == "0.123456789"
    assert [_cell(v) for v in (1.0, 0.9539, 0.009709, -0.159, 0.0)] == [
        "1.0000",
        "0.9539",
        "0.0097",
        "-0.1590",
        "0.0000",
    ]
    assert _cell(2.5e-5) == "2.5e-05" and _cell(None) == "" and _cell(["a", "b"]) == "a+b"


def test_list_json_and_csv_keep_the_stored_times(records_url):
    # only the human table shortens the times to the second; cut there,
    # a run that finished 0.6 s after it started seemed to finish before it
    started = datetime(2024, 5, 1, 12, 0, 0, 700000, tzinfo=timezone.utc)
    with open_repository(records_url, create=False) as repo:
        config = TrialConfig(target="pos", seed=7)
        result = TrialResult(
            status=TrialStatus.COMPLETE, scores={"pos": {"dev": {"f1": 0.5}}}, objective=0.5
        )
        repo.add_run_result(
            study="demo",
            trial_number=9,
            config=config,
            result=result,
            started_at=started,
            finished_at=started + timedelta(seconds=0.6),
        )
        stored = {run.id: run.to_dict() for run in repo.runs()}
    code, out, _ = invoke("records", "list", "--storage", records_url, "--json")
    assert code == 0
    rows = json.loads(out)
    assert {r["id"]: (r["started_at"], r["finished_at"]) for r in rows} == {
        i: (run["started_at"], run["finished_at"]) for i, run in stored.items()
    }
    timed = [r for r in rows if r["started_at"] and r["finished_at"]]
    assert timed and any("." in r["finished_at"] for r in timed)  # microseconds, as stored
    assert all(r["started_at"] <= r["finished_at"] for r in timed)
    code, out, _ = invoke("records", "list", "--storage", records_url, "--csv")
    assert code == 0
    assert {int(r["id"]): r["finished_at"] for r in csv.DictReader(io.StringIO(out))} == {
        i: run["finished_at"] or "" for i, run in stored.items()
    }
    code, out, _ = invoke("records", "list", "--storage", records_url)
    finished = [run["finished_at"] for run in stored.values() if run["finished_at"]]
    assert code == 0 and all(text[:19] in out for text in finished)
    assert not any(text in out for text in finished if "." in text)


def test_a_task_set_naming_a_task_twice_is_refused_not_an_empty_result(
    records_url: str, tmp_path: Path
) -> None:
    # `a+a` matched nothing and exported a header-only file with "wrote 0 rows".
    out = tmp_path / "x.csv"
    for command in (["list"], ["export", "-o", str(out)]):
        code, stdout, err = invoke(
            "records", *command, "--storage", records_url, "--task-set", "ner+ner"
        )
        assert code == 2 and stdout == "", (command, err)
        assert (
            err
            == "error: `--task-set` 'ner+ner' names ner twice: a task set holds each task once\n"
        )
    assert not out.exists()


def test_studies_of_an_empty_database_says_so(tmp_path: Path) -> None:
    # An empty table was printed where `study list` says "no studies in ...".
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    open_repository(url).close()
    code, out, _ = invoke("records", "studies", "--storage", url)
    assert code == 0 and out == f"no studies in {url}\n"
    code, out, _ = invoke("records", "studies", "--storage", url, "--json")
    assert code == 0 and json.loads(out) == []
