"""Evidence maximisation and the screen's application layer: the cases a mutation audit of
``affinity/evidence.py`` and ``app/screening.py`` found untested.

The application tests read synthetic screens and runs written straight into a records database
(no training), except one real screen of a tiny study (tiny-bert, 2 steps, 1 probe).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from taskgraph.affinity.evidence import fit_evidence
from taskgraph.app.screening import (
    screen_report,
    screen_study,
    screen_summary,
    screen_tables,
    study_trial_cost,
)
from taskgraph.cli.app import app
from taskgraph.errors import ConfigError, SpecError, TaskgraphError
from taskgraph.runners.builtin import LocalRunner
from taskgraph.spec import spec_from_dict
from taskgraph.spec.limits import MAX_STEPS
from taskgraph.storage import open_repository
from taskgraph.testing import run_fake_study, tiny_training_spec, write_rising_table
from taskgraph.trial import Cost, LookaheadMatrix, Objective, TrialConfig, TrialResult, TrialStatus

NAN = math.nan

TINY = tiny_training_spec()


# --- evidence.py ----------------------------------------------------------------------------


def _shared_pattern() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (phi in the eigenbasis, y, eigenvalues) of ten parameters that are alike."""
    rng = np.random.default_rng(1)
    n = 10
    eigvals, eigvecs = np.linalg.eigh(np.full((n, n), 0.95) + 0.05 * np.eye(n))
    w = rng.normal() + 0.05 * rng.normal(size=n)
    phi = np.eye(n).repeat(3, axis=0)
    y = phi @ w + rng.normal(0, 0.1, size=len(phi))
    return phi @ eigvecs, y, eigvals


def test_without_both_a_kernel_group_and_eigenvalues_there_is_no_kernel_weight() -> None:
    # setfn's identity kernel passes eigenvalues and no kernel group: its rho must read 0, not
    # the start value of a weight that shapes nothing.
    phi, y, eigvals = _shared_pattern()
    groups = np.zeros(len(eigvals), dtype=int)
    plain = fit_evidence(phi, y, groups=groups, n_groups=1)
    for kernel in ({"eigenvalues": eigvals}, {"kernel_group": 0}):
        fit = fit_evidence(phi, y, groups=groups, n_groups=1, **kernel)
        assert fit.rho == 0.0
        assert fit.log_evidence == pytest.approx(plain.log_evidence, rel=1e-9)


def test_negative_eigenvalues_count_as_zero() -> None:
    # eigh of a similarity that is not quite positive semi-definite gives negative eigenvalues:
    # they must not make a prior variance negative as rho nears 1.
    phi, y, eigvals = _shared_pattern()
    kwargs: dict[str, Any] = {
        "groups": np.zeros(len(eigvals), dtype=int),
        "n_groups": 1,
        "kernel_group": 0,
    }
    clipped = fit_evidence(phi, y, eigenvalues=np.where(eigvals < 1, 0.0, eigvals), **kwargs)
    negative = fit_evidence(phi, y, eigenvalues=np.where(eigvals < 1, -0.05, eigvals), **kwargs)
    assert clipped.rho > 0.9
    assert (negative.rho, negative.log_evidence) == (clipped.rho, clipped.log_evidence)


def test_a_point_that_cannot_be_evaluated_does_not_stop_the_search() -> None:
    # Two equal columns on a scale of 1e7: the posterior precision is numerically singular
    # for large variances and small noise.  The data are exact, so the evidence wants a small
    # noise; a singular point must count as bad, not as a stop at the start (noise 0.5).
    rng = np.random.default_rng(0)
    column = rng.normal(size=6)
    phi = np.column_stack([column, column, rng.normal(size=6)]) * 1e7
    y = phi @ np.array([1e-7, 1e-7, 0.5e-7])
    fit = fit_evidence(phi, y, groups=np.array([0, 0, 1]), n_groups=2)
    assert fit.noise < 0.1


# --- app/screening.py: checks before the run --------------------------------------------


class _RecordingEvaluator:
    """An evaluator that fails every run and counts them (a screen that trains nothing)."""

    def __init__(self) -> None:
        self.calls = 0

    def evaluate(self, config: Any, **_: Any) -> TrialResult:
        self.calls += 1
        return TrialResult.failed("boom")


@pytest.fixture
def recording(monkeypatch: pytest.MonkeyPatch) -> _RecordingEvaluator:
    evaluator = _RecordingEvaluator()
    monkeypatch.setattr(LocalRunner, "build_evaluator", lambda self, spec, data_dir=None: evaluator)
    return evaluator


def test_the_largest_number_of_steps_passes_the_bound(tmp_path: Path) -> None:
    # MAX_STEPS itself is allowed: the next check (the missing data directory) is the one that
    # refuses.
    with pytest.raises(ConfigError, match="data directory does not exist"):
        screen_study(
            spec_from_dict(TINY),
            storage=f"sqlite:///{tmp_path / 's.db'}",
            steps=MAX_STEPS,
            data=tmp_path / "missing",
        )


def test_a_study_of_another_spec_is_refused_before_the_screen_trains(
    tmp_path: Path, data_dir: Path, recording: _RecordingEvaluator
) -> None:
    url = run_fake_study(TINY, f"sqlite:///{tmp_path / 's.db'}")
    other = {**TINY, "candidates": ["synth_related"]}
    with pytest.raises(SpecError, match="already exists"):
        screen_study(spec_from_dict(other), storage=url, data=data_dir, steps=2, probes=1)
    assert recording.calls == 0


def test_a_failed_screen_beside_another_study_leaves_no_study(
    tmp_path: Path, data_dir: Path, recording: _RecordingEvaluator
) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    with open_repository(url) as repository:
        repository.ensure_study("other", target="t")
    with pytest.raises(TaskgraphError, match="boom"):
        screen_study(spec_from_dict(TINY), storage=url, data=data_dir, steps=2, probes=1)
    assert recording.calls == 1
    with open_repository(url) as repository:
        assert [s.name for s in repository.studies()] == ["other"]


def test_the_command_line_refusal_of_a_tabular_study_names_the_spec_file(tmp_path: Path) -> None:
    write_rising_table(tmp_path / "results.csv", ("a", "b", "c"), max_size=2)
    spec = tmp_path / "tab.yaml"
    spec.write_text(
        "name: tab\ntarget: a\ncandidates: [b, c]\n"
        "search: {auxiliaries: {max_size: 2}, sharing: [hard]}\n"
        "runner: {name: tabular, table: results.csv}\n"
    )
    result = CliRunner().invoke(
        app, ["study", "screen", str(spec), "--storage", f"sqlite:///{tmp_path / 's.db'}"]
    )
    assert result.exit_code != 0 and f"{spec}: a screen trains a model" in result.stderr


# --- app/screening.py: a real screen ---------------------------------------------------------


class _StepNumbers:
    def __init__(self) -> None:
        self.numbers: list[int] = []

    def on_trial_progress(self, number: int, step: Any) -> None:
        self.numbers.append(number)


@pytest.fixture(scope="module")
def screened(
    tmp_path_factory: pytest.TempPathFactory, data_dir: Path
) -> tuple[dict[str, Any], list[int]]:
    """Screen the tiny study (2 steps, 1 probe); return its report and the trial numbers the
    observer saw."""
    observer = _StepNumbers()
    url = f"sqlite:///{tmp_path_factory.mktemp('screen') / 's.db'}"
    report = screen_study(
        spec_from_dict(TINY), storage=url, data=data_dir, steps=2, probes=1, observer=observer
    )
    return report, observer.numbers


def test_the_joint_run_reports_its_steps_as_the_screen(
    screened: tuple[dict[str, Any], list[int]],
) -> None:
    # -1: the number a display shows for the screen; 0 would be the study's first trial.
    _, numbers = screened
    assert numbers and set(numbers) == {-1}


def test_the_report_of_a_real_screen_reads_as_stored(
    screened: tuple[dict[str, Any], list[int]],
) -> None:
    report, _ = screened
    assert report["n_candidates"] == len(report["candidates"]) == 2
    score = report["target_score"]
    assert isinstance(score, float)
    # The study names no metric: its objective; the split is the spec's.
    assert screen_summary(report).endswith(
        f"; synth_target objective on dev after the joint run: {score:.4f}"
    )
    [(_, _, rows)] = screen_tables(report)  # a target-only screen: the ranking alone
    assert {row["stderr"] for row in rows} == {"-"}  # one probe: no standard error


# --- app/screening.py: stored screens and trials ---------------------------------------------

OBJECTIVE = Objective(metric="f1", split="dev", direction="maximize")


def _screen(
    repository: Any,
    tasks: list[str],
    values: list[list[float]],
    *,
    seconds: float,
    details: dict[str, Any],
) -> None:
    config = TrialConfig(target="t", auxiliaries=tuple(tasks[1:]), objective=OBJECTIVE)
    result = TrialResult(
        status=TrialStatus.COMPLETE,
        cost=Cost(seconds=seconds, total_steps=8),
        lookahead=LookaheadMatrix(tasks=tasks, values=values, n_probes=4),
    )
    repository.add_screen(study="s", config=config, result=result, details=details)


def _run(repository: Any, number: int, seed: int, seconds: float, *, failed: bool = False) -> None:
    auxiliaries = () if number == 0 else ("a",)
    config = TrialConfig(target="t", auxiliaries=auxiliaries, seed=seed, objective=OBJECTIVE)
    scores = {task: {"dev": {"f1": 0.5}} for task in config.task_set}
    result = (
        TrialResult.failed("boom", cost=Cost(seconds=seconds))
        if failed
        else TrialResult(
            status=TrialStatus.COMPLETE, scores=scores, objective=0.5, cost=Cost(seconds=seconds)
        )
    )
    repository.add_run_result(study="s", trial_number=number, config=config, result=result)


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Return the URL of study ``s`` (target ``t``): two trials of two seeds, a failed run, an
    old target-only screen (-1, details as stored before probes_asked) and a full-matrix
    screen (-2) whose task ``x`` has no effect on the target."""
    url = f"sqlite:///{tmp_path_factory.mktemp('stored') / 's.db'}"
    with open_repository(url) as repository:
        repository.ensure_study("s", target="t", spec={"target": "t"})
        _run(repository, 0, 0, 10.0)
        _run(repository, 0, 1, 14.0)
        _run(repository, 1, 0, 20.0)
        _run(repository, 1, 1, 28.0)
        _run(repository, 2, 0, 500.0, failed=True)
        _screen(
            repository,
            ["t", "a", "b"],
            [[NAN] * 3, [0.1, NAN, NAN], [0.3, NAN, NAN]],
            seconds=36.0,
            details={"steps": 8, "probes": 4},
        )
        full = [
            [NAN, 0.2, 0.4, 0.6],
            [0.5, NAN, 0.7, 0.8],
            [0.2, 0.9, NAN, 0.1],
            [NAN, 0.3, 0.35, NAN],
        ]
        _screen(
            repository,
            ["t", "a", "b", "x"],
            full,
            seconds=72.0,
            details={"steps": 8, "probes": 4, "probes_asked": 4, "full_matrix": True},
        )
    return url


def test_the_trial_cost_sums_each_trials_seeds_over_complete_trials(stored: str) -> None:
    # Trials 0 (10 + 14 s) and 1 (20 + 28 s): 36 s a trial, 18 s a run; the failed run and
    # the screens do not count.
    assert study_trial_cost("s", storage=stored) == (36.0, 18.0)


def test_screen_report_gives_the_latest_screen_or_the_one_asked(stored: str) -> None:
    latest = screen_report("s", storage=stored)
    assert (latest["screen"], latest["full_matrix"]) == (-2, True)
    first = screen_report("s", storage=stored, screen=-1)
    assert first["screen"] == -1
    assert [c["candidate"] for c in first["candidates"]] == ["b", "a"]
    # Stored before probes_asked and full_matrix were: the probes that ran, no matrix table.
    assert (first["cost"]["probes_asked"], first["full_matrix"]) == (4, False)
    assert first["cost"]["trials_equivalent"] == pytest.approx(1.0)  # 36 s, one trial's worth
    assert latest["cost"]["trials_equivalent"] == pytest.approx(2.0)
    assert len(screen_tables(first)) == 1


def test_the_full_matrix_table_puts_the_source_on_the_row(stored: str) -> None:
    report = screen_report("s", storage=stored)
    [_, (_, columns, cells)] = screen_tables(report)
    # x is no candidate (it has no effect on t) but a measured task: a row and column of its own.
    assert columns == ["step on", "t", "a", "b", "x"]
    by_source = {row["step on"]: row for row in cells}
    assert (by_source["a"]["b"], by_source["b"]["a"]) == ("+0.7000", "+0.9000")
    assert (by_source["x"]["t"], by_source["t"]["x"]) == ("-", "+0.6000")


def test_the_cost_line_says_what_it_does_not_know_and_a_gap_of_one_step() -> None:
    report = {
        "target": "t",
        "target_score": None,
        "cost": {
            "seconds": 5.0,
            "steps": None,
            "probes": 2,
            "probes_asked": 3,
            "lookahead_every": 1,
            "trials_equivalent": None,
        },
    }
    assert screen_summary(report) == "cost: 5 s, ? steps, 2 probes (3 asked; one every step)"


def test_a_trial_with_a_failed_seed_is_not_priced_as_a_complete_trial(tmp_path: Path) -> None:
    # Trial 1's seed 0 completed, its seed 1 failed: the trial failed, and its one complete
    # seed is no trial of 20 s (it made the price 22 s, and a screen more trials' worth).
    url = f"sqlite:///{tmp_path / 's.db'}"
    with open_repository(url) as repository:
        repository.ensure_study("s", target="t", spec={"target": "t", "seeds": 2})
        _run(repository, 0, 0, 10.0)
        _run(repository, 0, 1, 14.0)
        _run(repository, 1, 0, 20.0)
        _run(repository, 1, 1, 9.0, failed=True)
    assert study_trial_cost("s", storage=url) == (24.0, 12.0)
