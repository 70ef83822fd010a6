"""`study show`'s table title says how a gain is computed in the study's direction."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from taskgraph.cli.app import app
from taskgraph.testing import run_fake_study


@pytest.mark.parametrize(
    ("direction", "said"),
    [("maximize", "absolute gain = value - baseline"), ("minimize", "baseline - value")],
)
def test_the_title_follows_the_direction(tmp_path: Path, direction: str, said: str) -> None:
    url = f"sqlite:///{tmp_path / 'show.db'}"
    spec = {
        "name": "dir", "target": "tgt", "candidates": ["good", "bad"], "seeds": 1,
        "budget": {"trials": 3}, "sampler": {"name": "random", "seed": 0},
        "objective": {"metric": "f1", "split": "dev", "direction": direction},
    }  # fmt: skip
    run_fake_study(spec, url)
    result = CliRunner().invoke(
        app, ["study", "show", "dir", "--storage", url], env={"COLUMNS": "250"}
    )
    assert result.exit_code == 0, result.output
    assert said in " ".join(result.output.split())
    if direction == "minimize":
        assert "value - baseline;" not in " ".join(result.output.split())


def test_a_line_names_the_settings_trials_and_the_baseline_differ_in(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'show.db'}"
    spec = {
        "name": "lr", "target": "tgt", "candidates": ["good", "bad"], "seeds": 1,
        "budget": {"trials": 3}, "sampler": {"name": "random", "seed": 0},
        "search": {"learning_rate": {"low": 1e-5, "high": 1e-3}},
    }  # fmt: skip
    run_fake_study(spec, url)
    result = CliRunner().invoke(
        app, ["study", "show", "lr", "--storage", url], env={"COLUMNS": "250"}
    )
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert "2 of the 3 trials shown differ from the baseline in settings the study searched " \
        "(learning_rate): their measured gains hold" in said  # fmt: skip
