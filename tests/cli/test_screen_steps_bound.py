"""``study screen --steps N`` is bounded as ``search.max_steps`` is (taskgraph.spec.limits):
a typo such as ``--steps 1000000000`` is one ``error:`` line and exit 2 before anything is
read or trained, not a joint run of days."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from taskgraph.app.screening import screen_study
from taskgraph.cli.app import app
from taskgraph.errors import ConfigError
from taskgraph.spec.limits import MAX_STEPS

runner = CliRunner()
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return Path(shutil.copy(REPO / "searchspaces" / "demo.yaml", tmp_path / "demo.yaml"))


@pytest.mark.parametrize("steps", [MAX_STEPS + 1, 10**30])
def test_too_many_screen_steps_are_one_line_and_exit_2(demo: Path, steps: int) -> None:
    database = demo.parent / "s.db"
    # --data names a missing directory: the bound is checked before the data (the old code
    # went on to it, and with real data would have trained for `steps` steps).
    result = runner.invoke(
        app,
        ["study", "screen", str(demo), "--steps", str(steps), "--storage",
         f"sqlite:///{database}", "--data", str(demo.parent / "missing"), "-q"],
    )  # fmt: skip
    assert (result.exit_code, result.stdout, result.stderr) == (
        2,
        "",
        f"error: `--steps` must be in [1, {MAX_STEPS}], but got {steps}\n",
    )
    assert sorted(p.name for p in demo.parent.iterdir()) == ["demo.yaml"]


def test_the_python_api_names_its_keyword(demo: Path) -> None:
    with pytest.raises(ConfigError) as info:
        screen_study(demo, steps=MAX_STEPS + 1, data=demo.parent / "missing")
    assert str(info.value) == f"`steps` must be in [1, {MAX_STEPS}], but got {MAX_STEPS + 1}"
