"""A study that searches pretraining schemes says which scheme a trial used: in its progress
lines and in `study show`'s baseline and best lines (the best of the target alone reads
"target alone", not "(none)", which read like "no pretraining")."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from taskgraph.cli.app import app
from taskgraph.cli.study import _ProgressObserver
from taskgraph.testing import run_fake_study
from taskgraph.trial import DataSelectionConfig, PretrainingConfig, TrialConfig

runner = CliRunner()


@pytest.fixture(scope="module")
def masking_study(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Return the URL of study `masking`: the target alone under three pretraining schemes."""
    return run_fake_study(
        {
            "name": "masking",
            "target": "tgt",
            "candidates": [],
            "search": {"pretraining": {"scheme": ["none", "random", "adaptive"], "steps": 3}},
            "sampler": {"name": "random", "seed": 0},
            "budget": {"trials": 4},
        },
        f"sqlite:///{tmp_path_factory.mktemp('db') / 'masking.db'}",
    )


def test_show_names_the_pretraining_of_the_baseline_and_the_best(masking_study: str) -> None:
    result = runner.invoke(app, ["study", "show", "masking", "--storage", masking_study])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    (base,) = [line for line in lines if line.startswith("baseline (")]
    (best,) = [line for line in lines if line.startswith("best (")]
    # Every trial scores alike: trial 0, the baseline without the stage, is also the best.
    assert base == "baseline (target alone, no pretraining, trial 0): 0.5000"
    assert best.startswith("best (trial 0): 0.5000 with target alone, no pretraining, sharing hard")
    from taskgraph.cli.study import _pretraining_of

    adaptive = {"pretraining": {"scheme": "adaptive", "steps": 3}}
    assert _pretraining_of(adaptive, searched=True) == ", pretraining adaptive"
    assert _pretraining_of({"pretraining": None}, searched=True) == ", no pretraining"
    assert _pretraining_of({"pretraining": None}, searched=False) == ""


def test_show_of_a_study_without_pretraining_is_as_before(tmp_path: Path) -> None:
    url = run_fake_study(
        {"name": "plain", "target": "tgt", "candidates": ["good"],
         "sampler": {"name": "random", "seed": 0}, "budget": {"trials": 2}},
        f"sqlite:///{tmp_path / 'plain.db'}",
    )  # fmt: skip
    result = runner.invoke(app, ["study", "show", "plain", "--storage", url])
    assert result.exit_code == 0, result.output
    assert "baseline (target alone, trial 0): " in result.stdout
    assert "pretraining" not in result.stdout


def _line(
    config: TrialConfig, *, searches_pretraining: bool = False, searches_selection: bool = False
) -> str:
    watcher = _ProgressObserver(
        name="s",
        quiet=True,
        searches_pretraining=searches_pretraining,
        searches_selection=searches_selection,
    )
    watcher.observer.on_trial_start(1, config)
    return watcher.started[1]


def test_a_progress_line_names_the_trials_pretraining_and_selection() -> None:
    random = PretrainingConfig(scheme="random", steps=3)
    assert _line(TrialConfig(target="t", pretraining=random), searches_pretraining=True) == (
        "trial 1: target alone (hard), pretraining random"
    )
    assert _line(TrialConfig(target="t"), searches_pretraining=True) == (
        "trial 1: target alone (hard), no pretraining"
    )
    selected = TrialConfig(
        target="t", auxiliaries=("a",), data_selection=DataSelectionConfig(
            features=("jsd",), weights={"jsd": 0.5}, keep=0.42
        ),
    )  # fmt: skip
    assert _line(selected, searches_selection=True) == "trial 1: a (hard), selection keep 0.42"
    assert _line(TrialConfig(target="t", auxiliaries=("a",)), searches_selection=True) == (
        "trial 1: a (hard), no selection"
    )
    # A study that searches neither: the line it always printed.
    assert _line(TrialConfig(target="t")) == "trial 1: target alone (hard)"
