"""The ``local`` runner: trains each trial in this process with the multi-task trainer.

Checkpoints (``runner.checkpoints``, on by default): each (trial, seed) trains in
``<checkpoint_dir>/<study>-<database>/trial-<N>/seed-<S>``, where ``N`` is the number of the
trial's first try (the engine's ``checkpoint_key``), so a retry after Ctrl-C, ``kill`` or a
crash resumes the first try's training.  ``<database>`` is a short hash of the database and
study id: two studies of one name in two databases never share a folder.  A trial folder is
removed once no try of its trial waits or runs (:func:`remove_finished_checkpoints`): after
each trial, and when the runner starts and stops.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import traceback
from collections.abc import Iterable, Mapping, Sequence
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

from taskgraph.tasks.types import TaskDef
from taskgraph.trial import TrialConfig, TrialResult

if TYPE_CHECKING:
    import optuna

__all__ = [
    "LocalEvaluator",
    "checkpoint_base",
    "checkpoint_base_problem",
    "checkpoint_database",
    "live_trial_numbers",
    "remove_finished_checkpoints",
    "remove_tune_checkpoints",
    "stored_study_checkpoint_folder",
    "study_checkpoint_folder",
]

logger = logging.getLogger(__name__)

_TRIAL_FOLDER = re.compile(r"trial-(\d+)")


class LocalEvaluator:
    """Evaluates a trial by training it in-process (:func:`taskgraph.training.train_trial`).

    ``tasks`` holds the study's inline task definitions (catalog tasks are looked up by
    name); ``checkpoint_root``, when given, gets one folder per (trial, seed),
    ``<checkpoint_key>/seed-<S>``, so a killed run resumes its training where it stopped.  A
    folder there that holds another configuration's checkpoint (a study deleted and created
    again under its name) is emptied and the trial trains from the start: it is never resumed.
    ``threads`` is the number of cores each trial gets (torch's intra-op threads; ``None``: the
    cores this process may use).
    """

    def __init__(
        self,
        *,
        tasks: Mapping[str, TaskDef] | None = None,
        data_dir: str | os.PathLike[str] | None = None,
        device: str | None = None,
        checkpoint_root: str | os.PathLike[str] | None = None,
        progress: bool = False,
        threads: float | None = None,
    ) -> None:
        self.tasks = dict(tasks or {})
        self.data_dir = None if data_dir is None else Path(data_dir)
        self.device = device
        self.checkpoint_root = None if checkpoint_root is None else Path(checkpoint_root)
        self.progress = progress
        self.threads = threads

    def evaluate(
        self,
        config: TrialConfig,
        *,
        callbacks: Sequence[Any] = (),
        checkpoint_key: str | None = None,
    ) -> TrialResult:
        """Return the trained trial's result; an unexpected exception becomes a FAILED result."""
        from taskgraph.training import train_trial

        checkpoint_dir = None
        if self.checkpoint_root is not None and checkpoint_key is not None:
            checkpoint_dir = self.checkpoint_root / checkpoint_key / f"seed-{config.seed}"
        try:
            if checkpoint_dir is not None:
                _discard_foreign_checkpoint(checkpoint_dir, config)
            return train_trial(
                config,
                tasks=self.tasks or None,
                data_dir=self.data_dir,
                callbacks=tuple(callbacks),
                device=self.device,
                checkpoint_dir=checkpoint_dir,
                progress=self.progress,
                threads=self.threads,
            )
        except Exception as error:  # train_trial should not raise; a study must survive if it does
            last = traceback.extract_tb(error.__traceback__)[-1:]
            where = f" at {last[0].filename}:{last[0].lineno}" if last else ""
            return TrialResult.failed(f"{type(error).__name__}: {error}{where}")


def _discard_foreign_checkpoint(directory: Path, config: TrialConfig) -> None:
    """Empty ``directory`` when its checkpoint belongs to another configuration than ``config``
    (the trainer's :class:`~taskgraph.training.checkpoint.CheckpointStore` would refuse it)."""
    from taskgraph.errors import ConfigError
    from taskgraph.training.checkpoint import CheckpointStore

    if not (directory / "config.json").is_file():
        return
    try:
        CheckpointStore(directory=directory, config=config)
    except ConfigError as error:
        logger.warning("%s: removed, training starts over", error)
        shutil.rmtree(directory, ignore_errors=True)


def checkpoint_base(setting: str | os.PathLike[str] | None) -> Path:
    """Return the absolute folder a local runner's checkpoints go under: ``setting`` (``~``
    expanded, relative to the working directory), or ``$TASKGRAPH_CACHE/checkpoints``."""
    from taskgraph.tasks.cache import cache_dir

    path = Path(setting).expanduser() if setting is not None else cache_dir() / "checkpoints"
    return path.absolute()


def checkpoint_base_problem(path: Path) -> str | None:
    """Return why ``path`` cannot hold checkpoints, or ``None`` when it can; creates nothing.

    A missing folder is fine when its nearest existing parent is a writable folder.
    """
    if path.exists():
        if not path.is_dir():
            return f"{str(path)!r} is not a folder"
        if not os.access(path, os.W_OK | os.X_OK):
            return f"{str(path)!r} is not writable"
        return None
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        return f"cannot create {str(path)!r}: {str(parent)!r} is not a folder"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"cannot create {str(path)!r}: {str(parent)!r} is not writable"
    return None


def study_checkpoint_folder(base: Path, *, study: str, database: str) -> Path:
    """Return the folder of study ``study``'s checkpoints under ``base``.

    Named ``<study>-<hash>``: the study name made safe for any file system, and a short hash
    of ``database`` (what identifies the study's database and its row there), so that two
    studies of one name in two databases never share a folder.
    """
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", study).strip("._-")[:80] or "study"
    digest = hashlib.sha256(f"{study}\0{database}".encode()).hexdigest()[:8]
    return base / f"{safe}-{digest}"


def checkpoint_database(storage_url: str, study_id: int) -> str:
    """Return what :func:`study_checkpoint_folder` hashes as a study's database: a SQLite file
    by its absolute path (a relative URL names another file in another folder), any other
    database by its masked URL, and the study's id there."""
    from taskgraph.storage.urls import mask_url, parse_storage_url, sqlite_path

    url = parse_storage_url(storage_url)
    path = sqlite_path(url) if url.get_backend_name() == "sqlite" else None
    database = str(path) if path is not None else mask_url(storage_url)
    return f"{database}#{study_id}"


def stored_study_checkpoint_folder(
    stored_spec: object, *, study: str, storage_url: str, study_id: int
) -> Path | None:
    """Return the checkpoint folder of a study from its stored spec (``taskgraph:spec``), as
    the local runner names it when it runs; ``None`` when the study has none (another runner,
    ``checkpoints: false``, a setting that is not a path)."""
    runner = stored_spec.get("runner") if isinstance(stored_spec, Mapping) else None
    if not isinstance(runner, Mapping) or runner.get("name") != "local":
        return None
    if runner.get("checkpoints") is False:
        return None
    setting = runner.get("checkpoint_dir")
    if setting is not None and not isinstance(setting, str):
        return None
    return study_checkpoint_folder(
        checkpoint_base(setting),
        study=study,
        database=checkpoint_database(storage_url, study_id),
    )


def remove_tune_checkpoints(paths: Iterable[str]) -> list[str]:
    """Delete the Ray runner's persisted Tune checkpoints at ``paths`` (``checkpoint_<n>``
    folders only: a path of any other name is left alone); return those deleted.  Here rather
    than in :mod:`taskgraph.runners.ray` so that ``study delete`` needs no Ray."""
    removed = []
    for path in paths:
        folder = Path(path)
        if folder.name.startswith("checkpoint_") and folder.is_dir():
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(str(folder))
    return removed


def live_trial_numbers(trials: Iterable[optuna.trial.FrozenTrial]) -> set[int]:
    """Return the numbers of the first tries of ``trials`` that wait or run (themselves or a
    retry, whose ``failed_trial`` names its first try): their checkpoints are still needed."""
    from optuna.trial import TrialState

    return {
        int(trial.system_attrs.get("failed_trial", trial.number))
        for trial in trials
        if trial.state in (TrialState.WAITING, TrialState.RUNNING)
    }


def remove_finished_checkpoints(folder: Path, study: optuna.Study) -> list[int]:
    """Remove the ``trial-N`` folders under ``folder`` whose trial is finished; return the N.

    A trial is finished when no try of it (the trial itself, or a retry whose
    ``failed_trial`` is ``N``) waits or runs: it completed, was pruned, failed, or was
    interrupted with no retry left.  ``folder`` itself goes once empty.
    """
    from optuna.trial import TrialState

    if not folder.is_dir():
        return []
    live = live_trial_numbers(
        study.get_trials(deepcopy=False, states=(TrialState.WAITING, TrialState.RUNNING))
    )
    removed: list[int] = []
    for child in folder.iterdir():
        match = _TRIAL_FOLDER.fullmatch(child.name)
        if match is None or not child.is_dir() or int(match.group(1)) in live:
            continue
        shutil.rmtree(child, ignore_errors=True)
        removed.append(int(match.group(1)))
    with suppress(OSError):
        folder.rmdir()  # only when empty
    return sorted(removed)
