"""Fixtures of the storage tests: one database per test on every backend, trial factories.

``storage_url`` is parametrised over SQLite and PostgreSQL, so every test that takes it is
part of the backend contract suite and runs against both.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from taskgraph.storage.testing import PostgresServer
from taskgraph.testing import postgres_or_unavailable
from taskgraph.trial import Cost, LookaheadMatrix, TrialConfig, TrialResult, TrialStatus

DATA = Path(__file__).parent / "data"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Return the URL of a fresh, empty database on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'records.db'}"
    server = request.getfixturevalue("postgres_server")
    return str(server.create_database(f"t_{uuid.uuid4().hex[:16]}"))


@pytest.fixture(scope="module")
def own_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server of the requesting module's own, which its tests may stop and start
    again (the session's ``postgres_server`` is shared).  Skipped locally, failed under
    CI=true, when no server can start."""
    with postgres_or_unavailable() as server:
        yield server


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """Return the URL of a SQLite file that does not exist yet."""
    return f"sqlite:///{tmp_path / 'records.db'}"


@pytest.fixture
def schema_v1_db() -> Path:
    """Return the committed database at schema revision 0001 (read-only: copy it first)."""
    return DATA / "schema_v1.db"


TrialFactory = Callable[..., tuple[TrialConfig, TrialResult]]


@pytest.fixture
def make_trial() -> TrialFactory:
    """Return a factory of (config, result) pairs whose scores derive from the arguments."""

    def make(
        target: str = "ner",
        auxiliaries: tuple[str, ...] = (),
        *,
        seed: int = 0,
        status: TrialStatus = TrialStatus.COMPLETE,
        value: float = 0.5,
        lookahead: bool = False,
        **config: Any,
    ) -> tuple[TrialConfig, TrialResult]:
        trial = TrialConfig(target=target, auxiliaries=auxiliaries, seed=seed, **config)
        if status is TrialStatus.FAILED:
            return trial, TrialResult.failed("CUDA out of memory", cost=Cost(seconds=1.5))
        scores = {
            task: {
                "dev": {"f1": value + 0.01 * i, "loss": 1.0 - value},
                "test": {"f1": value - 0.02},
            }
            for i, task in enumerate(trial.task_set)
        }
        matrix = None
        if lookahead:
            n = len(trial.task_set)
            matrix = LookaheadMatrix(
                tasks=list(trial.task_set),
                values=[
                    [0.0 if i == j else 0.1 * (i + 1) - 0.05 * j for j in range(n)]
                    for i in range(n)
                ],
                n_probes=4,
            )
        result = TrialResult(
            status=status,
            scores=scores,
            objective=scores[target]["dev"]["f1"],
            cost=Cost(
                seconds=12.5,
                examples=1000,
                tokens=64000,
                device="cuda:0",
                target_steps=40,
                total_steps=75,
            ),
            lookahead=matrix,
            intermediate=[(10, value - 0.1), (20, value)],
        )
        return trial, result

    return make


TABLE_CANDIDATES = ("b", "c", "d", "e")
TABLE_EFFECTS = {"b": 0.10, "c": -0.05, "d": 0.02, "e": -0.20}


@pytest.fixture
def tabular_spec(tmp_path: Path) -> Callable[..., Path]:
    """Return a writer of a `tabular`-runner spec (a table of every subset of 4 candidates).

    Studies on it need no data, no torch and no training: what is left is the storage.
    """
    import itertools

    table = tmp_path / "table.csv"
    lines = ["target,task_set,split,value,higher_is_better"]
    for size in range(len(TABLE_CANDIDATES) + 1):
        for subset in itertools.combinations(TABLE_CANDIDATES, size):
            score = 0.5 + sum(TABLE_EFFECTS[t] for t in subset)
            key = "+".join(["a", *subset])
            lines.append(f"a,{key},val,{score:.4f},1")
            lines.append(f"a,{key},test,{score - 0.01:.4f},1")
    table.write_text("\n".join(lines) + "\n")

    def write(name: str = "bench", *, trials: int = 6, storage: str | None = None) -> Path:
        path = tmp_path / f"{name}.yaml"
        path.write_text(
            f"name: {name}\ntarget: a\ncandidates: [b, c, d, e]\n"
            "objective: {metric: score, split: dev, direction: maximize}\n"
            "sampler: {name: tpe, seed: 0}\n"
            f"budget: {{trials: {trials}}}\n"
            f"runner: {{name: tabular, table: {table}}}\n"
            + (f"storage: '{storage}'\n" if storage is not None else "")
        )
        return path

    return write
