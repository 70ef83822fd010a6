"""Switching ``budget.baselines`` between runs of one study trains no baseline twice.

``budget`` is not part of a study's search hash, so a study run with ``per_family`` may be
resumed with ``per_setting`` and back.  A baseline trial's ``taskgraph:family`` attribute is
the key of the mode it was enqueued under; read as the key of the mode in force it never
matched, so the study enqueued another baseline of a configuration it already had (a repeat
costing a budget trial) or of a family that already had its baselines.  A sampled baseline
is now keyed by its configuration under the mode in force.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import optuna

from taskgraph.search.engine import StudyEngine
from taskgraph.search.progress import CONFIG_ATTR, REPEATS_ATTR
from taskgraph.search.space import BASELINE_ROLE, ROLE_ATTR
from taskgraph.spec import spec_from_dict
from taskgraph.trial import TrialConfig


def _run(url: str, fakes: ModuleType, baselines: str, trials: int) -> list[Any]:
    spec = spec_from_dict(
        {
            "name": "switch",
            "target": "tgt",
            "candidates": ["good", "meh"],
            "search": {
                "learning_rate": [1e-4, 1e-3],
                # two families: each needs a baseline of its own under either mode
                "mixing": {"max_examples": {"tgt": [50, 100]}},
                "auxiliaries": {"min_size": 1},
            },
            "sampler": {"name": "random", "seed": 3},
            "pruner": "none",
            "budget": {"trials": trials, "baselines": baselines},
            "seeds": 1,
        }
    )
    engine = StudyEngine(
        spec=spec, storage_url=url, evaluator=fakes.FakeEvaluator(),
        sharing_spaces=fakes.SHARING_SPACES,
    )  # fmt: skip
    try:
        engine.run()
    finally:
        engine.close()
    return optuna.load_study(study_name="switch", storage=url).trials


def _baselines(trials: list[Any]) -> list[Any]:
    return [
        t
        for t in trials
        if t.user_attrs.get(ROLE_ATTR) == BASELINE_ROLE
        and t.state == optuna.trial.TrialState.COMPLETE
    ]


def _config(trial: Any) -> TrialConfig:
    return TrialConfig.from_dict(trial.user_attrs[CONFIG_ATTR])


def test_per_setting_after_per_family_trains_no_baseline_it_has(
    storage_url: str, fakes: ModuleType
) -> None:
    first = _run(storage_url, fakes, "per_family", 12)
    assert len({_config(t).family_key() for t in _baselines(first)}) == 2  # both families
    trials = _run(storage_url, fakes, "per_setting", 22)
    baselines = _baselines(trials)
    settings = [_config(t).setting_family_key() for t in baselines]
    assert len(settings) == len(set(settings)), settings  # none trained twice
    assert not any(REPEATS_ATTR in t.user_attrs for t in baselines)
    # and each trial's settings have their baseline (what per_setting is for)
    searched = [
        t for t in trials if t.state == optuna.trial.TrialState.COMPLETE and t not in baselines
    ]
    assert {_config(t).setting_family_key() for t in searched} <= set(settings)


def test_per_family_after_per_setting_adds_no_baseline_to_a_family_that_has_one(
    storage_url: str, fakes: ModuleType
) -> None:
    first = _run(storage_url, fakes, "per_setting", 16)
    families = {_config(t).family_key() for t in _baselines(first)}
    assert len(families) == 2
    trials = _run(storage_url, fakes, "per_family", 24)
    later = [t for t in trials[len(first) :] if t.user_attrs.get(ROLE_ATTR) == BASELINE_ROLE]
    assert later == [], [(t.number, t.user_attrs) for t in later]
