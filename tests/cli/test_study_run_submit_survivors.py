"""``taskgraph study run|submit|delete|list`` and ``--set``: what the user reads, pinned where a
changed line went unnoticed by the other tests (the CLI study commands' mutation audit).

Most tests replace :func:`taskgraph.app.studies.running.run_spec` (or Ray's ``submit_study``)
with a stand-in that returns a chosen summary: the command's own wording, exit status and
hints are under test, not the engine.  The others run the demo through the tabular runner.
"""

from __future__ import annotations

import json
import os
import signal
import warnings
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import taskgraph.app.studies.running as running
import taskgraph.cli.study.manage as manage_cli
from taskgraph.cli.app import app
from taskgraph.search.engine import RunSummary
from taskgraph.search.progress import StudyProgress

runner = CliRunner()
DEMO = Path(__file__).resolve().parents[2] / "searchspaces" / "demo.yaml"


def invoke(*args: str, input: str | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), input=input)
    return result.exit_code, result.stdout, result.stderr


def progress(**counts: Any) -> StudyProgress:
    """Return study demo's progress: no trial done out of 10 unless ``counts`` say otherwise."""
    fields: dict[str, Any] = {
        "name": "demo", "direction": "maximize", "budget": 10, "n_complete": 0, "n_pruned": 0,
        "n_failed": 0, "n_interrupted": 0, "n_running": 0, "n_waiting": 0, "best_value": None,
        "best_number": None, "baseline_value": None, "baseline_number": None,
    }  # fmt: skip
    fields.update(counts)
    return StudyProgress(**fields)


@pytest.fixture
def ran(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Replace ``run_spec``: it records its keyword arguments in the returned dict and answers
    ``seen["summary"]`` (set by the test; the budget spent by default)."""
    seen: dict[str, Any] = {
        "summary": RunSummary(progress=progress(n_complete=10), reason="budget")
    }

    def run_spec(spec: Any, **kwargs: Any) -> RunSummary:
        seen.update(kwargs, spec=spec)
        summary: RunSummary = seen["summary"]
        return summary

    monkeypatch.setattr(running, "run_spec", run_spec)
    return seen


# -- what `study run` says when it ends ---------------------------------------------------------


def test_the_closing_line_counts_each_state_and_quotes_the_show_command(
    ran: dict[str, Any], tmp_path: Path
) -> None:
    ran["summary"] = RunSummary(
        progress=progress(
            n_complete=3, n_pruned=2, n_failed=1, best_value=0.912345, best_number=4,
            baseline_value=0.5, baseline_number=0,
        ),
        reason="budget",
    )  # fmt: skip
    folder = tmp_path / "my runs"  # a space: the hint must still paste as one argument
    folder.mkdir()
    url = f"sqlite:///{folder / 's.db'}"
    code, out, err = invoke("study", "run", str(DEMO), "--storage", url, "-q")
    assert code == 0, err
    assert out == (
        "study 'demo': 6/10 trials (3 complete, 2 pruned, 1 failed); baseline 0.5000; "
        f"best 0.9123 (trial 4). See `taskgraph study show demo --storage '{url}'`.\n"
    )
    assert err == ""


@pytest.mark.parametrize("item", ["=3", " =3", "budget.trials"])
def test_a_set_without_a_field_or_an_equals_sign_says_what_it_expects(item: str) -> None:
    # `--set =3` read as field '' was "unknown field ''", which does not say what is wrong.
    code, out, err = invoke("study", "validate", str(DEMO), "--set", item)
    assert code == 2 and out == ""
    assert err == f"error: --set expects dotted.path=value, got {item!r}\n"


def test_a_run_where_only_pruned_trials_ended_succeeds(ran: dict[str, Any], tmp_path: Path) -> None:
    # A pruned trial is a result (its curve, the pruner's verdict): not "every trial failed".
    ran["summary"] = RunSummary(progress=progress(n_pruned=2, budget=2), reason="budget")
    url = f"sqlite:///{tmp_path / 's.db'}"
    code, out, err = invoke("study", "run", str(DEMO), "--storage", url, "-q")
    assert code == 0, err
    assert out.startswith("study 'demo': 2/2 trials (0 complete, 2 pruned, 0 failed);")
    assert err == ""


def test_a_wall_time_that_ends_before_any_trial_is_no_failure_and_says_how_to_go_on(
    ran: dict[str, Any], tmp_path: Path
) -> None:
    ran["summary"] = RunSummary(progress=progress(), reason="wall_time", detail="1 s")
    url = f"sqlite:///{tmp_path / 's.db'}"
    code, out, err = invoke("study", "run", str(DEMO), "--storage", url, "-q", "--wall-time", "1")
    assert code == 0, err
    assert out.startswith("study 'demo': 0/10 trials (0 complete, 0 pruned, 0 failed);")
    assert err == (
        f"wall time reached (1 s); continue with `taskgraph study resume demo --storage {url}`\n"
    )
    assert ran["wall_time"] == 1.0
    # --json: the JSON on stdout says why it stopped; stderr stays empty for the script
    code, out, err = invoke("study", "run", str(DEMO), "--storage", url, "--json")
    assert code == 0 and err == ""
    assert json.loads(out)["stopped_because"] == "wall_time"


def test_max_failures_stops_with_exit_1_and_the_reason(ran: dict[str, Any], tmp_path: Path) -> None:
    ran["summary"] = RunSummary(
        progress=progress(n_complete=1, n_failed=2, best_value=0.5, best_number=0),
        reason="max_failures",
        detail="2 trials failed (budget.max_failures: 2)",
    )
    url = f"sqlite:///{tmp_path / 's.db'}"
    code, out, err = invoke("study", "run", str(DEMO), "--storage", url, "-q")
    assert code == 1
    assert out.startswith("study 'demo': 3/10 trials (1 complete, 0 pruned, 2 failed);")
    assert err == (
        "stopped: 2 trials failed (budget.max_failures: 2); "
        f"see `taskgraph study show demo --storage {url}`\n"
    )


def test_a_sampler_with_nothing_left_to_propose_says_so(
    ran: dict[str, Any], tmp_path: Path
) -> None:
    ran["summary"] = RunSummary(
        progress=progress(n_complete=4), reason="exhausted", detail="no new task set"
    )
    url = f"sqlite:///{tmp_path / 's.db'}"
    code, _, err = invoke("study", "run", str(DEMO), "--storage", url, "-q")
    assert code == 0
    assert err == "stopped before the budget: no new task set\n"


def test_the_budget_spent_with_nothing_running_adds_no_line(
    ran: dict[str, Any], tmp_path: Path
) -> None:
    # The line about another driver's running trials is for when there are some.
    url = f"sqlite:///{tmp_path / 's.db'}"
    code, out, err = invoke("study", "run", str(DEMO), "--storage", url, "-q")
    assert code == 0 and out.startswith("study 'demo': 10/10 trials"), err
    assert err == ""


def test_a_set_of_a_whole_mapping_without_the_options_field_goes_with_the_option(
    ran: dict[str, Any], tmp_path: Path
) -> None:
    # `--set budget={...}` that leaves `trials` out does not disagree with --trials: the
    # conflict check looked the field up in the mapping and crashed on its absence.
    url = f"sqlite:///{tmp_path / 's.db'}"
    code, _, err = invoke(
        "study", "run", str(DEMO), "--storage", url, "-q", "--trials", "3",
        "--set", "budget={trials: 3, max_failures: 5}", "--set", "runner={name: local}",
        "--set", "budget.max_failures=4", "--set", "runner.threads=1",
    )  # fmt: skip
    assert code == 0, err
    code, _, err = invoke(
        "study", "run", str(DEMO), "--storage", url, "-q", "--trials", "3", "--runner", "local",
        "--set", "budget={max_failures: 5}", "--set", "runner={threads: 1}",
    )  # fmt: skip
    assert code == 0, err
    budget, chosen = ran["spec"].budget, ran["spec"].runner
    assert (budget.trials, budget.max_failures) == (3, 5)
    assert (chosen.name, chosen.threads) == ("local", 1)


def test_with_runner_and_address_an_error_in_the_runner_names_runner(
    ran: dict[str, Any], tmp_path: Path
) -> None:
    # --address names the runner only when it chose it (without --runner).
    url = f"sqlite:///{tmp_path / 's.db'}"
    run = ["study", "run", str(DEMO), "--storage", url, "-q"]
    code, _, err = invoke(*run, "--runner", "bogus", "--address", "auto")
    assert code == 2 and err.startswith("error: --runner: unknown runner 'bogus'; known: "), err
    code, _, err = invoke(*run, "--runner", "ray", "--address", "auto", "--set", "runner=local")
    assert code == 2 and err == (
        "error: --runner and --set runner both set spec field runner.name ('ray' and 'local'): "
        "give one\n"
    )
    assert "spec" not in ran  # nothing ran


# -- stopped by Ctrl-C or `kill` ---------------------------------------------------------------


def stopped_run(monkeypatch: pytest.MonkeyPatch, *, sigterm: bool = False) -> None:
    """Replace ``run_spec`` with one stopped by Ctrl-C (or by SIGTERM, sent to this process)."""
    from taskgraph.search import heartbeat

    def run_spec(spec: Any, **kwargs: Any) -> RunSummary:
        if sigterm and signal.getsignal(signal.SIGTERM) is heartbeat._raise_terminated:
            os.kill(os.getpid(), signal.SIGTERM)
        # Without the command's handler a real SIGTERM would end the test process.
        raise KeyboardInterrupt

    monkeypatch.setattr(running, "run_spec", run_spec)


def test_kill_stops_the_run_with_143_and_says_it_was_terminated(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    stopped_run(monkeypatch, sigterm=True)
    url = f"sqlite:///{tmp_path / 's.db'}"
    code, out, err = invoke("study", "run", str(DEMO), "--storage", url, "-q")
    assert code == 143 and out == ""
    assert err == (
        "terminated (SIGTERM): nothing was started (study 'demo' was not created yet); run the "
        "same `taskgraph study run` command again\n"
    )


def test_ctrl_c_names_the_resume_command_only_once_the_study_exists(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import optuna

    from taskgraph.storage import open_repository

    stopped_run(monkeypatch)
    url = f"sqlite:///{tmp_path / 's.db'}"
    with open_repository(url):
        pass
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    optuna.create_study(study_name="other", storage=url)  # the database has another study
    code, _, err = invoke("study", "run", str(DEMO), "--storage", url, "-q")
    assert code == 130
    assert err.startswith("interrupted: nothing was started (study 'demo' was not created yet)")
    optuna.create_study(study_name="demo", storage=url)
    code, _, err = invoke("study", "run", str(DEMO), "--storage", url, "-q")
    assert code == 130
    assert err == (
        "interrupted: the study is saved; finish it with "
        f"`taskgraph study resume demo --storage {url}`\n"
    )


# -- --json, the header, a password -----------------------------------------------------------


def test_json_prints_the_summary_alone_and_no_progress_lines(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def run_spec(spec: Any, **kwargs: Any) -> RunSummary:
        done = progress(n_complete=10, best_value=0.75, best_number=3)
        kwargs["observer"].on_open(done)  # where the progress display prints its header
        return RunSummary(progress=done, reason="budget")

    monkeypatch.setattr(running, "run_spec", run_spec)
    url = f"sqlite:///{tmp_path / 's.db'}"
    code, out, err = invoke("study", "run", str(DEMO), "--storage", url)
    assert code == 0, err
    assert err == f"study 'demo': runner local, storage {url}\n"  # the header, without --json
    code, out, err = invoke("study", "run", str(DEMO), "--storage", url, "--json")
    assert code == 0 and err == ""
    summary = json.loads(out)
    assert summary["n_complete"] == 10 and summary["stopped_because"] == "budget"


def test_the_hints_mask_the_database_password(ran: dict[str, Any]) -> None:
    ran["summary"] = RunSummary(progress=progress(), reason="wall_time", detail="1 s")
    url = "postgresql+psycopg://me:s3cret@127.0.0.1:1/db"
    code, out, err = invoke("study", "run", str(DEMO), "--storage", url, "-q")
    assert code == 0, err
    masked = "postgresql+psycopg://me:***@127.0.0.1:1/db"
    assert out.endswith(f"See `taskgraph study show demo --storage '{masked}'`.\n")
    assert "s3cret" not in out + err and masked in err


def test_transformers_bars_stay_off_unless_the_user_keeps_them(
    ran: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from transformers.utils import logging as hf_logging

    def set_bars(on: bool) -> None:
        with warnings.catch_warnings():  # the hub warns when its variable was 1 at import
            warnings.simplefilter("ignore", UserWarning)
            (hf_logging.enable_progress_bar if on else hf_logging.disable_progress_bar)()

    url = f"sqlite:///{tmp_path / 's.db'}"
    was_enabled = hf_logging.is_progress_bar_enabled()
    try:
        # docs/search.md: a user who sets HF_HUB_DISABLE_PROGRESS_BARS keeps that choice.
        monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "0")
        set_bars(True)
        assert invoke("study", "run", str(DEMO), "--storage", url, "-q")[0] == 0
        assert os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] == "0"
        assert hf_logging.is_progress_bar_enabled()
        # Otherwise transformers, imported before the command ran, is told to stop drawing.
        monkeypatch.delenv("HF_HUB_DISABLE_PROGRESS_BARS")
        assert invoke("study", "run", str(DEMO), "--storage", url, "-q")[0] == 0
        assert not hf_logging.is_progress_bar_enabled()
    finally:
        set_bars(was_enabled)


# -- submit ------------------------------------------------------------------------------------


@pytest.fixture
def submitted(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Replace Ray's ``submit_study``: it records its arguments in the returned dict."""
    from taskgraph.runners import ray as ray_runner

    seen: dict[str, Any] = {}

    def submit_study(spec: Any, **kwargs: Any) -> str:
        seen.update(kwargs, spec=spec)
        return "job-7"

    monkeypatch.setattr(ray_runner, "submit_study", submit_study)
    return seen


SQLITE_WARNING = (
    "warning: a SQLite database must be on a file system the cluster shares; use PostgreSQL "
    "(--storage postgresql+psycopg://...) for a real cluster\n"
)


def test_submit_sends_the_cluster_addresses_and_says_how_to_follow_the_study(
    submitted: dict[str, Any], tmp_path: Path
) -> None:
    url = "postgresql+psycopg://me:s3cret@127.0.0.1:1/db"
    inside = "postgresql+psycopg://me:s3cret@postgres:5432/db"
    code, out, err = invoke(
        "study", "submit", str(DEMO), "--address", "http://head:8265", "--storage", url,
        "--cluster-address", "head:6379", "--cluster-storage", inside,
    )  # fmt: skip
    assert code == 0, err
    assert err == ""  # PostgreSQL on both sides: no warning
    assert out == (
        "submitted study 'demo' as Ray job job-7; follow it with `taskgraph study status demo "
        "--storage 'postgresql+psycopg://me:***@127.0.0.1:1/db'`\n"
    )
    assert submitted["address"] == "http://head:8265"
    assert submitted["cluster_address"] == "head:6379"
    assert submitted["storage_url"] == url and submitted["cluster_storage_url"] == inside
    assert submitted["spec"].runner.name == "ray"


def test_submit_warns_of_a_sqlite_database_the_cluster_reads(
    submitted: dict[str, Any], tmp_path: Path
) -> None:
    sqlite = f"sqlite:///{tmp_path / 's.db'}"
    postgres = "postgresql+psycopg://me:pw@postgres:5432/db"
    submit = ["study", "submit", str(DEMO), "--address", "http://head:8265"]
    # The default cluster address, and the spec's own storage field when there is no --storage.
    code, out, err = invoke(*submit, "--set", f"storage={sqlite}")
    assert code == 0 and err == SQLITE_WARNING
    assert submitted["cluster_address"] == "auto" and submitted["storage_url"] == sqlite
    assert submitted["cluster_storage_url"] is None
    assert out.endswith(f"`taskgraph study status demo --storage {sqlite}`\n")
    # What the cluster sees decides: SQLite here, PostgreSQL there is fine, and the reverse not.
    code, _, err = invoke(*submit, "--storage", sqlite, "--cluster-storage", postgres)
    assert code == 0 and err == ""
    code, _, err = invoke(*submit, "--storage", postgres, "--cluster-storage", sqlite)
    assert code == 0 and err == SQLITE_WARNING


# -- delete ------------------------------------------------------------------------------------


def test_delete_on_a_terminal_deletes_nothing_on_a_bare_enter(
    tabular_demo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tabular_demo.parent / 'd.db'}"
    code, _, err = invoke(
        "study", "run", str(tabular_demo), "--runner", "tabular", "--set", "runner.table=tab.csv",
        "--trials", "1", "--storage", url, "-q",
    )  # fmt: skip
    assert code == 0, err
    monkeypatch.setattr(manage_cli, "_on_terminal", lambda: True)
    code, _, err = invoke("study", "delete", "demo", "--storage", url, input="\n")
    assert code == 1
    assert err.startswith(f"Delete study 'demo' and all its records in {url}? [y/N]")
    assert err.endswith("nothing deleted\n")
    code, out, err = invoke("study", "status", "demo", "--storage", url, "--json")
    assert code == 0 and json.loads(out)["n_done"] == 1, err


def test_the_delete_line_names_what_went(monkeypatch: pytest.MonkeyPatch) -> None:
    import taskgraph.app.studies.stored as stored

    answer: dict[str, Any] = {
        "name": "demo", "optuna_trials": 5, "runs": 4, "scores": 12,
        "checkpoints": "/ckpt/demo", "tune_checkpoints": ["/tune/a", "/tune/b", "/tune/c"],
    }  # fmt: skip
    monkeypatch.setattr(stored, "delete_study", lambda name, storage: answer)
    url = "postgresql+psycopg://me:s3cret@127.0.0.1:1/db"
    code, out, err = invoke("study", "delete", "demo", "--storage", url, "--yes")
    assert code == 0, err
    assert out == (
        "deleted study 'demo' from postgresql+psycopg://me:***@127.0.0.1:1/db: 5 Optuna "
        "trial(s), 4 run(s), 12 score(s), checkpoints /ckpt/demo, 3 Ray checkpoint(s)\n"
    )
    answer.update(checkpoints=None, tune_checkpoints=[])  # none to name: no empty parts
    code, out, err = invoke("study", "delete", "demo", "--storage", url, "--yes")
    assert code == 0, err
    assert out.endswith("4 run(s), 12 score(s)\n")


# -- list --------------------------------------------------------------------------------------


def test_list_marks_only_the_studies_taskgraph_did_not_create(tabular_demo: Path) -> None:
    import optuna

    from taskgraph.storage import open_repository

    url = f"sqlite:///{tabular_demo.parent / 'd.db'}"
    open_repository(url).close()
    code, out, _ = invoke("study", "list", "--storage", url, "--json")
    assert code == 0 and json.loads(out) == []  # an empty database: an empty list, for scripts
    code, out, _ = invoke("study", "list", "--storage", url)
    assert code == 0 and out == f"no studies in {url}\n"
    code, _, err = invoke(
        "study", "run", str(tabular_demo), "--runner", "tabular", "--set", "runner.table=tab.csv",
        "--trials", "1", "--storage", url, "-q",
    )  # fmt: skip
    assert code == 0, err
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    optuna.create_study(study_name="plain", storage=url)
    code, out, err = invoke("study", "list", "--storage", url)
    assert code == 0, err
    assert "plain (not taskgraph's)" in out and "demo (not taskgraph's)" not in out
    code, out, _ = invoke("study", "list", "--storage", url, "--json")
    assert {row["name"]: row["taskgraph"] for row in json.loads(out)} == {
        "demo": True,
        "plain": False,
    }
