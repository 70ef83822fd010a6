"""`grouping_report` tells measured scores from predicted ones, network by network.

A network with records of only some members keeps their measured scores (before, every
member was predicted as if nothing was measured), and the report says which networks and
which tasks of the total rest on predictions: per network in ``--json`` (``network_details``),
``total_measured`` and a note, and "(partly predicted)" in the text title.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from taskgraph.app.affinity import grouping_report
from taskgraph.cli.app import app
from taskgraph.errors import ConfigError

runner = CliRunner()

# a+b holds a's score only; a+b+c holds a's only; the pairs with c are measured whole.
ROWS = """target,task_set,split,value,higher_is_better
a,a,val,0.50,1
b,b,val,0.60,1
c,c,val,0.70,1
a,a+b,val,0.90,1
a,a+c,val,0.49,1
c,a+c,val,0.69,1
b,b+c,val,0.61,1
c,b+c,val,0.71,1
a,a+b+c,val,0.52,1
"""


@pytest.fixture
def table(tmp_path: Path) -> Path:
    path = tmp_path / "partial.csv"
    path.write_text(ROWS)
    return path


def test_a_partly_measured_network_keeps_its_measured_members(table: Path) -> None:
    report = grouping_report(2, table=table, method="hoa")
    # The old code predicted a in a+b+c from the pairs (0.695), though 0.52 was measured.
    assert report.scores[frozenset("abc")]["a"] == pytest.approx(0.52)
    assert report.scores[frozenset("ab")]["a"] == pytest.approx(0.90)
    assert report.measured[frozenset("abc")] == {"a": pytest.approx(0.52)}
    assert report.grouping.networks == (frozenset("ab"), frozenset("bc"))
    details = report.to_dict()["network_details"]
    assert details == [
        {"network": ["a", "b"], "serves": ["a"], "measured": False, "partly": True,
         "predicted": ["b"]},
        {"network": ["b", "c"], "serves": ["b", "c"], "measured": True, "partly": False,
         "predicted": []},
    ]  # fmt: skip
    # Every task's serving score is measured: the total is, though a+b is partly predicted.
    assert report.to_dict()["total_measured"] is True
    assert not any("predicted" in note for note in report.notes)


def test_a_partly_predicted_total_is_flagged(table: Path) -> None:
    report = grouping_report(1, table=table, method="hoa")
    data = report.to_dict()
    assert data["networks"] == [["a", "b", "c"]]
    assert data["total_measured"] is False
    assert data["predicted_tasks"] == ["b", "c"]
    assert data["network_details"][0]["partly"] is True
    assert data["network_details"][0]["predicted"] == ["b", "c"]
    assert any(
        note.startswith("the total score is partly predicted: the scores of 2 of 3 tasks")
        for note in data["notes"]
    )
    result = runner.invoke(
        app, ["affinity", "groups", "--budget", "1", "--table", str(table), "--method", "hoa"]
    )
    assert result.exit_code == 0, result.stderr
    assert "budget 1: total score 1.83 (partly predicted)" in result.stdout
    assert "partly (b, c predicted)" in result.stdout
    result = runner.invoke(
        app,
        ["affinity", "groups", "--budget", "1", "--table", str(table), "--method", "hoa",
         "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == json.loads(json.dumps(data))


def test_a_budget_just_under_one_pays_for_no_network(table: Path) -> None:
    # The old check floored budget + 1e-9 (one network) and the MILP bought a+b+c for 1.
    with pytest.raises(ConfigError, match=r"^`budget` 0\.9999999999 pays for no network"):
        grouping_report(0.9999999999, table=table, method="hoa")
    result = runner.invoke(
        app,
        ["affinity", "groups", "--budget", "0.9999999999", "--table", str(table), "--method",
         "hoa"],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "`--budget` 0.9999999999 pays for no network (each costs 1)" in result.stderr
