"""`study show` marks a repeated configuration: the earlier trial's measurement, not new evidence."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from taskgraph.cli.app import app
from taskgraph.testing import run_fake_study

runner = CliRunner()

# One free candidate, four search trials: at most two search configurations, so repeats.
SPEC: dict[str, Any] = {
    "name": "reps",
    "target": "tgt",
    "objective": {"metric": "accuracy"},
    "candidates": ["good"],
    "sampler": {"name": "random", "seed": 0},
    "budget": {"trials": 5},
}


@pytest.fixture(scope="module")
def storage(tmp_path_factory: pytest.TempPathFactory) -> str:
    path: Path = tmp_path_factory.mktemp("repeats") / "records.db"
    return run_fake_study(SPEC, f"sqlite:///{path}")


def _report(storage: str) -> dict[str, Any]:
    result = runner.invoke(app, ["study", "show", "reps", "--storage", storage, "--json"])
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_json_names_the_trial_each_repeat_repeats(storage: str) -> None:
    report = _report(storage)
    gains = {g["trial"]: g for g in report["gains"]}
    repeats = {n: g["repeat_of"] for n, g in gains.items() if g["repeat_of"] is not None}
    assert report["n_repeats"] == len(repeats) >= 2, gains
    for number, earlier in repeats.items():
        # the trial that trained it: an earlier one, itself no repeat, with the same set
        assert earlier < number and gains[earlier]["repeat_of"] is None
        assert gains[earlier]["auxiliaries"] == gains[number]["auxiliaries"]
        assert gains[earlier]["value"] == gains[number]["value"]
    late = {r["trial"]: r.get("repeat_of") for r in report["not_converged"]}
    assert all(late[n] == e for n, e in repeats.items() if n in late)


def test_text_marks_repeats_and_says_one_measurement_once(storage: str) -> None:
    report = _report(storage)
    repeats = {g["trial"]: g["repeat_of"] for g in report["gains"] if g["repeat_of"] is not None}
    result = runner.invoke(app, ["study", "show", "reps", "--storage", storage])
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert "repeat of" in out
    assert f"{len(repeats)} repeats of an earlier configuration" in out
    assert "counted against the budget" in out
    for earlier in set(repeats.values()):
        assert f"trial {earlier}" in out
    # the fake curves never converge: each repeat's line names the measurement it repeats
    assert out.count("not converged: still rising") == len(report["gains"])
    for number, earlier in repeats.items():
        line = next(x for x in out.splitlines() if x.startswith(f"trial {number}: not converged"))
        assert line.endswith(f"; repeat of trial {earlier}: the same measurement"), line
    for g in report["gains"]:
        if g["repeat_of"] is None:
            line = next(x for x in out.splitlines() if x.startswith(f"trial {g['trial']}"))
            assert "repeat of" not in line, line
