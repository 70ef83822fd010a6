"""The run filters of :meth:`~taskgraph.storage.repository.Repository.runs` and the model
family selection of ``--family``.

:func:`check_run_filters` rejects a filter of the wrong type, an empty name or a status no
run can have before any query runs.  :func:`_in_family_row` and :func:`_rows_of_family` pick
runs by model family (a hash prefix, optionally with ``/data:<version>``), and
:func:`no_family_error` is the one error every command gives for a family that matches
nothing, listing the families there are.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from taskgraph.errors import ConfigError, option_name
from taskgraph.storage.export import DATA_MARK, in_family, shown_family
from taskgraph.storage.schema import RunRow
from taskgraph.storage.score_reads import data_families
from taskgraph.trial import TrialStatus

__all__ = ["check_run_filters", "no_family_error"]


def _row_entries(row: RunRow) -> list[tuple[str, str, str | None]]:
    """Return a run's export rows as (task, family, dataset fingerprint or None): each
    score's (a run without scores: its one row, its target with the run's own family)."""
    prints = row.task_fingerprints or {}
    if row.scores:
        return [(score.task, score.family, prints.get(score.task)) for score in row.scores]
    return [(row.target, row.family, prints.get(row.target))]


def _in_family_row(row: RunRow, family: str) -> bool:
    """Return whether one of a run's export rows is of ``family`` (a hash prefix, optionally
    with ``/data:`` and a data version prefix: :func:`~taskgraph.storage.export.in_family`)."""
    return any(in_family(family, name, print_) for _, name, print_ in _row_entries(row))


def _rows_of_family(rows: Sequence[RunRow], family: str) -> list[RunRow]:
    """Return the run ``rows`` with an export row of model family ``family`` (a hash prefix,
    optionally with ``/data:`` and a data version prefix, :func:`_in_family_row`); raise
    :func:`no_family_error` when ``rows`` has rows and none is of it, naming their families
    as the long format does (with the data version where a task's scores in one family were
    measured on several)."""
    kept = [row for row in rows if _in_family_row(row, family)]
    if rows and not kept:
        entries = [entry for row in rows for entry in _row_entries(row)]
        versions = data_families(entries)
        raise no_family_error(family, {versions.get(entry, entry[1]) for entry in entries})
    return kept


def no_family_error(family: str, families: Iterable[str]) -> ConfigError:
    """Return the error of a ``family`` value that none of ``families`` (those the other
    filters picked, ``<family>/data:<version>`` where a task's scores in one family were
    measured on several data versions) is of, listing them as ``records export --format
    long`` does: each family's hash prefix and its data version, a value ``--family`` takes
    in every format."""
    known = sorted({shown_family(name) for name in families})
    return ConfigError(
        f"`{option_name('family')}` {family.strip().lower()!r}: no score's model family starts "
        f"with it; the families: {', '.join(known)}"
    )


#: the statuses a run is stored with (``TrialStatus``)
_STATUSES = tuple(status.value for status in TrialStatus)


#: what an empty name filter should have been
_GIVE = {
    "study": "a study name",
    "target": "a target name",
    "model_config": "a hash or its prefix",
}


def check_run_filters(
    *,
    study: object = None,
    target: object = None,
    task_set: object = None,
    status: object = None,
    contains: object = None,
    model_config: object = None,
    data_selection: object = None,
    pretraining: object = None,
    family: object = None,
) -> None:
    """Raise a ConfigError naming a filter of :meth:`Repository.runs` of the wrong type, an
    empty name, or a ``status`` no run can have (a filter that could match nothing by mistake).
    """
    if family is not None and not isinstance(family, str):
        raise ConfigError(f"`{option_name('family')}` is not a name (a string): {family!r}")
    if family is not None and not family.strip():  # as `records export --format long` says it
        raise ConfigError(f"`{option_name('family')}` is empty: give a family hash or its prefix")
    if family is not None and family.strip().lower().partition(DATA_MARK)[::2] == ("", ""):
        raise ConfigError(
            f"`{option_name('family')}` {family.strip()!r} names neither a family nor a data "
            "version: give a family hash or its prefix (HASH or HASH/data:VERSION)"
        )
    if family is not None:
        # Lower-cased as family_parts reads it: `HASH/DATA:` is `HASH/data:` there.
        _, mark, version = family.strip().lower().partition(DATA_MARK)
        if mark and not version.strip():  # an empty version would match every version
            raise ConfigError(
                f"`{option_name('family')}` {family.strip()!r}: the data version after "
                f"{DATA_MARK!r} is empty: give one (HASH/data:VERSION) or leave {DATA_MARK!r} out"
            )
    for keyword, value in (
        ("study", study),
        ("target", target),
        ("contains", contains),
        ("model_config", model_config),
        ("pretraining", pretraining),
    ):
        if value is not None and (not isinstance(value, str) or not value.strip()):
            what = "empty" if isinstance(value, str) else f"not a name (a string): {value!r}"
            if isinstance(value, str) and keyword in _GIVE:
                what += f": give {_GIVE[keyword]}"
            raise ConfigError(f"`{option_name(keyword)}` is {what}")
    if isinstance(task_set, str):
        members = [name.strip() for name in task_set.split("+") if name.strip()]
        if not members:
            raise ConfigError(
                f"`{option_name('task_set')}` {task_set!r} names no task: expected names "
                "joined by '+', e.g. 'ner+pos'"
            )
        twice = sorted({name for name in members if members.count(name) > 1})
        if twice:  # a run's task set holds each task once: no run would ever match
            raise ConfigError(
                f"`{option_name('task_set')}` {task_set!r} names {', '.join(twice)} twice: a "
                "task set holds each task once"
            )
    if task_set is not None and not (
        isinstance(task_set, str)
        or (
            isinstance(task_set, Sequence | set | frozenset)
            and all(isinstance(name, str) for name in task_set)
        )
    ):
        raise ConfigError(
            f"`{option_name('task_set')}` must be task names joined by '+' ('ner+pos') or a "
            f"list of names, but got {task_set!r}"
        )
    if status is not None and status not in _STATUSES:
        raise ConfigError(
            f"`{option_name('status')}` must be one of {list(_STATUSES)}, but got {status!r}"
        )
    if data_selection is not None and not isinstance(data_selection, bool):
        raise ConfigError(
            f"`{option_name('data_selection')}` must be True, False or None, but got "
            f"{data_selection!r}"
        )
