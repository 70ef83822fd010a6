"""study_report: gains in the direction of improvement, baseline, best, failures."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState, create_trial

from taskgraph.search.engine import StudyEngine
from taskgraph.search.progress import STATUS_ATTR
from taskgraph.search.report import study_report
from taskgraph.search.trial_rows import trial_row
from taskgraph.spec import spec_from_dict


def run_fake(url: str, fakes: ModuleType, **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "rep",
        "target": "tgt",
        "candidates": ["good", "bad", "boom"],
        "sampler": {"name": "random", "seed": 2},
        "budget": {"trials": 6},
    }
    data.update(overrides)
    engine = StudyEngine(
        spec=spec_from_dict(data),
        storage_url=url,
        evaluator=fakes.FakeEvaluator(fail_with=["boom"]),
        sharing_spaces=fakes.SHARING_SPACES,
    )
    engine.run()
    report = study_report(engine.require_study())
    engine.close()
    return report


@pytest.mark.parametrize("direction", ["maximize", "minimize"])
def test_gains_point_in_the_direction_of_improvement(
    storage_url: str, fakes: ModuleType, direction: str
) -> None:
    report = run_fake(storage_url, fakes, objective={"direction": direction})
    base = report["baseline"]["score"]
    assert base == pytest.approx(0.5)
    sign = 1 if direction == "maximize" else -1
    for row in report["gains"]:
        assert row["measured_absolute_gain"] == pytest.approx(sign * (row["value"] - base))
        assert row["measured_relative_gain"] == pytest.approx(row["measured_absolute_gain"] / base)
        assert "boom" not in row["auxiliaries"]
    values = [row["value"] for row in report["gains"]]
    assert values == sorted(values, reverse=direction == "maximize")  # best first
    assert report["best"]["score"] == values[0]
    best_gain = max(row["measured_absolute_gain"] for row in report["gains"])
    assert report["best"]["measured_absolute_gain"] == best_gain
    assert "gain" not in report["best"]  # one word for two numbers: named apart
    assert report["n_complete"] + report["n_failed"] == 6
    assert len(report["failures"]) == report["n_failed"]


def test_each_trial_names_the_settings_it_and_the_baseline_differ_in(
    storage_url: str, fakes: ModuleType
) -> None:
    # The baseline samples a searched learning rate too: a trial that drew another one has
    # that change in its measured gain, and the report says so per trial.
    report = run_fake(storage_url, fakes, search={"learning_rate": {"low": 1e-5, "high": 1e-3}})
    assert len(report["gains"]) >= 3
    for row in report["gains"]:
        if row["trial"] == report["baseline"]["trial"]:
            assert row["differs_from_baseline"] == []
        else:
            assert row["differs_from_baseline"] == ["learning_rate"], row
    assert report["best"]["differs_from_baseline"] is not None
    fixed = run_fake(storage_url.replace(".db", "2.db"), fakes, search={"learning_rate": 1e-4})
    assert all(row["differs_from_baseline"] == [] for row in fixed["gains"])


def test_pruned_trials_have_no_value_or_gain_and_cannot_be_best() -> None:
    study = optuna.create_study(direction="maximize")
    study.add_trial(create_trial(state=TrialState.COMPLETE, value=0.6))
    study.add_trial(create_trial(state=TrialState.PRUNED, value=0.9))
    # Ray Tune reports a trial its scheduler stopped as COMPLETE; the true state is the attribute
    study.add_trial(
        create_trial(state=TrialState.COMPLETE, value=0.95, user_attrs={STATUS_ATTR: "pruned"})
    )
    trials = study.get_trials(deepcopy=False)
    for pruned in trials[1:]:
        row = trial_row(pruned, baseline=0.5, direction="maximize")
        assert row["state"] == "pruned"
        assert row["value"] is None
        assert row["measured_absolute_gain"] is None
        assert row["measured_relative_gain"] is None
    report = study_report(study)
    assert report["best"]["trial"] == 0
    assert report["best"]["score"] == 0.6
    assert [row["trial"] for row in report["gains"]] == [0]


@pytest.mark.parametrize(
    ("direction", "value", "absolute", "relative"),
    [("maximize", -1.0, 1.0, 0.5), ("minimize", -3.0, 1.0, 0.5)],
)
def test_relative_gain_over_a_negative_baseline_keeps_the_sign_of_the_gain(
    direction: str, value: float, absolute: float, relative: float
) -> None:
    study = optuna.create_study(direction=direction)
    study.add_trial(create_trial(state=TrialState.COMPLETE, value=value))
    row = trial_row(study.get_trials()[0], baseline=-2.0, direction=direction)
    assert row["measured_absolute_gain"] == pytest.approx(absolute)
    # an improvement is a positive relative gain even when the baseline score is negative
    assert row["measured_relative_gain"] == pytest.approx(relative)
