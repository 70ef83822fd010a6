"""The study progress that ``taskgraph study progress`` shows: the best, ties, the remainder."""

from __future__ import annotations

import optuna
from optuna.trial import TrialState, create_trial

from taskgraph.search.progress import STATUS_ATTR, progress_of


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
