"""A runner registered by a user runs a study, with no change to search/ or spec/."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import taskgraph
from taskgraph import testing as fakes
from taskgraph.evaluator import TrialEvaluator
from taskgraph.registry import RUNNERS
from taskgraph.runners.base import Runner, RunnerCapabilities
from taskgraph.search.engine import RunSummary, StudyEngine
from taskgraph.spec import spec_from_dict
from taskgraph.spec.models import StudySpec


class ToyRunner:
    """Answers trials with the fake evaluator; counts its calls."""

    name = "toy"
    capabilities = RunnerCapabilities(trains=False, intermediate_reports=True)

    def __init__(self) -> None:
        self.evaluator = fakes.FakeEvaluator(n_evals=2)
        self.runs = 0

    def build_evaluator(
        self, spec: StudySpec, *, data_dir: str | os.PathLike[str] | None = None
    ) -> TrialEvaluator | None:
        assert getattr(spec.runner, "answer", None) == "known"  # the plug-in's own setting
        return self.evaluator

    def run(self, engine: StudyEngine) -> RunSummary:
        self.runs += 1
        return engine.run()


@pytest.fixture
def toy() -> Iterator[ToyRunner]:
    runner = ToyRunner()
    RUNNERS.register("toy", runner)
    try:
        yield runner
    finally:
        RUNNERS.unregister("toy")


def toy_spec(**runner: object) -> StudySpec:
    return spec_from_dict(
        {
            "name": "toy-study",
            "target": "t",
            "candidates": ["good", "bad", "meh"],
            "search": {"sharing": ["hard"]},
            "budget": {"trials": 4},
            "runner": {"name": "toy", **runner},
        }
    )


def test_a_registered_runner_runs_a_study(toy: ToyRunner, tmp_path: Path) -> None:
    assert isinstance(toy, Runner)
    url = f"sqlite:///{tmp_path / 'toy.db'}"
    summary = taskgraph.run_study(toy_spec(answer="known"), storage=url)
    assert toy.runs == 1
    assert summary.reason == "budget" and summary.progress.n_complete == 4
    # The engine passes every evaluator its checkpoint key (no signature probing); a trial
    # repeating an earlier configuration is not evaluated again.
    import optuna

    from taskgraph.search.progress import REPEATS_ATTR

    trials = optuna.load_study(study_name="toy-study", storage=url).trials
    trained = [t.number for t in trials if REPEATS_ATTR not in t.user_attrs]
    assert toy.evaluator.checkpoint_keys == [f"trial-{n}" for n in trained]
    report = taskgraph.study_summary("toy-study", storage=url)
    assert report["n_complete"] == 4 and report["baseline"] is not None


def test_a_spec_may_name_only_registered_runners(toy: ToyRunner) -> None:
    from taskgraph.errors import SpecError

    assert toy_spec(answer="known").runner.name == "toy"
    RUNNERS.unregister("toy")
    try:
        with pytest.raises(
            SpecError, match=r"unknown runner 'toy'; known: local, ray, tabular \(a plug-in adds"
        ):
            toy_spec()
    finally:
        RUNNERS.register("toy", toy)


def test_builtin_runners_declare_their_capabilities() -> None:
    assert RUNNERS.names() == ["local", "ray", "tabular"]
    tabular = RUNNERS.get("tabular")
    assert not tabular.capabilities.trains and not tabular.capabilities.intermediate_reports
    assert RUNNERS.get("ray").capabilities.parallel
    assert all(isinstance(RUNNERS.get(name), Runner) for name in RUNNERS)
