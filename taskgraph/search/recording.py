"""Writing a study's trials to the records database, and reading what earlier studies left.

Each seed's run of a trial becomes one record (:meth:`Repository.add_run_result`, one
transaction, idempotent on (study, trial, seed)) with its provenance: dataset fingerprints of
the data the run was trained on, the host and the code version.  The graph-guided sampler
starts from the records of *other* studies (:meth:`RecordWriter.prior_records`).
"""

from __future__ import annotations

import functools
import os
import socket
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from taskgraph import __version__
from taskgraph.errors import TaskgraphError, UnknownNameError
from taskgraph.search.outcome import TrialOutcome

if TYPE_CHECKING:
    from taskgraph.storage.repository import Repository
    from taskgraph.trial import TrialConfig, TrialResult

__all__ = ["RecordWriter", "code_version"]


class RecordWriter:
    """Writes the runs of one study's trials; reads the prior records of the others.

    ``repository`` is the records database; ``study`` the study's name.  ``task_defs`` replaces
    the catalog look-up of each task's dataset (fingerprints) for tests and tabular runs;
    ``data_dir`` is where the catalog's datasets are read from.  ``source_fingerprints``
    (task -> fingerprint), given by a runner whose scores do not come from the datasets (a
    published table: ``Runner.data_fingerprints``), replaces the datasets' fingerprints: a
    task it does not name gets none.
    """

    def __init__(
        self,
        *,
        repository: Repository,
        study: str,
        task_defs: Mapping[str, Any] | None = None,
        data_dir: str | os.PathLike[str] | None = None,
        source_fingerprints: Mapping[str, str] | None = None,
    ) -> None:
        self.repository = repository
        self.study = study
        self.task_defs = dict(task_defs) if task_defs is not None else None
        self.data_dir = data_dir
        self.source_fingerprints = (
            dict(source_fingerprints) if source_fingerprints is not None else None
        )
        # Per task set, the type of each task the catalog knows (what a task is never changes
        # while the study runs; its files may, so fingerprints are never kept here).
        self._types: dict[tuple[str, ...], dict[str, str]] = {}

    def write(self, number: int, outcome: TrialOutcome) -> None:
        """Write each seed's run of trial ``number`` (a retried write changes nothing).

        Each run is recorded with the dataset fingerprints of the data it was trained on
        (:meth:`run_fingerprints`), not of the files as they are now: a file edited while the
        study runs must not relabel the runs that read it before.

        A complete run whose configuration, task set and seed the study already holds as a
        complete run of another trial is not written again: a sampler that proposes a set it
        has seen trains the same model on the same data, and counting it twice would make the
        gains look measured twice (their standard error collapses to 0).  A run held only on
        another version of the data (other dataset fingerprints) is written: a new measurement.
        """
        for run in outcome.runs:
            self.repository.add_run_result(
                study=self.study,
                trial_number=number,
                config=run.config,
                result=run.result,
                started_at=run.started_at,
                finished_at=run.finished_at,
                task_fingerprints=self.run_fingerprints(run.config, run.result),
                task_types=self.task_types(run.config.task_set),
                host=run.host or socket.gethostname(),
                code_version=code_version(),
                skip_repeat=True,
            )

    def run_fingerprints(self, config: TrialConfig, result: TrialResult) -> dict[str, str]:
        """Return the dataset fingerprint of each task of ``config`` that ``result`` was
        trained on: the runner's source fingerprints when it has them, else those the trainer
        read (:attr:`TrialResult.data_fingerprints`), else (a result that does not say: a fake
        runner, a result stored before the field existed) those of the files now."""
        trained = result.data_fingerprints
        if self.source_fingerprints is not None or trained is None:
            return self.task_metadata(config.task_set)[0]
        return {name: trained[name] for name in config.task_set if name in trained}

    def task_types(self, task_set: tuple[str, ...]) -> dict[str, str]:
        """Return the type of each task of ``task_set`` that the catalog knows."""
        types = self._types.get(task_set)
        if types is None:
            from taskgraph.tasks import get_task

            types = {}
            for name in task_set:
                try:
                    types[name] = get_task(name, extra=self.task_defs).type.value
                except UnknownNameError:
                    continue  # tabular benchmarks name tasks that are not in the catalog
            self._types[task_set] = types
        return dict(types)

    def task_metadata(self, task_set: tuple[str, ...]) -> tuple[dict[str, str], dict[str, str]]:
        """Return (fingerprint, type) per task of ``task_set`` that the catalog knows, the
        fingerprints of the files as they are now (computed at each call: a file may change
        while the study runs; :func:`~taskgraph.tasks.fingerprints.file_sha256` caches each
        file's digest by its size and times, so an unchanged file is not read again)."""
        from taskgraph.tasks.loading import task_set_fingerprints

        types = self.task_types(task_set)
        if self.source_fingerprints is not None:
            # not trained on its datasets: the source's fingerprints
            fingerprints = {
                name: self.source_fingerprints[name]
                for name in task_set
                if name in self.source_fingerprints
            }
            return fingerprints, types
        fingerprints = {}
        for name in task_set:
            if name not in types:
                continue
            try:  # one task at a time: a task that cannot be read leaves the others' prints
                fingerprints.update(
                    task_set_fingerprints((name,), tasks=self.task_defs, data_dir=self.data_dir)
                )
            except TaskgraphError:
                continue  # provenance is best effort; the run itself already happened
        return fingerprints, types

    def prior_records(self, *, split: str, metric: str | None) -> list[Any]:
        """Return the score records of *other* studies on ``split`` and ``metric``.

        With ``metric=None`` each task's primary metric is kept (tasks the catalog does not
        know, such as a benchmark table's, report one metric and are kept whole).  This
        study's own records are left out: the sampler reads its trials directly.
        """
        from taskgraph.tasks import get_task

        records = [
            r
            for r in self.repository.score_records(split=split, metric=metric)
            if r.study != self.study
        ]
        if metric is not None:
            return records
        primary: dict[str, str | None] = {}
        kept = []
        for record in records:
            if record.task not in primary:
                try:
                    primary[record.task] = get_task(
                        record.task, extra=self.task_defs
                    ).primary_metric
                except UnknownNameError:
                    primary[record.task] = None
            if primary[record.task] in (None, record.metric):
                kept.append(record)
        return kept


@functools.cache
def code_version() -> str:
    """Return ``taskgraph <version>`` plus the git commit of the checkout when there is one."""
    root = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return f"taskgraph {__version__}" + (f" ({commit})" if commit else "")
