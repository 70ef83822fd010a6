"""The study progress that ``taskgraph study progress`` shows: the best, ties, the remainder."""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState, create_trial

from taskgraph.search.progress import (
    FAILURE_ATTR,
    INTERRUPTED_ATTR,
    STATUS_ATTR,
    TrialStep,
    progress_of,
)
from taskgraph.search.space import BASELINE_ROLE, FAMILY_ATTR, ROLE_ATTR


def _trials(*specs: tuple[TrialState, float, dict[str, str]]) -> list[optuna.trial.FrozenTrial]:
    """Return the trials of an in-memory study, numbered 0, 1, ... in the order given."""
    study = optuna.create_study(direction="maximize")
    for state, value, attrs in specs:
        study.add_trial(create_trial(state=state, value=value, user_attrs=attrs))
    return study.get_trials(deepcopy=False)


def test_best_is_taken_from_complete_trials_only() -> None:
    trials = _trials(
        (TrialState.COMPLETE, 0.6, {}),
        (TrialState.PRUNED, 0.9, {}),
        (TrialState.COMPLETE, 0.95, {STATUS_ATTR: "pruned"}),
    )
    progress = progress_of(trials, name="s", direction="maximize", budget=10)
    assert (progress.n_complete, progress.n_pruned) == (1, 2)
    assert progress.best_value == 0.6
    assert progress.best_number == 0


def test_to_dict_best_trial_is_the_best_not_the_baseline() -> None:
    trials = _trials(
        (TrialState.COMPLETE, 0.5, {}),
        (TrialState.COMPLETE, 0.7, {}),
    )
    progress = progress_of(trials, name="s", direction="maximize", budget=10)
    assert progress.best_number == 1
    # without a baseline attribute the baseline is None: the best trial must still be named
    assert progress.to_dict()["best_trial"] == 1
    assert progress.to_dict()["best_value"] == 0.7


def test_ties_go_to_the_earlier_trial() -> None:
    trials = _trials(
        (TrialState.COMPLETE, 0.5, {}),
        (TrialState.COMPLETE, 0.8, {}),
        (TrialState.COMPLETE, 0.8, {}),
    )
    progress = progress_of(trials, name="s", direction="maximize", budget=10)
    assert (progress.best_value, progress.best_number) == (0.8, 1)
    minimizing = progress_of(
        _trials((TrialState.COMPLETE, 0.3, {}), (TrialState.COMPLETE, 0.3, {})),
        name="s",
        direction="minimize",
        budget=10,
    )
    assert (minimizing.best_value, minimizing.best_number) == (0.3, 0)


def test_remaining_is_never_negative() -> None:
    trials = _trials(*[(TrialState.COMPLETE, 0.1 * i, {}) for i in range(3)])
    progress = progress_of(trials, name="s", direction="maximize", budget=2)
    assert progress.n_done == 3
    assert progress.remaining == 0


def _study_trials(
    *specs: tuple[TrialState, float | None, dict[str, object], dict[str, object]],
) -> list[optuna.trial.FrozenTrial]:
    """Like :func:`_trials`, with system attributes too (Optuna's ``retry_history``)."""
    study = optuna.create_study(direction="maximize")
    for state, value, attrs, system in specs:
        study.add_trial(
            create_trial(state=state, value=value, user_attrs=attrs, system_attrs=system)
        )
    return study.get_trials(deepcopy=False)


def test_failed_interrupted_retried_running_and_waiting_are_counted_apart() -> None:
    trials = _study_trials(
        (TrialState.COMPLETE, 0.5, {}, {}),
        (TrialState.FAIL, None, {FAILURE_ATTR: "ValueError: boom"}, {}),  # evaluated: counts
        (TrialState.FAIL, None, {INTERRUPTED_ATTR: True}, {}),  # Ctrl-C: does not count
        # killed after its failure reason was stored: the retry (4) runs it again
        (TrialState.FAIL, None, {FAILURE_ATTR: "killed"}, {}),
        (TrialState.WAITING, None, {}, {"retry_history": [3]}),
        (TrialState.RUNNING, None, {}, {}),
        (TrialState.PRUNED, None, {}, {}),
    )
    progress = progress_of(trials, name="s", direction="maximize", budget=6)
    counts = progress.to_dict()
    assert {k: counts[k] for k in counts if k.startswith("n_")} == {
        "n_done": 3,
        "n_complete": 1,
        "n_pruned": 1,
        "n_failed": 1,
        "n_interrupted": 2,
        "n_running": 1,
        "n_waiting": 1,
    }
    assert progress.remaining == 3


def test_minimizing_the_best_is_the_lowest() -> None:
    trials = _trials(
        (TrialState.COMPLETE, 0.5, {}),
        (TrialState.COMPLETE, 0.3, {}),
        (TrialState.COMPLETE, 0.4, {}),
    )
    progress = progress_of(trials, name="s", direction="minimize", budget=10)
    assert (progress.best_value, progress.best_number) == (0.3, 1)


def test_the_baseline_is_the_first_complete_first_baseline() -> None:
    baseline = {ROLE_ATTR: BASELINE_ROLE}
    trials = _study_trials(
        (TrialState.PRUNED, None, baseline, {}),  # not complete: no baseline
        (TrialState.COMPLETE, 0.9, {**baseline, FAMILY_ATTR: "other"}, {}),  # another family's
        (TrialState.COMPLETE, 0.4, baseline, {}),
        (TrialState.COMPLETE, 0.6, baseline, {}),  # a later one does not replace it
    )
    progress = progress_of(trials, name="s", direction="maximize", budget=10)
    assert (progress.baseline_value, progress.baseline_number) == (0.4, 2)
    assert progress.to_dict()["baseline_trial"] == 2


def test_a_step_past_max_steps_fills_its_phase_and_seed_only() -> None:
    step = TrialStep(step=40, max_steps=20, phase_index=0, n_phases=2, seed_index=0, n_seeds=2)
    assert step.fraction == pytest.approx(0.25)
    assert TrialStep(step=5, max_steps=0).fraction == 0.0
