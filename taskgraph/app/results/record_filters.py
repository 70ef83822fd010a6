"""Checks of the records commands' filters: a name no stored run has is an error, not "0 runs"."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, cast

from taskgraph.errors import ConfigError, NotFoundError, option_name
from taskgraph.storage.records import NO_PRETRAINING, RunRecord

if TYPE_CHECKING:
    from taskgraph.storage.repository import Repository

__all__ = ["check_record_family", "check_record_filters"]


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
