"""Screening: the screen's configuration, and the graph sampler's start-up order from a
stored screen, from text-embedding similarity, or from neither."""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from taskgraph.errors import ConfigError
from taskgraph.search.engine import StudyEngine
from taskgraph.search.progress import STARTUP_ATTR
from taskgraph.search.screening import (
    default_screen_steps,
    screen_config,
    screen_probe_count,
    screen_probe_steps,
    screen_tasks,
    startup_scores,
    textemb_scores,
)
from taskgraph.search.space import SUBSET_ATTR
from taskgraph.spec import StudySpec, spec_from_dict
from taskgraph.storage import open_repository
from taskgraph.trial import LookaheadMatrix, TrialResult, TrialStatus

CANDIDATES = ["alpha", "bravo", "charlie", "delta"]


def make_spec(**overrides: Any) -> StudySpec:
    data: dict[str, Any] = {
        "name": "screened",
        "target": "tgt",
        "candidates": CANDIDATES,
        "search": {
            "auxiliaries": {"max_size": 1},
            "sharing": ["soft", "hard"],
            "loss_weighting": ["uncertainty", "equal"],
            "learning_rate": {"low": 1e-5, "high": 1e-3, "log": True},
            "mixing": {"scheme": ["temperature", "proportional"], "max_examples": 50},
            "max_steps": 40,
        },
        "sampler": {"name": "graph", "seed": 0},
        "budget": {"trials": 4, "max_failures": 10},
        "seeds": 1,
    }
    data.update(overrides)
    return spec_from_dict(data)


def test_the_screen_trains_the_target_with_every_candidate_on_hard_sharing() -> None:
    spec = make_spec()
    config = screen_config(spec, probes=5, space=None)
    assert config.auxiliaries == tuple(sorted(CANDIDATES))
    assert (config.sharing, config.loss_weighting, config.transfer_mode) == (
        "hard",
        "equal",
        "joint",
    )
    assert config.learning_rate == pytest.approx(1e-4)  # the geometric middle of a log range
    assert config.mixing.max_examples == {t: 50 for t in ("tgt", *CANDIDATES)}
    # 40 target steps under the target budget: one auxiliary's on top, every step counted.
    assert default_screen_steps(spec) == 80
    assert (config.max_steps, config.step_budget, config.lookahead_every) == (80, "total", 16)
    assert config.hyperparameters["lookahead_targets"] == ["tgt"]
    # A fixed gap gives the 5 probes: the configuration is what it was before lookahead_steps.
    assert "lookahead_steps" not in config.hyperparameters
    assert config.early_stopping_patience is None and config.pretraining is None
    # 9 steps: the warmup (a tenth of them) has no whole step, so even the first is probed.
    full = screen_config(spec, steps=9, probes=9, full_matrix=True)
    assert "lookahead_targets" not in full.hyperparameters and full.lookahead_every == 1


def test_excluded_candidates_are_not_screened_and_bad_counts_are_refused() -> None:
    spec = make_spec(search={"auxiliaries": {"exclude": ["delta"]}, "max_steps": 10})
    assert screen_tasks(spec) == ("alpha", "bravo", "charlie")
    with pytest.raises(ConfigError, match="`probes` \\(30\\) must not exceed the steps \\(20\\)"):
        screen_config(spec, probes=30)
    with pytest.raises(ConfigError, match="`steps` must be >= 1, but got 0"):
        screen_config(spec, steps=0)
    # The warmup starts the learning rate at 0: no probe runs at the first step, so a probe
    # at every step could not be had.
    with pytest.raises(ConfigError, match="`probes` \\(10\\) must be below `steps` \\(10\\)"):
        screen_config(spec, steps=10, probes=10)
    probed = make_spec(training={"hyperparameters": {"lookahead_lr": 1e-4}})
    assert screen_config(probed, steps=10, probes=10).lookahead_every == 1


def test_the_default_probes_are_as_many_as_a_short_screen_allows() -> None:
    from taskgraph.search.screening import DEFAULT_PROBES, screen_probe_count

    # 10 target steps: a screen of 20, whose warmup spares the first step: 19 probes.
    spec = make_spec(search={"max_steps": 10})
    config = screen_config(spec)
    assert (config.max_steps, screen_probe_count(config)) == (20, 19)
    assert config.hyperparameters["lookahead_steps"] == list(range(2, 21))
    # 5 steps: the warmup has no whole step, so every step is probed.
    assert screen_probe_count(screen_config(spec, steps=5)) == 5
    assert screen_probe_count(screen_config(spec, steps=300)) == DEFAULT_PROBES
    with pytest.raises(ConfigError, match=r"^`probes` \(21\) must not exceed the steps \(20\)$"):
        screen_config(spec, probes=21)


def test_the_screen_runs_exactly_the_probes_asked_spread_over_the_run() -> None:
    from taskgraph.training.options import TrainingOptions

    spec = make_spec()
    # 20 steps, 7 probes: no fixed gap gives 7 (every 2 steps: 10, every 3: 6).
    config = screen_config(spec, steps=20, probes=7)
    assert config.lookahead_every is None
    assert config.hyperparameters["lookahead_steps"] == [3, 6, 9, 12, 15, 18, 20]
    options = TrainingOptions.from_config(config)  # the trainer takes it
    probed = [step for step in range(1, 21) if options.probes_after(step, config)]
    assert probed == [3, 6, 9, 12, 15, 18, 20]
    for total in range(1, 61):
        for probes in range(1, total + 1):
            steps = screen_probe_steps(total, probes)
            assert len(steps) == probes and steps[-1] <= total, (total, probes)
            gaps = [b - a for a, b in zip((0, *steps), steps, strict=False)]
            # Evenly spread: every gap (the first from the start) is the mean one rounded.
            assert set(gaps) <= {total // probes, -(-total // probes)}, (total, probes)
            assert (steps[0] == 1) is (probes == total)  # the warmup's first step is spared
            fixed = [k for k in range(1, total + 1) if total // k == probes]
            if fixed:
                # A fixed gap gives them: the steps screens always probed, every gap-th.
                gap = max(fixed)
                assert steps == tuple(range(gap, total + 1, gap)), (total, probes)


def _matrix(effects: dict[str, float]) -> LookaheadMatrix:
    tasks = ["tgt", *effects]
    nan = math.nan
    values = [[nan] * len(tasks) for _ in tasks]
    for i, task in enumerate(tasks):
        values[i][0] = effects.get(task, 0.0)
    return LookaheadMatrix(tasks=tasks, values=values, n_probes=3)


def _store_screen(url: str, spec: StudySpec, effects: dict[str, float]) -> None:
    config = screen_config(spec, probes=4)
    result = TrialResult(status=TrialStatus.COMPLETE, objective=0.5, lookahead=_matrix(effects))
    with open_repository(url) as repository:
        repository.add_screen(study=spec.name, config=config, result=result, details={})


def _first_sets(url: str, spec: StudySpec, fakes: ModuleType, **engine: Any) -> list[list[str]]:
    evaluator = fakes.FakeEvaluator()
    study_engine = StudyEngine(
        spec=spec, storage_url=url, evaluator=evaluator, sharing_spaces=fakes.SHARING_SPACES,
        **engine,
    )  # fmt: skip
    try:
        study_engine.run()
        study = study_engine.require_study()
        trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
        return [list(t.user_attrs[SUBSET_ATTR]) for t in trials]
    finally:
        study_engine.close()


def test_the_first_proposals_follow_the_screened_ranking(
    storage_url: str, fakes: ModuleType
) -> None:
    spec = make_spec()
    # Not the alphabetical order, nor its reverse.
    _store_screen(storage_url, spec, {"alpha": 0.01, "bravo": 0.30, "charlie": -0.2, "delta": 0.1})
    sets = _first_sets(storage_url, spec, fakes, embed=_fail_if_called)
    assert sets == [[], ["bravo"], ["delta"], ["alpha"]]


def test_the_screens_are_evidence_for_the_sampler_model(
    storage_url: str, fakes: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    from taskgraph.search import creation as creation_module
    from taskgraph.search.samplers import build_sampler

    # Past the start-up (the baseline and 4 singles): the model, fitted with the screen, repeats.
    spec = make_spec(budget={"trials": 7, "max_failures": 0})
    _store_screen(storage_url, spec, {"alpha": 0.01, "bravo": 0.30, "charlie": -0.2, "delta": 0.1})
    given: dict[str, Any] = {}

    def spy(*args: Any, **kwargs: Any) -> Any:
        given.update(kwargs)
        return build_sampler(*args, **kwargs)

    monkeypatch.setattr(creation_module, "build_sampler", spy)
    sets = _first_sets(storage_url, spec, fakes, embed=_fail_if_called)
    assert len(sets) == 7 and sets[:5] == [[], ["bravo"], ["delta"], ["alpha"], ["charlie"]]
    (matrix,) = given["lookahead"]
    assert matrix.tasks == ["tgt", "alpha", "bravo", "charlie", "delta"]
    assert [row[0] for row in matrix.values] == [0.0, 0.01, 0.30, -0.2, 0.1]
    # setfn (the default estimator) is given the matrices...
    graph = build_sampler(spec, lookahead=[matrix]).base
    assert graph.estimator_options["lookahead"] == [matrix]
    # ...unless the spec gives its own, and an estimator without the option gets none.
    own = make_spec(sampler={"name": "graph", "seed": 0,
                             "options": {"estimator_options": {"lookahead": []}}})  # fmt: skip
    assert build_sampler(own, lookahead=[matrix]).base.estimator_options["lookahead"] == []
    hoa = make_spec(sampler={"name": "graph", "seed": 0, "options": {"estimator": "hoa"}})
    assert "lookahead" not in build_sampler(hoa, lookahead=[matrix]).base.estimator_options


def _fail_if_called(*args: Any, **kwargs: Any) -> dict[str, np.ndarray]:
    raise AssertionError("text embeddings computed although the study has a screen")


def test_a_later_screen_replaces_the_earlier_one(storage_url: str, fakes: ModuleType) -> None:
    spec = make_spec()
    _store_screen(storage_url, spec, {"alpha": 0.3, "bravo": 0.2, "charlie": 0.1, "delta": 0.0})
    _store_screen(storage_url, spec, {"alpha": 0.0, "bravo": 0.1, "charlie": 0.2, "delta": 0.3})
    with open_repository(storage_url) as repository:
        assert [s.number for s in repository.screens(spec.name)] == [-1, -2]
    assert _first_sets(storage_url, spec, fakes)[1:] == [["delta"], ["charlie"], ["bravo"]]


def _embeddings(tasks: list[str], **_: Any) -> dict[str, np.ndarray]:
    # cos to tgt: charlie 1, alpha 0.8, delta 0, bravo -1
    vectors = {
        "tgt": [1.0, 0.0], "charlie": [2.0, 0.0], "alpha": [0.8, 0.6],
        "delta": [0.0, 1.0], "bravo": [-1.0, 0.0],
    }  # fmt: skip
    return {t: np.array(vectors[t]) for t in tasks if t in vectors}


def test_without_a_screen_the_first_proposals_follow_text_embedding_similarity(
    storage_url: str, fakes: ModuleType
) -> None:
    spec = make_spec()
    sets = _first_sets(storage_url, spec, fakes, embed=_embeddings)
    assert sets == [[], ["charlie"], ["alpha"], ["delta"]]
    with open_repository(storage_url) as repository:
        assert repository.screens(spec.name) == []
    # The similarities are kept on the study: a resumed study does not embed again.
    engine = StudyEngine(spec=spec, storage_url=storage_url, sharing_spaces=fakes.SHARING_SPACES,
                         embed=_fail_if_called)  # fmt: skip
    try:
        study = engine.open()
        assert study.user_attrs[STARTUP_ATTR]["source"] == "textemb"
        assert study.user_attrs[STARTUP_ATTR]["scores"]["charlie"] == pytest.approx(1.0)
    finally:
        engine.close()


def test_textemb_scores_are_cosine_similarities_and_missing_tasks_are_left_out() -> None:
    scores = textemb_scores("tgt", ["alpha", "bravo", "unknown"], embed=_embeddings)
    assert scores == pytest.approx({"alpha": 0.8, "bravo": -1.0})
    assert textemb_scores("nothing", ["alpha"], embed=_embeddings) == {}


def test_startup_scores_prefer_the_latest_screen_then_the_cache_then_embeddings() -> None:
    class Screen:
        def __init__(self, effects: dict[str, float]) -> None:
            self.matrix = _matrix(effects)

    old, new = Screen({"alpha": 1.0, "bravo": 0.0}), Screen({"alpha": 0.0, "bravo": 1.0})
    candidates = ["alpha", "bravo"]
    assert startup_scores(target="tgt", candidates=candidates, screens=[old, new]) == (
        "screen", {"alpha": 0.0, "bravo": 1.0},
    )  # fmt: skip
    cached = {"source": "textemb", "scores": {"alpha": 0.5}}
    assert startup_scores(target="tgt", candidates=candidates, screens=[], cached=cached,
                          embed=lambda: {"bravo": 1.0}) == ("textemb", {"alpha": 0.5})  # fmt: skip
    assert startup_scores(target="tgt", candidates=candidates, screens=[],
                          embed=lambda: {"bravo": 1.0}) == ("textemb", {"bravo": 1.0})  # fmt: skip
    assert startup_scores(target="tgt", candidates=candidates, screens=[]) == ("none", {})


def test_a_one_step_screen_whose_warmup_holds_it_is_refused_not_run_without_a_probe() -> None:
    # The default probes were max(1, steps - 1): one probe at the only step, where the warmup
    # holds the learning rate at 0 and no probe runs.
    spec = make_spec(training={"hyperparameters": {"warmup_ratio": 1.0}})
    with pytest.raises(ConfigError, match=r"^a screen of 1 step leaves no step to probe"):
        screen_config(spec, steps=1)
    assert screen_probe_count(screen_config(spec, steps=2)) == 1
