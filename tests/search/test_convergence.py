"""`study show` flags trials whose objective was still rising at the last evaluation."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import optuna
import pytest
from typer.testing import CliRunner

from taskgraph.cli.app import app
from taskgraph.search.engine import StudyEngine
from taskgraph.search.progress import RESULTS_ATTR
from taskgraph.search.report import study_report
from taskgraph.search.trial_rows import CONVERGENCE_TOLERANCE, convergence
from taskgraph.spec import spec_from_dict


def trial_with(curves: list[list[float]]) -> optuna.trial.FrozenTrial:
    """Return a complete trial whose seeds evaluated along ``curves``."""
    runs: list[dict[str, Any]] = [
        {
            "result": {
                "status": "complete",
                "objective": max(curve),
                "intermediate": [[10 * (i + 1), v] for i, v in enumerate(curve)],
            }
        }
        for curve in curves
    ]
    return optuna.trial.create_trial(
        value=sum(max(c) for c in curves) / len(curves), user_attrs={RESULTS_ATTR: runs}
    )


def test_a_curve_still_rising_by_more_than_the_tolerance_has_not_converged() -> None:
    rising = convergence(trial_with([[0.159, 0.354]]), direction="maximize")
    assert rising == {"converged": False, "rise": pytest.approx(0.195), "noise": 0.01}
    flat = convergence(trial_with([[0.30, 0.45, 0.452]]), direction="maximize")
    assert flat is not None and flat["converged"] is True
    falling = convergence(trial_with([[0.30, 0.45, 0.40]]), direction="maximize")
    assert falling is not None and falling["converged"] is True  # early-stopping territory


def test_direction_and_seed_noise_decide() -> None:
    # A loss falling by 0.2 at the last evaluation is an objective still improving.
    loss = convergence(trial_with([[1.0, 0.8]]), direction="minimize")
    assert loss is not None and loss["converged"] is False
    # Two seeds whose final objectives differ by far more than their last rise: within noise.
    noisy = convergence(trial_with([[0.50, 0.52], [0.70, 0.72]]), direction="maximize")
    assert noisy is not None and noisy["converged"] is True
    assert noisy["noise"] == pytest.approx(0.1414, abs=1e-3)
    assert noisy["noise"] > CONVERGENCE_TOLERANCE
    # One evaluation says nothing about the slope.
    assert convergence(trial_with([[0.5]]), direction="maximize") is None


def test_the_rise_is_the_mean_over_the_seeds() -> None:
    # One seed still rising by 0.05, the other falling by 0.03: on average it rose by 0.01,
    # within the seeds' noise (best objectives 0.55 and 0.61: sd 0.042), so it converged;
    # the first seed's rise alone (0.05) would say it had not.
    mixed = convergence(trial_with([[0.50, 0.55], [0.61, 0.58]]), direction="maximize")
    assert mixed is not None
    assert mixed["rise"] == pytest.approx(0.01)
    assert mixed["noise"] == pytest.approx(0.06 / 2**0.5)
    assert mixed["converged"] is True


def test_study_show_says_which_trials_had_not_converged(
    storage_url: str, fakes: ModuleType
) -> None:
    # The fake evaluator's curve rises linearly to its final value: nothing has converged.
    spec = spec_from_dict(
        {
            "name": "conv",
            "target": "tgt",
            "candidates": ["good", "bad"],
            "sampler": {"name": "random", "seed": 1},
            "budget": {"trials": 3},
        }
    )
    engine = StudyEngine(
        spec=spec,
        storage_url=storage_url,
        evaluator=fakes.FakeEvaluator(),
        sharing_spaces=fakes.SHARING_SPACES,
    )
    engine.run()
    report = study_report(engine.require_study())
    engine.close()
    assert report["baseline"]["converged"] is False
    assert all(row["converged"] is False and row["rise"] > 0.1 for row in report["gains"])
    assert {r["trial"] for r in report["not_converged"]} == {r["trial"] for r in report["gains"]}
    result = CliRunner().invoke(app, ["study", "show", "conv", "--storage", storage_url])
    assert result.exit_code == 0, result.stderr
    assert "trial 0 (baseline): not converged: still rising (+0.1667" in result.stdout
    assert result.stdout.count("not converged: still rising") == len(report["gains"])
