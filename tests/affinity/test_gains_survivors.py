"""Gains: behaviour that mutation testing of ``affinity/gains.py`` found unasserted."""

from __future__ import annotations

import math

import pytest

from taskgraph.affinity.gain_queries import evidence_runs
from taskgraph.affinity.gains import compute_gains
from taskgraph.affinity.records import ScoreRecord

Settings = tuple[tuple[str, str], ...]
SLOW: Settings = (("learning_rate", "0.0001"),)
FAST: Settings = (("learning_rate", "0.001"),)


def rec(
    task: str, tasks: str, value: float, *, seed: int = 0, family: str = "",
    run: int | None = None, partners: str = "", settings: Settings = (),
) -> ScoreRecord:  # fmt: skip
    return ScoreRecord(task=task, task_set=frozenset(tasks.split("+")), value=value, seed=seed,
                       family=family, run_id=run, partner_data=partners,
                       settings=settings)  # fmt: skip


def test_families_with_as_many_records_are_ranked_by_name() -> None:
    # The baseline shown for a target must not depend on the order records came in.
    records = [rec("a", "a", 0.9, family="zeta"), rec("a", "a+b", 0.95, family="zeta")]
    records += [rec("a", "a", 0.5, family="alpha"), rec("a", "a+b", 0.55, family="alpha")]
    table = compute_gains(records)
    assert table.main_family() == "alpha"
    assert table.baseline_value("a") == pytest.approx(0.5)


def test_a_baseline_of_one_seed_borrows_the_sets_seed_variance() -> None:
    records = [rec("a", "a", 0.5)]
    records += [rec("a", "a+b", v, seed=i) for i, v in enumerate([0.6, 0.8])]
    (gain,) = compute_gains(records, kind="absolute").gains
    var = 0.02  # var([0.6, 0.8], ddof=1), taken for the baseline's single seed too
    assert gain.mean == pytest.approx(0.2)
    assert gain.stderr == pytest.approx(math.sqrt(var / 2 + var / 1))


def test_an_infinite_record_is_left_out_like_a_nan() -> None:
    # A loss that overflowed is no score: it would make the mean and the gain infinite.
    records = [rec("a", "a", 0.5), rec("a", "a+b", 0.6), rec("a", "a+b", math.inf, seed=1)]
    records.append(rec("a", "a+c", -math.inf))
    table = compute_gains(records, kind="absolute")
    (gain,) = table.gains
    assert gain.auxiliaries == frozenset({"b"})
    assert gain.mean == pytest.approx(0.1) and gain.n_records == 1
    assert table.family_records == {"": 2}


def test_a_run_id_of_zero_is_a_run() -> None:
    records = [rec("a", "a", 0.5, run=1), rec("a", "a+b", 0.6, run=0)]
    (gain,) = compute_gains(records).gains
    assert gain.run_ids == frozenset({0})
    assert evidence_runs([gain]) == 1


def test_records_without_partner_data_are_not_another_data_version() -> None:
    # An older run that recorded no fingerprints is unknown, not a second version.
    records = [rec("a", "a", 0.5), rec("a", "a+b", 0.6, partners="f00d")]
    records.append(rec("a", "a+b", 0.62, seed=1))
    assert compute_gains(records).mixed_partner_data == []
    records.append(rec("a", "a+b", 0.64, seed=2, partners="beef"))
    assert compute_gains(records).mixed_partner_data == [("", "a", frozenset({"b"}))]


def test_records_without_a_baseline_are_counted_as_records_not_seeds() -> None:
    # Three runs of seed 0 (three studies) and one of seed 1, none with a baseline of a.
    records = [rec("a", "a+b", 0.6) for _ in range(3)] + [rec("a", "a+c", 0.7, seed=1)]
    table = compute_gains(records)
    assert table.n_without_baseline == 4
    assert "none of the 4 records' targets" in table.why_empty()


def test_one_setting_of_baseline_runs_is_not_singled_out_from_the_rest() -> None:
    # Baseline runs of one known setting beside ones of unknown settings (no "several
    # settings"): the set is measured against all baseline runs, not the known ones alone.
    records = [rec("a", "a", 0.5, settings=SLOW), rec("a", "a", 0.7, seed=1)]
    records.append(rec("a", "a+b", 0.66, settings=SLOW))
    table = compute_gains(records, kind="absolute")
    (gain,) = table.gains
    assert gain.mean == pytest.approx(0.66 - 0.6)
    assert table.mixed_settings == []


def test_settings_measured_apart_weigh_alike_and_pool_their_errors() -> None:
    # Slow: baselines 0.5, 0.6 against sets 0.6, 0.7 (+0.1); fast: 0.8, 0.9 against three
    # seeds 0.85, 0.95, 0.90 (+0.05).  Equal weight per setting, not per record.
    records = [rec("a", "a", v, seed=i, settings=SLOW) for i, v in enumerate([0.5, 0.6])]
    records += [rec("a", "a", v, seed=i, settings=FAST) for i, v in enumerate([0.8, 0.9])]
    records += [rec("a", "a+b", v, seed=i, settings=SLOW) for i, v in enumerate([0.6, 0.7])]
    records += [rec("a", "a+b", v, seed=i, settings=FAST) for i, v in enumerate([0.85, 0.95, 0.9])]
    table = compute_gains(records, kind="absolute")
    (gain,) = table.gains
    assert gain.mean == pytest.approx((0.1 + 0.05) / 2)
    slow = math.sqrt(0.005 / 2 + 0.005 / 2)  # var([0.6, 0.7]) = var([0.5, 0.6]) = 0.005
    fast = math.sqrt(0.0025 / 3 + 0.005 / 2)  # var([0.85, 0.95, 0.9]) = 0.0025
    assert gain.stderr == pytest.approx(math.sqrt(slow**2 + fast**2) / 2)
    assert table.mixed_settings == []


def test_gains_are_ordered_by_target_then_set_size() -> None:
    records = [rec("a", "a", 0.5), rec("a", "a+b+c", 0.7), rec("a", "a+c", 0.6)]
    records += [rec("a", "a+d", 0.6), rec("b", "b", 0.5), rec("b", "a+b", 0.6)]
    order = [(g.target, "+".join(sorted(g.auxiliaries))) for g in compute_gains(records).gains]
    assert order == [("a", "c"), ("a", "d"), ("a", "b+c"), ("b", "a")]


def test_a_target_without_its_baseline_is_named_as_such_beside_another_targets_baseline() -> None:
    # One target has its baseline, the other's task set has none: the table is empty because
    # a baseline is missing, not because the records are baselines only.
    table = compute_gains([rec("a", "a", 0.5), rec("b", "a+b", 0.6)])
    assert table.gains == [] and table.n_without_baseline == 1
    reason = table.why_empty()
    assert "no single-task baseline of their target" in reason
    assert "['a'] only" in reason
    assert "baselines only" not in reason
