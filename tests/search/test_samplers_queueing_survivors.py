"""Sampler building (:mod:`taskgraph.search.samplers`) and the queue planner
(:mod:`taskgraph.search.queueing`) where the other tests left them open.

Samplers: a fixed seed (0 included) makes every sampler reproducible, its inner TPE too; the
graph and bandit samplers' inner TPE is the multivariate one ``sampler: tpe`` builds, with the
spec's ``n_startup_trials``; each ``sampler.options`` value of the wrong type, ``null``, or a
key the factory sets itself is refused by name, and ``random`` checks its options too; a
sampler's own refusal is a :class:`SpecError`; the study's screens reach only an estimator
that takes them, and never over the spec's own ``lookahead``; the graph sampler gets
``min_size``; a seeded sampler forgets a finished trial's sampler.

Queue planner (fakes for the repository and the recorder, an in-memory study): the baseline
and each row are enqueued once; a spec row of the target alone is the baseline; the data
baseline counts failed trials against ``budget.trials``, waits while a baseline runs or waits
unsampled, retries exactly ``recovery.max_retry`` times on its own data version and keeps the
row's name; a repeat's data version is that of the trial it repeats; a failed trial of the
target alone is no family's single-task run, and a family baseline is not enqueued while the
first baseline waits unsampled.
"""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import optuna
import pytest
from optuna.trial import FrozenTrial, TrialState

from taskgraph.errors import SpecError
from taskgraph.search.graph_sampler import GraphGuidedSampler
from taskgraph.search.progress import (
    CONFIG_ATTR,
    REPEATS_ATTR,
    RESULTS_ATTR,
    STATUS_ATTR,
)
from taskgraph.search.queueing import DATA_VERSION_ATTR, QueuePlanner
from taskgraph.search.repeats import RepeatFinder, repeat_held
from taskgraph.search.samplers import TrialSeededSampler, build_sampler
from taskgraph.search.space import BASELINE_ROLE, FAMILY_ATTR, ROLE_ATTR, ROW_ATTR, SearchSpace
from taskgraph.spec import StudySpec, spec_from_dict
from taskgraph.testing import SHARING_SPACES
from taskgraph.testing.queueing import (
    planner_on_data,
    run_next_trial,
    seeded_study,
    waiting_trials,
)
from taskgraph.trial import LookaheadMatrix, TrialConfig, TrialStatus
from taskgraph.vocabulary import task_set_key

optuna.logging.set_verbosity(optuna.logging.WARNING)

TASKS = ["good", "bad", "meh"]


def spec_with(**overrides: Any) -> StudySpec:
    data: dict[str, Any] = {"name": "s", "target": "tgt", "candidates": list(TASKS)}
    data.update(overrides)
    return spec_from_dict(data)


def propose(sampler: optuna.samplers.BaseSampler, n: int) -> list[tuple[Any, ...]]:
    """Return the flags and learning rates of ``n`` trials asked of ``sampler`` in turn."""
    study = optuna.create_study(direction="maximize", sampler=sampler)
    asked = []
    for _ in range(n):
        trial = study.ask()
        flags = tuple(trial.suggest_categorical(f"aux/{t}", [False, True]) for t in TASKS)
        lr = trial.suggest_float("lr", 1e-5, 1e-2, log=True)
        asked.append((flags, lr))
        study.tell(trial, 1.0 + 0.1 * sum(flags) + lr)
    return asked


# ------------------------------------------------------------------------- samplers: seeds


@pytest.mark.parametrize("name", ["gp", "graph", "bandit"])
def test_a_fixed_seed_makes_every_sampler_reproducible(name: str) -> None:
    # `test_sampler_seeds` covers tpe and random; gp, graph and bandit (and the TPE the
    # graph and bandit samplers use for the learning rate) were built unseeded unnoticed.
    spec = spec_with(sampler={"name": name, "seed": 5, "n_startup_trials": 2})
    assert propose(build_sampler(spec), 4) == propose(build_sampler(spec), 4)


def test_seed_zero_is_a_fixed_seed() -> None:
    # `if not seed` would have built the unseeded sampler for `seed: 0`.
    spec = spec_with(sampler={"name": "random", "seed": 0})
    sampler = build_sampler(spec)
    assert isinstance(sampler, TrialSeededSampler)
    assert propose(sampler, 3) == propose(build_sampler(spec), 3)


def test_a_seeded_sampler_forgets_the_sampler_of_a_finished_trial() -> None:
    sampler = build_sampler(spec_with(sampler={"name": "tpe", "seed": 1}))
    assert isinstance(sampler, TrialSeededSampler)
    propose(sampler, 3)
    assert sampler._by_trial == {}  # one sampler per trial for a long study: no leak


# ------------------------------------------------------- samplers: the inner TPE, options


@pytest.mark.parametrize("name", ["graph", "bandit"])
def test_the_inner_sampler_is_the_multivariate_tpe_with_the_spec_start_up(name: str) -> None:
    built = build_sampler(spec_with(sampler={"name": name, "n_startup_trials": 3}))
    inner = built._independent  # type: ignore[attr-defined]
    assert isinstance(inner, optuna.samplers.TPESampler)
    assert inner._multivariate and inner._group and inner._constant_liar
    assert inner._n_startup_trials == 3  # "as with `sampler: tpe`"


def test_tpe_takes_n_startup_trials_zero_from_its_options() -> None:
    tpe = build_sampler(spec_with(sampler={"name": "tpe", "options": {"n_startup_trials": 0}}))
    assert tpe._n_startup_trials == 0  # type: ignore[attr-defined]


def test_gp_options_win_over_the_factory_defaults() -> None:
    gp = build_sampler(
        spec_with(sampler={"name": "gp", "options": {"warn_independent_sampling": True}})
    )
    assert gp._warn_independent_sampling is True  # type: ignore[attr-defined]
    assert build_sampler(spec_with(sampler="gp"))._warn_independent_sampling is False  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("sampler", "message"),
    [
        ({"name": "tpe", "options": {"n_ei_candidates": None}}, r"n_ei_candidates: expected an integer, got None"),
        ({"name": "tpe", "options": {"n_ei_candidates": True}}, r"n_ei_candidates: expected an integer, got True"),
        ({"name": "graph", "options": {"acquisition": ["ei"]}}, r"acquisition: expected a string, got \['ei'\]"),
        ({"name": "tpe", "options": {"seed": 3}}, r"options\.seed: TPESampler takes it from the spec"),
        ({"name": "graph", "options": {"target": "x"}}, r"options\.target: GraphGuidedSampler takes it from the spec"),
        ({"name": "random", "options": {"n_startup_trials": 3}}, r"options\.n_startup_trials: unknown option of RandomSampler"),
        ({"name": "bandit", "options": {"alpha": -1.0}}, r"^sampler\.options: `alpha` and `beta` must be > 0"),
    ],
)  # fmt: skip
def test_a_bad_sampler_option_is_a_spec_error_naming_it(
    sampler: dict[str, Any], message: str
) -> None:
    with pytest.raises(SpecError, match=message):
        build_sampler(spec_with(sampler=sampler))


def test_the_graph_sampler_gets_min_size() -> None:
    graph = build_sampler(
        spec_with(sampler="graph", search={"auxiliaries": {"min_size": 2, "max_size": 3}})
    )
    assert isinstance(graph, GraphGuidedSampler)
    assert (graph.min_size, graph.max_size) == (2, 3)


def _matrix() -> LookaheadMatrix:
    return LookaheadMatrix(tasks=["tgt", "good"], values=[[0.0, 0.1], [0.2, 0.0]], n_probes=3)


def test_the_study_screens_reach_only_an_estimator_that_takes_them() -> None:
    # `pairwise` has no `lookahead`: given the screens it failed to build.
    spec = spec_with(sampler={"name": "graph", "options": {"estimator": "pairwise"}})
    graph = build_sampler(spec, lookahead=[_matrix()])
    assert isinstance(graph, GraphGuidedSampler)
    assert "lookahead" not in graph.estimator_options


def test_the_spec_own_lookahead_is_not_replaced_by_the_study_screens() -> None:
    options = {"estimator": "setfn", "estimator_options": {"lookahead": []}}
    graph = build_sampler(
        spec_with(sampler={"name": "graph", "options": options}), lookahead=[_matrix()]
    )
    assert isinstance(graph, GraphGuidedSampler)
    assert graph.estimator_options["lookahead"] == []


# ------------------------------------------------------------------------ the queue planner


def _queue_spec(**overrides: Any) -> StudySpec:
    data: dict[str, Any] = {
        "name": "qp",
        "target": "tgt",
        "candidates": ["good", "meh"],
        "search": {"sharing": ["hard"], "learning_rate": [1e-4, 1e-3]},
        "sampler": {"name": "random", "seed": 0},
        "seeds": 1,
        "budget": {"trials": 20, "baselines": "one"},
        "recovery": {"max_retry": 1},
    }
    data.update(overrides)
    return spec_from_dict(data)


def _trials(study: optuna.Study) -> list[FrozenTrial]:
    return study.get_trials(deepcopy=False)


WITH_GOOD = {"aux/good": True, "aux/meh": False}
ROWS = [
    {"name": "alone", "auxiliaries": [], "params": {"learning_rate": 1e-3}},
    {"name": "joint", "auxiliaries": ["good"]},
]


def test_the_baseline_and_each_row_are_enqueued_once_and_a_row_alone_is_the_baseline() -> None:
    planner, space = planner_on_data(_queue_spec(rows=ROWS))
    study = seeded_study()
    planner.fill(study, _trials(study))
    first, joint = waiting_trials(study)
    # The row of the target alone is the baseline, with its own parameters; not enqueued twice.
    assert first.user_attrs == {ROW_ATTR: "alone", ROLE_ATTR: BASELINE_ROLE}
    assert first.system_attrs["fixed_params"]["learning_rate"] == 1e-3
    assert joint.user_attrs == {ROW_ATTR: "joint"}
    run_next_trial(study, space)  # the baseline trains; the driver stops; the study is reopened
    planner.fill(study, _trials(study))
    assert [t.user_attrs.get(ROW_ATTR) for t in waiting_trials(study)] == ["joint"]
    run_next_trial(study, space)
    planner.fill(study, _trials(study))
    assert waiting_trials(study) == []


def test_the_data_baseline_keeps_the_row_name_of_the_first_baseline() -> None:
    planner, space = planner_on_data(_queue_spec(rows=ROWS[:1]), current="v2", prints={0: "v1"})
    study = seeded_study()
    planner.enqueue_baseline(study)
    run_next_trial(study, space)
    assert planner.enqueue_data_baseline(study, _trials(study))
    (waiting,) = waiting_trials(study)
    assert waiting.user_attrs == {
        ROLE_ATTR: BASELINE_ROLE, DATA_VERSION_ATTR: "v2", ROW_ATTR: "alone"
    }  # fmt: skip


@pytest.mark.parametrize(("trials", "enqueued"), [(3, False), (4, True)])
def test_failed_trials_count_against_the_budget_of_the_data_baseline(
    trials: int, enqueued: bool
) -> None:
    # The baseline and two failed trials: three of the budget done.
    spec = _queue_spec(budget={"trials": trials, "baselines": "one"})
    planner, space = planner_on_data(spec, current="v2", prints={0: "v1"})
    study = seeded_study()
    planner.enqueue_baseline(study)
    run_next_trial(study, space)
    run_next_trial(study, space, WITH_GOOD, {}, state="failed")
    run_next_trial(study, space, WITH_GOOD, {}, state="failed")
    assert planner.enqueue_data_baseline(study, _trials(study)) is enqueued
    assert len(waiting_trials(study)) == int(enqueued)


def test_no_data_baseline_while_one_runs_or_an_unsampled_baseline_waits() -> None:
    planner, space = planner_on_data(_queue_spec(), current="v2", prints={0: "v1"})
    study = seeded_study()
    planner.enqueue_baseline(study)
    run_next_trial(study, space)
    assert planner.enqueue_data_baseline(study, _trials(study))
    study.ask()  # the data baseline runs, not sampled yet
    assert not planner.enqueue_data_baseline(study, _trials(study))
    assert waiting_trials(study) == []


def test_an_unsampled_first_baseline_waiting_holds_back_the_data_baseline() -> None:
    # A lost first baseline re-queued: it will train on the current data.
    planner, space = planner_on_data(_queue_spec(), current="v2", prints={0: "v1"})
    study = seeded_study()
    planner.enqueue_baseline(study)
    run_next_trial(study, space)
    study.enqueue_trial(space.baseline_params(), user_attrs=space.baseline_user_attrs())
    assert not planner.enqueue_data_baseline(study, _trials(study))
    assert len(waiting_trials(study)) == 1


def test_the_data_baseline_retries_max_retry_times_on_its_own_version() -> None:
    # Two failures on v2 do not count against v3's baseline; one on v3 is retried once.
    planner, space = planner_on_data(_queue_spec(), current="v3", prints={0: "v1"})
    study = seeded_study()
    planner.enqueue_baseline(study)
    run_next_trial(study, space)
    old = {ROLE_ATTR: BASELINE_ROLE, DATA_VERSION_ATTR: "v2"}
    run_next_trial(study, space, {}, old, state="failed")
    run_next_trial(study, space, {}, old, state="failed")
    assert planner.enqueue_data_baseline(study, _trials(study))
    run_next_trial(study, space, state="failed")
    assert planner.enqueue_data_baseline(study, _trials(study))  # the retry
    assert waiting_trials(study)[0].user_attrs[DATA_VERSION_ATTR] == "v3"
    run_next_trial(study, space, state="failed")
    assert not planner.enqueue_data_baseline(study, _trials(study))  # given up on


def test_a_repeated_baseline_is_on_the_data_of_the_trial_it_repeats() -> None:
    # Trial 1 repeats trial 0 (no runs of its own): both on v1, so v2 has no baseline yet.
    planner, space = planner_on_data(_queue_spec(), current="v2", prints={0: "v1"})
    study = seeded_study()
    planner.enqueue_baseline(study)
    first = run_next_trial(study, space)
    run_next_trial(study, space, {}, space.baseline_user_attrs(), repeats=first)
    assert planner.enqueue_data_baseline(study, _trials(study))


CAPPED = {"mixing": {"max_examples": {"tgt": [50, 100]}}}


def test_a_failed_trial_of_the_target_alone_is_no_single_task_run_of_its_family() -> None:
    planner, space = planner_on_data(
        _queue_spec(search=CAPPED, budget={"trials": 20, "baselines": "per_family"})
    )
    study = seeded_study()
    run_next_trial(study, space, {**space.baseline_params(), "max_examples/tgt": 50},
           space.baseline_user_attrs())  # fmt: skip
    run_next_trial(study, space, {**WITH_GOOD, "max_examples/tgt": 100}, {})
    run_next_trial(study, space, {"aux/good": False, "aux/meh": False, "max_examples/tgt": 100}, {},
           state="failed")  # fmt: skip
    assert planner.enqueue_family_baselines(study)
    (waiting,) = waiting_trials(study)
    assert waiting.system_attrs["fixed_params"]["max_examples/tgt"] == 100


def test_no_family_baseline_while_the_first_baseline_waits_unsampled() -> None:
    planner, space = planner_on_data(_queue_spec(budget={"trials": 20, "baselines": "per_family"}))
    study = seeded_study()
    run_next_trial(study, space, WITH_GOOD, {})
    planner.enqueue_baseline(study)
    assert not planner.enqueue_family_baselines(study)
    assert len(waiting_trials(study)) == 1  # the first baseline, whose family is not known yet


def _per_family_on_v2() -> tuple[QueuePlanner, SearchSpace, optuna.Study]:
    """A per-family study whose first baseline trained on v1; the target's data is v2 now."""
    spec = _queue_spec(budget={"trials": 20, "baselines": "per_family"}, recovery={"max_retry": 0})
    planner, space = planner_on_data(spec, current="v2", prints={0: "v1"})
    study = seeded_study()
    planner.enqueue_baseline(study)
    run_next_trial(study, space)
    return planner, space, study


def test_a_pruned_trial_asks_no_family_baseline() -> None:
    planner, space, study = _per_family_on_v2()
    run_next_trial(study, space, WITH_GOOD, {}, state="pruned")
    assert not planner.enqueue_family_baselines(study)
    run_next_trial(study, space, WITH_GOOD, {})
    assert planner.enqueue_family_baselines(study)  # a complete one does


def test_family_baseline_failures_on_old_data_do_not_count_on_the_new() -> None:
    planner, space, study = _per_family_on_v2()
    # Its family baseline on v1 failed and was given up on (max_retry 0).
    family = planner._family(_trials(study)[0])
    old = {ROLE_ATTR: BASELINE_ROLE, FAMILY_ATTR: family, DATA_VERSION_ATTR: "v1"}
    run_next_trial(study, space, {}, old, state="failed")
    run_next_trial(study, space, WITH_GOOD, {})
    assert planner.enqueue_family_baselines(study)
    assert waiting_trials(study)[0].user_attrs[DATA_VERSION_ATTR] == "v2"


def test_an_interrupted_family_baseline_covers_nothing() -> None:
    planner, space, study = _per_family_on_v2()
    family = planner._family(_trials(study)[0])
    lost = {ROLE_ATTR: BASELINE_ROLE, FAMILY_ATTR: family, DATA_VERSION_ATTR: "v2"}
    run_next_trial(study, space, {}, lost, state="interrupted")
    run_next_trial(study, space, WITH_GOOD, {})
    assert planner.enqueue_family_baselines(study)


# ------------------------------------------------------------------------------- repeats


PRINTS = {"tgt": "v1", "good": "g1"}


class _Runs:
    """``runs``: the study's recorded complete runs, as the repository filters them."""

    def __init__(self, runs: list[SimpleNamespace]) -> None:
        self.recorded = runs

    def runs(self, **filters: Any) -> list[SimpleNamespace]:
        return list(self.recorded)


class _Prints:
    """``task_metadata``: each task's dataset fingerprint now (:data:`PRINTS`)."""

    def task_metadata(self, task_set: tuple[str, ...]) -> tuple[dict[str, str], dict[str, str]]:
        return {t: PRINTS[t] for t in task_set}, {}


def _joint_config() -> TrialConfig:
    spec = _queue_spec(rows=[{"name": "joint", "auxiliaries": ["good"],
                              "params": {"learning_rate": 1e-3}}])  # fmt: skip
    return SearchSpace(spec=spec, sharing_spaces=SHARING_SPACES).row_config(spec.rows[0])


def _finder(config: TrialConfig, *trained: int) -> RepeatFinder:
    """A finder whose repository holds a complete run on the data now for each of ``trained``."""
    runs = [
        SimpleNamespace(trial_number=n, task_fingerprints=dict(PRINTS), seed=config.seed,
                        target=config.target)
        for n in trained
    ]  # fmt: skip
    return RepeatFinder(study_name="qp", repository=_Runs(runs), recorder=_Prints())  # type: ignore[arg-type]


def _told(
    config: TrialConfig,
    *,
    state: TrialState = TrialState.COMPLETE,
    status: str = "complete",
    results: bool = True,
    attrs: dict[str, Any] | None = None,
) -> FrozenTrial:
    """Return a finished trial that stored ``config``, told ``state``, its status ``status``."""
    user_attrs = {CONFIG_ATTR: config.to_dict(), STATUS_ATTR: status, **(attrs or {})}
    if results:
        user_attrs[RESULTS_ATTR] = [{"stored": "runs"}]  # a database's before system attrs
    return optuna.trial.create_trial(
        state=state, value=0.5 if state == TrialState.COMPLETE else None, user_attrs=user_attrs
    )


def test_the_latest_trial_with_the_configuration_is_the_one_repeated() -> None:
    # Trial 1 repeated trial 0 (it has no runs of its own): the next repeat names trial 1.
    config = _joint_config()
    study = seeded_study()
    study.add_trial(_told(config))
    study.add_trial(_told(config, attrs={REPEATS_ATTR: 0}))
    found = _finder(config, 0).same_configuration(study, 2, config)
    assert found is not None and found.number == 1


@pytest.mark.parametrize(
    "trial",
    [
        # Ray Tune reports a trial its scheduler stopped as COMPLETE; its status says pruned.
        {"status": "pruned"},
        # It finished training but was never told (the driver died): it is retried.
        {"state": TrialState.FAIL},
        # Complete, but its runs were never stored: nothing to tell again.
        {"results": False},
    ],
    ids=["pruned", "untold", "no-runs"],
)
def test_only_a_complete_told_trial_with_its_runs_is_repeated(trial: dict[str, Any]) -> None:
    config = _joint_config()
    study = seeded_study()
    study.add_trial(_told(config, **trial))
    assert _finder(config, 0).same_configuration(study, 1, config) is None
    study.add_trial(_told(config))  # the same configuration, complete, told: repeated
    found = _finder(config, 0, 1).same_configuration(study, 2, config)
    assert found is not None and found.number == 1


def test_a_trial_data_is_that_of_its_run_of_the_configuration_seed() -> None:
    # A file edited during trial 0: its first seed's run read the data as it is now, its
    # second seed's the old data.  The configuration (first seed) was trained on the data now.
    config = _joint_config()
    runs = [
        SimpleNamespace(trial_number=0, task_fingerprints=dict(PRINTS), seed=config.seed,
                        target=config.target),
        SimpleNamespace(trial_number=0, task_fingerprints={**PRINTS, "tgt": "v0"},
                        seed=config.seed + 1, target=config.target),
    ]  # fmt: skip
    finder = RepeatFinder(study_name="qp", repository=_Runs(runs), recorder=_Prints())  # type: ignore[arg-type]
    study = seeded_study()
    study.add_trial(_told(config))
    found = finder.same_configuration(study, 1, config)
    assert found is not None and found.number == 0


def _run(config: TrialConfig, status: TrialStatus = TrialStatus.COMPLETE) -> SimpleNamespace:
    return SimpleNamespace(config=config, result=SimpleNamespace(status=status))


def test_a_run_is_held_only_for_its_own_seed_and_data() -> None:
    config = _joint_config()
    key = (config.model_config_hash(), task_set_key(config.task_set), config.target, config.seed)
    held = {key: [dict(PRINTS)]}
    assert repeat_held(_run(config), held, data=PRINTS)
    assert repeat_held(_run(config), held, data=None)  # a repeat: on any data
    # Trained on other data: a new measurement, written.
    assert not repeat_held(_run(config), held, data={**PRINTS, "tgt": "v2"})
    # Another seed's run of the configuration is not this one's record.
    other = replace(config, seed=config.seed + 1)
    assert not repeat_held(_run(other), held, data=PRINTS)
    # Only a complete run is held by another's.
    assert not repeat_held(_run(config, TrialStatus.FAILED), held, data=PRINTS)


def test_a_waiting_settings_baseline_of_the_first_family_holds_back_the_data_baseline() -> None:
    # Under per_setting its `taskgraph:family` carries `/settings:<hash>`; its family is the
    # first baseline's all the same, and it trains on the data now.
    spec = _queue_spec(budget={"trials": 20, "baselines": "per_setting"})
    planner, space = planner_on_data(spec, current="v2", prints={0: "v1"})
    study = seeded_study()
    study.enqueue_trial({**space.baseline_params(), "learning_rate": 1e-4},
                        user_attrs=space.baseline_user_attrs())  # fmt: skip
    run_next_trial(study, space)
    run_next_trial(study, space, {**WITH_GOOD, "learning_rate": 1e-3}, {})
    assert planner.enqueue_family_baselines(study)
    (waiting,) = waiting_trials(study)
    assert "/settings:" in waiting.user_attrs[FAMILY_ATTR]
    assert not planner.enqueue_data_baseline(study, _trials(study))
    assert len(waiting_trials(study)) == 1
