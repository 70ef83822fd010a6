"""The Ray Tune runner on a local 2-CPU Ray: same Optuna study, true states, records, budget."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import optuna
import pytest

from taskgraph.search.engine import StudyEngine
from taskgraph.search.progress import FAILURE_ATTR, trial_state
from taskgraph.search.space import BASELINE_ROLE, ROLE_ATTR
from taskgraph.spec import spec_from_dict
from taskgraph.storage import open_repository
from taskgraph.testing import OptunaRecords, audit_study, load_fakes

pytestmark = pytest.mark.ray

REPO = Path(__file__).resolve().parents[2]
TASKGRAPH = Path(sys.executable).with_name("taskgraph")


def fake_factory(spec: Any, data_dir: Any) -> Any:
    """Worker-side evaluator: the fake, failing every config that includes `boom`."""
    return load_fakes().FakeEvaluator(fail_with=["boom"], n_evals=4)


def test_fake_study_through_ray_keeps_true_states(
    tmp_path: Path, local_ray: None, optuna_at_info: OptunaRecords
) -> None:
    from taskgraph.runners.ray import RayTuneRunner

    fakes = load_fakes()
    url = f"sqlite:///{tmp_path / 'ray.db'}"
    spec = spec_from_dict(
        {
            "name": "rayfake",
            "target": "tgt",
            "candidates": ["good", "bad", "meh", "boom"],
            "search": {"sharing": ["hard", "soft"]},
            "budget": {"trials": 8, "max_failures": 8},
            "sampler": {"name": "random", "seed": 4},
            "pruner": {"name": "asha", "min_resource": 1, "reduction_factor": 2},
            "runner": {
                "name": "ray",
                "num_cpus": 2,
                "max_concurrent_trials": 2,
                "experiment_dir": str(tmp_path / "tune"),
            },
        }
    )
    engine = StudyEngine(spec=spec, storage_url=url, sharing_spaces=fakes.SHARING_SPACES)
    engine.open()
    try:
        summary = RayTuneRunner(engine=engine, evaluator_factory=fake_factory).run()
    finally:
        engine.close()
    assert summary.reason == "budget" and summary.progress.n_done == 8
    # Tune's OptunaSearch loads the study and tells each trial: no Optuna line per trial, and
    # the caller's verbosity given back.
    assert optuna_at_info.below_warning() == []
    assert optuna.logging.get_verbosity() == optuna.logging.INFO

    study = optuna.load_study(study_name="rayfake", storage=url)
    assert len(study.trials) == 8
    baseline = study.trials[0]
    assert baseline.user_attrs[ROLE_ATTR] == BASELINE_ROLE
    assert baseline.state == optuna.trial.TrialState.COMPLETE  # ASHA never stops the baseline
    assert baseline.value == pytest.approx(0.5)
    with open_repository(url) as repo:
        runs = {r.trial_number: r for r in repo.runs(study="rayfake")}
    assert sorted(runs) == list(range(8))
    for trial in study.trials:
        run = runs[trial.number]
        # Optuna and the records agree on the true state: PRUNED where Tune's ASHA stopped it.
        assert run.status == trial_state(trial)
        if run.status == "failed":
            assert "boom" in run.task_set
            assert (
                trial.user_attrs[FAILURE_ATTR] == run.failure_reason == "fake failure: loss is NaN"
            )
        if run.status == "complete":
            assert run.objective == pytest.approx(trial.value)
            assert run.objective == pytest.approx(fakes.known_objective(run.trial_config()))
    assert Counter(r.status for r in runs.values())["pruned"] >= 1


def failing_factory(spec: Any, data_dir: Any) -> Any:
    """Worker-side evaluator: the fake, failing every config with an auxiliary task."""
    return load_fakes().FakeEvaluator(fail_with=["good", "bad", "meh", "boom"], n_evals=2)


def test_ray_runner_stops_after_max_failures(tmp_path: Path, local_ray: None) -> None:
    from taskgraph.runners.ray import RayTuneRunner

    fakes = load_fakes()
    url = f"sqlite:///{tmp_path / 'ray.db'}"
    spec = spec_from_dict(
        {
            "name": "rayfails",
            "target": "tgt",
            "candidates": ["good", "bad", "meh", "boom"],
            "search": {"sharing": ["hard"], "auxiliaries": {"min_size": 1}},
            "budget": {"trials": 12, "max_failures": 1},
            "sampler": {"name": "random", "seed": 0},
            "pruner": {"name": "none"},
            "runner": {
                "name": "ray",
                "num_cpus": 2,
                "max_concurrent_trials": 1,
                "experiment_dir": str(tmp_path / "tune"),
            },
        }
    )
    engine = StudyEngine(spec=spec, storage_url=url, sharing_spaces=fakes.SHARING_SPACES)
    engine.open()
    try:
        summary = RayTuneRunner(engine=engine, evaluator_factory=failing_factory).run()
    finally:
        engine.close()
    # One trial at a time: the baseline, then failures until there is one too many.
    assert summary.reason == "max_failures"
    assert summary.progress.n_failed == 2 and summary.progress.n_done == 3
    with open_repository(url) as repo:
        assert len(repo.runs(study="rayfails")) == 3


def slow_factory(spec: Any, data_dir: Any) -> Any:
    """Worker-side evaluator: the fake, one second per evaluation."""
    return load_fakes().FakeEvaluator(n_evals=3, seconds_per_eval=1.0)


def test_wall_time_interrupts_and_resume_finishes_the_budget(
    tmp_path: Path, local_ray: None
) -> None:
    from taskgraph.runners.ray import RayTuneRunner

    fakes = load_fakes()
    url = f"sqlite:///{tmp_path / 'ray.db'}"
    data: dict[str, Any] = {
        "name": "raywall",
        "target": "tgt",
        "candidates": ["good", "bad", "meh"],
        "budget": {"trials": 6, "wall_time": 5},
        "sampler": {"name": "random", "seed": 1},
        "runner": {
            "name": "ray",
            "num_cpus": 2,
            "max_concurrent_trials": 2,
            "experiment_dir": str(tmp_path / "tune"),
        },
    }

    def run(spec_data: dict[str, Any]) -> Any:
        engine = StudyEngine(
            spec=spec_from_dict(spec_data), storage_url=url, sharing_spaces=fakes.SHARING_SPACES
        )
        engine.open()
        try:
            return RayTuneRunner(engine=engine, evaluator_factory=slow_factory).run()
        finally:
            engine.close()

    first = run(data)
    assert first.reason == "wall_time" and first.progress.n_done < 6
    study = optuna.load_study(study_name="raywall", storage=url)
    interrupted = [t for t in study.trials if trial_state(t) == "interrupted"]
    assert interrupted  # trials cut by the time budget are not counted, and are queued again
    assert all(trial_state(t) != "running" for t in study.trials)

    second = run({**data, "budget": {"trials": 6}})
    assert second.reason == "budget" and second.progress.n_done == 6
    study = optuna.load_study(study_name="raywall", storage=url)
    counted = [t for t in study.trials if trial_state(t) in ("complete", "pruned", "failed")]
    assert len(counted) == 6
    retried = {t.system_attrs.get("failed_trial") for t in study.trials} - {None}
    assert retried == {t.number for t in interrupted}
    with open_repository(url) as repo:
        runs = repo.runs(study="raywall")
    assert {r.trial_number for r in runs} <= {t.number for t in counted}
    # every counted trial recorded once (or repeating a recorded configuration), nothing twice
    audit = audit_study("raywall", url, seeds=1)
    assert (audit.lost, audit.duplicated) == (0, 0), audit


@pytest.mark.slow
def test_demo_study_through_the_ray_runner_on_2_cpus(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'demo.db'}"
    runner = json.dumps(
        {
            "name": "ray",
            "num_cpus": 2,
            "max_concurrent_trials": 2,
            "experiment_dir": str(tmp_path / "tune"),
        }
    )
    done = subprocess.run(
        [
            str(TASKGRAPH),
            "study",
            "run",
            "searchspaces/demo.yaml",
            "--storage",
            storage,
            "--trials",
            "3",
            "--set",
            f"runner={runner}",
            "--json",
            "--quiet",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["n_done"] == 3 and result["stopped_because"] == "budget"
    study = optuna.load_study(study_name="demo", storage=storage)
    assert len(study.trials) == 3
    assert study.trials[0].user_attrs[ROLE_ATTR] == BASELINE_ROLE
    with open_repository(storage) as repo:
        runs = repo.runs(study="demo")
    assert sorted(r.trial_number for r in runs) == [0, 1, 2]
    for run in runs:
        assert run.status in ("complete", "pruned"), run.failure_reason
        assert run.config["encoder"] == "tiny-bert"
        assert run.scores["synth_target"]["dev"]["accuracy"] > 0.0


def test_ray_runner_shares_the_engines_stopping_rule(tmp_path: Path, local_ray: None) -> None:
    """The graph sampler's `exhausted` stops a Ray study as it stops a local one: three valid
    sets, each run once, and the remaining budget is left unspent."""
    from taskgraph.runners.ray import RayTuneRunner

    fakes = load_fakes()
    url = f"sqlite:///{tmp_path / 'ray.db'}"
    spec = spec_from_dict(
        {
            "name": "rayexhausted",
            "target": "tgt",
            "candidates": ["good", "bad"],
            "search": {"sharing": ["hard"], "auxiliaries": {"max_size": 1}},
            "budget": {"trials": 8},
            "sampler": {"name": "graph", "seed": 0, "options": {"max_repeats": 1}},
            "pruner": {"name": "none"},
            "runner": {
                "name": "ray",
                "num_cpus": 2,
                "max_concurrent_trials": 1,
                "experiment_dir": str(tmp_path / "tune"),
            },
        }
    )
    engine = StudyEngine(spec=spec, storage_url=url, sharing_spaces=fakes.SHARING_SPACES)
    engine.open()
    try:
        summary = RayTuneRunner(engine=engine, evaluator_factory=fake_factory).run()
    finally:
        engine.close()
    assert summary.reason == "exhausted", summary.detail
    assert summary.progress.n_done == 3
    with open_repository(url) as repo:
        sets = sorted(tuple(r.task_set) for r in repo.runs(study="rayexhausted"))
    assert len(sets) == len(set(sets)) == 3
