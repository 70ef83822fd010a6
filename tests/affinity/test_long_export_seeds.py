"""A long export averages a repeated seed as gains do: its measured gains are the database's.

One seed of the baseline trained twice (two studies running one configuration) is one
measurement: gains average each seed's runs first, then the seeds, and so must the long
table ``records export -f long`` writes, or ``affinity top --table`` on the export reports
other measured gains than ``affinity top`` on the database.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from taskgraph.affinity.gains import compute_gains, seed_mean
from taskgraph.affinity.longtable import read_long_csv
from taskgraph.affinity.records import ScoreRecord
from taskgraph.app import load_records, records_long_table
from taskgraph.cli.app import app
from taskgraph.storage import open_repository
from taskgraph.trial import Cost, TrialConfig, TrialResult, TrialStatus

runner = CliRunner()

#: (study, auxiliaries, seed) -> the target's dev f1; seed 0 of the baseline ran in two studies
RUNS = {
    ("first", (), 0): 0.50,
    ("second", (), 0): 0.56,
    ("first", (), 1): 0.60,
    ("first", ("pos",), 0): 0.70,
    ("first", ("pos",), 1): 0.66,
    ("first", ("chunk",), 0): 0.52,
}


@pytest.fixture
def url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'records.db'}"
    with open_repository(url) as repo:
        for number, ((study, aux, seed), dev) in enumerate(RUNS.items()):
            scores = {"ner": {"dev": {"f1": dev}}} | {t: {"dev": {"f1": 0.8}} for t in aux}
            repo.add_run_result(
                study=study,
                trial_number=number,
                config=TrialConfig(target="ner", auxiliaries=aux, seed=seed),
                result=TrialResult(
                    status=TrialStatus.COMPLETE,
                    scores=scores,
                    objective=dev,
                    cost=Cost(seconds=1.0),
                ),
            )
    return url


def _gains(records: list[ScoreRecord]) -> dict[frozenset[str], float]:
    return {g.auxiliaries: g.mean for g in compute_gains(records).gains if g.target == "ner"}


def test_a_repeated_seed_is_averaged_before_the_seeds(url: str) -> None:
    table = records_long_table(storage=url, metric="f1")
    # Seed 0's two runs (0.50, 0.56) are one measurement: (0.53 + 0.60) / 2, not 0.5533.
    assert table.get("ner", {"ner"}, "val").value == pytest.approx(0.565)
    assert table.get("ner", {"ner", "pos"}, "val").value == pytest.approx(0.68)
    from_database = _gains(load_records(storage=url, metric="f1"))
    from_table = _gains(table.to_records(split="val"))
    assert set(from_table) == set(from_database) == {frozenset({"pos"}), frozenset({"chunk"})}
    for auxiliaries, gain in from_database.items():
        assert from_table[auxiliaries] == pytest.approx(gain, abs=1e-12)
    assert from_table[frozenset({"pos"})] == pytest.approx((0.68 - 0.565) / 0.565)


def test_affinity_top_reports_the_same_measured_gains_from_the_export(
    url: str, tmp_path: Path
) -> None:
    out = tmp_path / "long.csv"
    export = runner.invoke(
        app, ["records", "export", "-f", "long", "-o", str(out), "--storage", url, "--metric", "f1"]
    )
    assert export.exit_code == 0, export.stderr
    assert read_long_csv(out).get("ner", {"ner"}, "val").value == pytest.approx(0.565)
    reports = []
    for source in (["--storage", url, "--metric", "f1"], ["--table", str(out)]):
        result = runner.invoke(app, ["affinity", "top", "--target", "ner", "--json", *source])
        assert result.exit_code == 0, result.stderr
        reports.append(json.loads(result.stdout))
    measured = [
        {
            tuple(r["auxiliaries"]): (r["measured_relative_gain"], r["measured_absolute_gain"])
            for r in report["recommendations"]
            if r["measured_relative_gain"] is not None  # a predicted set that never ran
        }
        for report in reports
    ]
    assert set(measured[0]) == set(measured[1]) == {("pos",), ("chunk",)}
    for auxiliaries, gains in measured[0].items():
        assert measured[1][auxiliaries] == pytest.approx(gains, abs=1e-12)
    assert measured[1][("pos",)][1] == pytest.approx(0.68 - 0.565)


def test_seed_mean_averages_each_seed_first() -> None:
    records = [
        ScoreRecord(task="a", task_set=frozenset({"a"}), value=v, seed=s)
        for v, s in [(1.0, 0), (3.0, 0), (5.0, 1)]
    ]
    assert seed_mean(records) == pytest.approx(3.5)  # (2 + 5) / 2, not 3
    with pytest.raises(ValueError, match="at least one record"):
        seed_mean([])
