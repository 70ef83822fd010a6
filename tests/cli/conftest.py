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
