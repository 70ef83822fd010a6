"""Benchmarks: the estimators and samplers measured on a results table in the long CSV format.

:func:`bench` returns what ``taskgraph bench --json`` prints; the evaluations themselves are in
:mod:`taskgraph.search.bench_report` (and the search efficiency of the samplers, built as a
study builds them, in :mod:`taskgraph.search.benchmarking`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from taskgraph.affinity.longtable import LongTable
from taskgraph.app.arguments import filesystem_path, flag, integer, names, number, registered_name
from taskgraph.errors import ConfigError, option_name
from taskgraph.vocabulary import first_names, json_safe

if TYPE_CHECKING:
    from taskgraph.affinity.metadata import TaskMetadata

__all__ = ["bench", "load_bench_table", "metadata_options"]


def load_bench_table(path: str | os.PathLike[str]) -> LongTable:
    """Return the long CSV table at ``path``, its values checked for magnitude.

    Raises :class:`~taskgraph.errors.DataFormatError` naming the file (and line), and
    :class:`~taskgraph.errors.ConfigError` naming ``table`` (the API's keyword for it) when
    ``path`` is not a path.
    """
    from taskgraph.affinity.longtable import check_magnitudes, read_long_csv

    data = read_long_csv(filesystem_path(path, "table"))
    check_magnitudes(data, path=path)
    return data


def metadata_options(
    method: str, path: str | os.PathLike[str], *, tasks: Sequence[str] | None = None
) -> tuple[dict[str, Any], list[str]]:
    """Return the options that give estimator ``method`` the task metadata file at ``path``, and notes on what it does not use.

    ``setfn`` and ``textemb`` get ``task_embeddings`` (the mean MiniLM embedding of each
    task's texts; loads the encoder); ``sourcerank`` gets the embeddings and ``task_features``
    and, as ``alternatives``, the feature lists of
    :func:`~taskgraph.affinity.estimators.sourcerank.metadata_alternatives`: each fit keeps the
    eight default scores or adds the file's, as its cross-validation over targets prefers.
    ``tasks`` (the table's; default every task of the file): only their texts and features are
    used, and a note says when the file covers none of them (the method then gets no
    metadata) or only some (a task without its text or feature gets the average score).
    Raises :class:`~taskgraph.errors.ConfigError` for a bad file.
    """
    from taskgraph.affinity.estimators.sourcerank import metadata_alternatives
    from taskgraph.affinity.metadata import TaskMetadata, load_task_metadata

    metadata = load_task_metadata(path)
    if method not in ("setfn", "textemb", "sourcerank"):
        return {}, [
            f"{option_name('task_metadata')}: method {method!r} uses no task metadata (setfn, "
            "textemb and sourcerank do)"
        ]
    notes: list[str] = []
    if tasks is not None:
        wanted = list(tasks)
        described = sorted(set(metadata.texts) | set(metadata.features))
        metadata = TaskMetadata(
            texts={t: v for t, v in metadata.texts.items() if t in wanted},
            features={t: v for t, v in metadata.features.items() if t in wanted},
        )
        used = metadata.texts if method != "sourcerank" else {**metadata.features, **metadata.texts}
        if not used:
            kind = "text or feature" if method == "sourcerank" else "text"
            notes.append(
                f"{option_name('task_metadata')}: the file has no {kind} for any of the table's "
                f"{len(wanted)} tasks (it describes {first_names(described)}): {method} gets no task "
                "metadata"
            )
            return {}, notes
        notes += _coverage_notes(method, metadata, wanted)
    options: dict[str, Any] = {}
    if metadata.texts:
        from taskgraph.models.task_embeddings import text_embeddings

        options["task_embeddings"] = text_embeddings(metadata.texts)
    if method == "sourcerank":
        if metadata.feature_names:
            options["task_features"] = metadata.features
        options["alternatives"] = metadata_alternatives(
            texts=bool(metadata.texts), numeric_names=metadata.feature_names
        )
    elif not metadata.texts:
        notes.append(
            f"{option_name('task_metadata')}: the file has no texts, which is all {method} uses"
        )
    return options, notes


def _coverage_notes(method: str, metadata: TaskMetadata, tasks: Sequence[str]) -> list[str]:
    """Return a note per kind of metadata ``method`` uses that some of ``tasks`` lack."""
    option = option_name("task_metadata")
    notes = []
    lacking = [t for t in tasks if t not in metadata.texts]
    if metadata.texts and lacking:
        effect = {
            "sourcerank": "their text scores are the average one",
            "setfn": "setfn gives them no text similarity to any other task",
            "textemb": "textemb predicts its calibrated mean gain for a pair with one of them",
        }[method]
        notes.append(
            f"{option}: {len(lacking)} of the table's {len(tasks)} tasks have no text "
            f"({first_names(lacking)}): {effect}"
        )
    if method == "sourcerank":
        for name in metadata.feature_names:
            lacking = [t for t in tasks if name not in metadata.features.get(t, {})]
            if lacking:
                notes.append(
                    f"{option}: {len(lacking)} of the table's {len(tasks)} tasks lack feature "
                    f"{name!r} ({first_names(lacking)}): their source:{name} score is the average one"
                )
    return notes


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
    task_metadata: str | os.PathLike[str] | None = None,
    pooling: str | None = None,
    on_step: Callable[[str, int, int], None] | None = None,
) -> dict[str, Any]:
    """Run every evaluation ``table`` (a path or a loaded table) supports; return the evaluations, skipped ones and results.

    Keys: ``evaluations`` (run), ``skipped`` (evaluation -> why), ``notes`` and the figures
    (``spearman``, ``spearman_hoa``, ``pair_spearman``, ``ranking_spearman``,
    ``trials_to_best_<sampler>``, ... as :func:`~taskgraph.search.bench_report.run_bench`
    documents).  ``task_metadata``: a task-metadata file (:func:`metadata_options`).
    ``pooling``: ``setfn``'s ``pooling`` (``mean``, ``sum``, ``auto`` or ``bma``, its default;
    ``setfn`` only).
    Raises :class:`~taskgraph.errors.UnknownNameError` for an unknown ``method`` (whatever the
    table), :class:`~taskgraph.errors.ConfigError` for bad arguments or an undefined Spearman, :class:`~taskgraph.errors.DataFormatError` for a bad table (a value
    beyond :data:`~taskgraph.affinity.longtable.MAX_BENCH_VALUE` included).
    """
    from taskgraph.affinity.estimators.base import ESTIMATORS
    from taskgraph.affinity.estimators.setfn import check_pooling
    from taskgraph.search.bench_report import CLI_SAMPLERS, run_bench

    # Whatever the table: one with no evaluation that fits the estimator still names it.
    ESTIMATORS.get(registered_name(method, "method"))  # unknown: one line listing the known ones
    # Types here; the ranges are checked (and named as the command's options) by run_bench.
    seeds, folds = integer(seeds, "seeds"), integer(folds, "folds")
    max_trials = integer(max_trials, "max_trials")
    if max_size is not None:
        max_size = integer(max_size, "max_size")
    fit_fraction = number(fit_fraction, "fit_fraction")
    flag(search, "search")
    if samplers is not None:
        samplers = names(samplers, "samplers")
    if on_step is not None and not callable(on_step):
        raise ConfigError(
            f"`on_step` must be a callable (evaluation, done, total), but got {on_step!r}"
        )
    if pooling is not None and method != "setfn":
        raise ConfigError(
            f"`{option_name('pooling')}` is an option of setfn, but {option_name('method')} is "
            f"{method!r}"
        )
    if pooling is not None:
        check_pooling(pooling, f"`{option_name('pooling')}`")
    if method == "lookahead":
        # The command to run is the command line's in either wording.
        raise ConfigError(
            f"`{option_name('method', 'lookahead')}` needs lookahead-affinity matrices, which a "
            "results table does not hold; fit it on a records database (`taskgraph affinity "
            "top --method lookahead`)"
        )
    if task_metadata is not None:
        filesystem_path(task_metadata, "task_metadata")
    data = table if isinstance(table, LongTable) else load_bench_table(table)
    options, notes = (
        metadata_options(method, task_metadata, tasks=data.tasks) if task_metadata else ({}, [])
    )
    if method == "textemb" and "task_embeddings" not in options:
        if task_metadata is not None:
            raise ConfigError(
                f"`{option_name('method', 'textemb')}` needs task texts, and "
                f"{option_name('task_metadata', task_metadata)} has no text for any of the "
                f"table's {len(data.tasks)} tasks (docs/affinity.md, Estimators, 'Task metadata')"
            )
        raise ConfigError(
            f"`{option_name('method', 'textemb')}` needs task texts: pass "
            f"{option_name('task_metadata', metavar='FILE')} with a text per task "
            "(docs/affinity.md, Estimators, 'Task metadata')"
        )
    if pooling is not None:
        options["pooling"] = pooling
    report = run_bench(
        data, method=method, fit_fraction=fit_fraction, seeds=seeds, folds=folds,
        fit_split=fit_split, score_split=score_split, search=search,
        samplers=list(CLI_SAMPLERS if samplers is None else samplers),
        max_trials=max_trials, max_size=max_size, estimator_options=options, on_step=on_step,
    )  # fmt: skip
    report.notes.extend(notes)
    # As `bench --json` prints it: an undefined Spearman is None, not NaN.
    return json_safe(report.as_dict())
