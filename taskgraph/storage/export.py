"""Export runs as CSV, JSON or Parquet (Parquet needs pyarrow, the ``parquet`` extra).

JSON keeps everything: one object per run, with its full config and nested scores.  CSV and
Parquet are flat: one row per score record (run columns repeated), so a spreadsheet or pandas
can pivot them; a run without scores (a failed trial) still gets one row with empty score
columns, so nothing is lost.  A file is written next to its destination and renamed into
place: an export that fails leaves no half-written file.

A score is labelled with its *own* task set and model family, which need not be its run's: a
sequential run's source tasks are scored in the source phase's task set, and an auxiliary's
family carries that task's example cap (``tg_scores.task_set_id`` and ``family``, what the
affinity code reads).  The flat rows' ``task_set`` and ``family`` are the score's, beside the
run's in ``run_task_set`` and ``run_family``; the JSON object of a run lists them per scored
task under ``measured_in``.  JSON has no NaN or infinity: those are written as ``null``.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import stat
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Literal

from taskgraph.errors import ConfigError, StorageError, option_name
from taskgraph.files import replace_file
from taskgraph.storage.records import RunRecord
from taskgraph.vocabulary import json_safe

__all__ = [
    "DATA_MARK",
    "EXPORT_FORMATS",
    "FLAT_COLUMNS",
    "SHOWN_CHARS",
    "ScoreLabels",
    "database_words",
    "export_runs",
    "family_parts",
    "flat_rows",
    "in_family",
    "run_object",
    "shown_family",
    "sqlite_database_of",
]

EXPORT_FORMATS = ("csv", "json", "parquet")

#: run id -> scored task -> (task set key, model family) its score rows were stored with
ScoreLabels = Mapping[int, Mapping[str, tuple[str, str]]]

FLAT_COLUMNS = (
    "run_id",
    "study",
    "trial_number",
    "target",
    "task_set",
    "seed",
    "status",
    "failure_reason",
    "objective",
    "model_config_hash",
    "family",
    "data_version",
    "run_task_set",
    "run_family",
    "transfer_mode",
    "encoder",
    "sharing",
    "pretraining",
    "selection_keep",
    "task",
    "split",
    "metric",
    "value",
    "cost_seconds",
    "cost_examples",
    "cost_tokens",
    "target_steps",
    "total_steps",
    "device",
    "started_at",
    "finished_at",
    "code_version",
    "host",
)


def flat_rows(
    runs: Sequence[RunRecord], labels: ScoreLabels | None = None
) -> Iterator[dict[str, Any]]:
    """Yield one flat row per score record (one row for a run without scores).

    ``task_set`` and ``family`` of a score's row are its own from ``labels`` (what
    ``Repository.export`` reads from ``tg_scores``), the run's where ``labels`` has none.
    """
    for run in runs:
        measured_in = (labels or {}).get(run.id, {})
        base = {
            "run_id": run.id,
            "study": run.study,
            "trial_number": run.trial_number,
            "target": run.target,
            "task_set": run.task_set_key,
            "seed": run.seed,
            "status": run.status,
            "failure_reason": run.failure_reason,
            "objective": run.objective,
            "model_config_hash": run.model_config_hash,
            "family": run.family,
            # The run's data version of the row's task (its target's for a run without
            # scores): the first characters of its dataset fingerprint, empty where the run
            # recorded none (what `--family HASH/data:VERSION` picks).
            "data_version": _data_version(run, run.target),
            "run_task_set": run.task_set_key,
            "run_family": run.family,
            "transfer_mode": run.transfer_mode,
            "encoder": run.config.get("encoder"),
            "sharing": run.config.get("sharing"),
            # Two of the settings that make families: the masked-LM stage's scheme ("none":
            # without one) and the kept share of data selection (empty: no selection).
            "pretraining": run.pretraining_scheme,
            "selection_keep": (run.data_selection or {}).get("keep"),
            "cost_seconds": run.cost_seconds,
            "cost_examples": run.cost_examples,
            "cost_tokens": run.cost_tokens,
            "target_steps": run.target_steps,
            "total_steps": run.total_steps,
            "device": run.device,
            "started_at": run.started_at.isoformat() if run.started_at else None,
            "finished_at": run.finished_at.isoformat() if run.finished_at else None,
            "code_version": run.code_version,
            "host": run.host,
        }
        scores = [
            (task, split, metric, value)
            for task, splits in run.scores.items()
            for split, metrics in splits.items()
            for metric, value in metrics.items()
        ]
        if not scores:
            yield {**base, "task": None, "split": None, "metric": None, "value": None}
        for task, split, metric, value in scores:
            task_set, family = measured_in.get(task, (run.task_set_key, run.family))
            yield {
                **base,
                "task_set": task_set,
                "family": family,
                "data_version": _data_version(run, task),
                "task": task,
                "split": split,
                "metric": metric,
                "value": value,
            }


#: the characters of a family hash or a dataset fingerprint that is shown (a data version, as
#: a family's ``/data:`` names it; a family in an error, as ``records list`` shortens hashes)
SHOWN_CHARS = 12


def _data_version(run: RunRecord, task: str) -> str | None:
    """Return the data version of ``task``'s scores in ``run`` (None: not recorded)."""
    fingerprint = run.task_fingerprints.get(task)
    return fingerprint[:SHOWN_CHARS] if fingerprint else None


#: what joins a model family and a data version (``<family>/data:<version>``), as
#: :func:`~taskgraph.storage.score_reads.data_families` names a family measured on several
DATA_MARK = "/data:"


def shown_family(name: str) -> str:
    """Return a model family as an error names it: its hash prefix, and its data version
    where it has one (``c2c3f805d173/data:95439abd3540``, a value ``--family`` takes)."""
    base, mark, version = name.partition(DATA_MARK)
    return base[:SHOWN_CHARS] + mark + version


def family_parts(family: str) -> tuple[str, str | None]:
    """Return a ``--family`` value's (hash prefix, data version prefix or None): a family
    hash or its prefix, optionally with ``/data:`` and a data version or its prefix
    (``c2c3f805d173/data:95439abd`` as the long format's error and the csv's ``family`` and
    ``data_version`` columns give them)."""
    base, mark, version = family.strip().lower().partition(DATA_MARK)
    return base, (version if mark else None)


def in_family(family: str, name: str, fingerprint: str | None) -> bool:
    """Return whether a score of model family ``name`` (with or without its ``/data:``
    version) measured on data ``fingerprint`` (None: not recorded, the version ``?``) is of
    the ``--family`` value ``family`` (:func:`family_parts`)."""
    base, version = family_parts(family)
    if not name.lower().partition(DATA_MARK)[0].startswith(base):
        return False
    return version is None or (fingerprint or "?").lower().startswith(version)


def run_object(run: RunRecord, labels: ScoreLabels | None = None) -> dict[str, Any]:
    """Return a run's JSON export object: ``RunRecord.to_dict()`` with ``measured_in`` and
    ``pretraining`` (the scheme, ``none`` without the stage).

    ``measured_in`` maps each scored task to the task set and family of its scores (the
    run's where ``labels`` has none); NaN and infinities become ``None``.
    """
    measured_in = (labels or {}).get(run.id, {})
    data = run.to_dict()
    labelled: dict[str, dict[str, str]] = {}
    for task in run.scores:
        task_set, family = measured_in.get(task, (run.task_set_key, run.family))
        labelled[task] = {"task_set": task_set, "family": family}
    data["measured_in"] = labelled
    # The scheme by name, as `records list --json` and the csv/parquet rows give it (the
    # configuration holds the whole stage).
    data["pretraining"] = run.pretraining_scheme
    return _finite(data)


def _finite(value: Any) -> Any:
    """Return :func:`~taskgraph.vocabulary.json_safe` of ``value`` (non-finite floats as
    ``None``, tuples as lists), quicker on the plain dicts, lists and scalars of a run's dict
    (``json_safe``'s ``Mapping`` checks were a large share of a JSON export's time)."""
    kind = type(value)
    if kind is float:
        return value if math.isfinite(value) else None
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if kind is dict:
        return {key: _finite(item) for key, item in value.items()}
    if kind is list or kind is tuple:
        return [_finite(item) for item in value]
    return json_safe(value)


def export_runs(
    runs: Sequence[RunRecord],
    path_or_stream: str | os.PathLike[str] | IO[Any],
    *,
    format: Literal["csv", "json", "parquet"],
    labels: ScoreLabels | None = None,
) -> int:
    """Write ``runs`` in ``format``; return the number of rows (JSON: runs) written.

    ``labels``: each score's own task set and family (:data:`ScoreLabels`); without them a
    score is labelled with its run's.
    """
    if format not in EXPORT_FORMATS:
        raise ConfigError(f"`format` must be one of {list(EXPORT_FORMATS)}, but got {format!r}")
    if format == "parquet":
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise ConfigError(
                "Parquet export needs pyarrow: pip install 'taskgraph[parquet]' "
                f"(or export {option_name('format', metavar='csv / json')})"
            ) from None
        rows = list(flat_rows(runs, labels))
        count = len(rows)
        # Parquet is typed: the times are timestamps (UTC), not the CSV's ISO text.
        for row in rows:
            for key in _TIMESTAMPS:
                if row[key] is not None:
                    row[key] = datetime.fromisoformat(row[key])
        table = (
            pa.Table.from_pylist(rows, schema=_arrow_schema(pa))
            if rows
            else _arrow_schema(pa).empty_table()
        )
        buffer = io.BytesIO()
        pq.write_table(table, buffer)
        _write(path_or_stream, buffer.getvalue())
        return count
    text = io.StringIO()
    if format == "json":
        # One run at a time (no list of every run's object), each encoded by `json.dumps` and
        # moved one level in: the bytes `json.dump(objects, indent=2)` writes, without its
        # per-token writes (a list of runs written indented, as `jq` would print it).
        text.write("[")
        separator = "\n  "
        for run in runs:
            encoded = json.dumps(
                run_object(run, labels), indent=2, ensure_ascii=False, allow_nan=False
            )
            # JSON strings escape a newline: every "\n" here is the layout's.
            text.write(separator + encoded.replace("\n", "\n  "))
            separator = ",\n  "
        text.write("\n]\n" if runs else "]\n")
        count = len(runs)
    else:
        writer = csv.DictWriter(text, fieldnames=list(FLAT_COLUMNS), lineterminator="\n")
        writer.writeheader()
        count = 0
        for row in flat_rows(runs, labels):
            writer.writerow(row)
            count += 1
    _write(path_or_stream, text.getvalue())
    return count


#: the first 16 bytes of every SQLite database file
_SQLITE_HEADER = b"SQLite format 3\x00"
#: files SQLite keeps beside a database ``x.db``: ``x.db-wal``, ``x.db-shm``, ``x.db-journal``
_SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")


def sqlite_database_of(path: str | os.PathLike[str]) -> Path | None:
    """Return the SQLite database that writing ``path`` would destroy, else ``None``.

    That is ``path`` itself when it is a SQLite database file (its first 16 bytes are
    ``SQLite format 3\\0``), or the database ``x.db`` of a companion ``x.db-wal``,
    ``x.db-shm`` or ``x.db-journal``.  A file that cannot be read is not one.
    """
    candidate = Path(path)
    for suffix in _SQLITE_COMPANIONS:
        if candidate.name.endswith(suffix) and len(candidate.name) > len(suffix):
            candidate = candidate.with_name(candidate.name[: -len(suffix)])
            break
    try:
        if not stat.S_ISREG(candidate.stat().st_mode):
            return None
        with candidate.open("rb") as handle:
            header = handle.read(len(_SQLITE_HEADER))
    except OSError:
        return None
    return candidate if header == _SQLITE_HEADER else None


#: the flat columns Parquet writes as timezone-aware timestamps
_TIMESTAMPS = ("started_at", "finished_at")


def _arrow_schema(pa: Any) -> Any:
    types = {
        **{name: pa.timestamp("us", tz="UTC") for name in _TIMESTAMPS},
        "run_id": pa.int64(),
        "trial_number": pa.int64(),
        "seed": pa.int64(),
        "objective": pa.float64(),
        "selection_keep": pa.float64(),
        "value": pa.float64(),
        "cost_seconds": pa.float64(),
        "cost_examples": pa.int64(),
        "cost_tokens": pa.int64(),
        "target_steps": pa.int64(),
        "total_steps": pa.int64(),
    }
    return pa.schema([(name, types.get(name, pa.string())) for name in FLAT_COLUMNS])


def _write(destination: str | os.PathLike[str] | IO[Any], payload: str | bytes) -> None:
    if not isinstance(destination, (str, os.PathLike)):
        stream = destination
        if isinstance(payload, bytes) and isinstance(stream, io.TextIOBase):
            raise ConfigError("Parquet is binary: give a file path or a binary stream")
        stream.write(payload)
        return
    # A symlink is written through (its target replaced, the link kept); anything but a
    # regular file (a device, a FIFO, a directory) is refused rather than replaced by one.
    path = Path(destination).expanduser().resolve()
    if not path.parent.is_dir():
        raise StorageError(
            f"cannot export to {str(path)!r}: directory {str(path.parent)!r} does not exist"
        )
    try:
        mode: int | None = path.stat().st_mode
    except FileNotFoundError:
        mode = None
    if mode is not None and not stat.S_ISREG(mode):
        raise ConfigError(f"cannot export to {str(path)!r}: it exists and is not a regular file")
    database = sqlite_database_of(path)
    if database is not None:
        raise ConfigError(f"cannot export to {str(path)!r}: {database_words(path, database)}")
    data = payload.encode("utf-8") if isinstance(payload, str) else payload
    try:
        replace_file(path, lambda temporary: temporary.write_bytes(data))
    except OSError as error:
        raise StorageError(f"cannot export to {str(path)!r}: {error.strerror or error}") from None


def database_words(path: Path, database: Path) -> str:
    """Say why ``path`` must not be written: it is ``database`` or one of its companions."""
    if path == database:
        return "it is a SQLite database: writing over it would destroy its records"
    return (
        f"it is the {path.name[len(database.name) :]} file of the SQLite database "
        f"{str(database)!r}: writing over it would corrupt that database"
    )
