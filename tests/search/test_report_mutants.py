"""study_report and trial_row edge cases: which baseline, how many gains, who has not converged.

Each test pins one documented behaviour that a changed line of ``taskgraph/search/report.py``
or ``trial_rows.py`` would break (a mutation audit found none of them asserted).
"""

from __future__ import annotations

from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from taskgraph.search.progress import CONFIG_ATTR, FAILURE_ATTR, RESULTS_ATTR, SPEC_ATTR
from taskgraph.search.report import study_report
from taskgraph.search.space import BASELINE_ROLE, FAMILY_ATTR, ROLE_ATTR, SearchSpace
from taskgraph.search.trial_rows import CONVERGENCE_TOLERANCE, convergence, trial_row
from taskgraph.spec import spec_from_dict


class Study:
    """A hand-built study: each trial enqueued with its parameters, role and outcome."""

    def __init__(self, **spec: Any) -> None:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        data: dict[str, Any] = {"name": "rep", "target": "tgt", "candidates": ["a", "b"]}
        data.update(spec)
        parsed = spec_from_dict(data)
        self.space = SearchSpace(spec=parsed, sharing_spaces={"hard": {}})
        self.study = optuna.create_study(
            direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0)
        )
        self.study.set_user_attr(SPEC_ATTR, parsed.model_dump(mode="json"))

    def add(
        self,
        params: dict[str, Any],
        value: float | None,
        *,
        attrs: dict[str, Any] | None = None,
        curves: list[list[float]] | None = None,
    ) -> int:
        """Add a trial (``value`` None: it failed); ``curves``: its seeds' evaluations."""
        self.study.enqueue_trial({"aux/a": False, "aux/b": False, **params}, user_attrs=attrs)
        trial = self.study.ask()
        trial.set_user_attr(CONFIG_ATTR, self.space.suggest(trial).to_dict())
        if curves:
            runs = [
                {
                    "result": {
                        "objective": curve[-1],
                        "intermediate": [[10 * (i + 1), v] for i, v in enumerate(curve)],
                    }
                }
                for curve in curves
            ]
            trial.set_user_attr(RESULTS_ATTR, runs)
        if value is None:
            trial.set_user_attr(FAILURE_ATTR, "boom")
            self.study.tell(trial, state=TrialState.FAIL)
        else:
            self.study.tell(trial, value)
        return trial.number

    def baseline(self, value: float | None, **params: Any) -> int:
        return self.add(params, value, attrs={ROLE_ATTR: BASELINE_ROLE})


def test_seed_noise_is_never_below_the_tolerance() -> None:
    # Two seeds that agree to 0.001 at the end and rose by 0.005 at the last evaluation: the
    # seeds' spread (sd 0.0007) is no noise floor; the rise is within the tolerance.
    curves = [[0.5, 0.6, 0.605], [0.5, 0.6, 0.604]]
    runs = [{"result": {"objective": c[-1], "intermediate": list(enumerate(c))}} for c in curves]
    trial = optuna.trial.create_trial(value=0.6045, user_attrs={RESULTS_ATTR: runs})
    curve = convergence(trial, direction="maximize")
    assert curve is not None
    assert curve["rise"] == pytest.approx(0.0045)
    assert curve["noise"] == CONVERGENCE_TOLERANCE
    assert curve["converged"] is True
    # ... and so in the study's report
    study = Study()
    study.baseline(0.5)
    number = study.add({"aux/a": True}, 0.6045, curves=curves)
    report = study_report(study.study)
    assert [g["converged"] for g in report["gains"] if g["trial"] == number] == [True]
    assert report["not_converged"] == []


def test_the_reports_baseline_is_the_complete_rerun_of_a_failed_first_baseline() -> None:
    study = Study()
    failed = study.baseline(None)
    rerun = study.baseline(0.5)
    trial = study.add({"aux/a": True}, 0.6)
    report = study_report(study.study)
    assert report["baseline"]["trial"] == rerun != failed
    assert report["baseline"]["score"] == 0.5
    gain = next(g for g in report["gains"] if g["trial"] == trial)
    assert gain["baseline_trial"] == rerun
    assert gain["measured_absolute_gain"] == pytest.approx(0.1)


def test_a_trial_is_measured_against_the_newest_baseline_of_its_own_settings() -> None:
    study = Study(
        candidates=["a"],
        search={"learning_rate": [1e-4, 1e-3]},
        budget={"trials": 10, "baselines": "per_setting"},
    )
    first = study.baseline(0.5, learning_rate=1e-3)
    again = study.add(
        {"learning_rate": 1e-3}, 0.55, attrs={ROLE_ATTR: BASELINE_ROLE, FAMILY_ATTR: "x"}
    )
    study.add({"learning_rate": 1e-4}, 0.4, attrs={ROLE_ATTR: BASELINE_ROLE, FAMILY_ATTR: "x"})
    trial = study.add({"aux/a": True, "learning_rate": 1e-3}, 0.7)
    report = study_report(study.study)
    assert report["baseline"]["trial"] == first
    gain = next(g for g in report["gains"] if g["trial"] == trial)
    assert gain["baseline_trial"] == again
    assert gain["measured_absolute_gain"] == pytest.approx(0.15)
    assert gain["differs_from_baseline"] == []


def test_top_keeps_that_many_gains_best_first() -> None:
    study = Study()
    study.baseline(0.5)
    study.add({"aux/a": True}, 0.7)
    study.add({"aux/b": True}, 0.6)
    study.add({"aux/a": True, "aux/b": True}, 0.8)
    full = [g["value"] for g in study_report(study.study)["gains"]]
    assert full == [0.8, 0.7, 0.6, 0.5]
    for top in (1, 2, 4, 9):
        gains = study_report(study.study, top=top)["gains"]
        assert [g["value"] for g in gains] == full[: min(top, len(full))]


def test_only_a_curve_that_still_rose_counts_as_not_converged() -> None:
    # The baseline and one trial have no curve (converged None), one trial failed, one trial
    # flattened out and one still rose by 0.1: only that one has not converged.
    study = Study()
    study.baseline(0.5)
    study.add({"aux/a": True}, 0.6)
    study.add({"aux/b": True}, None)
    study.add({"aux/a": True, "aux/b": True}, 0.602, curves=[[0.5, 0.6, 0.602]])
    rising = study.add({"aux/b": True}, 0.7, curves=[[0.5, 0.6, 0.7]])
    report = study_report(study.study)
    converged = {g["trial"]: g["converged"] for g in report["gains"]}
    assert converged == {0: None, 1: None, 3: True, rising: False}
    assert [r["trial"] for r in report["not_converged"]] == [rising]
    assert report["not_converged"][0]["rise"] == pytest.approx(0.1)


def test_an_incomplete_trials_row_names_no_baseline_trial() -> None:
    study = Study()
    failed = study.baseline(None)
    study.baseline(0.5)
    row = trial_row(
        study.study.trials[failed], baseline=0.5, direction="maximize", baseline_trial=1
    )
    assert row["state"] == "failed" and row["value"] is None
    assert row["baseline_trial"] is None
    assert row["measured_absolute_gain"] is None
    # a complete trial's row names the baseline trial it is measured against
    done = trial_row(study.study.trials[1], baseline=0.5, direction="maximize", baseline_trial=1)
    assert done["baseline_trial"] == 1
    # ... but none without a baseline score
    alone = trial_row(study.study.trials[1], baseline=None, direction="maximize", baseline_trial=1)
    assert alone["baseline_trial"] is None
