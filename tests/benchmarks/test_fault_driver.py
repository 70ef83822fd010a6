"""``benchmarks/faults/driver.py`` on a study with repeat trials: a trial that repeats a trained
configuration is answered from the earlier trial (no training, no record), so the audit must
not count its record as lost, and a crash point it never reaches must still be injected."""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

import optuna
import pytest
from typer.testing import CliRunner

from taskgraph.cli.app import app
from taskgraph.search.progress import REPEATS_ATTR

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
BUDGET = 4


@pytest.fixture
def driver(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(BENCHMARKS))  # as when the script runs: `faults` imports
    return importlib.import_module("faults.driver")


def two_configurations(tmp_path: Path) -> Path:
    """Write a spec whose search space holds two task sets (none, b) for a budget of four
    trials: the random sampler must repeat one."""
    table = tmp_path / "table.csv"
    importlib.import_module("faults.common").write_table(table)
    spec = tmp_path / "rep.yaml"
    spec.write_text(
        "name: rep\ntarget: a\ncandidates: [b]\n"
        "objective: {metric: score, split: dev, direction: maximize}\n"
        f"sampler: {{name: random, seed: 0}}\npruner: none\nseeds: 1\n"
        f"budget: {{trials: {BUDGET}}}\n"
        "recovery: {heartbeat_interval: 1, grace_period: 2, max_retry: 3}\n"
        f"runner: {{name: tabular, table: {table}, split: val}}\n"
    )
    return spec


def test_check_counts_a_repeat_trials_record_in_the_earlier_trial(
    tmp_path: Path, driver: ModuleType
) -> None:
    spec = two_configurations(tmp_path)
    url = f"sqlite:///{tmp_path / 'rep.db'}"
    result = CliRunner().invoke(app, ["study", "run", str(spec), "--storage", url, "-q"])
    assert result.exit_code == 0, result.stderr
    trials = optuna.load_study(study_name="rep", storage=url).get_trials()
    assert any(REPEATS_ATTR in t.user_attrs for t in trials)  # the case under test
    exact, expected, lost, duplicated, detail = driver.check("rep", url, budget=BUDGET, seeds=1)
    assert (exact, expected, lost, duplicated) == (True, BUDGET, 0, 0), detail


class Highest:
    """An rng whose ``randint`` always draws the highest value."""

    def randint(self, low: int, high: int) -> int:
        return high


def test_crash_at_training_is_injected_although_repeats_never_train(
    tmp_path: Path, driver: ModuleType
) -> None:
    spec = two_configurations(tmp_path)
    urls: list[str] = []

    def database(suffix: str) -> str:
        urls.append(f"sqlite:///{tmp_path / f'rep{suffix}.db'}")
        return urls[-1]

    injected, point, detail, url = driver.crash(spec, database, Highest(), BUDGET, 1, "training")
    # At most two configurations train, so hits 4 and 3 are never reached: the study runs
    # again in a fresh database with a smaller hit until the crash fires.
    assert (injected, point) == (True, "training"), detail
    assert detail.startswith("os._exit at training #"), detail
    assert "(not reached at #4, #3" in detail, detail
    assert url == urls[-1] and len(urls) == detail.count("#") and len(set(urls)) == len(urls)
