"""Gains: seeds averaged, standard errors, sign by higher_is_better, relative vs absolute."""

from __future__ import annotations

import math

import pytest

from taskgraph.affinity.gain_queries import evidence_runs, measured_gain, pair_gains
from taskgraph.affinity.gains import Gain, compute_gains
from taskgraph.affinity.records import ScoreRecord
from taskgraph.errors import ConfigError


def rec(
    task: str, tasks: str, value: float, *, seed: int = 0, hib: bool = True, family: str = "",
    split: str = "dev", metric: str = "",
) -> ScoreRecord:  # fmt: skip
    return ScoreRecord(task=task, task_set=frozenset(tasks.split("+")), value=value, seed=seed,
                       higher_is_better=hib, family=family, split=split,
                       metric=metric)  # fmt: skip


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


def test_a_zero_baseline_can_leave_that_tasks_relative_gains_out() -> None:
    # An F1 of 0 alone made the whole table fail, other targets' gains included.
    records = [rec("z", "z", 0.0), rec("z", "z+a", 0.1), rec("a", "a", 0.5), rec("a", "a+z", 0.6)]
    table = compute_gains(records, zero_baselines="leave_out")
    assert [(g.target, g.auxiliaries) for g in table.gains] == [("a", frozenset({"z"}))]
    assert table.zero_baselines == [("", "z", "dev", "")]
    assert table.baselines[("", "z", "dev", "")][0] == 0.0 and "z" in table.targets
    only_zero = compute_gains(records[:2], zero_baselines="leave_out")
    assert "single-task score of ['z'] is 0" in only_zero.why_empty()
    with pytest.raises(ConfigError, match="zero_baselines"):
        compute_gains(records, zero_baselines="skip")  # type: ignore[arg-type]


def test_records_of_one_seed_repeat_one_measurement() -> None:
    # Five studies ran the same deterministic training (same family, task set and seed): the
    # identical values gave a standard error of 0 instead of an unknown one.
    records = [rec("a", "a", 0.5)] + [rec("a", "a+b", 0.6) for _ in range(5)]
    (gain,) = compute_gains(records, kind="absolute").gains
    assert gain.mean == pytest.approx(0.1) and gain.n_records == 5
    assert math.isnan(gain.stderr)
    # Two distinct seeds, one repeated: the repeat is averaged before the spread is taken.
    records = [rec("a", "a", 0.5, seed=0), rec("a", "a", 0.7, seed=1), rec("a", "a", 0.7, seed=1)]
    records += [rec("a", "a+b", 0.8, seed=0), rec("a", "a+b", 0.9, seed=1)]
    table = compute_gains(records, kind="absolute")
    (gain,) = table.gains
    assert gain.mean == pytest.approx(0.85 - 0.6)
    assert gain.stderr == pytest.approx(math.sqrt(0.005 / 2 + 0.02 / 2))
    # The baseline counts its three records (runs), not its two seeds; its error is the
    # spread of the two seed means (0.5, 0.7): sqrt(0.02 / 2).
    mean, se, count = table.baselines[("", "a", "dev", "")]
    assert mean == pytest.approx(0.6) and se == pytest.approx(0.1) and count == 3


def test_a_pair_from_several_families_combines_the_families_own_errors() -> None:
    # Two families that agree: the spread of their means is 0, their seed noise is not.
    records = [
        rec("a", tasks, value, seed=seed, family=family)
        for family in ("small", "large")
        for tasks, values in (("a", (0.50, 0.60)), ("a+b", (0.60, 0.70)))
        for seed, value in enumerate(values)
    ]
    table = compute_gains(records, kind="absolute")
    own = {g.family: g.stderr for g in table.gains}
    each = math.sqrt(0.005 / 2 + 0.005 / 2)  # var([0.5, 0.6]) = var([0.6, 0.7]) = 0.005
    assert own == {"small": pytest.approx(each), "large": pytest.approx(each)}
    ((pair, (mean, se, n)),) = pair_gains(table.gains).items()
    assert pair == ("a", "b") and mean == pytest.approx(0.1) and n == 2
    assert se == pytest.approx(math.sqrt(each**2 + each**2) / 2)
    # One family's error unknown: the mean's is unknown too.
    records.append(rec("a", "a+b", 0.9, family="third"))
    records.append(rec("a", "a", 0.8, family="third"))
    (_, (_, se, n)), *_ = pair_gains(compute_gains(records, kind="absolute").gains).items()
    assert n == 3 and math.isnan(se)


def test_the_baseline_of_a_task_is_of_the_family_with_the_most_records() -> None:
    # A mean over a small and a large model is a score neither reached.
    records = [rec("a", "a", 0.5, seed=s, family="small") for s in (0, 1)]
    records += [rec("a", "a+b", 0.55, seed=s, family="small") for s in (0, 1)]
    records += [rec("a", "a", 0.9, family="large")]
    table = compute_gains(records)
    assert table.main_family() == "small"
    assert table.baseline_value("a") == pytest.approx(0.5)
    assert table.baseline_value("b") is None


def test_a_relative_gain_over_a_negative_baseline_keeps_its_sign() -> None:
    # A Matthews correlation or an R^2 can be below 0: rising from -0.5 to -0.4 is an
    # improvement of 0.1 / |-0.5| = +20 %, not -20 %, and -0.5 is no zero baseline.
    records = [rec("a", "a", -0.5), rec("a", "a+b", -0.4)]
    for table in (compute_gains(records), compute_gains(records, zero_baselines="leave_out")):
        (gain,) = table.gains
        assert gain.mean == pytest.approx(0.2) and table.zero_baselines == []
    # Lower is better: the same rise is a loss of 20 %.
    (worse,) = compute_gains(
        [rec("a", "a", -0.5, hib=False), rec("a", "a+b", -0.4, hib=False)]
    ).gains
    assert worse.mean == pytest.approx(-0.2)


def test_split_and_metric_choose_the_records_compared() -> None:
    records = [
        rec("a", "a", 0.5, split="dev", metric="f1"),
        rec("a", "a+b", 0.6, split="dev", metric="f1"),
        rec("a", "a", 0.5, split="test", metric="f1"),
        rec("a", "a+b", 0.8, split="test", metric="f1"),
        rec("a", "a", 0.4, split="dev", metric="accuracy"),
        rec("a", "a+b", 0.45, split="dev", metric="accuracy"),
    ]
    dev = compute_gains(records, split="dev", metric="f1", kind="absolute").gains
    assert [(g.split, g.metric) for g in dev] == [("dev", "f1")]
    assert dev[0].mean == pytest.approx(0.1)
    test = compute_gains(records, split="test", kind="absolute").gains
    assert [(g.split, g.metric) for g in test] == [("test", "f1")]
    assert test[0].mean == pytest.approx(0.3)
    accuracy = compute_gains(records, metric="accuracy", kind="absolute").gains
    assert [(g.split, g.metric) for g in accuracy] == [("dev", "accuracy")]
    assert accuracy[0].mean == pytest.approx(0.05)
    both = compute_gains(records, metric="f1", kind="absolute").gains
    assert sorted((g.split, round(g.mean, 6)) for g in both) == [("dev", 0.1), ("test", 0.3)]


def test_a_non_finite_record_is_left_out() -> None:
    # A diverged run (NaN) is no score: it neither poisons the mean nor counts as a record.
    records = [rec("a", "a", 0.5), rec("a", "a+b", 0.6), rec("a", "a+b", math.nan, seed=1)]
    (gain,) = compute_gains(records, kind="absolute").gains
    assert gain.mean == pytest.approx(0.1) and gain.n_records == 1
    assert compute_gains(records, kind="absolute").family_records == {"": 2}


def test_the_standard_error_of_a_relative_gain_by_the_delta_method() -> None:
    # Gain (S - B) / |B| = S / B - 1 (B > 0): by the delta method its variance is about
    # (var(S) + (S / B)^2 var(B)) / B^2, with var(S) and var(B) those of the seed means.
    records = [rec("a", "a", v, seed=i) for i, v in enumerate([0.5, 0.6])]
    records += [rec("a", "a+b", v, seed=i) for i, v in enumerate([0.7, 0.9])]
    (gain,) = compute_gains(records).gains
    # S = 0.8, B = 0.55; var([0.7, 0.9]) = 0.02, var([0.5, 0.6]) = 0.005 (ddof=1)
    assert gain.mean == pytest.approx(0.25 / 0.55)
    expected = math.sqrt(0.02 / 2 + (0.8 / 0.55) ** 2 * 0.005 / 2) / 0.55
    assert expected == pytest.approx(0.2248, abs=1e-4)
    assert gain.stderr == pytest.approx(expected)
    # Three baseline seeds against two: each side divides by its own seed count.
    records = [rec("a", "a", v, seed=i) for i, v in enumerate([0.5, 0.6, 0.7])]
    records += [rec("a", "a+b", v, seed=i) for i, v in enumerate([0.7, 0.9])]
    (gain,) = compute_gains(records).gains
    # S = 0.8, B = 0.6; var([0.5, 0.6, 0.7]) = 0.01
    assert gain.stderr == pytest.approx(math.sqrt(0.02 / 2 + (0.8 / 0.6) ** 2 * 0.01 / 3) / 0.6)
    # A negative baseline: the error is still positive (divided by |B|).
    records = [rec("a", "a", v, seed=i) for i, v in enumerate([-0.5, -0.6])]
    records += [rec("a", "a+b", v, seed=i) for i, v in enumerate([-0.4, -0.3])]
    (gain,) = compute_gains(records).gains
    # S = -0.35, B = -0.55; both variances 0.005
    assert gain.mean == pytest.approx(0.2 / 0.55)
    assert gain.stderr > 0
    assert gain.stderr == pytest.approx(
        math.sqrt(0.005 / 2 + (0.35 / 0.55) ** 2 * 0.005 / 2) / 0.55
    )


def test_pair_gains_take_single_auxiliary_gains_only() -> None:
    records = [rec("a", "a", 0.5), rec("a", "a+b", 0.6), rec("a", "a+b+c", 0.7)]
    table = compute_gains(records, kind="absolute")
    assert len(table.gains) == 2
    ((pair, (mean, _, n)),) = pair_gains(table.gains).items()
    assert pair == ("a", "b") and mean == pytest.approx(0.1) and n == 1


def gain(
    aux: str, mean: float, *, runs: tuple[int, ...] = (), n: int = 1, family: str = ""
) -> Gain:
    return Gain(target="a", auxiliaries=frozenset(aux.split("+")), mean=mean, stderr=math.nan,
                n_records=n, family=family, run_ids=frozenset(runs))  # fmt: skip


def test_evidence_runs_count_each_run_once_and_anonymous_records_each() -> None:
    gains = [
        gain("b", 0.1, runs=(1, 2), n=2),
        gain("c", 0.1, runs=(2, 3), n=2),  # run 2 scored both: one run
        gain("b+c", 0.1, n=3),  # a published table: three records, three runs
        gain("d", 0.1, n=2),
    ]
    assert evidence_runs(gains) == 3 + 5
    assert evidence_runs([]) == 0


def test_the_measured_gain_is_the_mean_over_families() -> None:
    gains = [gain("b", 0.1, family="small"), gain("b", 0.3, family="large"), gain("b+c", 0.9)]
    assert measured_gain(gains, "a", ["b"]) == pytest.approx(0.2)
    assert measured_gain(gains, "a", ["a", "b"]) == pytest.approx(0.2)  # the target is no auxiliary
    assert measured_gain(gains, "a", ["b", "c"]) == pytest.approx(0.9)
    assert measured_gain(gains, "a", ["c"]) is None
    assert measured_gain(gains, "b", ["a"]) is None
