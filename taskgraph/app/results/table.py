"""The results table: rows (configurations and their runs) by columns (metrics of the target).

:class:`ResultRow` is one configuration's runs; :class:`ResultsTable` renders the rows as
Markdown (:meth:`~ResultsTable.to_markdown`), plain data (:meth:`~ResultsTable.to_dict`) and the
long CSV's rows (:meth:`~ResultsTable.long_rows`).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from taskgraph.affinity.longtable import LongRow
from taskgraph.app.results.intervals import Cell, Paired
from taskgraph.storage.records import RunRecord
from taskgraph.vocabulary import higher_is_better, task_set_key

__all__ = ["ResultRow", "ResultsTable"]

#: the long format's split names for the trainer's
_LONG_SPLITS = {"dev": "val", "val": "val", "test": "test"}


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


def _long_csv_rows(rows: Sequence[ResultRow]) -> dict[str, ResultRow]:
    """Return the row the long CSV keeps per task set key: the first with complete runs of
    the latest version of the target's data (a long CSV has no column for the version)."""
    kept: dict[str, ResultRow] = {}
    for row in rows:
        if row.complete and not row.earlier_data:
            kept.setdefault(task_set_key(row.task_set), row)
    return kept
