"""Benchmarks: the estimators and samplers measured on a results table in the long CSV format.

:func:`bench` returns what ``taskgraph bench --json`` prints; the evaluations themselves (and
the samplers, built as a study builds them) are in :mod:`taskgraph.search.benchmarking`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from taskgraph.affinity.longtable import LongTable

__all__ = ["bench", "load_bench_table"]


def load_bench_table(path: str | os.PathLike[str]) -> LongTable:
    """Return the long CSV table at ``path``, its values checked for magnitude.

    Raises :class:`~taskgraph.errors.DataFormatError` naming the file (and line).
    """
    from taskgraph.affinity.longtable import read_long_csv
    from taskgraph.search.benchmarking import check_magnitudes

    data = read_long_csv(Path(path))
    check_magnitudes(data, path=path)
    return data


def bench(
    table: str | os.PathLike[str] | LongTable,
    *,
    method: str = "setfn",
    fit_fraction: float = 0.1,
    seeds: int = 20,
    folds: int = 5,
    fit_split: str | None = None,
    score_split: str | None = None,
    search: bool = True,
    samplers: Sequence[str] | None = None,
    max_trials: int = 300,
    max_size: int | None = None,
    on_step: Callable[[str, int, int], None] | None = None,
) -> dict[str, Any]:
    """Run every evaluation ``table`` (a path or a loaded table) supports; return the evaluations, skipped ones and results.

    Keys: ``evaluations`` (run), ``skipped`` (evaluation -> why), ``notes`` and the figures
    (``spearman``, ``spearman_hoa``, ``pair_spearman``, ``ranking_spearman``,
    ``trials_to_best_<sampler>``, ... as :func:`~taskgraph.search.benchmarking.run_bench`
    documents).  Raises :class:`~taskgraph.errors.ConfigError` for bad arguments or an
    undefined Spearman, :class:`~taskgraph.errors.DataFormatError` for a bad table (a value
    beyond :data:`~taskgraph.search.benchmarking.MAX_BENCH_VALUE` included).
    """
    from taskgraph.search.benchmarking import CLI_SAMPLERS, run_bench

    data = table if isinstance(table, LongTable) else load_bench_table(table)
    report = run_bench(
        data, method=method, fit_fraction=fit_fraction, seeds=seeds, folds=folds,
        fit_split=fit_split, score_split=score_split, search=search,
        samplers=list(CLI_SAMPLERS if samplers is None else samplers),
        max_trials=max_trials, max_size=max_size, on_step=on_step,
    )  # fmt: skip
    return report.as_dict()
