"""The measured scores a grouping compares: of one model family, of the tasks grouped, finite,
averaged over seeds, in the direction the records say."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

import taskgraph.app.affinity.grouping as grouping_module
from taskgraph.affinity.records import ScoreRecord
from taskgraph.app.affinity import grouping_report
from taskgraph.app.affinity.scores import measured_scores, score_family
from taskgraph.errors import ConfigError

# Every task set of a, b and c measured whole: nothing the grouping compares is predicted.
SCORES = """target,task_set,split,value,higher_is_better
a,a,val,{a},{h}
b,b,val,{b},{h}
c,c,val,{c},{h}
a,a+b,val,{ab_a},{h}
b,a+b,val,{ab_b},{h}
a,a+c,val,{ac_a},{h}
c,a+c,val,{ac_c},{h}
b,b+c,val,{bc_b},{h}
c,b+c,val,{bc_c},{h}
a,a+b+c,val,{abc},{h}
b,a+b+c,val,{abc},{h}
c,a+b+c,val,{abc},{h}
"""


def _table(tmp_path: Path, *, higher: int, **values: float) -> Path:
    path = tmp_path / "table.csv"
    path.write_text(SCORES.format(h=higher, **values))
    return path


def _record(
    task: str, tasks: str, value: float, *, family: str = "f", seed: int = 0
) -> ScoreRecord:
    return ScoreRecord(
        task=task, task_set=frozenset(tasks), value=value, family=family, seed=seed, metric="m"
    )


def test_a_loss_table_groups_to_minimise_the_loss(tmp_path: Path) -> None:
    # a+b halves both losses; the pairs with c double them.  Minimising the loss, two networks
    # are a+b and c alone; maximising it would pick the pairs with c.
    table = _table(
        tmp_path, higher=0, a=0.5, b=0.5, c=0.5, ab_a=0.2, ab_b=0.2, ac_a=0.9, ac_c=0.9,
        bc_b=0.9, bc_c=0.9, abc=0.8,
    )  # fmt: skip
    report = grouping_report(2, table=table, method="hoa")
    assert set(report.grouping.networks) == {frozenset("ab"), frozenset("c")}
    assert report.grouping.total == pytest.approx(0.9)
    assert report.grouping.assignment == {
        "a": frozenset("ab"), "b": frozenset("ab"), "c": frozenset("c"),
    }  # fmt: skip
    _, higher, _ = measured_scores(
        [_record("a", "a", 0.5), replace(_record("b", "b", 0.4), higher_is_better=False)],
        ["a", "b"],
    )
    assert higher == {"a": True, "b": False}


def test_two_families_without_every_baseline_name_the_larger_and_its_missing_task(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Family "big" holds a's and b's records (baselines included), family "small" c's: neither
    # has every baseline, so no score of one family can be compared with every baseline.
    table = _table(
        tmp_path, higher=1, a=0.5, b=0.6, c=0.7, ab_a=0.55, ab_b=0.65, ac_a=0.5, ac_c=0.7,
        bc_b=0.6, bc_c=0.7, abc=0.6,
    )  # fmt: skip
    fit = grouping_module.fit_estimator

    def two_families(**kwargs: Any) -> Any:
        estimator, records = fit(**kwargs)
        return estimator, [replace(r, family="small" if r.task == "c" else "big") for r in records]

    monkeypatch.setattr(grouping_module, "fit_estimator", two_families)
    with pytest.raises(ConfigError) as error:
        grouping_report(2, table=table, method="hoa")
    message = str(error.value)
    assert message.startswith(
        "no single-task score for ['c'] in model family big (the one with the most records of 2)"
    )
    assert "no family has every task's" in message


def test_a_family_without_baselines_is_not_chosen_however_many_records_it_has() -> None:
    records = [
        _record("a", "a", 0.5, family="base"),
        _record("b", "b", 0.6, family="base"),
        _record("a", "ab", 0.7, family="base"),
        *(_record(t, "ab", 0.9, family="many", seed=s) for t in "ab" for s in range(4)),
    ]
    assert score_family(records, ["a", "b"]) == ("base", ["base", "many"])
    baselines, _, measured = measured_scores(records, ["a", "b"])
    assert baselines == {"a": pytest.approx(0.5), "b": pytest.approx(0.6)}
    assert measured[frozenset("ab")] == {"a": pytest.approx(0.7)}


def test_a_measured_score_is_the_mean_over_seeds() -> None:
    records = [
        _record("a", "a", 0.4, seed=0),
        _record("a", "a", 0.6, seed=1),
        _record("b", "b", 0.3),
        _record("a", "ab", 0.8, seed=0),
        _record("a", "ab", 0.5, seed=1),
    ]
    baselines, _, measured = measured_scores(records, ["a", "b"])
    assert baselines == {"a": pytest.approx(0.5), "b": pytest.approx(0.3)}
    assert measured[frozenset("ab")] == {"a": pytest.approx(0.65)}


def test_only_finite_records_of_sets_within_the_tasks_grouped_count() -> None:
    records = [
        _record("a", "a", 0.5),
        _record("b", "b", 0.6),
        _record("c", "c", 0.7),
        _record("a", "ab", math.nan, seed=0),  # a diverged seed: no score, not a NaN mean
        _record("a", "ab", 0.8, seed=1),
        _record("a", "ac", 0.99),  # c is not grouped: not a score of these tasks
        _record("a", "abc", 0.1),
    ]
    baselines, _, measured = measured_scores(records, ["a", "b"])
    assert set(measured) == {frozenset("a"), frozenset("b"), frozenset("ab")}
    assert measured[frozenset("ab")] == {"a": pytest.approx(0.8)}
    assert baselines == {"a": pytest.approx(0.5), "b": pytest.approx(0.6)}
    assert all(math.isfinite(v) for per in measured.values() for v in per.values())
    # c's baseline is of no grouped task: it does not make a family complete either
    assert score_family(records, ["a", "b"]) == ("f", ["f"])
