"""A screen that fails or is interrupted leaves the records database as it was."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from taskgraph.app.screening import screen_study
from taskgraph.errors import TaskgraphError
from taskgraph.runners.builtin import LocalRunner
from taskgraph.spec import spec_from_dict
from taskgraph.storage import open_repository
from taskgraph.trial import TrialResult

SPEC = {
    "name": "doomed",
    "target": "synth_target",
    "candidates": ["synth_related", "synth_conflict"],
    "encoder": {"name": "tiny-bert", "max_length": 16},
    "search": {"auxiliaries": {"max_size": 1}, "sharing": ["hard"], "max_steps": 4},
    "sampler": {"name": "graph", "seed": 0},
    "budget": {"trials": 2},
}


class _BrokenEvaluator:
    def __init__(self, outcome: BaseException | None) -> None:
        self.outcome = outcome

    def evaluate(self, config: Any, **_: Any) -> TrialResult:
        if self.outcome is not None:
            raise self.outcome
        return TrialResult.failed("boom")


def _studies(path: Path) -> tuple[list[str], list[str]]:
    """Return (the tg_studies names, the Optuna study names) in the SQLite file at ``path``."""
    with sqlite3.connect(path) as connection:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
        ours = [r[0] for r in connection.execute("SELECT name FROM tg_studies")]
        optuna = (
            [r[0] for r in connection.execute("SELECT study_name FROM studies")]
            if "studies" in tables
            else []
        )
    return ours, optuna


@pytest.mark.parametrize(
    ("outcome", "raised"),
    [(None, TaskgraphError), (KeyboardInterrupt(), KeyboardInterrupt)],
    ids=["failed", "interrupted"],
)
@pytest.mark.parametrize("database", ["new", "empty", "empty-file"])
def test_a_screen_that_does_not_finish_leaves_no_study(
    tmp_path: Path,
    data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    outcome: BaseException | None,
    raised: type[BaseException],
    database: str,
) -> None:
    monkeypatch.setattr(
        LocalRunner, "build_evaluator", lambda self, spec, data_dir=None: _BrokenEvaluator(outcome)
    )
    path = tmp_path / "screen.db"
    url = f"sqlite:///{path}"
    if database == "empty":  # the schema, no study
        open_repository(url).close()
    elif database == "empty-file":  # no schema either: a failed screen must not create it
        path.touch()
    with pytest.raises(raised, match="boom" if outcome is None else None):
        screen_study(spec_from_dict(SPEC), storage=url, data=data_dir, steps=4, probes=2)
    if database == "new":
        assert not path.exists()
    elif database == "empty-file":
        assert path.stat().st_size == 0
    else:
        assert _studies(path) == ([], [])


def test_a_screen_records_the_data_its_trainer_read(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The screen's run carries the dataset fingerprints its trainer reported (the data it
    read), not those of the files when the record is written."""
    import json
    from dataclasses import replace

    build = LocalRunner.build_evaluator
    read = {"synth_target": "a" * 64, "synth_related": "b" * 64, "synth_conflict": "c" * 64}

    class Reporting:
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def evaluate(self, config: Any, **kwargs: Any) -> TrialResult:
            result = self.inner.evaluate(config, **kwargs)
            assert result.data_fingerprints  # the trainer says what it read
            return replace(result, data_fingerprints=read)

    monkeypatch.setattr(
        LocalRunner,
        "build_evaluator",
        lambda self, spec, data_dir=None: Reporting(build(self, spec, data_dir=data_dir)),
    )
    path = tmp_path / "screen.db"
    screen_study(
        spec_from_dict(SPEC), storage=f"sqlite:///{path}", data=data_dir, steps=4, probes=2
    )
    with sqlite3.connect(path) as connection:
        stored = [
            json.loads(r[0]) for r in connection.execute("SELECT task_fingerprints FROM tg_runs")
        ]
    assert stored == [read]
