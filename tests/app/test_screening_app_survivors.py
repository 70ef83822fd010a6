"""Screens as the user sees them: the cases a mutation audit of ``app/screening.py`` and
``search/screening.py`` found untested.

The stored screens come from a joint run that a scripted evaluator answers (no training): its
lookahead matrix is known, so the report can be checked against it.
"""

from __future__ import annotations

import math
import sqlite3
import warnings
from pathlib import Path
from typing import Any

import pytest

from taskgraph.app.screening import screen_report, screen_study, screen_summary
from taskgraph.runners.builtin import LocalRunner
from taskgraph.search.screening import screen_config, startup_scores, textemb_scores
from taskgraph.testing import synthetic_spec
from taskgraph.trial import Cost, LookaheadMatrix, TrialConfig, TrialResult, TrialStatus

SEARCH = {"auxiliaries": {"max_size": 1}, "sharing": ["hard"], "max_steps": 4}
#: Z(candidate -> target) of the first and of the second screen: the ranking flips
FIRST = {"synth_related": 0.3, "synth_conflict": -0.2}
SECOND = {"synth_related": -0.1, "synth_conflict": 0.4}


def _matrix(tasks: list[str], target: str, effects: dict[str, float], n_probes: int) -> Any:
    """Return a target-only lookahead matrix of ``tasks``: ``effects`` in the target's column."""
    column = tasks.index(target)
    values = [[math.nan] * len(tasks) for _ in tasks]
    for i, task in enumerate(tasks):
        if task in effects:
            values[i][column] = effects[task]
    return LookaheadMatrix(tasks=tasks, values=values, n_probes=n_probes)


class _ScriptedJointRun:
    """The screen's evaluator: each call answers the next of ``effects``, with ``n_probes``
    probes, and keeps the data directory it was built with."""

    def __init__(self, effects: list[dict[str, float]], *, n_probes: int) -> None:
        self.effects = list(effects)
        self.n_probes = n_probes
        self.data_dirs: list[Any] = []

    def evaluate(self, config: TrialConfig, **_: Any) -> TrialResult:
        effects = self.effects.pop(0)
        return TrialResult(
            status=TrialStatus.COMPLETE,
            objective=0.75,
            cost=Cost(seconds=1.0, total_steps=config.max_steps or 0),
            lookahead=_matrix(list(config.task_set), config.target, effects, self.n_probes),
        )


def _scripted(monkeypatch: pytest.MonkeyPatch, run: _ScriptedJointRun) -> None:
    def build(self: Any, spec: Any, data_dir: Any = None) -> _ScriptedJointRun:
        run.data_dirs.append(data_dir)
        return run

    monkeypatch.setattr(LocalRunner, "build_evaluator", build)


def _spec(**fields: Any) -> Any:
    return synthetic_spec(name="scr", search=SEARCH, **fields)


@pytest.fixture(scope="module")
def rescreened(
    tmp_path_factory: pytest.TempPathFactory, data_dir: Path
) -> tuple[Path, list[dict[str, Any]], _ScriptedJointRun]:
    """Screen study ``scr`` (objective: accuracy on test) twice; return (the SQLite file, both
    reports, the evaluator)."""
    run = _ScriptedJointRun([FIRST, SECOND], n_probes=2)
    path = tmp_path_factory.mktemp("rescreen") / "screen.db"
    spec = _spec(objective={"metric": "accuracy", "split": "test"})
    with pytest.MonkeyPatch.context() as monkeypatch:
        _scripted(monkeypatch, run)
        reports = [
            screen_study(spec, storage=f"sqlite:///{path}", data=data_dir, steps=4, probes=2)
            for _ in range(2)
        ]
    return path, reports, run


def test_a_rescreen_reports_the_screen_it_ran(
    rescreened: tuple[Path, list[dict[str, Any]], _ScriptedJointRun],
) -> None:
    path, (first, second), _ = rescreened
    assert (first["screen"], second["screen"]) == (-1, -2)
    ranked = [c["candidate"] for c in second["candidates"]]
    assert ranked == ["synth_conflict", "synth_related"]  # the second run's, not the first's
    assert screen_report("scr", storage=f"sqlite:///{path}") == second


def test_the_screen_records_every_tasks_type(
    rescreened: tuple[Path, list[dict[str, Any]], _ScriptedJointRun],
) -> None:
    path, _, _ = rescreened
    with sqlite3.connect(path) as connection:
        types = dict(connection.execute("SELECT name, type FROM tg_tasks").fetchall())
    assert types == dict.fromkeys(
        ("synth_target", "synth_related", "synth_conflict"), "token_tagging"
    )


def test_the_report_names_the_objectives_metric_and_split(
    rescreened: tuple[Path, list[dict[str, Any]], _ScriptedJointRun],
) -> None:
    _, (_, report), _ = rescreened
    assert (report["metric"], report["split"], report["target_score"]) == ("accuracy", "test", 0.75)
    assert screen_summary(report).endswith(
        "; synth_target accuracy on test after the joint run: 0.7500"
    )


def test_the_joint_run_reads_the_data_directory_given(
    rescreened: tuple[Path, list[dict[str, Any]], _ScriptedJointRun], data_dir: Path
) -> None:
    # Every evaluator built (the joint runs', the opened study's) reads the directory given.
    _, _, run = rescreened
    assert {d if d is None else Path(d).resolve() for d in run.data_dirs} == {data_dir.resolve()}


def test_the_screen_scores_the_target_on_the_objectives_split() -> None:
    config = screen_config(_spec(objective={"split": "test"}), steps=4, probes=2)
    assert config.eval_splits == ("test",)


def test_head_options_of_tasks_the_screen_does_not_train_are_dropped() -> None:
    heads = {"synth_target": {"dropout": 0.1}, "synth_conflict": {"dropout": 0.2}}
    search = {**SEARCH, "auxiliaries": {"max_size": 1, "exclude": ["synth_conflict"]}}
    spec = synthetic_spec(
        name="scr", search=search, training={"hyperparameters": {"head_options": heads}}
    )
    config = screen_config(spec, steps=4, probes=2)
    assert config.hyperparameters["head_options"] == {"synth_target": {"dropout": 0.1}}


# --- the graph sampler's start-up prior -----------------------------------------------------


class _Screen:
    def __init__(self, effects: dict[str, float]) -> None:
        self.matrix = _matrix(["tgt", *effects], "tgt", effects, 3)


def _prior(candidates: list[str], **given: Any) -> tuple[str, dict[str, float]]:
    return startup_scores(target="tgt", candidates=candidates, **{"screens": [], **given})


def test_a_cached_prior_of_other_candidates_is_not_carried_over() -> None:
    # The cache may name a task the study does not draw (one its spec now excludes).
    cached = {"source": "textemb", "scores": {"alpha": 0.5, "dropped": 0.9}}
    assert _prior(["alpha", "bravo"], cached=cached) == ("textemb", {"alpha": 0.5})


def test_only_cached_text_embedding_scores_are_reused() -> None:
    # A cached prior of a screen the study no longer has is not text-embedding similarity.
    cached = {"source": "screen", "scores": {"alpha": 0.9, "bravo": -0.9}}
    given = {"cached": cached, "embed": lambda: {"bravo": 1.0}}
    assert _prior(["alpha", "bravo"], **given) == ("textemb", {"bravo": 1.0})


def test_an_empty_cache_does_not_stop_the_embeddings() -> None:
    given = {"cached": {"source": "textemb", "scores": {}}, "embed": lambda: {"alpha": 0.2}}
    assert _prior(["alpha"], **given) == ("textemb", {"alpha": 0.2})


def test_a_latest_screen_of_other_candidates_falls_back_to_an_earlier_one() -> None:
    older, newer = _Screen({"alpha": 0.1, "bravo": 0.4}), _Screen({"other": 0.9})
    expected = ("screen", {"alpha": 0.1, "bravo": 0.4})
    assert _prior(["alpha", "bravo"], screens=[older, newer]) == expected


def test_no_embedding_at_all_is_no_prior() -> None:
    assert _prior(["alpha"], embed=dict) == ("none", {})


def test_an_unreadable_embedding_cache_is_a_warning_not_a_failure() -> None:
    def unreadable(tasks: Any, **_: Any) -> Any:
        raise OSError("No space left on device")

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert textemb_scores("tgt", ["alpha"], embed=unreadable) == {}
    assert any("No space left on device" in str(w.message) for w in caught)


def test_a_data_directory_under_home_reaches_the_joint_run_expanded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "data").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path))
    run = _ScriptedJointRun([FIRST], n_probes=2)
    _scripted(monkeypatch, run)
    screen_study(_spec(), storage=f"sqlite:///{tmp_path / 's.db'}", data="~/data", steps=4)
    # The first evaluator built is the joint run's: the study does not exist yet.
    assert Path(run.data_dirs[0]) == (tmp_path / "data").resolve()
