"""A long table's records name their metric after its direction, as the tabular runner does.

A table row names no metric.  Its records had none, so ``affinity top --table`` on a loss
table said ``"scored_by": "score on val"`` and ``affinity graph --table``'s JSON a ``metric``
of ``""``, where the records database the table came from (the tabular runner's writes) says
``loss``.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from taskgraph.affinity.longtable import (
    TABLE_LOSS_METRIC,
    TABLE_METRIC,
    LongRow,
    LongTable,
    write_long_csv,
)
from taskgraph.cli.app import app
from taskgraph.runners.tabular import TABULAR_LOSS_METRIC, TABULAR_METRIC, TabularEvaluator
from taskgraph.storage import open_repository
from taskgraph.trial import Objective, TrialConfig

runner = CliRunner()
TASKS = ("a", "b", "c")


def _table(*, higher: bool) -> LongTable:
    """Every subset of three tasks; each partner moves a task's value by a fixed effect."""
    effect = {"a": 0.03, "b": -0.01, "c": 0.02}
    rows = []
    for size in range(1, 4):
        for combo in itertools.combinations(TASKS, size):
            for task in combo:
                moved = sum(effect[s] for s in combo if s != task) + 0.001 * TASKS.index(task)
                value = 0.5 + moved if higher else 0.5 - moved
                rows.append(LongRow(task, frozenset(combo), "val", value, higher))
    return LongTable(rows=rows, source="toy")


def _invoke(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize(("higher", "metric"), [(False, "loss"), (True, "score")])
def test_table_records_name_their_direction(tmp_path: Path, higher: bool, metric: str) -> None:
    table = _table(higher=higher)
    assert {r.metric for r in table.to_records(split="val")} == {metric}
    path = tmp_path / "t.csv"
    write_long_csv(table, path)
    top = json.loads(_invoke("affinity", "top", "--table", str(path), "--target", "a", "--json"))
    assert top["scored_by"] == f"{metric} on val"
    graph = json.loads(_invoke("affinity", "graph", "--table", str(path), "--format", "json",
                               "-o", "-"))  # fmt: skip
    assert graph["graph"]["metric"] == metric


def test_the_names_are_the_tabular_runners() -> None:
    assert (TABLE_METRIC, TABLE_LOSS_METRIC) == (TABULAR_METRIC, TABULAR_LOSS_METRIC)


def test_a_loss_table_is_scored_by_what_its_database_says(tmp_path: Path) -> None:
    """The tabular runner writes a loss table's rows as ``loss``; the long table exported from
    that database is scored by ``loss`` too (the split named as each source names it)."""
    url = f"sqlite:///{tmp_path / 'records.db'}"
    evaluator = TabularEvaluator(_table(higher=False), split="val")
    objective = Objective(split="dev", direction="minimize")
    with open_repository(url) as repo:
        for number, combo in enumerate(
            c for size in (1, 2, 3) for c in itertools.combinations(TASKS, size)
        ):
            config = TrialConfig(target=combo[0], auxiliaries=combo[1:], objective=objective)
            repo.add_run_result(
                study="toy", trial_number=number, config=config, result=evaluator.evaluate(config)
            )
    from_db = json.loads(_invoke("affinity", "top", "--storage", url, "--target", "a", "--json"))
    assert from_db["scored_by"] == "loss on dev"
    exported = tmp_path / "long.csv"
    _invoke("records", "export", "-f", "long", "-o", str(exported), "--storage", url)
    from_table = json.loads(
        _invoke("affinity", "top", "--table", str(exported), "--target", "a", "--json")
    )
    assert from_table["scored_by"] == "loss on val"
