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
