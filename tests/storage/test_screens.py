"""Screens in the records database: a run of their own kind, kept out of every gain."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from taskgraph.errors import ConfigError
from taskgraph.storage import SCREEN_MODE, open_repository
from taskgraph.trial import LookaheadMatrix


def _screen_result(make_trial, *, effect: float = 0.2):  # type: ignore[no-untyped-def]
    config, result = make_trial("ner", ("chunk", "pos"), value=0.6)
    nan = math.nan
    matrix = LookaheadMatrix(
        tasks=["chunk", "ner", "pos"],
        values=[[nan, effect, nan], [nan, 0.05, nan], [nan, -0.1, nan]],
        n_probes=5,
        stderr=[[nan, 0.01, nan], [nan, 0.02, nan], [nan, 0.03, nan]],
    )
    return config, replace(result, lookahead=matrix)


def test_screens_are_numbered_down_from_minus_one_and_never_scored(storage_url, make_trial):
    config, result = _screen_result(make_trial)
    with open_repository(storage_url) as repo:
        trial_config, trial_result = make_trial("ner", ("pos",), value=0.7)
        repo.add_run_result(study="s", trial_number=0, config=trial_config, result=trial_result)
        first = repo.add_screen(study="s", config=config, result=result, details={"steps": 9})
        second = repo.add_screen(
            study="s", config=config, result=_screen_result(make_trial, effect=0.4)[1], details={}
        )
        assert (first.number, second.number) == (-1, -2)
        assert [s.run_id for s in repo.screens("s")] == [first.run_id, second.run_id]
        assert repo.screens("other") == []
        assert first.details == {"steps": 9} and first.cost_seconds == 12.5
        assert first.matrix.values[0][1] == 0.2 and math.isnan(first.matrix.values[0][0])
        assert first.matrix.stderr is not None and first.matrix.stderr[2][1] == 0.03
        assert math.isnan(first.matrix.stderr[0][0])
        # No score of the screen reaches gains or prior records: only the trial's are there.
        records = repo.score_records(split="dev", metric="f1")
        assert {r.task_set for r in records} == {frozenset({"ner", "pos"})}
        run = repo.run(first.run_id)
        assert run.transfer_mode == SCREEN_MODE and run.scores == {} and run.trial_number == -1
        assert run.objective == pytest.approx(result.objective)
        # The matrix is ordinary lookahead evidence for the affinity fit.
        stored = {m.run_id: m.matrix for m in repo.lookahead_matrices(study="s")}
        assert stored[first.run_id].values[2][1] == -0.1
        # Screens never take an Optuna trial's (trial, seed) key.
        assert (0, 0) in repo.run_keys("s") and (-1, 0) in repo.run_keys("s")


def test_a_screen_without_a_matrix_is_refused_and_old_matrices_load_without_errors(
    storage_url, make_trial
):
    config, result = make_trial("ner", ("pos",), lookahead=True)
    with open_repository(storage_url) as repo:
        with pytest.raises(ConfigError, match="needs the run's lookahead matrix"):
            repo.add_screen(study="s", config=config, result=replace(result, lookahead=None),
                            details={})  # fmt: skip
        assert repo.screens("s") == []
        repo.add_run_result(study="s", trial_number=0, config=config, result=result)
        [stored] = repo.lookahead_matrices(study="s")
        assert stored.matrix.stderr is None and stored.matrix == result.lookahead
