"""Fitting an affinity estimator on score records, and the notes about what it was fitted on.

:func:`fit_records` fits an estimator on records already loaded (records in, estimator out);
:func:`fit_estimator` loads them from a source first.  The private notes say which gains were
left out or are confounded (zero baselines, baselines trained with other settings, targets
without a baseline, several model families): recommendations, groupings and the graph print
them beside their results.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from typing import TYPE_CHECKING, Any

import numpy as np

from taskgraph.affinity.estimators.base import ESTIMATORS, AffinityEstimator, make_estimator
from taskgraph.affinity.estimators.setfn import (
    DEFAULT_POOLING,
    SMALL_DATA_HYPERPRIOR,
    check_pooling,
)
from taskgraph.affinity.gains import compute_gains
from taskgraph.affinity.records import ScoreRecord
from taskgraph.app.affinity.records import (
    PathLike,
    _one_source,
    _records_database,
    load_records,
    lookahead_matrices,
)
from taskgraph.app.arguments import flag, registered_name
from taskgraph.errors import ConfigError, StorageError, option_name

if TYPE_CHECKING:
    from taskgraph.storage.repository import Repository

__all__ = ["default_pooling", "fit_estimator", "fit_records"]


def fit_records(
    method: str,
    records: list[ScoreRecord],
    *,
    lookahead: list[Any],
    embeddings: Mapping[str, np.ndarray],
    hyperprior: bool = True,
    pooling: str | None = None,
    matrices_alone: bool = False,
) -> AffinityEstimator:
    """Return estimator ``method`` fitted on ``records`` (with lookahead matrices and task
    embeddings where the method uses them; ``hyperprior``: setfn's MAP-II variances;
    ``pooling``: how setfn combines a set's members, ``mean``, ``sum``, ``auto`` or ``bma``;
    None: :func:`default_pooling` of ``hyperprior``).

    Raises :class:`ConfigError` when there are no records, or none with a single-task
    baseline of its family to measure a gain against; with ``matrices_alone`` (a ranking,
    ``affinity top``) the ``lookahead`` estimator is fitted on its matrices without any
    (uncalibrated: its ``calibrated`` is False).
    """
    pooling = default_pooling(hyperprior) if pooling is None else pooling
    check_pooling(pooling, f"`{option_name('pooling')}`")
    # The lookahead estimator ranks from the matrices alone (a screen, no trained trial):
    # uncalibrated, which `affinity top` says.
    alone = matrices_alone and method == "lookahead" and bool(lookahead)
    if not records and not alone:
        raise ConfigError(
            "no score records to fit on (run a study, or pass "
            f"{option_name('table', metavar='FILE')})"
        )
    if method == "lookahead" and not lookahead:
        raise ConfigError(
            "the lookahead estimator needs lookahead-affinity matrices, and there are none: "
            "record them with `training.lookahead_every` in a study or with `taskgraph study "
            f"screen` (a {option_name('table')} holds none)"
        )
    if method == "textemb" and not embeddings:
        raise ConfigError(
            "the textemb estimator needs task text embeddings: add "
            f"{option_name('text_embeddings', True)}"
        )
    options: dict[str, Any] = {}
    if method in ("setfn", "lookahead") and lookahead:
        options["lookahead"] = lookahead
    if method in ("setfn", "textemb") and embeddings:
        options["task_embeddings"] = embeddings
    if method == "setfn":
        options["pooling"] = pooling
    if method == "setfn" and hyperprior:
        # Predictions shown to a user: with one target and a handful of gains, plain evidence
        # maximisation puts everything into noise (every set predicted alike) or fits an
        # overconfident additive model; the weak prior avoids both (docs/affinity.md).
        options["hyperprior"] = SMALL_DATA_HYPERPRIOR
    estimator = make_estimator(method, **options)
    # Not estimator.fit(records), which raises for a task whose single-task score is 0: its
    # relative gains are left out (GainTable.zero_baselines, noted) and the others' kept.
    estimator.fit_gains(
        compute_gains(
            records, kind=estimator.gain_kind, split=estimator.split, metric=estimator.metric,
            zero_baselines="leave_out",
        )
    )  # fmt: skip
    if not estimator.table.gains and method != "textemb" and not alone:
        raise ConfigError(f"no gains to fit: {estimator.table.why_empty()}")
    return estimator


def fit_estimator(
    *,
    method: str = "setfn",
    storage: str | None = None,
    table: PathLike | None = None,
    split: str | None = None,
    metric: str | None = None,
    text_embeddings: bool = False,
    hyperprior: bool | None = None,
    pooling: str | None = None,
    repository: Repository | None = None,
    matrices_alone: bool = False,
) -> tuple[AffinityEstimator, list[ScoreRecord]]:
    """Return the estimator ``method`` fitted on the records, and those records.

    ``text_embeddings`` adds TextEmb vectors of catalog tasks (loads MiniLM with torch); a
    ConfigError when no task of the records is one.
    ``hyperprior`` (setfn; default True) fits its variances with a weak prior; ``pooling``
    (setfn; default :func:`default_pooling`) is how a set's members combine: either given with another
    ``method``, which would ignore it, is refused.  The records database is
    opened once (or ``repository``, an open one, is read).  ``matrices_alone``: see
    :func:`fit_records` (a ranking from lookahead matrices without score records).  Raises
    :class:`~taskgraph.errors.UnknownNameError` for an unknown method (before any work) and
    :class:`~taskgraph.errors.ConfigError` when there is nothing to fit, for a setfn option
    with another method, or for both ``storage`` and ``table``.
    """
    ESTIMATORS.get(registered_name(method, "method"))  # unknown: one line listing the known ones
    prior, pool = _setfn_options(method, hyperprior, pooling)
    flag(text_embeddings, "text_embeddings")
    _one_source(storage, table)
    # The records database is opened once for the records and the matrices (not with a table).
    opened = (
        nullcontext(repository) if table is not None else _records_database(storage, repository)
    )
    with opened as database:
        records = load_records(
            storage=storage, table=table, split=split, metric=metric, repository=database
        )
        lookahead = (
            lookahead_matrices(storage, table, repository=database)
            if method in ("setfn", "lookahead")
            else []
        )
    embeddings: dict[str, np.ndarray] = {}
    if text_embeddings:
        from taskgraph.models.task_embeddings import task_text_embeddings

        tasks = sorted({t for r in records for t in r.task_set})
        embeddings = task_text_embeddings(tasks)
        if not embeddings:
            # Refused for setfn too: fitted without the embeddings asked for, its predictions
            # would silently be what they are without the option.
            shown = ", ".join(tasks[:5]) + (", ..." if len(tasks) > 5 else "")
            refusal = (
                f"{option_name('method', 'textemb')} has nothing to use"
                if method == "textemb"
                else f"leave it out to fit {option_name('method', method)} on the gains alone"
            )
            raise ConfigError(
                f"{option_name('text_embeddings', True)} found no task text: it embeds the "
                "training text of catalog tasks whose data is in the data directory, and none "
                f"of the records' {len(tasks)} tasks ({shown}) is one; {refusal}"
            )
    estimator = fit_records(
        method,
        records,
        lookahead=lookahead,
        embeddings=embeddings,
        hyperprior=prior,
        pooling=pool,
        matrices_alone=matrices_alone,
    )
    return estimator, records


@contextmanager
def _explained(explain: Callable[[], None]) -> Iterator[None]:
    """Run ``explain`` first where the block (an affinity report's fit) raises a ConfigError:
    it raises what is wrong with the report's own arguments, which comes before what the fit
    found.  A StorageError (an unknown study or a bad URL, also a ConfigError) is raised as is.
    """
    try:
        yield
    except StorageError:
        raise
    except ConfigError:
        explain()
        raise


def _setfn_options(
    method: str, hyperprior: bool | None, pooling: str | None
) -> tuple[bool, str | None]:
    """Return setfn's (hyperprior, pooling), the hyperprior's default for None (not given; the
    pooling's default follows it in :func:`fit_records`); either given to another estimator,
    which would ignore it, is refused."""
    if hyperprior is not None:
        flag(hyperprior, "hyperprior")
    if pooling is not None:
        registered_name(pooling, "pooling")
    if method != "setfn":
        given = [spelled for spelled, value in (
            (option_name("pooling"), pooling),
            (option_name("hyperprior", hyperprior,
                         flag=None if hyperprior else "--no-hyperprior"), hyperprior),
        ) if value is not None]  # fmt: skip
        if given:
            raise ConfigError(
                f"`{given[0]}` is an option of setfn, but {option_name('method')} is {method!r}"
            )
    return (True if hyperprior is None else hyperprior), pooling


def default_pooling(hyperprior: bool) -> str:
    """Return setfn's pooling when none is given: ``bma`` (the estimator's default, chosen on
    plain evidence-maximising fits) without the hyperprior, ``mean`` with it, where ``bma``
    was not better (ETTm1's validation Spearman -0.005 ± 0.001; docs/affinity.md, "Issue 16,
    item 4: averaging the poolings")."""
    return "mean" if hyperprior else DEFAULT_POOLING


def _zero_baseline_notes(estimator: AffinityEstimator, tasks: Sequence[str]) -> list[str]:
    """Return a note per task of ``tasks`` whose relative gains were left out for a zero baseline."""
    where: dict[str, set[str]] = {}
    for _, task, split_name, metric_name in estimator.table.zero_baselines:
        if task in tasks:
            where.setdefault(task, set()).add(f"{metric_name or 'score'} on {split_name}")
    notes = []
    for task, scores in sorted(where.items()):
        notes.append(
            f"{task!r} has a single-task score of 0 ({', '.join(sorted(scores))}), so its gains "
            "relative to it are undefined and left out; the other targets' gains are unaffected"
        )
    return notes


def _mixed_settings_notes(estimator: AffinityEstimator, tasks: Sequence[str]) -> list[str]:
    """Return a note per task of ``tasks`` with measured gains whose runs and single-task
    baseline were trained with different settings (``GainTable.mixed_settings``)."""
    sets: dict[str, list[str]] = {}
    names: dict[str, set[str]] = {}
    for _, task, auxiliaries, differing in estimator.table.mixed_settings:
        if task in tasks:
            sets.setdefault(task, []).append("+".join(sorted(auxiliaries)))
            names.setdefault(task, set()).update(differing)
    total = {
        task: len({g.auxiliaries for g in estimator.table.gains if g.target == task})
        for task in sets
    }
    if len(sets) > 1:
        count = sum(len(set(mixed)) for mixed in sets.values())
        every = sorted(set().union(*names.values()))
        return [
            f"{_gains_counted(count, sum(total.values()))} of {len(sets)} targets "
            f"({', '.join(repr(t) for t in sorted(sets))}) {_compare(count)} runs with their "
            f"target's single-task baseline trained with other settings ({', '.join(every)}; the "
            "studies searched them, or several studies were pooled), so "
            f"{_each_gain(count)} the effect of those settings with the transfer; "
            "`affinity top --target NAME` lists them; to measure the transfer alone, fix "
            "those settings in the spec (or train each target alone with each value)"
        ]
    notes = []
    for task, mixed in sorted(sets.items()):
        shown = sorted(set(mixed))
        listed = f"{', '.join(shown[:5])}{', ...' if len(shown) > 5 else ''}"
        notes.append(
            f"{_gains_counted(len(shown), total[task])} of {task!r} (auxiliary "
            f"{'set' if len(shown) == 1 else 'sets'} {listed}) {_compare(len(shown))} runs "
            "with a single-task baseline trained with other settings "
            f"({', '.join(sorted(names[task]))}; the study searched them, or several studies "
            f"were pooled), so {_each_gain(len(shown))} the effect of those settings with the "
            f"transfer; to measure the transfer alone, fix those settings in the spec (or "
            f"train {task!r} alone with each value)"
        )
    return notes


def _gains_counted(count: int, total: int) -> str:
    """Return ``count`` of ``total`` measured gains in words: "all 8 measured gains"."""
    if total == 1:
        return "the only measured gain"
    if count == total == 2:
        return "both measured gains"
    if count == total:
        return f"all {total} measured gains"
    return f"{count} of the {total} measured gains"


def _compare(count: int) -> str:
    """Return the verb "compare" agreeing with ``count`` gains."""
    return "compares" if count == 1 else "compare"


def _each_gain(count: int) -> str:
    """Return the subject and verb that say ``count`` gains mix two effects."""
    return "this gain mixes" if count == 1 else "each of these gains mixes"


def _without_baseline(estimator: AffinityEstimator, records: Sequence[ScoreRecord]) -> list[str]:
    """Return the targets of ``records`` that the fitted ``estimator`` has no baseline of, sorted."""
    return sorted({r.task for r in records} - set(estimator.targets))


def _without_baseline_note(tasks: Sequence[str], consequence: str) -> str:
    """Return the note that ``tasks`` have records but no single-task baseline, so ``consequence``."""
    return (
        "targets without a single-task baseline (a task set of the target alone) have no "
        f"measured gains, so {consequence}: {', '.join(repr(t) for t in tasks)}; a score of "
        "each task trained alone would include them (a study with it as the target trains "
        "one; a table needs its row of the task alone)"
    )


def _baseline_notes(
    estimator: AffinityEstimator,
    tasks: Sequence[str],
    records: Sequence[ScoreRecord],
    consequence: str,
) -> list[str]:
    """Return the notes on the baselines of ``tasks`` (zero ones, ones trained with other
    settings), then the one naming the targets of ``records`` without a baseline, so
    ``consequence``."""
    notes = _zero_baseline_notes(estimator, tasks) + _mixed_settings_notes(estimator, tasks)
    left_out = _without_baseline(estimator, records)
    if left_out:
        notes.append(_without_baseline_note(left_out, consequence))
    return notes


def _families_note(n_families: int, compared: str) -> str:
    """Return the note that the records come from ``n_families`` model families, and how
    ``compared`` their scores are (``affinity top`` and ``affinity graph`` say it alike)."""
    return f"the records come from {n_families} model families; {compared}"
