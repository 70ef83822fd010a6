"""Results tables: a study's runs as the table it reproduces (rows x metrics, over seeds).

A study's rows are its spec's ``rows`` (fixed configurations, see
:class:`~taskgraph.spec.models.RowSpec`); a run belongs to the row whose configuration it
trained (same task set and model configuration hash; the seed aside).  A study without ``rows``
gets one row per distinct configuration, in the order its first run was stored.  Each cell is
the mean over the row's complete runs (one per seed: the latest run of a seed run twice) with a
95 % Student-t interval; a row also reports its paired difference from the first row in the
objective metric (per seed, the row's run minus the first row's run of the same seed: mean,
standard error and paired t-test), its seeds, failed runs and cost (training seconds per run,
mean and total).

A difference never compares two versions of the target's data.  Where the study's runs trained
the target on more than one version of its data (a data file changed between runs: the runs'
``task_fingerprints``, told apart as :func:`~taskgraph.storage.score_reads.data_families` tells
the affinity records' apart), each configuration's runs of each version are a row of their own:
the latest version's (that of the study's latest run) under the configuration's name, each
earlier version's marked ``(data:<fingerprint>, earlier data)`` after it.  A row's Δ is taken
from the first row's configuration on the row's own version (none where that configuration has
no run on it), and the long CSV keeps the latest version's rows only.  Runs recorded without
fingerprints (older databases) are one version, as before.

:func:`results_table` reads the records; :meth:`ResultsTable.to_markdown` renders the table,
:meth:`ResultsTable.long_rows` gives the long CSV of ``taskgraph bench`` (one row per task set
and split: the mean of the objective metric; a row whose task set an earlier row already has is
left out, since the format keys a score by task set), and :func:`write_results` writes both: the
CSV as ``<study>.csv`` and the table into the study's marked section of ``README.md``.
"""

from __future__ import annotations

import math
import os
import re
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from taskgraph.affinity.longtable import LongRow, write_long_csv
from taskgraph.app.arguments import storage_url
from taskgraph.errors import (
    ConfigError,
    DataNotFoundError,
    NotFoundError,
    TaskgraphError,
    option_name,
)
from taskgraph.storage.records import NO_PRETRAINING, RunRecord
from taskgraph.vocabulary import higher_is_better, task_set_key

if TYPE_CHECKING:
    from taskgraph.spec.models import StudySpec
    from taskgraph.storage.repository import Repository

__all__ = [
    "Cell",
    "Paired",
    "ResultRow",
    "ResultsTable",
    "ResultsWriteError",
    "check_record_family",
    "check_record_filters",
    "check_results_folder",
    "mean_interval",
    "replace_section",
    "results_table",
    "section_markers",
    "write_results",
]

#: the long format's split names for the trainer's
_LONG_SPLITS = {"dev": "val", "val": "val", "test": "test"}
#: a paired standard error at most this (relative to the differences, at least 1) is rounding
_ROUNDING = 1e-12


class ResultsWriteError(TaskgraphError):
    """A results file could not be written (a directory in its place, a read-only folder)."""


def mean_interval(values: Sequence[float], *, confidence: float = 0.95) -> tuple[float, float]:
    """Return the mean of ``values`` and the half-width of its Student-t interval.

    The half-width is ``t(1 - (1 - confidence) / 2, n - 1) * s / sqrt(n)`` with ``s`` the sample
    standard deviation; NaN for fewer than two values (no interval exists).
    """
    if not values:
        raise ConfigError("`values` must hold at least one number, but got none")
    if not 0.0 < confidence < 1.0:
        raise ConfigError(f"`confidence` must be in (0, 1), but got {confidence}")
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, math.nan
    from scipy.stats import t

    quantile = float(t.ppf(1.0 - (1.0 - confidence) / 2.0, len(values) - 1))
    return mean, quantile * statistics.stdev(values) / math.sqrt(len(values))


@dataclass(frozen=True)
class Cell:
    """One metric of one row on one split: the per-seed values, their mean and interval."""

    values: tuple[float, ...]

    @property
    def n(self) -> int:
        """Return the number of values (seeds)."""
        return len(self.values)

    @property
    def mean(self) -> float:
        """Return the mean over seeds (NaN without values)."""
        return mean_interval(self.values)[0] if self.values else math.nan

    @property
    def half_width(self) -> float:
        """Return the 95 % t-interval's half-width (NaN for fewer than two seeds)."""
        return mean_interval(self.values)[1] if self.values else math.nan

    def text(self, digits: int = 3) -> str:
        """Return ``mean ± half-width`` (``mean`` alone for one seed, "not run" for none)."""
        if not self.values:
            return "not run"
        if math.isnan(self.half_width):
            return f"{self.mean:.{digits}f}"
        return f"{self.mean:.{digits}f} ± {self.half_width:.{digits}f}"


@dataclass(frozen=True)
class Paired:
    """A row's per-seed differences from the reference row (the table's first) on one metric."""

    differences: tuple[float, ...]
    #: the largest magnitude of the scores subtracted (their rounding bounds the differences')
    scale: float = 0.0

    @property
    def n(self) -> int:
        """Return the number of seeds both rows ran."""
        return len(self.differences)

    @property
    def mean(self) -> float:
        """Return the mean difference (NaN without a common seed)."""
        return statistics.fmean(self.differences) if self.differences else math.nan

    @property
    def se(self) -> float:
        """Return the standard error of the mean difference (NaN for fewer than two seeds)."""
        if self.n < 2:
            return math.nan
        return statistics.stdev(self.differences) / math.sqrt(self.n)

    @property
    def no_spread(self) -> bool:
        """Return True when two or more seeds all differ by the same amount (s.e. 0).

        Differences of unequal scores may disagree in their last bits (0.3 - 0.2 is not
        0.4 - 0.3 in floating point), so a standard error within rounding of the scores
        subtracted (``scale``) or of the differences counts as none.
        """
        if self.n < 2:
            return False
        scale = max(1.0, self.scale, max(abs(d) for d in self.differences))
        return self.se <= _ROUNDING * scale

    @property
    def p_value(self) -> float:
        """Return the two-sided paired t-test's p-value.

        NaN for fewer than two seeds, and when every seed differs by the same amount
        (:attr:`no_spread`): a t-test has no variance to weigh the mean against then, and
        0 (or 1) would claim a certainty that the seeds cannot give.
        """
        if self.n < 2 or self.no_spread:
            return math.nan
        from scipy.stats import t

        return float(2.0 * t.sf(abs(self.mean / self.se), self.n - 1))

    def text(self, digits: int = 3) -> str:
        """Return ``+mean ± s.e. (p 0.04)``, or ``(no spread over N seeds)`` for a standard
        error of 0; the mean alone for one seed, empty for none."""
        if not self.differences:
            return ""
        if self.n < 2:
            return f"{self.mean:+.{digits}f}"
        if self.no_spread:
            return f"{self.mean:+.{digits}f} ± {0.0:.{digits}f} (no spread over {self.n} seeds)"
        return f"{self.mean:+.{digits}f} ± {self.se:.{digits}f} (p {self.p_value:.2f})"


@dataclass(frozen=True)
class ResultRow:
    """One configuration of the table: its name, task set and the runs that trained it."""

    name: str
    task_set: tuple[str, ...]
    runs: tuple[RunRecord, ...] = ()
    #: the target's data version its runs trained on (``data:<first 12 of the dataset
    #: fingerprint>``, ``data:?`` for runs recorded without one) where the study's runs are on
    #: several versions; None where they are on one
    data_version: str | None = None
    #: whether ``data_version`` is an earlier one than the study's latest run's
    earlier_data: bool = False

    @property
    def title(self) -> str:
        """Return the row's name as the table shows it: with its data version when earlier."""
        if self.earlier_data:
            return f"{self.name} ({self.data_version}, earlier data)"
        return self.name

    @property
    def complete(self) -> list[RunRecord]:
        """Return the row's complete runs, one per seed, by seed.

        A seed run twice (a study re-run into the same database) counts once, by its latest
        run (the highest run id): the cells, the seed count and the paired difference then
        all see the same runs.
        """
        latest: dict[int, RunRecord] = {}
        for run in self.runs:
            if run.status == "complete" and (
                run.seed not in latest or run.id > latest[run.seed].id
            ):
                latest[run.seed] = run
        return [latest[seed] for seed in sorted(latest)]

    @property
    def n_failed(self) -> int:
        """Return how many of the row's runs failed."""
        return sum(r.status == "failed" for r in self.runs)

    @property
    def n_pruned(self) -> int:
        """Return how many of the row's runs were pruned (stopped early, not failed)."""
        return sum(r.status == "pruned" for r in self.runs)

    def incomplete_note(self) -> str:
        """Return `` (1 failed, 2 pruned)`` for the row's runs that are not complete, or ""."""
        parts = [
            f"{n} {what}" for n, what in ((self.n_failed, "failed"), (self.n_pruned, "pruned")) if n
        ]
        return f" ({', '.join(parts)})" if parts else ""

    def _seed_values(self, split: str, metric: str, task: str) -> list[tuple[int, float]]:
        """Return (seed, value) of ``task``'s ``metric`` on ``split`` for each complete run that has it."""
        out = []
        for run in self.complete:
            value = run.scores.get(task, {}).get(split, {}).get(metric)
            if value is not None:
                out.append((run.seed, float(value)))
        return out

    def cell(self, split: str, metric: str, *, task: str) -> Cell:
        """Return ``task``'s ``metric`` on ``split`` over the row's complete runs."""
        return Cell(values=tuple(v for _, v in self._seed_values(split, metric, task)))

    def by_seed(self, split: str, metric: str, *, task: str) -> dict[int, float]:
        """Return ``task``'s ``metric`` on ``split`` of each complete run, by seed."""
        return dict(self._seed_values(split, metric, task))

    def paired(self, reference: ResultRow, split: str, metric: str, *, task: str) -> Paired:
        """Return the per-seed differences from ``reference``'s run of the same seed."""
        mine = self.by_seed(split, metric, task=task)
        theirs = reference.by_seed(split, metric, task=task)
        common = [s for s in sorted(mine) if s in theirs]
        return Paired(
            differences=tuple(mine[s] - theirs[s] for s in common),
            scale=max((max(abs(mine[s]), abs(theirs[s])) for s in common), default=0.0),
        )

    @property
    def seconds(self) -> tuple[float, float]:
        """Return the training seconds per run (mean) and in all, over every run of the row."""
        costs = [r.cost_seconds for r in self.runs]
        return (statistics.fmean(costs) if costs else math.nan), float(sum(costs))


@dataclass(frozen=True)
class ResultsTable:
    """A study's results as rows (configurations) by columns (metrics of the target)."""

    study: str
    target: str
    objective_metric: str
    metrics: tuple[str, ...]
    split: str
    rows: tuple[ResultRow, ...]
    notes: tuple[str, ...] = field(default=())

    def __repr__(self) -> str:
        # The rows hold every run record; a notebook wants their names (to_markdown: the table).
        names = ", ".join(f"{row.name} ({len(row.runs)} runs)" for row in self.rows)
        return (
            f"ResultsTable(study={self.study!r}, target={self.target!r}, split={self.split!r}, "
            f"metrics={list(self.metrics)}, rows=[{names}])"
        )

    def to_markdown(self) -> str:
        """Return the table in Markdown: mean ± 95 % t-interval per cell, the objective
        metric's paired difference from the first row, seeds and cost."""
        delta = f"Δ {self.objective_metric} vs {self.rows[0].name}" if self.rows else "Δ"
        header = ["row", "auxiliaries", *self.metrics, delta, "seeds", "s / run", "s in all"]
        lines = [
            "| " + " | ".join(header) + " |",
            "|" + "|".join(["---", "---"] + ["---:"] * (len(header) - 2)) + "|",
        ]
        for row in self.rows:
            auxiliaries = [t for t in row.task_set if t != self.target]
            cells = [row.cell(self.split, m, task=self.target).text() for m in self.metrics]
            paired = "" if self._is_reference(row) else self.paired(row).text()
            mean, total = row.seconds
            seeds = str(len(row.complete)) + row.incomplete_note()
            lines.append(
                "| "
                + " | ".join(
                    [
                        row.title,
                        ", ".join(f"`{t}`" for t in auxiliaries) or "(none)",
                        *cells,
                        paired,
                        seeds,
                        "" if math.isnan(mean) else f"{mean:.0f}",
                        f"{total:.0f}" if row.runs else "",
                    ]
                )
                + " |"
            )
        total = sum(row.seconds[1] for row in self.rows)
        lines.append("")
        lines.append(
            f"Study `{self.study}`, target `{self.target}`, split `{self.split}`; each cell the "
            "mean over seeds ± the half-width of its 95 % t-interval; Δ: the per-seed "
            f"difference in {self.objective_metric} from the {self.rows[0].name if self.rows else ''} "
            "run of the same seed"
            + (
                f" on the same version of {self.target}'s data"
                if any(row.data_version for row in self.rows)
                else ""
            )
            + ", mean ± its standard error (paired t-test p; no spread: "
            "every seed differs by the same amount, where a t-test gives no p); cost = "
            "training seconds of a run (the trainer's clock, evaluations included), "
            f"{total:.0f} s in all."
        )
        lines.extend(f"{note}" for note in self.notes)
        return "\n".join(lines) + "\n"

    def _is_reference(self, row: ResultRow) -> bool:
        """Return whether ``row`` is of the first row's configuration (on any data version)."""
        return bool(self.rows) and row.name == self.rows[0].name

    def reference(self, row: ResultRow) -> ResultRow | None:
        """Return the row ``row``'s Δ is taken from: the first row's configuration on
        ``row``'s version of the target's data (None where it has no row of that version)."""
        return next(
            (r for r in self.rows if self._is_reference(r) and r.data_version == row.data_version),
            None,
        )

    def paired(self, row: ResultRow) -> Paired:
        """Return ``row``'s paired difference from the first row's configuration in the
        objective metric, on the same version of the target's data (none without one)."""
        reference = self.reference(row)
        if reference is None:
            return Paired(differences=())
        return row.paired(reference, self.split, self.objective_metric, task=self.target)

    def long_rows(self) -> list[LongRow]:
        """Return the long-format rows: the objective metric's mean per task set and split."""
        out: list[LongRow] = []
        hib = higher_is_better(self.objective_metric)
        for row in _long_csv_rows(self.rows).values():
            splits = sorted({s for r in row.complete for s in r.scores.get(self.target, {})})
            for split in splits:
                if split not in _LONG_SPLITS:
                    continue
                cell = row.cell(split, self.objective_metric, task=self.target)
                if cell.values:
                    out.append(
                        LongRow(
                            target=self.target,
                            task_set=frozenset(row.task_set),
                            split=_LONG_SPLITS[split],
                            value=cell.mean,
                            higher_is_better=hib,
                        )
                    )
        return out

    def to_dict(self) -> dict[str, Any]:
        """Return the table as plain data (what ``--json`` prints)."""
        return {
            "study": self.study,
            "target": self.target,
            "split": self.split,
            "metrics": list(self.metrics),
            "rows": [
                {
                    "name": row.title,
                    "task_set": list(row.task_set),
                    "data_version": row.data_version,
                    "earlier_data": row.earlier_data,
                    "seeds": [r.seed for r in row.complete],
                    "failed": row.n_failed,
                    "pruned": row.n_pruned,
                    "seconds_per_run": row.seconds[0] if row.runs else None,
                    "seconds_total": row.seconds[1],
                    "cells": {
                        metric: {
                            "values": list(c.values),
                            "mean": None if not c.values else c.mean,
                            "half_width": None if math.isnan(c.half_width) else c.half_width,
                        }
                        for metric in self.metrics
                        for c in [row.cell(self.split, metric, task=self.target)]
                    },
                    "paired_difference": None
                    if self._is_reference(row)
                    else {
                        "metric": self.objective_metric,
                        "reference": None if ref is None else ref.title,
                        "differences": list(d.differences),
                        "mean": None if not d.differences else d.mean,
                        "se": None if math.isnan(d.se) else d.se,
                        "p_value": None if math.isnan(d.p_value) else d.p_value,
                    },
                }
                for row in self.rows
                for d in [self.paired(row)]
                for ref in [self.reference(row)]
            ],
            "notes": list(self.notes),
        }


def results_table(
    study: str,
    *,
    storage: str | None = None,
    metrics: Sequence[str] | None = None,
    split: str | None = None,
) -> ResultsTable:
    """Return ``study``'s results table from the records at ``storage``.

    ``storage`` defaults like every command's ``--storage``: ``TASKGRAPH_STORAGE``, then the
    local SQLite file.

    ``metrics`` are the target's metrics to show (default: the objective metric; an empty
    list is refused, a metric named twice is shown once); ``split`` the split they are read
    from (default: ``test`` where the runs have it, else the objective's split).  A split or
    metric that none of the runs has is a ConfigError listing the ones they have.  Raises
    :class:`~taskgraph.errors.NotFoundError` (as the other study functions do) when the study
    is not in the database.
    """
    from taskgraph.app.arguments import names, study_name
    from taskgraph.storage import SCREEN_MODE, open_repository

    chosen = names(metrics, "metrics")
    if chosen == []:  # an empty list is not the default (the objective metric): None is
        raise ConfigError(
            f"`{option_name('metrics')}` names no metric (got {metrics!r}): give the target's "
            "metrics, "
            "comma-separated, or leave it out for the objective metric"
        )
    study_name(study, "study")

    with open_repository(storage_url(storage), create=False) as repo:
        specs = repo.study_specs()
        if study not in specs:
            known = ", ".join(sorted(specs)) or "(none)"
            raise NotFoundError(f"no study {study!r} in {repo.url}; known studies: {known}")
        # The stored spec first: one that cannot be read is refused before the runs are
        # (which, for a study of ~10^4 runs, take most of a minute).
        spec = _stored_spec(specs[study], source=f"the stored spec of {study!r}")
        # A screen (`study screen`) is a joint run of every candidate, not a row of the table.
        runs = [r for r in repo.runs(study=study) if r.transfer_mode != SCREEN_MODE]
    return _table(study, spec, runs, metrics=chosen, split=split)


def build_table(
    study: str,
    spec_data: Mapping[str, Any],
    runs: Sequence[RunRecord],
    *,
    metrics: Sequence[str] | None = None,
    split: str | None = None,
) -> ResultsTable:
    """Return the table of ``runs`` under the stored spec ``spec_data`` (see the module docstring)."""
    spec = _stored_spec(spec_data, source=f"the stored spec of {study!r}")
    return _table(study, spec, runs, metrics=metrics, split=split)


def _table(
    study: str,
    spec: StudySpec,
    runs: Sequence[RunRecord],
    *,
    metrics: Sequence[str] | None,
    split: str | None,
) -> ResultsTable:
    """Return the table of ``runs`` under ``spec``, the study's stored spec read."""
    target = spec.target
    objective = spec.objective.metric or _primary_metric(target, runs)
    scored = [run.scores.get(target, {}) for run in runs]
    splits = sorted({s for scores in scored for s in scores})
    if split is None:
        # no scores yet (every run failed, or none ran): the objective's split, which the
        # runs are scored on, not a `test` the target may not have
        split = "test" if "test" in splits else spec.objective.split
    if splits and split not in splits:
        raise ConfigError(
            f"`{option_name('split')}` {split!r}: no run of {study!r} has scores of {target!r} "
            f"on it; they have {', '.join(splits)}"
        )
    known = sorted({m for scores in scored for m in scores.get(split, {})})
    unknown = [m for m in metrics or () if known and m not in known]
    if unknown:
        raise ConfigError(
            f"`{option_name('metrics')}`: no run of {study!r} has {target} "
            f"{', '.join(unknown)} on {split}; its metrics there: {', '.join(known)}"
        )
    notes: list[str] = []
    rows = _by_data_version(_rows_of(spec, runs, notes), runs, target)
    latest = next(
        (row.data_version for row in rows if row.data_version and not row.earlier_data), None
    )
    if latest is not None:
        versions = len({row.data_version for row in rows if row.runs})
        notes.append(
            f"The runs trained {target} on {versions} versions of its data (a data file "
            f"changed between runs; `records export -f json` gives each run's "
            f'`task_fingerprints`): rows marked "earlier data" ran on an earlier one than '
            f"the latest ({latest}); a Δ compares runs on one version only, and the long CSV "
            "keeps the latest version's rows."
        )
    reference = rows[0].name if rows else None
    for row in rows:
        # One data version: a row without a reference run has an empty Δ, as ever.
        if (
            row.data_version is not None
            and row.name != reference
            and row.complete
            and not any(
                r.name == reference and r.data_version == row.data_version and r.complete
                for r in rows
            )
        ):
            notes.append(
                f"Row {row.title} has no Δ: {reference} has no complete run on its version "
                f"({row.data_version}) of {target}'s data, and a difference never compares "
                "two versions."
            )
    kept = _long_csv_rows(rows)
    for row in rows:
        # What long_rows leaves out: a row with complete runs whose task set another row has.
        first = kept.get(task_set_key(row.task_set))
        if first is not None and first is not row and row.complete and not row.earlier_data:
            notes.append(
                f"Row {row.title} has the task set of {first.title}: the long CSV (one score "
                f"per task set) keeps {first.title}."
            )
    return ResultsTable(
        study=study,
        target=target,
        objective_metric=objective,
        metrics=tuple(metrics or (objective,)),
        split=split,
        rows=tuple(rows),
        notes=tuple(notes),
    )


def _stored_spec(spec_data: Mapping[str, Any], *, source: str) -> StudySpec:
    """Return the stored ``spec_data`` validated for reading its records, not for running it.

    A table reads no runner setting, so a runner this process has not registered (a plug-in
    that is not loaded, or no longer installed) is validated as ``local``: the records of a
    plug-in's study are read without importing it.  Anything else wrong with the stored spec
    is the error :func:`~taskgraph.spec.spec_from_dict` gives.
    """
    from taskgraph.registry import RUNNERS
    from taskgraph.spec import spec_from_dict

    data = dict(spec_data)
    runner = data.get("runner")
    name = runner.get("name") if isinstance(runner, Mapping) else runner
    # names(), not `in`: a lookup that misses would load (and could fail on) the plug-ins.
    if isinstance(name, str) and name not in RUNNERS.names():
        data["runner"] = {"name": "local"}
    return spec_from_dict(data, source=source)


def _primary_metric(target: str, runs: Sequence[RunRecord]) -> str:
    from taskgraph.tasks import get_task

    try:
        return get_task(target).primary_metric
    except Exception:  # an inline or unknown task: the first metric its runs report
        for run in runs:
            for metrics in run.scores.get(target, {}).values():
                return sorted(metrics)[0]
    raise ConfigError(f"cannot tell the objective metric of target {target!r}")


def _rows_of(spec: Any, runs: Sequence[RunRecord], notes: list[str]) -> list[ResultRow]:
    if not spec.rows:
        groups: dict[tuple[str, str], list[RunRecord]] = {}
        for run in runs:
            groups.setdefault((run.task_set_key, run.model_config_hash), []).append(run)
        names: dict[str, int] = {}
        rows = []
        for group in groups.values():
            auxiliaries = [t for t in group[0].task_set if t != spec.target]
            name = "+".join(auxiliaries) or "alone"
            names[name] = names.get(name, 0) + 1
            if names[name] > 1:
                name = f"{name} ({names[name]})"
            rows.append(ResultRow(name=name, task_set=group[0].task_set, runs=tuple(group)))
        return rows
    from taskgraph.search.space import SearchSpace

    space = SearchSpace(spec=spec)
    wanted: dict[tuple[str, str], str] = {}
    rows_by_name: dict[str, ResultRow] = {}
    for row in spec.rows:
        config = space.row_config(row)
        # Two rows of one configuration (a spec stored before `study validate` refused them):
        # their runs cannot be told apart, so they are the first row's.
        first = wanted.setdefault((config.task_set_key, config.model_config_hash()), row.name)
        if first != row.name:
            notes.append(
                f"Row {row.name} trains the same configuration as {first}: its runs are shown "
                f"under {first}."
            )
        rows_by_name[row.name] = ResultRow(name=row.name, task_set=tuple(config.task_set))
    members: dict[str, list[RunRecord]] = {name: [] for name in rows_by_name}
    others = 0
    for run in runs:
        owner = wanted.get((run.task_set_key, run.model_config_hash))
        if owner is None:
            others += 1
        else:
            members[owner].append(run)
    if others:
        notes.append(f"{others} runs of the study match none of its rows and are not shown.")
    return [
        ResultRow(name=row.name, task_set=row.task_set, runs=tuple(members[row.name]))
        for row in rows_by_name.values()
    ]


def _by_data_version(
    rows: Sequence[ResultRow], runs: Sequence[RunRecord], target: str
) -> list[ResultRow]:
    """Return ``rows`` with each row's runs split by the version of ``target``'s data they
    trained on, where ``runs`` are on several (else ``rows`` as they are).

    A run's version is its recorded dataset fingerprint of the target, labelled as the
    affinity records label a data version (:func:`data_families`).  Each row keeps the
    latest version's runs (that of the latest complete run; of the latest run where none is
    complete) under its name, followed by a row
    per earlier version (latest first) marked ``earlier_data``; a row without runs is of the
    latest version.
    """
    from taskgraph.storage.score_reads import data_families

    labels = data_families((target, "", run.task_fingerprints.get(target)) for run in runs)
    if not labels:
        return list(rows)

    def version(run: RunRecord) -> str:
        return labels[(target, "", run.task_fingerprints.get(target))].lstrip("/")

    # The latest complete run's version: a failed run on new data (no scores) would make
    # every scored row an earlier version's.
    complete = [run for run in runs if run.status == "complete"] or list(runs)
    latest = version(max(complete, key=lambda run: run.id))
    out: list[ResultRow] = []
    for row in rows:
        groups: dict[str, list[RunRecord]] = {}
        for run in row.runs:
            groups.setdefault(version(run), []).append(run)
        order = sorted(
            groups,
            key=lambda v: (v != latest, -max(run.id for run in groups[v])),
        )
        for v in order or [latest]:
            out.append(
                ResultRow(
                    name=row.name,
                    task_set=row.task_set,
                    runs=tuple(groups.get(v, ())),
                    data_version=v,
                    earlier_data=v != latest,
                )
            )
    return out


def _long_csv_rows(rows: Sequence[ResultRow]) -> dict[str, ResultRow]:
    """Return the row the long CSV keeps per task set key: the first with complete runs of
    the latest version of the target's data (a long CSV has no column for the version)."""
    kept: dict[str, ResultRow] = {}
    for row in rows:
        if row.complete and not row.earlier_data:
            kept.setdefault(task_set_key(row.task_set), row)
    return kept


def check_record_filters(
    repository: Repository,
    *,
    study: str | None = None,
    target: str | None = None,
    task_set: str | Sequence[str] | None = None,
    contains: str | None = None,
    model_config: str | None = None,
    pretraining: str | None = None,
) -> None:
    """Return None when every name a records filter gives is one some stored run has; else raise.

    A name that matches nothing would otherwise list "0 runs" or export an empty file, which
    reads like a study without results rather than a typo.  An unknown ``study`` or ``target``
    is a :class:`NotFoundError` listing the known ones (as elsewhere a study the database lacks
    is); a task of ``task_set`` or ``contains``, a ``model_config`` hash prefix or a
    ``pretraining`` scheme that no run has is a :class:`ConfigError` listing what the runs have
    (``pretraining`` outside the registered schemes lists the allowed values).  A filter of the
    wrong type is a :class:`ConfigError`.  Known names that match nothing together are no error.
    """
    from taskgraph.storage.repository import check_run_filters

    check_run_filters(
        study=study, target=target, task_set=task_set, contains=contains,
        model_config=model_config, pretraining=pretraining,
    )  # fmt: skip
    members = _task_set_members(task_set)
    if study is not None:
        studies = sorted(s.name for s in repository.studies())
        if study not in studies:
            known = ", ".join(studies) or "(none)"
            raise NotFoundError(f"no study {study!r} in {repository.url}; known studies: {known}")
    if target is not None:
        targets = repository.targets()
        if target not in targets:
            known = ", ".join(targets) or "(none)"
            raise NotFoundError(
                f"no run has target {target!r} in {repository.url}; known targets: {known}"
            )
    if members is None and contains is None and model_config is None and pretraining is None:
        return
    if repository.runs(
        task_set=members, contains=contains, model_config=model_config, pretraining=pretraining,
        limit=1,
    ):  # fmt: skip
        return  # one run has every name: the common case costs one short query
    _name_no_run_has(
        repository.runs(), task_set=task_set, members=members, contains=contains,
        model_config=model_config, pretraining=pretraining, url=repository.url,
    )  # fmt: skip


def check_record_family(
    repository: Repository,
    family: str,
    *,
    study: str | None = None,
    target: str | None = None,
    task_set: str | Sequence[str] | None = None,
    contains: str | None = None,
    status: str | None = None,
    model_config: str | None = None,
    data_selection: bool | None = None,
    pretraining: str | None = None,
) -> None:
    """Return None when the runs the other filters pick have a score of model family
    ``family`` (a hash or its prefix) or pick no run; else raise the :class:`ConfigError` of
    ``records export`` (every format): the prefix and the families those runs have.

    ``records list --family`` calls it when nothing matched: a prefix that none of the picked
    runs' families starts with is a typo, not an empty result.
    """
    from taskgraph.storage.repository import check_run_filters, no_family_error

    check_run_filters(family=family)
    prefix = family.strip().lower()
    families = repository.families(
        study=study, target=target, task_set=task_set, contains=contains, status=status,
        model_config=model_config, data_selection=data_selection, pretraining=pretraining,
    )  # fmt: skip
    if families and not any(name.startswith(prefix) for name in families):
        raise no_family_error(family, families)


def _task_set_members(task_set: object) -> list[str] | None:
    """Return the task names of ``task_set`` (``"a+b"`` or names; its type was checked by
    ``check_run_filters``); None stays None."""
    if task_set is None:
        return None
    names = (
        task_set.split("+") if isinstance(task_set, str) else list(cast(Iterable[str], task_set))
    )
    members = [name.strip() for name in names if name.strip()]
    if not members:
        raise ConfigError(
            f"`{option_name('task_set')}` {task_set!r} names no task: expected names joined by "
            "'+', e.g. 'ner+pos'"
        )
    return members


def _name_no_run_has(
    runs: Sequence[RunRecord],
    *,
    task_set: object,
    members: list[str] | None,
    contains: str | None,
    model_config: str | None,
    pretraining: str | None,
    url: str,
) -> None:
    """Raise a ConfigError naming the first filter value none of ``runs`` has, with what they
    have; return when every value is some run's (they only match nothing together)."""
    tasks = sorted({task for run in runs for task in run.task_set})
    known_tasks = ", ".join(tasks) or "(none)"
    for keyword, asked, names in (
        ("task_set", task_set, members or []),
        ("contains", contains, [contains] if contains is not None else []),
    ):
        unknown = [name for name in names if name not in tasks]
        if unknown:
            raise ConfigError(
                f"`{option_name(keyword)}` {asked!r}: no run has task "
                f"{', '.join(map(repr, unknown))} in {url}; known tasks: {known_tasks}"
            )
    if model_config is not None:
        hashes = sorted({run.model_config_hash for run in runs})
        if not any(h.startswith(model_config.lower()) for h in hashes):
            shown = ", ".join(h[:12] for h in hashes[:10]) + (" ..." if len(hashes) > 10 else "")
            raise ConfigError(
                f"`{option_name('model_config')}` {model_config!r}: no run's model "
                f"configuration hash starts with it in {url}; the runs' hashes: "
                f"{shown or '(none)'}"
            )
    if pretraining is not None:
        from taskgraph.training.masking import MASKING_SCHEMES

        schemes = sorted({run.pretraining_scheme for run in runs})
        allowed = [NO_PRETRAINING, *MASKING_SCHEMES.names()]
        allowed += [s for s in schemes if s not in allowed]  # a plug-in's, stored by its runs
        if pretraining not in allowed:
            raise ConfigError(
                f"`{option_name('pretraining')}` must be one of {', '.join(allowed)} "
                f"(none: runs without the pretraining stage), but got {pretraining!r}"
            )
        if pretraining not in schemes:
            used = ", ".join(f"{s} (no pretraining)" if s == NO_PRETRAINING else s for s in schemes)
            raise ConfigError(
                f"`{option_name('pretraining')}` {pretraining!r}: no run used pretraining "
                f"scheme {pretraining!r} in {url}; the runs' schemes: {used or '(no runs)'}"
            )


def section_markers(study: str) -> tuple[str, str]:
    """Return the two comment lines that enclose ``study``'s table in a Markdown file."""
    return f"<!-- results:{study} -->", f"<!-- /results:{study} -->"


def replace_section(text: str, study: str, body: str) -> str:
    """Return ``text`` with the part between ``study``'s markers replaced by ``body``.

    The markers may be on one line (``<!-- results:S --><!-- /results:S -->``); the result has
    them on lines of their own.  Raises :class:`ConfigError` when the markers are missing or
    out of order.
    """
    begin, end = section_markers(study)
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.DOTALL)
    if not pattern.search(text):
        raise ConfigError(
            f"no section for study {study!r}: add the lines {begin!r} and {end!r} where its "
            "table goes"
        )
    return pattern.sub(lambda _: f"{begin}\n{body.rstrip()}\n{end}", text, count=1)


def check_results_folder(directory: str | os.PathLike[str], study: str) -> Path:
    """Return the ``README.md`` of results folder ``directory`` once it holds ``study``'s
    marked section; raise :class:`DataNotFoundError` / :class:`ConfigError` saying what to add
    (:class:`ResultsWriteError` when something other than a file is where the CSV goes)."""
    folder = Path(directory)
    begin, end = section_markers(study)
    if not folder.is_dir():
        raise DataNotFoundError(
            f"{option_name('directory', folder, flag='--write')}: not a directory (a results "
            "folder such as docs/results)"
        )
    readme = folder / "README.md"
    if not readme.is_file():
        raise DataNotFoundError(
            f"{option_name('directory', folder, flag='--write')}: no README.md there; the "
            "results page is a README.md with the "
            f"lines {begin!r} and {end!r} where the table goes"
        )
    replace_section(readme.read_text(encoding="utf-8"), study, "")  # the markers are there
    table = folder / f"{study}.csv"
    if table.exists() and not table.is_file():
        raise ResultsWriteError(f"cannot write {table}: it exists and is not a regular file")
    return readme


def _uses_crlf(path: Path) -> bool:
    """Return whether the first line of ``path`` ends in CRLF (a file written on Windows)."""
    with path.open("rb") as handle:
        return handle.readline().endswith(b"\r\n")


def write_results(table: ResultsTable, directory: str | os.PathLike[str]) -> list[Path]:
    """Write ``<study>.csv`` (long format) and the table into ``README.md``'s marked section.

    Returns the paths written.  The README is checked before anything is written, so a
    missing section writes nothing; the README keeps its line endings (CRLF stays CRLF).  The
    pair is all or nothing as far as the filesystem allows: both files are written to ``.tmp``
    siblings first; the previous CSV, if any, is copied aside before the new one is renamed
    over it, and put back (or the new CSV removed, where there was none) if the README's
    rename then fails.  A failure raises :class:`ResultsWriteError` naming the file; no
    ``.tmp`` file or copy is left behind, except a copy that could not be put back, which
    the error names.
    """
    folder = Path(directory)
    readme = check_results_folder(folder, table.study)
    updated = replace_section(readme.read_text(encoding="utf-8"), table.study, table.to_markdown())
    if _uses_crlf(readme):  # read_text made every line end in "\n"
        updated = updated.replace("\n", "\r\n")
    long_rows = table.long_rows()
    csv = folder / f"{table.study}.csv"
    targets = ([csv] if long_rows else []) + [readme]
    staged: list[Path] = []  # temporary files created so far, in the order of ``targets``
    backup: Path | None = None  # the previous CSV while the new one is in place
    replaced: list[Path] = []  # targets renamed into place so far
    current = targets[0]
    try:
        for path in targets:
            current = path
            tmp = path.with_name(path.name + ".tmp")
            if tmp.exists() and not tmp.is_file():
                raise ResultsWriteError(
                    f"cannot write {path}: its temporary file {tmp} is in the way (not a file)"
                )
            with tmp.open("w", newline="", encoding="utf-8") as handle:
                staged.append(tmp)
                if path == readme:
                    handle.write(updated)
                else:
                    write_long_csv(long_rows, handle)
        for tmp, path in zip(staged, targets, strict=True):
            current = path
            if path == csv and csv.is_file():
                backup = _copy_aside(csv)
            tmp.replace(path)
            replaced.append(path)
    except BaseException as error:  # an interrupt between the renames is undone as well
        note = ""
        if csv in replaced and not _undo_csv(csv, backup):
            if backup is None:
                note = f"; {csv} is the new table and could not be removed"
            else:
                note = f"; {csv} is the new table, the previous one is in {backup}"
                backup = None  # the only copy of the previous table: kept
        if not isinstance(error, OSError):
            raise
        raise ResultsWriteError(
            f"cannot write {current}: {error.strerror or error}{note}"
        ) from None
    finally:
        for tmp in staged:
            tmp.unlink(missing_ok=True)
        if backup is not None:
            backup.unlink(missing_ok=True)
    return targets


def _copy_aside(path: Path) -> Path:
    """Return a copy of ``path`` beside it (a hidden, unique name), to put back on failure."""
    import shutil
    import tempfile

    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".bak")
    os.close(handle)
    copy = Path(name)
    try:
        shutil.copy2(path, copy)
    except BaseException:  # an interrupt too: no partial copy is left behind
        copy.unlink(missing_ok=True)
        raise
    return copy


def _undo_csv(csv: Path, backup: Path | None) -> bool:
    """Return whether ``csv`` is back as it was: ``backup`` renamed over it, or, where there
    was no CSV before, the new one removed."""
    try:
        if backup is None:
            csv.unlink(missing_ok=True)
        else:
            backup.replace(csv)
    except OSError:
        return False
    return True
