"""The queue planner outside an engine: fakes of what it reads and a trial run as the engine
runs one, for tests of :class:`~taskgraph.search.queueing.QueuePlanner`."""

from __future__ import annotations

from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from taskgraph.search.progress import CONFIG_ATTR, FAILURE_ATTR, REPEATS_ATTR
from taskgraph.search.queueing import QueuePlanner
from taskgraph.search.space import SUBSET_ATTR, SearchSpace
from taskgraph.spec import StudySpec
from taskgraph.testing.fakes import SHARING_SPACES

__all__ = [
    "finished_subset_trial",
    "planner_on_data",
    "run_next_trial",
    "seeded_study",
    "waiting_trials",
]


class _Repository:
    """``trial_fingerprints``: the target's data version each trial's runs recorded."""

    def __init__(self, prints: dict[int, str | None]) -> None:
        self.prints = prints

    def trial_fingerprints(self, study: str, task: str) -> dict[int, str | None]:
        return dict(self.prints)


class _Recorder:
    """``task_metadata``: every task's data version now is ``current``."""

    def __init__(self, current: str) -> None:
        self.current = current

    def task_metadata(self, task_set: tuple[str, ...]) -> tuple[dict[str, str], dict[str, str]]:
        return {t: self.current for t in task_set}, {}


def planner_on_data(
    spec: StudySpec, *, current: str = "v1", prints: dict[int, str | None] | None = None
) -> tuple[QueuePlanner, SearchSpace]:
    """Return a planner of ``spec`` (and its search space) whose tasks' data is at version
    ``current`` now and whose trials' runs recorded the versions ``prints`` (by number)."""
    space = SearchSpace(spec=spec, sharing_spaces=SHARING_SPACES)
    planner = QueuePlanner(
        spec=spec,
        space=space,
        repository=_Repository(prints or {}),  # type: ignore[arg-type]
        recorder=_Recorder(current),  # type: ignore[arg-type]
    )
    return planner, space


def seeded_study() -> optuna.Study:
    """Return an in-memory study that maximises, sampled by a seeded random sampler."""
    return optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))


def run_next_trial(
    study: optuna.Study,
    space: SearchSpace,
    params: dict[str, Any] | None = None,
    attrs: dict[str, Any] | None = None,
    *,
    state: str = "complete",
    repeats: int | None = None,
) -> int:
    """Run the next trial as the engine does (enqueued with ``params`` and ``attrs`` when
    given, else the first waiting one): its configuration stored, then told ``state``
    (``complete``, ``failed`` with a reason, ``interrupted``: failed without one, or
    ``pruned``); return its number."""
    if params is not None or attrs is not None:
        study.enqueue_trial(params or {}, user_attrs=attrs or {})
    trial = study.ask()
    trial.set_user_attr(CONFIG_ATTR, space.suggest(trial).to_dict())
    if repeats is not None:
        trial.set_user_attr(REPEATS_ATTR, repeats)
    if state == "failed":
        trial.set_user_attr(FAILURE_ATTR, "fake failure: out of memory")
        study.tell(trial, state=TrialState.FAIL)
    elif state == "interrupted":  # failed without a reason: lost, not evaluated
        study.tell(trial, state=TrialState.FAIL)
    elif state == "pruned":
        study.tell(trial, state=TrialState.PRUNED)
    else:
        study.tell(trial, 0.5)
    return trial.number


def waiting_trials(study: optuna.Study) -> list[FrozenTrial]:
    """Return ``study``'s waiting (enqueued, not yet asked) trials."""
    return study.get_trials(deepcopy=False, states=(TrialState.WAITING,))


def finished_subset_trial(
    subset: list[str], value: float, *, flags: str = "abc", **attrs: Any
) -> FrozenTrial:
    """Return a complete trial of ``subset`` (its stored auxiliaries), one ``aux/<t>`` flag per
    candidate in ``flags``, for a sampler to read."""
    flag = optuna.distributions.CategoricalDistribution([False, True])
    return optuna.trial.create_trial(
        params={f"aux/{t}": t in subset for t in flags},
        distributions={f"aux/{t}": flag for t in flags},
        value=value,
        user_attrs={SUBSET_ATTR: subset, **attrs},
        state=TrialState.COMPLETE,
    )
