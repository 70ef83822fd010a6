"""Samplers and pruners by name, and a short study with each sampler."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import optuna
import pytest

from taskgraph.affinity.records import ScoreRecord
from taskgraph.errors import SpecError
from taskgraph.search.bandit_sampler import BanditSampler
from taskgraph.search.engine import StudyEngine
from taskgraph.search.graph_sampler import GraphGuidedSampler
from taskgraph.search.samplers import (
    SAMPLERS,
    TrialSeededSampler,
    build_pruner,
    build_sampler,
)
from taskgraph.spec import PrunerSpec, spec_from_dict
from taskgraph.trial import LookaheadMatrix


def spec_with(**overrides: Any) -> Any:
    data: dict[str, Any] = {"name": "s", "target": "tgt", "candidates": ["good", "bad", "meh"]}
    data.update(overrides)
    return spec_from_dict(data)


def test_samplers_by_name() -> None:
    assert SAMPLERS.names() == ["bandit", "gp", "graph", "random", "tpe"]
    seeded = build_sampler(spec_with(sampler={"name": "tpe", "seed": 1, "n_startup_trials": 4}))
    assert isinstance(seeded, TrialSeededSampler)  # a fixed seed is derived per trial
    tpe = seeded.base
    assert isinstance(tpe, optuna.samplers.TPESampler)
    assert tpe._multivariate and tpe._group and tpe._n_startup_trials == 4
    assert isinstance(build_sampler(spec_with(sampler="gp")), optuna.samplers.GPSampler)
    assert isinstance(build_sampler(spec_with(sampler="random")), optuna.samplers.RandomSampler)
    graph = build_sampler(spec_with(sampler="graph", search={"auxiliaries": {"exclude": ["meh"]}}))
    assert isinstance(graph, GraphGuidedSampler)
    assert graph.free == ("bad", "good")
    # The graph sampler's own options do not reach its inner TPE (they once did: a TypeError).
    ei = build_sampler(spec_with(sampler={"name": "graph", "options": {"acquisition": "ei"}}))
    assert isinstance(ei, GraphGuidedSampler) and ei.acquisition == "ei"
    bandit = build_sampler(spec_with(sampler="bandit", search={"auxiliaries": {"max_size": 1}}))
    assert isinstance(bandit, BanditSampler) and bandit.high == 1


def test_sampler_options_reach_the_constructor_and_typos_are_errors() -> None:
    tpe = build_sampler(spec_with(sampler={"name": "tpe", "options": {"n_ei_candidates": 7}}))
    assert tpe._n_ei_candidates == 7  # type: ignore[attr-defined]
    with pytest.raises(SpecError, match=r"sampler\.options"):
        build_sampler(spec_with(sampler={"name": "tpe", "options": {"n_ei_candidate": 7}}))


def test_pruners_by_name() -> None:
    asha = build_pruner(PrunerSpec(name="asha", min_resource=2, reduction_factor=4))
    assert isinstance(asha, optuna.pruners.SuccessiveHalvingPruner)
    assert isinstance(build_pruner(PrunerSpec(name="successive_halving")), type(asha))
    median = build_pruner(PrunerSpec(name="median", n_warmup_steps=2))
    assert isinstance(median, optuna.pruners.MedianPruner)
    assert isinstance(build_pruner(PrunerSpec(name="none")), optuna.pruners.NopPruner)


@pytest.mark.parametrize("sampler", ["tpe", "gp", "random", "graph", "bandit"])
def test_each_sampler_runs_a_study(storage_url: str, fakes: ModuleType, sampler: str) -> None:
    spec = spec_with(
        sampler={"name": sampler, "seed": 0, "n_startup_trials": 2},
        search={
            "sharing": ["hard", "soft"],
            "learning_rate": {"low": 1e-4, "high": 1e-2, "log": True},
        },
        budget={"trials": 5},
    )
    engine = StudyEngine(
        spec=spec,
        storage_url=storage_url,
        evaluator=fakes.FakeEvaluator(),
        sharing_spaces=fakes.SHARING_SPACES,
    )
    summary = engine.run()
    engine.close()
    assert summary.progress.n_complete == 5
    study = optuna.load_study(study_name="s", storage=storage_url)
    assert all("aux/good" in t.params for t in study.trials)


@pytest.mark.parametrize("seed", [None, 3])
def test_graph_sampler_gets_what_the_spec_and_the_caller_give(seed: int | None) -> None:
    records = [ScoreRecord(task="tgt", task_set=frozenset({"tgt", "good"}), value=0.5)]
    scores = {"good": 0.3, "bad": -0.1, "meh": 0.0}
    matrix = LookaheadMatrix(tasks=["tgt", "good"], values=[[0.0, 0.1], [0.2, 0.0]], n_probes=3)
    spec = spec_with(
        sampler={"name": "graph", "seed": seed, "n_startup_trials": 3},
        search={"auxiliaries": {"max_size": 2, "include": ["meh"]}},
    )
    built = build_sampler(spec, prior_records=records, startup_scores=scores, lookahead=[matrix])
    graph = built.base if seed is not None else built
    assert isinstance(built, TrialSeededSampler) == (seed is not None)
    assert isinstance(graph, GraphGuidedSampler)
    assert graph.max_size == 2 and graph.include == ("meh",) and graph.free == ("bad", "good")
    assert graph.n_startup_trials == 3
    assert graph._prior_records() == records
    assert graph.startup_scores == scores
    assert graph.estimator_options["lookahead"] == [matrix]
    if seed is not None:  # the per-trial samplers get them too
        trial = built.sampler_for(5)  # type: ignore[attr-defined]
        assert trial._prior_records() == records and trial.startup_scores == scores
        assert trial.estimator_options["lookahead"] == [matrix]


def test_bandit_sampler_gets_min_size_and_include() -> None:
    spec = spec_with(
        sampler="bandit", search={"auxiliaries": {"min_size": 2, "max_size": 3, "include": ["meh"]}}
    )
    bandit = build_sampler(spec)
    assert isinstance(bandit, BanditSampler)
    assert bandit.include == ("meh",) and bandit.free == ("bad", "good")
    assert (bandit.low, bandit.high) == (1, 2)


def test_gp_gets_n_startup_trials() -> None:
    gp = build_sampler(spec_with(sampler={"name": "gp", "n_startup_trials": 6}))
    assert gp._n_startup_trials == 6  # type: ignore[attr-defined]


def test_tpe_defaults_and_the_spec_options_win_over_them() -> None:
    tpe = build_sampler(spec_with(sampler="tpe"))
    assert tpe._constant_liar is True  # type: ignore[attr-defined]
    assert tpe._multivariate is True  # type: ignore[attr-defined]
    own = build_sampler(
        spec_with(sampler={"name": "tpe", "options": {"multivariate": False, "group": False}})
    )
    assert own._multivariate is False  # type: ignore[attr-defined]


def test_pruner_settings_reach_the_pruner() -> None:
    median = build_pruner(PrunerSpec(name="median", n_startup_trials=3, n_warmup_steps=7))
    assert isinstance(median, optuna.pruners.MedianPruner)
    assert median._n_startup_trials == 3 and median._n_warmup_steps == 7
    asha = build_pruner(PrunerSpec(name="asha", min_resource=2, reduction_factor=3))
    assert isinstance(asha, optuna.pruners.SuccessiveHalvingPruner)
    assert asha._min_resource == 2
    assert asha._reduction_factor == 3  # not Optuna's default (4)


def test_a_seeded_graph_sampler_is_exhausted_when_its_base_is() -> None:
    spec = spec_with(
        candidates=["good", "bad"],
        sampler={"name": "graph", "seed": 0, "options": {"max_repeats": 1}},
    )
    seeded = build_sampler(spec)
    assert isinstance(seeded, TrialSeededSampler)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler())
    sets: list[list[str]] = [[], ["good"], ["bad"]]
    for chosen in sets:
        study.add_trial(optuna.trial.create_trial(value=0.5, user_attrs={"auxiliaries": chosen}))
    assert not seeded.exhausted(study)
    study.add_trial(
        optuna.trial.create_trial(value=0.5, user_attrs={"auxiliaries": ["bad", "good"]})
    )
    assert seeded.exhausted(study)


def test_a_strict_lower_bound_refuses_the_bound_itself() -> None:
    with pytest.raises(SpecError, match="must be > 0"):
        build_sampler(spec_with(sampler={"name": "tpe", "options": {"prior_weight": 0}}))
    # A bound that is not strict takes the bound itself.
    tpe = build_sampler(spec_with(sampler={"name": "tpe", "options": {"n_ei_candidates": 1}}))
    assert tpe._n_ei_candidates == 1  # type: ignore[attr-defined]
