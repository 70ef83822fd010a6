"""The README's demo: `taskgraph study run searchspaces/demo.yaml` end to end on SQLite, then
optuna-dashboard on the same database shows the study and its trials."""

from __future__ import annotations

from types import ModuleType

import pytest

from taskgraph.storage import open_repository

pytestmark = pytest.mark.slow

TRIALS = 4  # the shipped budget is 24; a smaller one keeps the suite fast


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory, cli: ModuleType) -> str:
    storage = f"sqlite:///{tmp_path_factory.mktemp('demo') / 'taskgraph.db'}"
    done = cli.taskgraph(
        "study", "run", "searchspaces/demo.yaml", "--storage", storage, "--trials", str(TRIALS)
    )
    assert f"{TRIALS}/{TRIALS} trials" in done.stdout
    # Not a terminal: one line per finished trial instead of a progress bar's redraws.
    lines = [line for line in done.stderr.splitlines() if line.startswith("[")]
    assert [line.split("]")[0] for line in lines] == [
        f"[{i}/{TRIALS}" for i in range(1, TRIALS + 1)
    ]
    assert lines[0].startswith(f"[1/{TRIALS}] trial 0: target alone (") and "; best " in lines[0]
    return storage


def test_demo_runs_its_budget_and_records_every_trial(demo_db: str, cli: ModuleType) -> None:
    report = cli.show("demo", demo_db)
    assert report["n_done"] == TRIALS and report["n_failed"] == 0
    assert report["baseline"]["task_set"] == ["synth_target"]
    assert 0.0 < report["baseline"]["score"] <= 1.0
    best = report["best"]
    assert best["score"] >= report["baseline"]["score"]
    assert best["configuration"]["encoder"] == "tiny-bert"
    with open_repository(demo_db) as repo:
        runs = repo.runs(study="demo")
    assert sorted(r.trial_number for r in runs) == list(range(TRIALS))
    assert {r.status for r in runs} <= {"complete", "pruned"}
    for run in runs:
        assert run.target == "synth_target"
        assert run.scores["synth_target"]["dev"]["accuracy"] is not None or run.status == "pruned"
        assert run.task_fingerprints["synth_target"]


def test_dashboard_finds_the_demo_study_and_its_trials(demo_db: str, cli: ModuleType) -> None:
    dashboard = cli.Dashboard(demo_db)
    try:
        summary, trials = dashboard.study("demo")
    finally:
        dashboard.stop()
    assert summary["directions"] == ["maximize"]
    assert len(trials) == TRIALS
    assert {t["state"] for t in trials} <= {"Complete", "Pruned"}
    baseline = trials[0]
    attrs = {a["key"]: a["value"] for a in baseline["user_attrs"]}
    assert attrs["taskgraph:role"] == "baseline"
    assert any(p["name"] == "aux/synth_related" for p in baseline["params"])
    assert baseline["intermediate_values"]  # the pruner's curve: one value per evaluation


def test_run_again_is_a_no_op_on_a_finished_study(demo_db: str, cli: ModuleType) -> None:
    done = cli.taskgraph(
        "study",
        "run",
        "searchspaces/demo.yaml",
        "--storage",
        demo_db,
        "--trials",
        str(TRIALS),
        "--json",
        "--quiet",
    )
    assert f'"n_done": {TRIALS}' in done.stdout and '"stopped_because": "budget"' in done.stdout
    assert len(cli.show("demo", demo_db)["gains"]) <= TRIALS
