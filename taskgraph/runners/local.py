"""The ``local`` runner: trains each trial in this process with the multi-task trainer."""

from __future__ import annotations

import os
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from taskgraph.tasks.types import TaskDef
from taskgraph.trial import TrialConfig, TrialResult

__all__ = ["LocalEvaluator"]


class LocalEvaluator:
    """Evaluates a trial by training it in-process (:func:`taskgraph.training.train_trial`).

    ``tasks`` holds the study's inline task definitions (catalog tasks are looked up by
    name); ``checkpoint_root``, when given, gets one folder per (trial, seed) so a killed run
    resumes its training where it stopped.  ``threads`` is the number of cores each trial
    gets (torch's intra-op threads; ``None``: the cores this process may use).
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
