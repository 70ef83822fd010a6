"""Trials that reach the best value too: the best trial is only the first of them.

In the demo six of the ten best trials scored 1.0000 (dev accuracy at its ceiling) and
`study show` called the first of them "best" without a word about the other five.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from typer.testing import CliRunner

import taskgraph
from taskgraph.cli.app import app
from taskgraph.search.engine import StudyEngine
from taskgraph.spec import spec_from_dict
from taskgraph.testing import SHARING_SPACES, FakeEvaluator
from taskgraph.trial import TrialConfig, TrialResult

CEILING = 0.6


class CappedEvaluator(FakeEvaluator):
    """The fake whose metric cannot exceed :data:`CEILING` (every set with `good` reaches it)."""

    def evaluate(self, config: TrialConfig, **kwargs: Any) -> TrialResult:
        result = super().evaluate(config, **kwargs)
        if result.objective is None:
            return result
        capped = min(result.objective, CEILING)
        scores = {t: {"dev": {"accuracy": capped}} for t in result.scores}
        return dataclasses.replace(result, objective=capped, scores=scores)


def run(url: str, capped: bool, direction: str = "maximize") -> None:
    spec = spec_from_dict(
        {
            "name": "ties",
            "target": "tgt",
            "objective": {"direction": direction},
            "candidates": ["good", "meh"],
            "search": {"sharing": ["hard"]},
            "sampler": {"name": "random", "seed": 0},
            "pruner": "none",
            "seeds": 1,
            "budget": {"trials": 4},
            # capped: good 0.7 and good+meh 0.71 both score the ceiling
            "rows": [
                {"name": "alone"},
                {"name": "meh", "auxiliaries": ["meh"]},
                {"name": "good", "auxiliaries": ["good"]},
                {"name": "both", "auxiliaries": ["good", "meh"]},
            ],
        }
    )
    engine = StudyEngine(
        spec=spec,
        storage_url=url,
        evaluator=CappedEvaluator() if capped else FakeEvaluator(),
        sharing_spaces=SHARING_SPACES,
    )
    try:
        engine.run()
    finally:
        engine.close()


@pytest.fixture(scope="module")
def capped(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'ties.db'}"
    run(url, capped=True)
    return url


def test_the_summary_names_the_trials_tied_with_the_best(capped: str) -> None:
    report = taskgraph.study_summary("ties", storage=capped)
    at_ceiling = sorted(r["trial"] for r in report["gains"] if r["value"] == CEILING)
    assert len(at_ceiling) >= 2, report["gains"]  # the fixture must hold a tie
    assert report["best"]["trial"] == at_ceiling[0]
    assert report["best"]["tied_trials"] == at_ceiling[1:]


def test_show_says_the_best_is_tied(capped: str) -> None:
    report = taskgraph.study_summary("ties", storage=capped)
    tied = report["best"]["tied_trials"]
    result = CliRunner().invoke(app, ["study", "show", "ties", "--storage", capped])
    assert result.exit_code == 0, result.output
    count = f"{len(tied)} other trial{'s' if len(tied) > 1 else ''}"
    assert (
        f"; tied at {CEILING:.4f} with {count} ({', '.join(map(str, tied))}): the study cannot "
        "tell them apart, this one only came first"
    ) in result.output


def test_a_best_without_ties_has_none(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'plain.db'}"
    run(url, capped=False)
    report = taskgraph.study_summary("ties", storage=url)
    values = [r["value"] for r in report["gains"]]
    assert len(set(values)) == len(values), values
    assert report["best"]["tied_trials"] == []
    result = CliRunner().invoke(app, ["study", "show", "ties", "--storage", url])
    assert result.exit_code == 0 and "tied at" not in result.output


def test_a_repeat_of_the_best_is_no_tie(tmp_path: Any) -> None:
    # A repeat tells its trial's value again: it is the same measurement, not a second trial
    # at the best value.
    url = f"sqlite:///{tmp_path / 'repeat.db'}"
    spec = spec_from_dict(
        {
            "name": "ties",
            "target": "tgt",
            "candidates": ["good"],
            "search": {"sharing": ["hard"], "auxiliaries": {"min_size": 1}},
            "sampler": {"name": "random", "seed": 0},
            "pruner": "none",
            "seeds": 1,
            "budget": {"trials": 3},
        }
    )
    engine = StudyEngine(
        spec=spec, storage_url=url, evaluator=FakeEvaluator(), sharing_spaces=SHARING_SPACES
    )
    try:
        engine.run()
    finally:
        engine.close()
    report = taskgraph.study_summary("ties", storage=url)
    repeats = [r for r in report["gains"] if r["repeat_of"] is not None]
    assert [r["repeat_of"] for r in repeats] == [report["best"]["trial"]], report["gains"]
    assert repeats[0]["value"] == report["best"]["score"]
    assert report["best"]["tied_trials"] == []


def test_a_minimised_objective_ties_at_its_lowest_value(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'min.db'}"
    run(url, capped=True, direction="minimize")
    report = taskgraph.study_summary("ties", storage=url)
    lowest = min(r["value"] for r in report["gains"])
    assert report["best"]["score"] == lowest == 0.5  # the baseline, alone at the bottom
    # the two trials at the ceiling tie at the worst value, not the best
    assert sum(r["value"] == CEILING for r in report["gains"]) == 2
    assert report["best"]["tied_trials"] == []
