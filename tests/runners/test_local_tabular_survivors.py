"""What the mutation audit of the local and tabular runners found untested.

The tabular runner answers from the split that ``runner.split`` names; the local runner trains
without checkpoints, rather than failing every trial, when its default checkpoint folder (in
the cache) cannot be used.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

import taskgraph
from taskgraph.runners import RUNNERS
from taskgraph.spec import spec_from_dict
from taskgraph.testing import tiny_training_spec, trial_states, write_long_rows
from taskgraph.trial import TrialConfig, TrialStatus


@pytest.mark.parametrize(("split", "objective"), [("val", 0.61), ("test", 0.57)])
def test_the_tabular_runner_answers_from_the_split_the_spec_names(
    tmp_path: Path, split: str, objective: float
) -> None:
    table = write_long_rows(
        tmp_path,
        ["a,a,val,0.5,1", "a,a,test,0.45,1", "a,a+b,val,0.61,1", "a,a+b,test,0.57,1"],
    )
    spec = spec_from_dict(
        {
            "name": "bench",
            "target": "a",
            "candidates": ["b"],
            "runner": {"name": "tabular", "table": str(table), "split": split},
        }
    )
    evaluator = RUNNERS.get("tabular").build_evaluator(spec)
    assert evaluator is not None
    result = evaluator.evaluate(TrialConfig(target="a", auxiliaries=("b",)))
    assert result.status is TrialStatus.COMPLETE and result.objective == objective


def test_an_unusable_default_checkpoint_folder_trains_without_checkpoints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "checkpoints").write_text("a file where the checkpoint folder would go\n")
    monkeypatch.setenv("TASKGRAPH_CACHE", str(cache))
    fields = tiny_training_spec()
    fields["budget"] = {"trials": 1}
    fields["training"]["device"] = "cpu"
    fields["sampler"] = {"name": "random", "seed": 0}  # the graph sampler embeds task texts
    fields["runner"] = {"name": "local"}  # checkpoints on, in the cache's default folder
    url = f"sqlite:///{tmp_path / 'study.db'}"
    with caplog.at_level(logging.WARNING, logger="taskgraph.runners.builtin"):
        taskgraph.run_study(spec_from_dict(fields), storage=url)
    assert list(trial_states(url).values()) == ["COMPLETE"]
    assert any("no checkpoints" in record.getMessage() for record in caplog.records)
