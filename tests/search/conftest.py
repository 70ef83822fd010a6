"""Fixtures for the search tests: the fake evaluator module (:mod:`taskgraph.testing`) and a fresh SQLite URL."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest

from taskgraph.testing import load_fakes


@pytest.fixture(scope="session")
def fakes() -> ModuleType:
    return load_fakes()


@pytest.fixture
def storage_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'study.db'}"
