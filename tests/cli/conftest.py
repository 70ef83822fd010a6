"""Fixtures shared by the CLI tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from taskgraph.storage import open_repository
from taskgraph.testing import complete_result
from taskgraph.trial import TrialConfig


@pytest.fixture
def one_run_url(tmp_path: Path) -> str:
    """Return a SQLite database with one complete run of study 'demo' (target ner, aux pos)."""
    url = f"sqlite:///{tmp_path / 'records.db'}"
    config = TrialConfig(target="ner", auxiliaries=("pos",), seed=0)
    with open_repository(url) as repo:
        repo.add_run_result(
            study="demo", trial_number=0, config=config, result=complete_result(config)
        )
    return url


@pytest.fixture
def fake_db(tmp_path: Path) -> str:
    """Return a SQLite database holding the 3-trial study 'fake' of the fake evaluator."""
    from taskgraph.search.engine import StudyEngine
    from taskgraph.spec import spec_from_dict
    from taskgraph.testing import load_fakes

    fakes = load_fakes()
    url = f"sqlite:///{tmp_path / 'fake.db'}"
    spec = spec_from_dict(
        {
            "name": "fake",
            "target": "tgt",
            "candidates": ["good", "bad"],
            "budget": {"trials": 3},
            "sampler": {"name": "random", "seed": 0},
        }
    )
    engine = StudyEngine(
        spec=spec,
        storage_url=url,
        evaluator=fakes.FakeEvaluator(),
        sharing_spaces=fakes.SHARING_SPACES,
    )
    engine.run()
    engine.close()
    return url
