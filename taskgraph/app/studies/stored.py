"""Studies already in the records database: their report, stored spec and progress, the
list of them, and deleting one with every record of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from taskgraph.app.arguments import integer, study_name
from taskgraph.app.studies.running import _storage_url
from taskgraph.errors import StorageError

__all__ = ["delete_study", "list_studies", "study_status", "study_summary"]


# -- reading ---------------------------------------------------------------------------------


def study_summary(
    name: str, *, storage: str | None = None, top: int | None = None
) -> dict[str, Any]:
    """Return study ``name``'s report: baseline, best trial, gains of the ``top`` trials, failures.

    ``top=None`` (the default) lists every trial, as ``taskgraph study show --json`` does
    without ``--top``; the keys are its keys.
    Raises :class:`~taskgraph.errors.StorageError` naming the known studies when ``name`` is
    not one of them, or when the database cannot be opened.
    """
    from taskgraph.search.report import study_report, target_data_versions
    from taskgraph.search.stored_studies import open_study

    if top is not None:
        top = integer(top, "top", minimum=1)
    url = _storage_url(storage)
    study = open_study(study_name(name), storage_url=url)
    # Gains are measured within one version of the target's data (the records' fingerprints).
    versions = target_data_versions(study.study_name, storage_url=url)
    return study_report(study, top=top, data_versions=versions)


def study_spec(name: str, *, storage: str | None = None) -> dict[str, Any]:
    """Return the spec study ``name`` was created with, as stored (``taskgraph study show
    --spec``): the storage URL's password masked, ``budget.trials`` the study's budget now.

    optuna-dashboard shows the stored spec cut at 1024 characters; this is it whole.
    Raises :class:`~taskgraph.errors.StorageError` as :func:`study_summary` does.
    """
    from taskgraph.search.study import stored_spec_data

    return stored_spec_data(study_name(name), storage_url=_storage_url(storage))


def study_status(name: str, *, storage: str | None = None) -> dict[str, Any]:
    """Return how far study ``name`` is (``taskgraph study status --json``).

    Raises :class:`~taskgraph.errors.StorageError` as :func:`study_summary` does.
    """
    from taskgraph.search.progress import SPEC_ATTR, study_progress
    from taskgraph.search.stored_studies import open_study

    study = open_study(study_name(name), storage_url=_storage_url(storage))
    spec = study.user_attrs.get(SPEC_ATTR) or {}
    # The fields `study list --json` gives the same study (open_study refuses one not taskgraph's).
    return {"target": spec.get("target"), **study_progress(study).to_dict(), "taskgraph": True}


def list_studies(*, storage: str | None = None) -> list[dict[str, Any]]:
    """Return every study in the database with its progress (``taskgraph study list``).

    Raises :class:`~taskgraph.errors.StorageError` when the database cannot be opened.
    """
    from taskgraph.search.stored_studies import list_progress

    return list_progress(storage_url=_storage_url(storage))


# -- deleting --------------------------------------------------------------------------------


def delete_study(name: str, *, storage: str | None = None) -> dict[str, Any]:
    """Delete study ``name``: the Optuna study and every record of it, in one transaction.

    Its runs (screens included), their scores and lookahead matrices, its row in
    ``tg_studies`` and Optuna's study with its trials go; another study, the shared tasks,
    task sets and model configurations, and affinity fits stay.  Records whose Optuna study
    was deleted outside taskgraph (``optuna delete-study``) are deleted the same way.  Then
    the local runner's checkpoint folder of the study, where it is found, goes too.

    Returns what was deleted (``name``, ``runs``, ``scores``, ``lookahead_matrices``,
    ``optuna_trials``, ``checkpoints``: the local runner's folder removed or ``None``,
    ``tune_checkpoints``: the Ray runner's persisted checkpoints removed).  An Optuna study
    taskgraph did not create (no spec, trials of its own, no records) is refused
    (:class:`~taskgraph.errors.NotFoundError`), as every other command refuses it.
    Raises :class:`~taskgraph.errors.NotFoundError` naming the known studies when there is
    no such study (checked before any lock is taken, so no lock file is left for it), and
    :class:`~taskgraph.errors.StorageError` when a driver runs the study: every driver
    (``study run``/``resume``/``screen``, the Python API, local or Ray) holds the study's
    liveness lock, :mod:`taskgraph.storage.locks`, for its whole life, and one that died
    holds nothing.  Once that lock is taken here, a trial left RUNNING (its heartbeat fresh
    or not) belongs to a dead driver: it does not stop the delete.
    """
    import shutil

    from taskgraph.runners.local import remove_tune_checkpoints
    from taskgraph.storage import mask_url, open_repository
    from taskgraph.storage.locks import no_driver, setup_lock

    name = study_name(name)
    url = _storage_url(storage)
    where = mask_url(url)
    with open_repository(url, create=False) as repository:
        # Refuse a name that is no study before locking: the locks create their files.
        _find_study(name, url, where, repository)
        with setup_lock(url), no_driver(url, name) as free:
            if not free:
                # A driver holds the study's liveness lock from opening it until it stops,
                # between trials too; held here until the delete is done, a driver starting
                # meanwhile waits and then creates the study anew.
                raise StorageError(
                    f"study {name!r} in {where} is being run by a driver (`taskgraph study "
                    "run`, `resume` or a Ray job holds it); stop that driver, or wait until it "
                    "finishes, then delete the study"
                )
            # Again under the locks: another delete may have gone through meanwhile.
            optuna_id, checkpoints, tune_checkpoints = _find_study(name, url, where, repository)
            counts = repository.delete_study(name, optuna_study_id=optuna_id)
    removed = None
    if checkpoints is not None and checkpoints.is_dir():
        shutil.rmtree(checkpoints, ignore_errors=True)
        removed = str(checkpoints)
    # The Ray runner's checkpoints its interrupted trials persisted under experiment_dir.
    tune_removed = remove_tune_checkpoints(tune_checkpoints)
    return {"name": name, **counts, "checkpoints": removed, "tune_checkpoints": tune_removed}


def _find_study(
    name: str, url: str, where: str, repository: Any
) -> tuple[int | None, Path | None, set[str]]:
    """Return study ``name``'s Optuna id (``None``: records only), the local runner's
    checkpoint folder of it and the Ray runner's persisted checkpoints of its trials.

    Raises :class:`~taskgraph.errors.NotFoundError` when there is no such study, or the
    Optuna study of that name is another program's.
    """
    from taskgraph.errors import NotFoundError
    from taskgraph.search.heartbeat import quiet_optuna
    from taskgraph.search.progress import RAY_CHECKPOINT_ATTR, SPEC_ATTR
    from taskgraph.search.stored_studies import read_only_storage, study_names

    optuna_storage = read_only_storage(url)
    optuna_id: int | None = None
    optuna_names: list[str] = []
    checkpoints = None
    tune_checkpoints: set[str] = set()
    record_names = [summary.name for summary in repository.studies()]
    try:
        if optuna_storage is not None:
            with quiet_optuna():
                optuna_names = study_names(optuna_storage)
                if name in optuna_names:
                    optuna_id = optuna_storage.get_study_id_from_name(name)
                    attrs = optuna_storage.get_study_user_attrs(optuna_id)
                    trials = optuna_storage.get_all_trials(optuna_id, deepcopy=False)
                    if SPEC_ATTR not in attrs and trials and name not in record_names:
                        # Another program's Optuna study sharing the database: every other
                        # command refuses it as not taskgraph's (a half-created one, no
                        # attribute and no trial, is deleted: its advice says so).
                        raise NotFoundError(
                            f"study {name!r} in {where} was not created by taskgraph (no "
                            f"{SPEC_ATTR}, {len(trials)} trial(s)): delete it with Optuna "
                            "(optuna delete-study) if that is what you want"
                        )
                    checkpoints = _checkpoint_folder(name, url, optuna_id, attrs)
                    tune_checkpoints = {
                        str(t.system_attrs[RAY_CHECKPOINT_ATTR])
                        for t in trials
                        if RAY_CHECKPOINT_ATTR in t.system_attrs
                    }
    finally:
        if optuna_storage is not None:
            optuna_storage.engine.dispose()
    if optuna_id is None and name not in record_names:
        known = ", ".join(sorted({*optuna_names, *record_names})) or "(none)"
        raise NotFoundError(f"no study {name!r} in {where}; known studies: {known}")
    return optuna_id, checkpoints, tune_checkpoints


def _checkpoint_folder(name: str, url: str, study_id: int, attrs: Mapping[str, Any]) -> Path | None:
    """Return the local runner's checkpoint folder of the study (``None``: another runner, or
    checkpoints off): the runners package reads its own setting from the stored spec."""
    from taskgraph.runners.local import stored_study_checkpoint_folder

    return stored_study_checkpoint_folder(
        attrs.get("taskgraph:spec"), study=name, storage_url=url, study_id=study_id
    )
