"""What score records are read back with: their data versions, partner data and settings.

:func:`data_families` gives each data version of a task's scores in one model family its own
family (``<family>/data:<version>``), so no gain compares scores measured on different data;
:func:`partner_data` hashes the dataset fingerprints of a run's auxiliaries;
:class:`_AloneSettings` reads back each run's ``TrialConfig.alone_settings``;
:func:`_run_fingerprints` and :func:`_run_model_configs` load what these need for a batch of
runs; :func:`records_by_task_set` groups score records by task set.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, select

from taskgraph.storage.schema import ModelConfigRow, RunRow
from taskgraph.trial import TrialConfig, canonical_json
from taskgraph.vocabulary import task_set_key

if TYPE_CHECKING:
    from taskgraph.affinity.records import ScoreRecord

__all__ = ["data_families", "partner_data", "records_by_task_set"]


def records_by_task_set(records: Iterable[ScoreRecord]) -> dict[str, list[ScoreRecord]]:
    """Return ``records`` grouped by their canonical task set key."""
    grouped: dict[str, list[ScoreRecord]] = defaultdict(list)
    for record in records:
        grouped[task_set_key(record.task_set)].append(record)
    return dict(grouped)


#: run ids per ``IN (...)`` query (SQLite's default limit on bound parameters is far above)
_ID_CHUNK = 900


def partner_data(task: str, task_set: frozenset[str], fingerprints: Mapping[str, str]) -> str:
    """Return a short hash of the dataset fingerprints of ``task_set``'s members other than
    ``task`` (``ScoreRecord.partner_data``): two runs of one task set whose auxiliaries were
    trained on different data get different values.  Empty (not compared) unless every
    partner's was recorded: a run that recorded some partners' would otherwise read as trained
    on other data than one that recorded them all."""
    import hashlib
    import json

    others = [t for t in task_set if t != task]
    if not others or any(t not in fingerprints for t in others):
        return ""
    partners = sorted((t, fingerprints[t]) for t in others)
    return hashlib.sha256(json.dumps(partners).encode()).hexdigest()[:12]


def _run_fingerprints(connection: Connection, run_ids: set[int]) -> dict[int, dict[str, str]]:
    """Return run id -> {task: dataset fingerprint} of the runs ``run_ids`` (runs recorded
    without fingerprints, e.g. a published table's, are left out)."""
    found: dict[int, dict[str, str]] = {}
    ordered = sorted(run_ids)
    for start in range(0, len(ordered), _ID_CHUNK):
        chunk = ordered[start : start + _ID_CHUNK]
        query = select(RunRow.id, RunRow.task_fingerprints).where(RunRow.id.in_(chunk))
        for run_id, prints in connection.execute(query):
            if prints:
                found[int(run_id)] = {str(k): str(v) for k, v in dict(prints).items()}
    return found


#: a run as its alone settings need it: (model configuration id, target, task set id)
_RunShape = tuple[int, str, int]


def _run_model_configs(
    connection: Connection, run_ids: set[int]
) -> tuple[dict[int, _RunShape], dict[int, dict[str, Any]]]:
    """Return (run id -> (model configuration id, target, task set id), configuration id ->
    its stored JSON) of the runs ``run_ids``."""
    runs: dict[int, _RunShape] = {}
    ordered = sorted(run_ids)
    for start in range(0, len(ordered), _ID_CHUNK):
        chunk = ordered[start : start + _ID_CHUNK]
        query = select(RunRow.id, RunRow.model_config_id, RunRow.target, RunRow.task_set_id).where(
            RunRow.id.in_(chunk)
        )
        for run, config, target, task_set in connection.execute(query):
            runs[int(run)] = (int(config), str(target), int(task_set))
    configs: dict[int, dict[str, Any]] = {}
    wanted = sorted({shape[0] for shape in runs.values()})
    for start in range(0, len(wanted), _ID_CHUNK):
        chunk = wanted[start : start + _ID_CHUNK]
        stored = select(ModelConfigRow.id, ModelConfigRow.config).where(
            ModelConfigRow.id.in_(chunk)
        )
        for config_id, config in connection.execute(stored):
            configs[int(config_id)] = dict(config) if isinstance(config, Mapping) else {}
    return runs, configs


class _AloneSettings:
    """Each (run, task)'s ``TrialConfig.alone_settings`` as ScoreRecord.settings pairs, computed
    once per (model configuration, run target, run task set, task); () for a configuration
    that cannot be read back.

    The stored model configuration holds no task set: the run's target and task set are put
    back, so a sequential run's source reads its source phase's steps.
    """

    def __init__(
        self,
        configs: tuple[dict[int, _RunShape], dict[int, dict[str, Any]]],
        task_set_keys: Mapping[int, str],
    ) -> None:
        self._runs, self._configs = configs
        self._task_set_keys = task_set_keys
        self._cache: dict[tuple[_RunShape, str], tuple[tuple[str, str], ...]] = {}

    def of(self, run_id: int, task: str) -> tuple[tuple[str, str], ...]:
        shape = self._runs.get(run_id)
        if shape is None:
            return ()
        key = (shape, task)
        if key not in self._cache:
            config_id, target, task_set_id = shape
            members = self._task_set_keys.get(task_set_id, target).split("+")
            self._cache[key] = self._settings(
                self._configs.get(config_id, {}), target, members, task
            )
        return self._cache[key]

    @staticmethod
    def _settings(
        stored: Mapping[str, Any], target: str, members: list[str], task: str
    ) -> tuple[tuple[str, str], ...]:
        auxiliaries = tuple(t for t in members if t != target)
        try:
            config = TrialConfig.from_dict({**stored, "target": target, "auxiliaries": auxiliaries})
            settings = config.alone_settings(task)
        except (TypeError, ValueError, AttributeError):  # written by another taskgraph
            return ()
        return tuple((name, canonical_json(value)) for name, value in sorted(settings.items()))


def data_families(
    labels: Iterable[tuple[str, str, str | None]],
) -> dict[tuple[str, str, str | None], str]:
    """Return (task, family, fingerprint) -> the family a score record is read with.

    A gain compares a task's scores within one model family.  Where one task's scores in one
    family were measured on *different data* (two dataset fingerprints: a data file corrected
    or replaced, or another task defined under the same name), they are not one family: each
    data version gets its own, ``<family>/data:<first 12 of its fingerprint>`` (``data:?``
    for a run recorded without one), so that a gain never sets a score on one version of the
    data against a baseline on another.  Where every score of the task in the family has one
    fingerprint (or none), the family is unchanged, so nothing about a study whose data never
    changed depends on this.
    """
    seen: dict[tuple[str, str], set[str]] = defaultdict(set)
    keys = set()
    for task, family, fingerprint in labels:
        keys.add((task, family, fingerprint))
        if fingerprint:
            seen[(task, family)].add(fingerprint)
    return {
        (task, family, fingerprint): f"{family}/data:{(fingerprint or '?')[:12]}"
        for task, family, fingerprint in keys
        if len(seen[(task, family)]) > 1
    }
