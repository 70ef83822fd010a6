"""``taskgraph study delete``: the study and every record of it, nothing else; asked first,
refused off a terminal without --yes and while another driver runs it; and the auditor's
repro (a study deleted with Optuna and run again under its name) refused up front."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
from typer.testing import CliRunner

import taskgraph.cli.study.manage as study_cli
from taskgraph.cli.app import app
from taskgraph.storage import open_repository
from taskgraph.storage.locks import hold_driver_lock
from taskgraph.testing import optuna_trial_counts

runner = CliRunner()


def invoke(*args: str, input: str | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), input=input)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def demo(tabular_demo: Path) -> Path:
    return tabular_demo  # tests/conftest.py


@pytest.fixture
def url(demo: Path) -> str:
    return f"sqlite:///{demo.parent / 'd.db'}"


def tabular(demo: Path, url: str, *args: str) -> tuple[int, str, str]:
    return invoke(
        "study", "run", str(demo), "--runner", "tabular", "--set", "runner.table=tab.csv",
        "--storage", url, "-q", *args,
    )  # fmt: skip


def runs_by_study(url: str) -> dict[str, list[tuple[int, str]]]:
    """Return study -> sorted (trial number, task set) of its stored runs."""
    out: dict[str, list[tuple[int, str]]] = {}
    with open_repository(url, create=False) as repo:
        for run in repo.runs(status=None):
            out.setdefault(run.study, []).append((run.trial_number, "+".join(run.task_set)))
    return {name: sorted(rows) for name, rows in out.items()}


def two_studies(demo: Path, url: str) -> None:
    assert tabular(demo, url, "--trials", "3")[0] == 0
    assert tabular(demo, url, "--trials", "2", "--set", "name=other")[0] == 0


def test_delete_removes_the_study_and_its_records_only_and_db_check_stays_ok(demo, url):
    two_studies(demo, url)
    before = runs_by_study(url)
    assert before["demo"] and before["other"]

    code, out, err = invoke("study", "delete", "demo", "--storage", url, "--yes", "--json")

    assert code == 0, err
    deleted = json.loads(out)
    assert deleted["name"] == "demo" and deleted["runs"] == len(before["demo"])
    assert deleted["optuna_trials"] == 3 and deleted["scores"] > 0
    assert runs_by_study(url) == {"other": before["other"]}
    assert optuna_trial_counts(url) == {"other": 2}
    code, out, err = invoke("db", "check", "--storage", url)
    assert code == 0 and out.startswith("ok"), out + err
    code, out, _ = invoke("study", "list", "--storage", url, "--json")
    assert [row["name"] for row in json.loads(out)] == ["other"]


def test_delete_without_yes_off_a_terminal_is_refused_and_deletes_nothing(demo, url):
    two_studies(demo, url)
    before = runs_by_study(url)
    code, _, err = invoke("study", "delete", "demo", "--storage", url)
    assert code == 2
    assert err.count("\n") == 1 and "--yes" in err and "not a terminal" in err
    assert runs_by_study(url) == before and optuna_trial_counts(url) == {"demo": 3, "other": 2}


def test_delete_asks_on_a_terminal(demo, url, monkeypatch):
    two_studies(demo, url)
    before = runs_by_study(url)
    monkeypatch.setattr(study_cli, "_on_terminal", lambda: True)
    code, _, err = invoke("study", "delete", "demo", "--storage", url, input="n\n")
    assert code == 1 and "nothing deleted" in err and "Delete study 'demo'" in err
    assert runs_by_study(url) == before
    code, out, err = invoke("study", "delete", "demo", "--storage", url, input="y\n")
    assert code == 0, err
    # (the runner echoes the answer typed to stdout)
    assert "deleted study 'demo' from" in out and "3 Optuna trial(s)" in out
    assert set(runs_by_study(url)) == {"other"}


def test_an_unknown_study_names_the_known_ones(demo, url):
    two_studies(demo, url)
    code, _, err = invoke("study", "delete", "nope", "--storage", url, "--yes")
    assert code == 2
    assert err.strip() == f"error: no study 'nope' in {url}; known studies: demo, other"


def test_a_study_another_driver_runs_is_refused_while_it_holds_the_liveness_lock(demo, url):
    two_studies(demo, url)
    storage = optuna.storages.RDBStorage(url, heartbeat_interval=10, grace_period=30)
    study = optuna.load_study(study_name="demo", storage=storage)
    trial = study.ask()  # RUNNING, beating: what a live driver's trial looks like
    storage.record_heartbeat(trial._trial_id)
    storage.engine.dispose()
    before = runs_by_study(url)
    lock = hold_driver_lock(url, "demo")  # ... and the lock that driver holds
    try:
        code, _, err = invoke("study", "delete", "demo", "--storage", url, "--yes")
    finally:
        lock.release()

    assert code == 1
    assert err.count("\n") == 1
    assert f"study 'demo' in {url} is being run by a driver" in err
    assert runs_by_study(url) == before and optuna_trial_counts(url)["demo"] == 4
    # Its driver is gone (killed: it holds nothing): the fresh heartbeat does not hold the study.
    code, _, err = invoke("study", "delete", "demo", "--storage", url, "--yes")
    assert code == 0, err
    assert optuna_trial_counts(url) == {"other": 2}


def test_the_auditors_repro_is_refused_then_recorded_after_study_delete(demo, url):
    # A study deleted with Optuna, then run again under its name with another search space.
    assert tabular(demo, url, "--trials", "6")[0] == 0
    old = runs_by_study(url)
    optuna.delete_study(study_name="demo", storage=url)
    again = ("--trials", "4", "--set", "sampler.seed=7", "--set", "search.auxiliaries.max_size=1")

    code, out, err = tabular(demo, url, *again)

    assert code == 2
    assert err.count("\n") == 1 and err.startswith("error: study 'demo' has records in")
    assert f"`taskgraph study delete demo --storage {url}`" in err
    assert optuna_trial_counts(url) == {} and runs_by_study(url) == old  # nothing written

    assert invoke("study", "delete", "demo", "--storage", url, "--yes")[0] == 0
    code, _, err = tabular(demo, url, *again)
    assert code == 0, err
    new = runs_by_study(url)["demo"]
    assert new and new != old["demo"]
    assert all("+" not in tasks or tasks.count("+") == 1 for _, tasks in new)  # max_size 1
    code, out, _ = invoke("study", "show", "demo", "--storage", url, "--spec")
    assert code == 0 and "max_size: 1" in out.replace('"', "")
