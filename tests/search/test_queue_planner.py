"""What :class:`QueuePlanner` enqueues, checked on an in-memory study.

The repository and the recorder are stubs: ``trial_fingerprints`` gives the data version each
trial's runs recorded (a trial missing from it has no runs recorded yet), ``task_metadata``
the target's data version now.
"""

from __future__ import annotations

from typing import Any

import optuna
from optuna.trial import FrozenTrial

from taskgraph.search.queueing import DATA_VERSION_ATTR
from taskgraph.search.space import BASELINE_ROLE, FAMILY_ATTR, ROLE_ATTR, SearchSpace
from taskgraph.spec import StudySpec, spec_from_dict
from taskgraph.testing.queueing import (
    planner_on_data,
    run_next_trial,
    seeded_study,
    waiting_trials,
)


def _spec(baselines: str = "one", *, max_retry: int = 3) -> StudySpec:
    return spec_from_dict(
        {
            "name": "qp",
            "target": "tgt",
            "candidates": ["good", "meh"],
            "search": {"sharing": ["hard"], "learning_rate": [1e-4, 1e-3]},
            "sampler": {"name": "random", "seed": 0},
            "seeds": 1,
            "budget": {"trials": 20, "baselines": baselines},
            "recovery": {"max_retry": max_retry},
        }
    )


def _train(
    study: optuna.Study,
    space: SearchSpace,
    params: dict[str, Any] | None = None,
    attrs: dict[str, Any] | None = None,
    *,
    failed: bool = False,
) -> int:
    """Run the next trial as the engine does (the waiting one, or one enqueued with ``params``
    and ``attrs``): its configuration stored, then told complete or failed."""
    assert (params is None and attrs is None) == bool(waiting_trials(study))
    return run_next_trial(study, space, params, attrs, state="failed" if failed else "complete")


def _trials(study: optuna.Study) -> list[FrozenTrial]:
    return study.get_trials(deepcopy=False)


ALONE = {"aux/good": False, "aux/meh": False}
WITH_GOOD = {"aux/good": True, "aux/meh": False}


def test_a_baseline_whose_retry_completed_is_not_queued_again() -> None:
    planner, space = planner_on_data(_spec(max_retry=3))
    study = seeded_study()
    planner.enqueue_baseline(study)
    _train(study, space, failed=True)
    assert planner.fill(study, _trials(study)) and len(waiting_trials(study)) == 1  # the retry
    _train(study, space)
    planner.fill(study, _trials(study))  # reopened: one failure, then a complete retry
    assert waiting_trials(study) == []


def test_a_complete_baseline_without_recorded_runs_is_on_the_current_data() -> None:
    planner, space = planner_on_data(_spec(), current="v2", prints={})
    study = seeded_study()
    planner.enqueue_baseline(study)
    _train(study, space)
    assert not planner.enqueue_data_baseline(study, _trials(study))
    planner.fill(study, _trials(study))
    assert waiting_trials(study) == []


def test_per_setting_baselines_are_enqueued_when_the_study_opens() -> None:
    planner, space = planner_on_data(_spec("per_setting"))
    study = seeded_study()
    _train(study, space, {**ALONE, "learning_rate": 1e-4}, space.baseline_user_attrs())
    _train(study, space, {**WITH_GOOD, "learning_rate": 1e-3})
    planner.fill(study, _trials(study))  # reopened: the trial's settings have no baseline
    (waiting,) = waiting_trials(study)
    assert waiting.user_attrs[ROLE_ATTR] == BASELINE_ROLE and FAMILY_ATTR in waiting.user_attrs
    assert waiting.system_attrs["fixed_params"]["learning_rate"] == 1e-3  # the trial's setting


def test_the_family_step_sees_the_baseline_the_retry_step_enqueued() -> None:
    planner, space = planner_on_data(_spec("per_family", max_retry=1))
    study = seeded_study()
    planner.enqueue_baseline(study)
    _train(study, space, failed=True)
    _train(study, space, WITH_GOOD)
    planner.fill(study, _trials(study))
    # the baseline's retry only: the family's baseline is that retry (not one besides)
    (waiting,) = waiting_trials(study)
    assert waiting.user_attrs == {ROLE_ATTR: BASELINE_ROLE}


def test_a_target_alone_trial_does_not_stand_for_a_family_with_a_baseline() -> None:
    # The first baseline trained on v1; on v2 a trial of the target alone and one with an
    # auxiliary completed: the family's baseline on v2 is still missing.
    planner, space = planner_on_data(_spec("per_family"), current="v2")
    study = seeded_study()
    planner.enqueue_baseline(study)
    first = _train(study, space)
    alone = _train(study, space, ALONE, {})
    joint = _train(study, space, WITH_GOOD)
    planner.repository.prints = {first: "v1", alone: "v2", joint: "v2"}  # type: ignore[attr-defined]
    assert planner.enqueue_family_baselines(study)
    (waiting,) = waiting_trials(study)
    assert waiting.user_attrs[DATA_VERSION_ATTR] == "v2"


def test_trials_on_old_data_ask_no_family_baseline() -> None:
    planner, space = planner_on_data(_spec("per_family"), current="v2")
    study = seeded_study()
    planner.enqueue_baseline(study)
    first = _train(study, space)
    joint = _train(study, space, WITH_GOOD)
    planner.repository.prints = {first: "v1", joint: "v1"}  # type: ignore[attr-defined]
    # no baseline can train on v1 any more; the data baseline is another step's
    assert not planner.enqueue_family_baselines(study)
    assert waiting_trials(study) == []
