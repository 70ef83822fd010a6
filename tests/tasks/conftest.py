"""Fixtures for the task catalog tests: an isolated count cache for the whole session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from taskgraph.tasks.cache import CACHE_ENV


@pytest.fixture(scope="session", autouse=True)
def _isolated_task_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    # Counts must come from parsing, not from a developer's ~/.cache; one cache per session
    # so that each real file is parsed once however many tests count it.
    directory = tmp_path_factory.mktemp("task-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(CACHE_ENV, str(directory))
        yield directory
