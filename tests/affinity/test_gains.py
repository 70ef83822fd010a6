"""Gains: seeds averaged, standard errors, sign by higher_is_better, relative vs absolute."""

from __future__ import annotations

import math

import pytest

from taskgraph.affinity.gains import compute_gains, pair_gains
from taskgraph.affinity.records import ScoreRecord
from taskgraph.errors import ConfigError


def rec(
    task: str, tasks: str, value: float, *, seed: int = 0, hib: bool = True, family: str = ""
) -> ScoreRecord:
    return ScoreRecord(task=task, task_set=frozenset(tasks.split("+")), value=value, seed=seed,
                       higher_is_better=hib, family=family)  # fmt: skip


def test_seed_average_and_standard_error_absolute() -> None:
    records = [rec("a", "a", v, seed=i) for i, v in enumerate([0.50, 0.52, 0.54])]
    records += [rec("a", "a+b", v, seed=i) for i, v in enumerate([0.60, 0.64])]
    (gain,) = compute_gains(records, kind="absolute").gains
    assert gain.mean == pytest.approx(0.62 - 0.52)
    # Unpaired: var(S)/n_S + var(base)/n_base with ddof=1.
    expected = math.sqrt(0.0008 / 2 + 0.0004 / 3)
    assert gain.stderr == pytest.approx(expected)
    assert gain.n_records == 2 and gain.auxiliaries == frozenset({"b"})


def test_relative_gain_of_a_loss_is_positive_when_it_falls() -> None:
    records = [
        rec("a", "a", 0.10, hib=False),
        rec("a", "a+b", 0.09, hib=False),
        rec("a", "a+c", 0.12, hib=False),
    ]
    gains = {next(iter(g.auxiliaries)): g.mean for g in compute_gains(records).gains}
    assert gains["b"] == pytest.approx(0.10)
    assert gains["c"] == pytest.approx(-0.20)


def test_single_record_borrows_the_other_sides_variance_and_two_singles_are_nan() -> None:
    records = [rec("a", "a", 0.5, seed=0), rec("a", "a", 0.7, seed=1), rec("a", "a+b", 0.8)]
    (gain,) = compute_gains(records, kind="absolute").gains
    var = 0.02  # var([0.5, 0.7], ddof=1)
    assert gain.stderr == pytest.approx(math.sqrt(var / 1 + var / 2))
    (lonely,) = compute_gains([rec("a", "a", 0.5), rec("a", "a+b", 0.8)], kind="absolute").gains
    assert math.isnan(lonely.stderr)


def test_gains_compare_within_a_family_and_count_records_without_baseline() -> None:
    records = [
        rec("a", "a", 0.5, family="small"),
        rec("a", "a+b", 0.6, family="small"),
        rec("a", "a", 0.8, family="large"),
        rec("a", "a+b", 0.88, family="large"),
        rec("a", "a+c", 0.9, family="orphan"),
    ]
    table = compute_gains(records, kind="absolute")
    by_family = {g.family: g.mean for g in table.gains}
    assert by_family == {"small": pytest.approx(0.1), "large": pytest.approx(0.08)}
    assert table.n_without_baseline == 1
    (pair,) = pair_gains(table.gains).items()
    assert pair[0] == ("a", "b") and pair[1][0] == pytest.approx(0.09) and pair[1][2] == 2


def test_zero_baseline_with_relative_gains_names_the_fix() -> None:
    with pytest.raises(ConfigError, match="absolute"):
        compute_gains([rec("a", "a", 0.0), rec("a", "a+b", 0.1)])
    with pytest.raises(ConfigError, match="kind"):
        compute_gains([], kind="ratio")  # type: ignore[arg-type]
