"""A configuration proposed again after a task's data changed is trained again, not repeated.

The same configuration is the same training only on the same data: a trial on an edited file
(or another ``--data`` directory) that reused an earlier trial's value reported a score
measured on the old data as if measured now.  The fake evaluator's tasks carry the dataset
fingerprints a runner gives (``source_fingerprints``): ``v1``, then ``v2`` for the target.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import optuna

from taskgraph.search.engine import StudyEngine
from taskgraph.search.progress import REPEATS_ATTR
from taskgraph.spec import StudySpec, spec_from_dict
from taskgraph.storage import open_repository

V1 = {"tgt": "v1", "good": "g1"}
V2 = {"tgt": "v2", "good": "g1"}


def _spec(trials: int) -> StudySpec:
    # One candidate, nothing else searched: two configurations, so trials repeat them.
    return spec_from_dict(
        {
            "name": "dv",
            "target": "tgt",
            "objective": {"metric": "accuracy"},
            "candidates": ["good"],
            "search": {"auxiliaries": {"min_size": 0, "max_size": 1}},
            "sampler": {"name": "random", "seed": 0},
            "pruner": "none",
            "seeds": 1,
            "budget": {"trials": trials, "max_failures": 0},
        }
    )


def _run(url: str, fakes: ModuleType, trials: int, prints: dict[str, str]) -> Any:
    evaluator = fakes.FakeEvaluator()
    engine = StudyEngine(
        spec=_spec(trials),
        storage_url=url,
        evaluator=evaluator,
        sharing_spaces=fakes.SHARING_SPACES,
        source_fingerprints=prints,
    )
    try:
        engine.run()
    finally:
        engine.close()
    return evaluator


def _key(trial: optuna.trial.FrozenTrial) -> tuple[Any, ...]:
    return tuple(sorted(trial.params.items()))


def test_a_configuration_trained_on_other_data_is_trained_again_and_recorded(
    storage_url: str, fakes: ModuleType
) -> None:
    _run(storage_url, fakes, 4, V1)
    first = optuna.load_study(study_name="dv", storage=storage_url).trials
    evaluator = _run(storage_url, fakes, 10, V2)
    trials = optuna.load_study(study_name="dv", storage=storage_url).trials
    later = trials[len(first) :]
    assert len(later) == 6
    old_keys = {_key(t) for t in first}
    assert any(_key(t) in old_keys for t in later)  # the sampler proposed them again
    for trial in later:
        earlier = trial.user_attrs.get(REPEATS_ATTR)
        # never a repeat of a trial on the old data; repeats on the new data still are
        assert earlier is None or earlier >= len(first), (trial.number, earlier)
    distinct = {_key(t) for t in later}
    assert len(evaluator.calls) == len(distinct)  # each trained once on the new data
    assert any(REPEATS_ATTR in t.user_attrs for t in later)  # and repeated on it after
    with open_repository(storage_url) as repo:
        runs = repo.runs(study="dv")
    on_v2 = {r.trial_number for r in runs if r.task_fingerprints.get("tgt") == "v2"}
    trained = {t.number for t in later if REPEATS_ATTR not in t.user_attrs}
    assert on_v2 == trained  # recorded beside the old runs, with the new fingerprint
    assert {r.trial_number for r in runs if r.task_fingerprints.get("tgt") == "v1"} == {
        t.number for t in first if REPEATS_ATTR not in t.user_attrs
    }
    # Opening again on the new data repairs nothing: every trained run is recorded once.
    engine = StudyEngine(
        spec=_spec(10), storage_url=storage_url, evaluator=fakes.FakeEvaluator(),
        sharing_spaces=fakes.SHARING_SPACES, source_fingerprints=V2,
    )  # fmt: skip
    try:
        engine.open()
        assert engine.reconcile() == 0
    finally:
        engine.close()
    with open_repository(storage_url) as repo:
        assert len(repo.runs(study="dv")) == len(runs)


def test_on_unchanged_data_a_later_run_still_repeats(storage_url: str, fakes: ModuleType) -> None:
    _run(storage_url, fakes, 4, V1)
    first = optuna.load_study(study_name="dv", storage=storage_url).trials
    evaluator = _run(storage_url, fakes, 8, V1)
    trials = optuna.load_study(study_name="dv", storage=storage_url).trials
    old_keys = {_key(t) for t in first}
    later = trials[len(first) :]
    assert all(_key(t) in old_keys for t in later)  # two configurations, both seen
    assert evaluator.calls == []  # nothing trained again on the same data
    assert all(REPEATS_ATTR in t.user_attrs for t in later)


def test_opening_again_writes_a_lost_run_on_the_new_data(
    storage_url: str, fakes: ModuleType
) -> None:
    # A run trained on the new data and lost before it was written (a crash) is written when
    # the study is opened again, although the same configuration's run on the old data is
    # held: that one is another measurement, not this one.
    import sqlite3

    _run(storage_url, fakes, 4, V1)
    _run(storage_url, fakes, 10, V2)
    with open_repository(storage_url) as repo:
        runs = repo.runs(study="dv")
    on_v1 = {(r.model_config_hash, r.task_set) for r in runs if r.task_fingerprints["tgt"] == "v1"}
    lost = next(
        r
        for r in runs
        if r.task_fingerprints["tgt"] == "v2" and (r.model_config_hash, r.task_set) in on_v1
    )
    with sqlite3.connect(storage_url.removeprefix("sqlite:///")) as connection:
        connection.execute("delete from tg_scores where run_id = ?", (lost.id,))
        connection.execute("delete from tg_runs where id = ?", (lost.id,))
    engine = StudyEngine(
        spec=_spec(10), storage_url=storage_url, evaluator=fakes.FakeEvaluator(),
        sharing_spaces=fakes.SHARING_SPACES, source_fingerprints=V2,
    )  # fmt: skip
    try:
        engine.open()
        # open() repairs first: the lost run is back, with the new fingerprint
        assert engine.reconcile() == 0
    finally:
        engine.close()
    with open_repository(storage_url) as repo:
        back = [r for r in repo.runs(study="dv") if r.trial_number == lost.trial_number]
    assert [r.task_fingerprints["tgt"] for r in back] == ["v2"]
