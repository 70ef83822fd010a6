"""Fixtures shared by the whole suite.

Real datasets come from the data directory (``TASKGRAPH_DATA`` or ``../shared/data``); tests
never copy them.  Under ``CI=true`` a missing data directory or a service that cannot start is
a failure, never a skip.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from taskgraph.tasks.datadir import resolve_data_dir
from taskgraph.testing import OptunaRecords, postgres_or_unavailable, unavailable

if TYPE_CHECKING:
    from taskgraph.storage.testing import PostgresServer


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """Return the real data directory, failing under CI when it is missing."""
    try:
        return resolve_data_dir(None)
    except Exception as error:  # DataNotFoundError
        unavailable(str(error))


@pytest.fixture(scope="session")
def benchmarks_dir() -> Path:
    """Return the published tables directory (skip locally, fail under CI when missing)."""
    from taskgraph.affinity.converters import resolve_benchmarks_dir  # the affinity package: ~1 s

    try:
        return resolve_benchmarks_dir(None)
    except Exception as error:  # DataNotFoundError: CI must have the tables
        unavailable(str(error))


@pytest.fixture(autouse=True)
def _offline_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    # Nothing is fetched from a model hub at run time, in tests least of all.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """Yield a PostgreSQL server started for this test session (127.0.0.1, free port).

    ``server.url`` is an empty ``taskgraph`` database; ``server.create_database(name)``
    returns the URL of another empty one.  Skipped locally, failed under CI=true, when no
    server can start.  Stopped (and its directory deleted) at the end of the session.
    """
    with postgres_or_unavailable() as server:
        yield server


@pytest.fixture
def optuna_at_info() -> Iterator[OptunaRecords]:
    """Optuna's verbosity at INFO (its default) with a handler on its loggers; both undone."""
    import logging

    import optuna

    before = optuna.logging.get_verbosity()
    handler = OptunaRecords()
    logger = logging.getLogger("optuna")
    optuna.logging.set_verbosity(optuna.logging.INFO)
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        optuna.logging.set_verbosity(before)


@pytest.fixture
def tabular_demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Return a copy of the demo spec with a score table (``tab.csv``) beside it; cwd is that
    folder.  Every subset of up to two of the demo's candidates has a score on val and test,
    higher with more and longer-named auxiliaries, so a `runner: tabular` study of it trains
    nothing and finishes in a second."""
    import itertools
    import shutil

    candidates = ["synth_related", "synth_conflict", "synth_unrelated", "synth_cls_related"]
    monkeypatch.chdir(tmp_path)
    lines = ["target,task_set,split,value,higher_is_better"]
    for size in range(3):
        for subset in itertools.combinations(candidates, size):
            key = "+".join(["synth_target", *subset])
            score = 0.5 + 0.01 * len(subset) + 0.001 * sum(map(len, subset))
            lines += [f"synth_target,{key},{split},{score:.4f},1" for split in ("val", "test")]
    (tmp_path / "tab.csv").write_text("\n".join(lines) + "\n")
    demo = Path(__file__).resolve().parents[1] / "searchspaces" / "demo.yaml"
    return Path(shutil.copy(demo, tmp_path / "demo.yaml"))
