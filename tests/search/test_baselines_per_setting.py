"""`budget.baselines: per_setting`: a baseline for each set of alone settings the trials reach.

A study that searches the learning rate samples its first baseline's own, so a trial that drew
another measured that change besides the transfer (``GainTable.mixed_settings``).  With
``per_setting`` the study trains the target alone with each trial's settings, and gains
compare like with like (``compute_gains`` takes the baseline runs trained as the set was).
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import optuna
from optuna.trial import TrialState

from taskgraph.affinity.gains import compute_gains
from taskgraph.search.engine import StudyEngine
from taskgraph.search.progress import CONFIG_ATTR
from taskgraph.search.queueing import QueuePlanner
from taskgraph.search.space import BASELINE_ROLE, FAMILY_ATTR, ROLE_ATTR, SearchSpace
from taskgraph.spec import spec_from_dict
from taskgraph.storage import open_repository
from taskgraph.trial import TrialConfig


def _run(url: str, fakes: ModuleType, baselines: str) -> list[Any]:
    spec = spec_from_dict(
        {
            "name": baselines,
            "target": "tgt",
            "candidates": ["good", "meh"],
            "search": {
                "sharing": ["hard", "soft"],  # one task: both the plain model
                "learning_rate": [1e-4, 1e-3],
                "auxiliaries": {"min_size": 1},
            },
            "sampler": {"name": "random", "seed": 3},
            "budget": {"trials": 10, "baselines": baselines},
            "seeds": 1,
        }
    )
    engine = StudyEngine(
        spec=spec,
        storage_url=url,
        evaluator=fakes.FakeEvaluator(),
        sharing_spaces=fakes.SHARING_SPACES,
    )
    engine.run()
    engine.close()
    return optuna.load_study(study_name=baselines, storage=url).trials


def _settings(trial: Any) -> str:
    config = TrialConfig.from_dict(trial.user_attrs[CONFIG_ATTR])
    return str(sorted(config.alone_settings().items()))


def test_each_setting_a_trial_reaches_gets_its_baseline(storage_url: str, fakes: ModuleType):
    trials = _run(storage_url, fakes, "per_setting")
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    baselines = [t for t in complete if t.user_attrs.get(ROLE_ATTR) == BASELINE_ROLE]
    searched = [t for t in complete if t.user_attrs.get(ROLE_ATTR) != BASELINE_ROLE]
    assert searched and len(trials) == 10
    rates = {t.params["learning_rate"] for t in searched}
    assert rates == {1e-4, 1e-3}  # both drawn, so the first baseline cannot match them all
    assert {_settings(t) for t in searched} <= {_settings(t) for t in baselines}
    assert len(baselines) == 2  # one per learning rate; soft sharing alone is hard's model
    with open_repository(storage_url) as repo:
        records = repo.score_records(study="per_setting", target="tgt", split="dev")
    table = compute_gains(records)
    assert table.gains and table.mixed_settings == []


def test_per_family_keeps_one_baseline_and_says_the_gains_mix(storage_url: str, fakes: ModuleType):
    trials = _run(storage_url, fakes, "per_family")
    baselines = [t for t in trials if t.user_attrs.get(ROLE_ATTR) == BASELINE_ROLE]
    assert len(baselines) == 1
    with open_repository(storage_url) as repo:
        records = repo.score_records(study="per_family", target="tgt", split="dev")
    table = compute_gains(records)
    assert {names for *_, names in table.mixed_settings} == {("learning_rate",)}


def test_study_show_measures_each_trial_against_its_settings_baseline(
    storage_url: str, fakes: ModuleType
):
    from taskgraph.search.report import study_report

    _run(storage_url, fakes, "per_setting")
    study = optuna.load_study(study_name="per_setting", storage=storage_url)
    report = study_report(study)
    by_number = {t.number: t for t in study.trials}
    rows = [r for r in report["gains"] if r["auxiliaries"]]
    assert rows
    for row in rows:
        base = by_number[row["baseline_trial"]]
        assert base.user_attrs.get(ROLE_ATTR) == BASELINE_ROLE
        assert base.params["learning_rate"] == by_number[row["trial"]].params["learning_rate"]
        assert row["differs_from_baseline"] == []


# One architecture whose single-task model is not the plain one, its parameter searched: the
# spec fixes ``sharing`` (never an Optuna parameter), but ``mmoe/num_experts`` is.
MMOE_SPACES = {"mmoe": {"num_experts": {"type": "int", "low": 2, "high": 8}}}


def _mmoe_space() -> SearchSpace:
    spec = spec_from_dict(
        {
            "name": "mmoe",
            "target": "tgt",
            "candidates": ["good"],
            "search": {"sharing": {"mmoe": {"num_experts": {"low": 2, "high": 8}}}},
            "sampler": {"name": "random", "seed": 0},
            "seeds": 1,
            "budget": {"trials": 20, "baselines": "per_setting"},
        }
    )
    return SearchSpace(spec=spec, sharing_spaces=MMOE_SPACES)


def test_a_single_architectures_parameters_are_settings_of_the_baseline() -> None:
    space = _mmoe_space()
    assert space.searched_alone_settings() == ["mmoe/num_experts"]
    params = {"aux/good": True, "mmoe/num_experts": 8, "learning_rate": 1e-3}
    assert space.setting_params(params) == {"mmoe/num_experts": 8, "learning_rate": 1e-3}
    fixed, attrs = space.family_baseline(params, "F/settings:x", settings=True)
    assert fixed == {"aux/good": False, "mmoe/num_experts": 8, "learning_rate": 1e-3}
    assert attrs == {ROLE_ATTR: BASELINE_ROLE, FAMILY_ATTR: "F/settings:x"}
    # Without ``per_setting`` the baseline samples its own.
    assert space.family_baseline(params, "F", settings=False)[0] == {"aux/good": False}


class _Repository:
    def trial_fingerprints(self, study: str, task: str) -> dict[int, str | None]:
        return {}  # no runs recorded yet: every trial trained on the current data


class _Recorder:
    def task_metadata(self, task_set: tuple[str, ...]) -> tuple[dict[str, str], dict[str, str]]:
        return {t: "v1" for t in task_set}, {}


def test_a_single_architectures_setting_gets_one_baseline() -> None:
    from taskgraph.search.report import study_report

    space = _mmoe_space()
    planner = QueuePlanner(
        spec=space.spec,
        space=space,
        repository=_Repository(),  # type: ignore[arg-type]
        recorder=_Recorder(),  # type: ignore[arg-type]
    )
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))

    def train(
        params: dict[str, Any] | None = None, attrs: dict[str, Any] | None = None
    ) -> optuna.Trial:
        if params is not None:
            study.enqueue_trial(params, user_attrs=attrs)
        trial = study.ask()
        trial.set_user_attr(CONFIG_ATTR, space.suggest(trial).to_dict())
        study.tell(trial, 0.7 if trial.user_attrs.get(ROLE_ATTR) is None else 0.5)
        return trial

    def waiting() -> list[Any]:
        return study.get_trials(deepcopy=False, states=(TrialState.WAITING,))

    first = train({"aux/good": False, "mmoe/num_experts": 5}, space.baseline_user_attrs())
    joint = train({"aux/good": True, "mmoe/num_experts": 8})
    planner.fill(study, study.get_trials(deepcopy=False))
    (queued,) = waiting()
    assert queued.system_attrs["fixed_params"] == {"aux/good": False, "mmoe/num_experts": 8}
    baseline = train()
    assert baseline.params["mmoe/num_experts"] == 8
    planner.fill(study, study.get_trials(deepcopy=False))
    assert waiting() == []  # the setting has its baseline: nothing more spends the budget
    (row,) = [r for r in study_report(study)["gains"] if r["trial"] == joint.number]
    assert row["baseline_trial"] == baseline.number != first.number
    assert row["differs_from_baseline"] == []
