"""The tabular runner: looks results up; a missing combination is a FAILED result with a reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from taskgraph.affinity.longtable import LongRow, LongTable, write_long_csv
from taskgraph.errors import ConfigError, DataNotFoundError
from taskgraph.runners.base import TrialEvaluator
from taskgraph.runners.tabular import TabularEvaluator
from taskgraph.trial import Objective, TrialConfig, TrialStatus


@pytest.fixture
def table() -> LongTable:
    return LongTable(
        rows=[
            LongRow("a", frozenset({"a"}), "val", 0.50, True),
            LongRow("a", frozenset({"a", "b"}), "val", 0.55, True),
            LongRow("b", frozenset({"a", "b"}), "val", 0.70, True),
            LongRow("a", frozenset({"a", "b"}), "test", 0.53, True),
        ],
        source="toy",
    )


def test_lookup_returns_objective_and_every_member_score(table: LongTable) -> None:
    evaluator = TabularEvaluator(table, split="val")
    assert isinstance(evaluator, TrialEvaluator)
    config = TrialConfig(
        target="a", auxiliaries=("b",), objective=Objective(metric="acc", split="dev")
    )
    result = evaluator.evaluate(config)
    assert result.status is TrialStatus.COMPLETE and result.objective == 0.55
    assert result.scores == {
        "a": {"dev": {"acc": 0.55}, "test": {"acc": 0.53}},
        "b": {"dev": {"acc": 0.70}},
    }
    baseline = evaluator.evaluate(TrialConfig(target="a"))
    assert baseline.objective == 0.50 and baseline.score("a", "dev", "score") == 0.50


def test_missing_combination_fails_with_a_clear_reason(table: LongTable) -> None:
    result = TabularEvaluator(table).evaluate(TrialConfig(target="a", auxiliaries=("c",)))
    assert result.status is TrialStatus.FAILED
    assert (
        result.failure_reason
        == "no published result for target 'a' with task set a+c on split 'val' in table 'toy'"
    )


def test_built_from_a_path_and_bad_arguments(table: LongTable, tmp_path: Path) -> None:
    path = tmp_path / "toy.csv"
    write_long_csv(table, path)
    assert (
        TabularEvaluator(table=str(path))
        .evaluate(TrialConfig(target="a", auxiliaries=("b",)))
        .objective
        == 0.55
    )
    with pytest.raises(ConfigError, match="`split` must be one of the table's splits"):
        TabularEvaluator(table, split="dev")
    with pytest.raises(DataNotFoundError):
        TabularEvaluator(tmp_path / "missing.csv")
