"""The engine on PostgreSQL: Optuna's study and taskgraph's records share one database URL."""

from __future__ import annotations

import uuid
from types import ModuleType
from typing import Any

import optuna
import pytest
from typer.testing import CliRunner

from taskgraph.cli.app import app
from taskgraph.search.engine import StudyEngine
from taskgraph.search.progress import REPEATS_ATTR
from taskgraph.spec import spec_from_dict
from taskgraph.storage import open_repository

pytestmark = pytest.mark.postgres


def test_study_on_postgres(postgres_server: Any, fakes: ModuleType) -> None:
    url = postgres_server.create_database(f"engine_{uuid.uuid4().hex[:8]}")
    spec = spec_from_dict(
        {
            "name": "pg",
            "target": "tgt",
            "candidates": ["good", "bad", "boom"],
            "seeds": 2,
            "budget": {"trials": 5},
            "sampler": {"name": "tpe", "seed": 0, "n_startup_trials": 2},
            "pruner": "median",
        }
    )
    engine = StudyEngine(
        spec=spec,
        storage_url=url,
        evaluator=fakes.FakeEvaluator(fail_with=["boom"]),
        sharing_spaces=fakes.SHARING_SPACES,
    )
    summary = engine.run()
    engine.close()
    assert summary.progress.n_done == 5

    study = optuna.load_study(study_name="pg", storage=url)
    with open_repository(url) as repo:
        runs = repo.runs(study="pg")
    # A trial repeating an earlier one's configuration is told its value, not trained or
    # recorded again.
    repeats = {t.number for t in study.trials if REPEATS_ATTR in t.user_attrs}
    assert {r.trial_number for r in runs} == {t.number for t in study.trials} - repeats
    by_trial = {t.number: t for t in study.trials}
    for run in runs:
        expected = {"COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "failed"}
        assert run.status == expected[by_trial[run.trial_number].state.name]

    result = CliRunner().invoke(app, ["study", "show", "pg", "--storage", url, "--json"])
    assert result.exit_code == 0, result.stderr
    assert '"n_done": 5' in result.stdout
