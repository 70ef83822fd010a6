"""The tabular runner: looks results up; a missing combination is a FAILED result with a reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from taskgraph.affinity.longtable import LongRow, LongTable, write_long_csv
from taskgraph.errors import ConfigError, DataNotFoundError
from taskgraph.runners.base import TrialEvaluator
from taskgraph.runners.tabular import TabularEvaluator, check_table_objective
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


@pytest.fixture
def mixed_table() -> LongTable:
    """``a`` is an accuracy (higher is better), ``b`` a loss; ``a`` has no row with {a, b, c}."""
    return LongTable(
        rows=[
            LongRow("b", frozenset({"a", "b", "c"}), "val", 0.9, False),
            LongRow("b", frozenset({"a", "b", "c"}), "test", 0.95, False),
            LongRow("c", frozenset({"a", "b", "c"}), "val", 0.4, True),
            LongRow("a", frozenset({"a", "b"}), "val", 0.60, True),
            LongRow("b", frozenset({"a", "b"}), "val", 1.2, False),
            LongRow("a", frozenset({"a", "b"}), "test", 0.58, True),
        ],
        source="mixed",
    )


def test_each_task_is_recorded_under_a_metric_of_its_own_direction(
    mixed_table: LongTable,
) -> None:
    config = TrialConfig(
        target="a", auxiliaries=("b",), objective=Objective(metric="acc", split="dev")
    )
    result = TabularEvaluator(mixed_table, split="val").evaluate(config)
    # b is a loss: recorded as "loss", not under the target's higher-is-better "acc"
    assert result.scores == {
        "a": {"dev": {"acc": 0.60}, "test": {"acc": 0.58}},
        "b": {"dev": {"loss": 1.2}},
    }


def test_every_task_with_a_row_is_scored_when_an_earlier_one_has_none(
    mixed_table: LongTable,
) -> None:
    config = TrialConfig(
        target="b",
        auxiliaries=("a", "c"),
        objective=Objective(split="dev", direction="minimize"),
    )
    result = TabularEvaluator(mixed_table, split="val").evaluate(config)
    assert result.status is TrialStatus.COMPLETE and result.objective == 0.9
    assert result.scores == {
        "b": {"dev": {"loss": 0.9}, "test": {"loss": 0.95}},
        "c": {"dev": {"score": 0.4}},
    }


def test_split_test_answers_only_the_objective_split(mixed_table: LongTable) -> None:
    config = TrialConfig(target="a", auxiliaries=("b",), objective=Objective(split="dev"))
    result = TabularEvaluator(mixed_table, split="test").evaluate(config)
    assert result.objective == 0.58
    assert result.scores == {"a": {"dev": {"score": 0.58}}}


def test_direction_check_reads_the_study_targets_rows(mixed_table: LongTable) -> None:
    # the table's first row is b's (a loss): a's rows are higher-is-better all the same
    check_table_objective(mixed_table, target="a", metric=None, direction="maximize", source="spec")
    check_table_objective(mixed_table, target="b", metric=None, direction="minimize", source="spec")
    with pytest.raises(ConfigError, match="direction"):
        check_table_objective(
            mixed_table, target="a", metric=None, direction="minimize", source="spec"
        )
