"""Gains: how much a task set helps a target over its single-task baseline.

The gain of target ``t`` from task set ``S`` is measured against the single-task records of
``t`` in the same model family (``ScoreRecord.family``) on the same split and metric, and
averaged over seeds.  Its sign is normalised by ``higher_is_better``: a positive gain is an
improvement whether the metric is an accuracy or a loss.

Two kinds (``kind``):

* ``relative`` (default): ``sign * (mean(S) - mean(baseline)) / |mean(baseline)|``.  A loss
  that falls from 0.10 to 0.09 and an F1 that rises from 0.50 to 0.55 are both +10 %.  This
  is what the published tables report (MTG-Net, TaskWeb, Bingel and Søgaard), and it makes
  gains of different tasks and metrics comparable, which the learned estimator needs because
  it shares strength across targets.
* ``absolute``: ``sign * (mean(S) - mean(baseline))`` in the metric's own units; use it when a
  baseline can be zero (a Matthews correlation of a degenerate classifier).

A *measured* gain (this module) is not a *predicted* one (an estimator's shrunk estimate of
the same quantity): outputs name them apart (``measured_relative_gain``,
``predicted_relative_gain``, :func:`gain_key`).

Standard errors combine the seed spread of both sides (unpaired; delta method for the
ratio).  Records that share (family, task set, seed) are averaged first: the same seed
trained again (one configuration run by several studies) repeats one measurement, not a new
seed, and would otherwise give a spread of 0.  When one side has a single seed its variance
is taken from the other side (seed noise of one task is assumed similar across task sets);
with one seed on each side the standard error is unknown (NaN) and the estimators use their
fitted noise level instead.

A relative gain divides by the baseline, so a task whose single-task score is 0 (an F1 of 0)
has none: :func:`compute_gains` raises, or with ``zero_baselines="leave_out"`` leaves that
task's gains out and lists it in :attr:`GainTable.zero_baselines`, so the other targets keep
theirs.

Questions asked of computed gains (a pair pooled over families, the measured gain of a task
set, the runs behind gains) are in :mod:`taskgraph.affinity.gain_queries`.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from taskgraph.affinity.records import ScoreRecord
from taskgraph.errors import ConfigError
from taskgraph.trial import setting_differences

__all__ = [
    "Gain",
    "GainKind",
    "GainTable",
    "compute_gains",
    "gain_key",
    "seed_mean",
]

GainKind = Literal["relative", "absolute"]
Settings = tuple[tuple[str, str], ...]  # ScoreRecord.settings
GAIN_KINDS: tuple[GainKind, ...] = ("relative", "absolute")
ZeroBaselines = Literal["raise", "leave_out"]


def gain_key(which: Literal["measured", "predicted"], kind: GainKind) -> str:
    """Return the output name of a gain, e.g. ``predicted_relative_gain``: what it is, in which units."""
    return f"{which}_{kind}_gain"


@dataclass(frozen=True, slots=True)
class Gain:
    """The seed-averaged gain of ``target`` from ``auxiliaries`` in one family."""

    target: str
    auxiliaries: frozenset[str]
    mean: float
    stderr: float  # NaN when unknown (a single seed on each side)
    n_records: int  # records of the task set (runs; a seed repeated by several studies counts each)
    family: str = ""
    split: str = ""
    metric: str = ""
    #: the runs behind the task set's records (records without a run id are not in it)
    run_ids: frozenset[int] = frozenset()

    @property
    def size(self) -> int:
        """Return the number of auxiliary tasks."""
        return len(self.auxiliaries)


@dataclass
class GainTable:
    """Gains computed from records, the baselines they used and what had to be left out."""

    gains: list[Gain]
    kind: GainKind = "relative"
    #: (family, task, split, metric) -> (mean, standard error, count) of the single-task records
    baselines: dict[tuple[str, str, str, str], tuple[float, float, int]] = field(
        default_factory=dict
    )
    #: records of task sets whose target has no single-task baseline in their family
    n_without_baseline: int = 0
    #: (family, task, split, metric) whose baseline is 0, so whose relative gains were left out
    zero_baselines: list[tuple[str, str, str, str]] = field(default_factory=list)
    #: family -> finite records counted (which family holds most of the evidence)
    family_records: dict[str, int] = field(default_factory=dict)
    #: (family, target, auxiliaries) whose gain pools runs that trained the auxiliaries on
    #: different data (a data file changed between runs: ``ScoreRecord.partner_data``)
    mixed_partner_data: list[tuple[str, str, frozenset[str]]] = field(default_factory=list)
    #: (family, target, auxiliaries, setting names) whose runs and single-task baseline runs
    #: were trained with different settings outside the family (a searched learning rate,
    #: sharing architecture, ...: ``ScoreRecord.settings``), so whose measured gain holds
    #: those settings' effect besides the transfer
    mixed_settings: list[tuple[str, str, frozenset[str], tuple[str, ...]]] = field(
        default_factory=list
    )

    @property
    def targets(self) -> list[str]:
        """Return the targets with at least one gain or baseline, sorted."""
        return sorted({g.target for g in self.gains} | {key[1] for key in self.baselines})

    @property
    def tasks(self) -> list[str]:
        """Return every task named as a target or an auxiliary, sorted."""
        names = {g.target for g in self.gains} | {key[1] for key in self.baselines}
        for gain in self.gains:
            names |= gain.auxiliaries
        return sorted(names)

    def why_empty(self) -> str:
        """Return why the table holds no gains, in words a user can act on (for error messages)."""
        if self.zero_baselines and not self.gains:
            tasks = sorted({key[1] for key in self.zero_baselines})
            return (
                f"the single-task score of {tasks} is 0, so a gain relative to it is undefined, "
                "and no other target has gains"
            )
        if self.n_without_baseline and not self.baselines:
            return (
                f"none of the {self.n_without_baseline} records' targets has a single-task "
                "baseline (a task set of the target alone, same family) to compare with; "
                "run or add the targets' single-task baselines"
            )
        if self.n_without_baseline:
            # Baselines exist, but of other targets (or families) than the task sets' own.
            with_baseline = sorted({key[1] for key in self.baselines})
            return (
                f"the {self.n_without_baseline} records of task sets with auxiliary tasks have "
                "no single-task baseline of their target (a task set of the target alone, same "
                f"family) to compare with; the baselines there are of {with_baseline} only; "
                "run or add the other targets' single-task baselines"
            )
        if self.baselines and not self.gains:
            return (
                "the records are single-task baselines only: no task set with an auxiliary "
                "task to measure a gain of"
            )
        return "there are no finite score records"

    def main_family(self, families: Iterable[str] | None = None) -> str | None:
        """Return the family with the most records (of ``families`` when given; ties by name)."""
        pool = self.family_records if families is None else set(families)
        ranked = sorted(pool, key=lambda f: (-self.family_records.get(f, 0), f))
        return ranked[0] if ranked else None

    def baseline_value(self, target: str) -> float | None:
        """Return the single-task value of ``target`` in one family (None when absent).

        The family with the most records among those with a baseline of ``target``: a mean
        over families would be a score no model reached (families differ in scale, e.g. a
        small and a large encoder).
        """
        found = {
            (family, split, metric): mean
            for (family, task, split, metric), (mean, _, _) in self.baselines.items()
            if task == target
        }
        family = self.main_family(f for f, _, _ in found)
        if family is None:
            return None
        return float(np.mean([v for (f, _, _), v in found.items() if f == family]))


def _mean_var(by_seed: Mapping[int, Sequence[float]]) -> tuple[float, float | None, int]:
    """Return the mean, the variance over seeds (None with one seed) and the number of seeds.

    Records of one seed are averaged first: they repeat one measurement.
    """
    array = np.array([float(np.mean(v)) for v in by_seed.values()])
    mean = float(array.mean())
    var = float(array.var(ddof=1)) if len(array) > 1 else None
    return mean, var, len(array)


def _difference(
    ours: Mapping[int, Sequence[float]],
    base: Mapping[int, Sequence[float]],
    *,
    kind: GainKind,
    sign: float,
) -> tuple[float, float]:
    """Return (gain, standard error) of the values ``ours`` against ``base`` (seed -> values).

    Unpaired; a side with one seed borrows the other side's seed variance; one seed on each
    side gives a NaN error; a relative gain's error by the delta method.
    """
    s_mean, s_var, s_seeds = _mean_var(ours)
    b_mean, b_var, b_seeds = _mean_var(base)
    var_s = s_var if s_var is not None else b_var
    var_b = b_var if b_var is not None else s_var
    if var_s is None or var_b is None:
        se = math.nan
    elif kind == "absolute":
        se = math.sqrt(var_s / s_seeds + var_b / b_seeds)
    else:
        ratio = s_mean / b_mean
        se = math.sqrt(var_s / s_seeds + ratio**2 * var_b / b_seeds) / abs(b_mean)
    diff = s_mean - b_mean
    return sign * (diff if kind == "absolute" else diff / abs(b_mean)), se


def seed_mean(records: Iterable[ScoreRecord]) -> float:
    """Return the mean of ``records`` (one task set's scores in one family) as gains take it.

    Each seed's records are averaged first, then the seeds' means (:func:`compute_gains`): a
    seed trained again (several studies running one configuration) repeats one measurement,
    so it weighs as much as any other seed.
    """
    by_seed: dict[int, list[float]] = defaultdict(list)
    for record in records:
        by_seed[record.seed].append(record.value)
    if not by_seed:
        raise ValueError("seed_mean needs at least one record")
    return _mean_var(by_seed)[0]


def compute_gains(
    records: Iterable[ScoreRecord],
    *,
    kind: GainKind = "relative",
    split: str | None = None,
    metric: str | None = None,
    zero_baselines: ZeroBaselines = "raise",
) -> GainTable:
    """Return the gains of every (family, target, task set) with a baseline in ``records``.

    ``zero_baselines``: what a relative gain of a task whose baseline is 0 does: ``raise`` a
    :class:`ConfigError`, or ``leave_out`` that task's gains (listed in
    :attr:`GainTable.zero_baselines`; its baseline is kept).
    """
    if kind not in GAIN_KINDS:
        raise ConfigError(f"`kind` must be one of {list(GAIN_KINDS)}, but got {kind!r}")
    if zero_baselines not in ("raise", "leave_out"):
        raise ConfigError(
            f"`zero_baselines` must be 'raise' or 'leave_out', but got {zero_baselines!r}"
        )
    # key -> task set -> seed -> values
    groups: dict[tuple[str, str, str, str], dict[frozenset[str], dict[int, list[float]]]] = (
        defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    )
    family_records: dict[str, int] = defaultdict(int)
    runs: dict[tuple[tuple[str, str, str, str], frozenset[str]], set[int]] = defaultdict(set)
    partners: dict[tuple[tuple[str, str, str, str], frozenset[str]], set[str]] = defaultdict(set)
    # (key, task set) -> alone settings -> seed -> values (the baseline's: task set {task})
    by_settings: dict[
        tuple[tuple[str, str, str, str], frozenset[str]], dict[Settings, dict[int, list[float]]]
    ] = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    direction: dict[tuple[str, str, str, str], bool] = {}
    for record in records:
        if (split is not None and record.split != split) or (
            metric is not None and record.metric != metric
        ):
            continue
        if not math.isfinite(record.value):
            continue
        key = (record.family, record.task, record.split, record.metric)
        groups[key][record.task_set][record.seed].append(record.value)
        family_records[record.family] += 1
        if record.run_id is not None:
            runs[(key, record.task_set)].add(record.run_id)
        if record.partner_data:
            partners[(key, record.task_set)].add(record.partner_data)
        if record.settings:
            by_settings[(key, record.task_set)][record.settings][record.seed].append(record.value)
        if direction.setdefault(key, record.higher_is_better) != record.higher_is_better:
            raise ConfigError(
                f"records of task {record.task!r} ({record.family or 'no family'}, split "
                f"{record.split!r}, metric {record.metric!r}) disagree on `higher_is_better`: "
                "some say higher is better, some lower; give every record of one metric "
                "the same direction"
            )
    table = GainTable(gains=[], kind=kind, family_records=dict(family_records))
    for key, by_set in groups.items():
        family, task, split_name, metric_name = key
        baseline = by_set.get(frozenset({task}))
        if baseline is None:
            table.n_without_baseline += sum(
                len(v) for by_seed in by_set.values() for v in by_seed.values()
            )
            continue
        b_mean, b_var, b_seeds = _mean_var(baseline)
        b_se = math.sqrt(b_var / b_seeds) if b_var is not None else math.nan
        table.baselines[key] = (b_mean, b_se, sum(len(v) for v in baseline.values()))
        sign = 1.0 if direction[key] else -1.0
        if kind == "relative" and abs(b_mean) < 1e-12:
            if zero_baselines == "leave_out":
                table.zero_baselines.append(key)
                continue
            raise ConfigError(
                f"relative gain of {task!r} ({family or 'no family'}, {split_name}) needs a non-zero "
                f"baseline, but its single-task score is {b_mean}; compute absolute gains "
                "(kind='absolute') or leave the task out (zero_baselines='leave_out')"
            )
        alike = by_settings.get((key, frozenset({task})), {})
        for task_set, by_seed in by_set.items():
            if len(task_set) == 1:
                continue
            ours = by_settings.get((key, task_set), {})
            compared = set(ours) | set(alike)
            covered = sum(len(v) for g in ours.values() for v in g.values()) == sum(
                len(v) for v in by_seed.values()
            )
            if (
                len(alike) > 1
                and ours
                and covered
                and all(
                    g in alike and (kind == "absolute" or abs(_mean_var(alike[g])[0]) >= 1e-12)
                    for g in ours
                )
            ):
                # The family holds baselines trained with several settings (a searched
                # learning rate, budget.baselines: per_setting): each of the set's settings
                # is measured against the baseline runs trained alike, and the differences
                # are averaged with equal weight (errors pooled as pair_gains pools families).
                parts = [_difference(ours[g], alike[g], kind=kind, sign=sign) for g in ours]
                mean = float(np.mean([m for m, _ in parts]))
                se = math.sqrt(sum(e**2 for _, e in parts)) / len(parts)
                compared = set()
            else:
                mean, se = _difference(by_seed, baseline, kind=kind, sign=sign)
            table.gains.append(
                Gain(
                    target=task,
                    auxiliaries=task_set - {task},
                    mean=mean,
                    stderr=se,
                    n_records=sum(len(v) for v in by_seed.values()),
                    family=family,
                    split=split_name,
                    metric=metric_name,
                    run_ids=frozenset(runs.get((key, task_set), ())),
                )
            )
            if len(partners.get((key, task_set), ())) > 1:
                entry = (family, task, task_set - {task})
                if entry not in table.mixed_partner_data:
                    table.mixed_partner_data.append(entry)
            if len(compared) > 1:
                names = tuple(setting_differences(*(dict(item) for item in compared)))
                mixed = (family, task, task_set - {task}, names)
                if mixed not in table.mixed_settings:
                    table.mixed_settings.append(mixed)
    table.gains.sort(key=lambda g: (g.target, len(g.auxiliaries), sorted(g.auxiliaries), g.family))
    return table
