"""Samplers and pruners by name, and a short study with each sampler."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import optuna
import pytest

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
