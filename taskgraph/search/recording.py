"""Writing a study's trials to the records database, and reading what earlier studies left.

Each seed's run of a trial becomes one record (:meth:`Repository.add_run_result`, one
transaction, idempotent on (study, trial, seed)) with its provenance: dataset fingerprints of
the tasks, the host and the code version.  The graph-guided sampler starts from the records of
*other* studies (:meth:`RecordWriter.prior_records`).
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
        self._metadata: dict[tuple[str, ...], tuple[dict[str, str], dict[str, str]]] = {}

    def write(self, number: int, outcome: TrialOutcome) -> None:
        """Write each seed's run of trial ``number`` (a retried write changes nothing).

        A complete run whose configuration, task set and seed the study already holds as a
        complete run of another trial is not written again: a sampler that proposes a set it
        has seen trains the same model on the same data, and counting it twice would make the
        gains look measured twice (their standard error collapses to 0).  A run held only on
        another version of the data (other dataset fingerprints) is written: a new measurement.
        """
        for run in outcome.runs:
            fingerprints, types = self.task_metadata(run.config.task_set)
            self.repository.add_run_result(
                study=self.study,
                trial_number=number,
                config=run.config,
                result=run.result,
                started_at=run.started_at,
                finished_at=run.finished_at,
                task_fingerprints=fingerprints,
                task_types=types,
                host=run.host or socket.gethostname(),
                code_version=code_version(),
                skip_repeat=True,
            )

    def task_metadata(self, task_set: tuple[str, ...]) -> tuple[dict[str, str], dict[str, str]]:
        """Return (fingerprint, type) per task of ``task_set`` that the catalog knows."""
        if task_set not in self._metadata:
            from taskgraph.tasks import get_task, task_fingerprint

            fingerprints: dict[str, str] = {}
            types: dict[str, str] = {}
            for name in task_set:
                try:
                    task = get_task(name, extra=self.task_defs)
                except UnknownNameError:
                    continue  # tabular benchmarks name tasks that are not in the catalog
                types[name] = task.type.value
                if self.source_fingerprints is not None:
                    continue  # not trained on its dataset: the source's fingerprint, below
                try:
                    fingerprints[name] = task_fingerprint(task, data_dir=self.data_dir)
                except TaskgraphError:
                    continue  # provenance is best effort; the run itself already happened
            if self.source_fingerprints is not None:
                fingerprints = {
                    name: self.source_fingerprints[name]
                    for name in task_set
                    if name in self.source_fingerprints
                }
            self._metadata[task_set] = (fingerprints, types)
        return self._metadata[task_set]

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
