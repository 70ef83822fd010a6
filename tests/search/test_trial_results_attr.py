"""Where a trial's per-seed runs are kept: a system attribute now, a user attribute before."""

from __future__ import annotations

import optuna
from optuna.distributions import FloatDistribution

from taskgraph.search.progress import RESULTS_ATTR, trial_results

RUNS = [{"config": {"target": "t"}, "result": {"status": "complete"}}]


def frozen(*, user: dict | None = None, system: dict | None = None) -> optuna.trial.FrozenTrial:
    trial = optuna.trial.create_trial(
        params={"x": 0.5},
        distributions={"x": FloatDistribution(0, 1)},
        value=0.5,
        user_attrs=user or {},
        system_attrs=system or {},
    )
    return trial


def test_results_are_read_from_the_system_attributes_and_from_older_user_attributes() -> None:
    assert trial_results(frozen(system={RESULTS_ATTR: RUNS})) == RUNS
    assert trial_results(frozen(user={RESULTS_ATTR: RUNS})) == RUNS  # a database written before
    assert trial_results(frozen()) is None
    assert trial_results(frozen(system={RESULTS_ATTR: []})) == []  # stored, with no run


def test_a_retry_inherits_the_system_attribute() -> None:
    # The retry of a trial killed after its runs were stored reuses them: Optuna's retry
    # callback copies system attributes (as it copied the user attribute before).
    from taskgraph.search.heartbeat import RetryStaleTrial

    study = optuna.create_study()
    study.add_trial(frozen(system={RESULTS_ATTR: RUNS}))
    RetryStaleTrial(max_retry=0)(study, study.trials[0])
    retry = study.trials[-1]
    assert retry.state == optuna.trial.TrialState.WAITING
    assert trial_results(retry) == RUNS and retry.system_attrs["failed_trial"] == 0
