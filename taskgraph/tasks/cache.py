"""Caches: a small JSON cache for file hashes, example counts and label sets, and a cache of
encoded features.

Counting every split of every dataset means parsing ~100 MB of text; the answer only changes
when a file changes, so it is kept in ``$TASKGRAPH_CACHE/tasks-cache.json`` (default
``$XDG_CACHE_HOME/taskgraph`` or ``~/.cache/taskgraph``).  File hashes are keyed by path, size
and modification time; counts and label sets by the file's sha256 and the reading options, so
an edited file is re-read.  The cache is an optimisation only: if it cannot be written, work
goes on uncached; a corrupt cache file is ignored and replaced.

:class:`FeatureCache` keeps what tokenizing a split produced (the model inputs, and the gold
examples of an evaluation split), keyed by everything that decides it (the dataset's
fingerprint, the split, the tokenizer's fingerprint, ``max_length``, the subset cap...): in
memory for the trials of one process and as one pickle file per key under
``$TASKGRAPH_CACHE/features/`` for later processes.  Files are written to a temporary name and
moved into place with :func:`os.replace`, so concurrent writers (parallel trials, Ray workers on
one host) never leave a half-written file, and a reader sees either no file or a whole one.
``TASKGRAPH_FEATURE_CACHE=off`` turns it off, ``=memory`` keeps it in memory only.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import tempfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

from taskgraph.locking import file_lock

__all__ = [
    "CACHE_ENV",
    "FEATURE_CACHE_ENV",
    "FeatureCache",
    "TaskCache",
    "cache_dir",
    "default_cache",
    "feature_cache",
]

CACHE_ENV = "TASKGRAPH_CACHE"
_FILE_NAME = "tasks-cache.json"
_VERSION = 1


def cache_dir() -> Path:
    """Return the cache directory: ``$TASKGRAPH_CACHE``, else the XDG cache dir + ``taskgraph``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "taskgraph"


class TaskCache:
    """Sections of key -> JSON value, loaded once and written back atomically on each put.

    A put reads the file, merges its entries in and replaces the file, all under an exclusive
    lock on ``<file>.lock`` (:func:`taskgraph.locking.file_lock`), so concurrent writers
    (parallel trials, Ray workers on one host) keep each other's entries.
    """

    def __init__(self, *, path: Path) -> None:
        self.path = path
        self._data: dict[str, dict[str, Any]] | None = None

    def _load(self) -> dict[str, dict[str, Any]]:
        if self._data is None:
            self._data = self._read()
        return self._data

    def _read(self) -> dict[str, dict[str, Any]]:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(raw, dict) or raw.get("version") != _VERSION:
            return {}
        sections = raw.get("sections", {})
        return sections if isinstance(sections, dict) else {}

    def get(self, section: str, key: str) -> Any:
        """Return the cached value or ``None``."""
        return self._load().get(section, {}).get(key)

    def put(self, section: str, key: str, value: Any) -> None:
        """Store ``value`` and write the file (merging what other processes wrote meanwhile)."""
        self._load().setdefault(section, {})[key] = value
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Read, merge and replace under the lock: a writer that read the file before
            # another's replace would otherwise write back a file without that entry.
            with file_lock(self.path.with_name(self.path.name + ".lock")):
                merged = self._read()
                for name, entries in self._load().items():
                    merged.setdefault(name, {}).update(entries)
                self._data = merged
                handle, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".tasks-cache.")
                try:
                    with os.fdopen(handle, "w", encoding="utf-8") as out:
                        json.dump({"version": _VERSION, "sections": merged}, out)
                    os.replace(tmp, self.path)
                except BaseException:
                    Path(tmp).unlink(missing_ok=True)  # a full disk leaves no stray file
                    raise
        except OSError:
            pass  # a read-only cache only costs time (the entry is still served from memory)


_CACHES: dict[Path, TaskCache] = {}


def default_cache() -> TaskCache:
    """Return the process-wide cache for the current :func:`cache_dir`."""
    path = cache_dir() / _FILE_NAME
    if path not in _CACHES:
        _CACHES[path] = TaskCache(path=path)
    return _CACHES[path]


FEATURE_CACHE_ENV = "TASKGRAPH_FEATURE_CACHE"
# bump when the encoding of a split changes (tasks/features/), so stale files are never read
# (2: classification counts truncation; a sentence-final word with no subword is [UNK])
_FEATURES_VERSION = 2


class FeatureCache:
    """Values by key: the ``memory_items`` most recent in memory, all of them on disk.

    ``directory=None`` keeps the memory level only; ``memory_items=0`` the disk level only.
    ``hits``, ``disk_hits`` and ``misses`` count lookups (for benchmarks and tests).
    """

    def __init__(self, *, directory: Path | None, memory_items: int = 64) -> None:
        self.directory = directory
        self.memory_items = memory_items
        self._memory: OrderedDict[str, Any] = OrderedDict()
        self.hits = self.disk_hits = self.misses = 0

    @staticmethod
    def key(payload: Any) -> str:
        """Return the key of a JSON-able ``payload`` (a sha256, with the cache's version)."""
        text = json.dumps([_FEATURES_VERSION, payload], sort_keys=True, default=str)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def _file(self, key: str) -> Path | None:
        return None if self.directory is None else self.directory / f"{key}.pkl"

    def get(self, key: str) -> Any:
        """Return the cached value or ``None`` (a missing, unreadable or corrupt file: ``None``)."""
        if key in self._memory:
            self._memory.move_to_end(key)
            self.hits += 1
            return self._memory[key]
        path = self._file(key)
        if path is not None:
            try:
                with path.open("rb") as handle:
                    value = pickle.load(handle)
            except Exception:  # missing or damaged: a miss, rewritten on put
                pass
            else:
                self.disk_hits += 1
                self._remember(key, value)
                return value
        self.misses += 1
        return None

    def put(self, key: str, value: Any, *, disk: bool = True) -> None:
        """Store ``value`` in memory and, unless ``disk`` is False, on disk (atomically; an
        unwritable disk is ignored)."""
        self._remember(key, value)
        path = self._file(key) if disk else None
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{key[:16]}.")
            try:
                with os.fdopen(handle, "wb") as out:
                    pickle.dump(value, out, protocol=pickle.HIGHEST_PROTOCOL)
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError:
            pass  # a read-only cache only costs time

    def items(self) -> list[tuple[str, Any]]:
        """Return the in-memory entries, least recently used first."""
        return list(self._memory.items())

    def forget(self, key: str) -> None:
        """Drop ``key`` from memory (its file, if any, stays)."""
        self._memory.pop(key, None)

    def clear_memory(self) -> None:
        """Forget the in-memory level (the next lookups read the disk)."""
        self._memory.clear()

    def _remember(self, key: str, value: Any) -> None:
        if self.memory_items <= 0:
            return
        self._memory[key] = value
        self._memory.move_to_end(key)
        while len(self._memory) > self.memory_items:
            self._memory.popitem(last=False)


_FEATURE_CACHES: dict[tuple[str, str], FeatureCache] = {}


def feature_cache() -> FeatureCache | None:
    """Return the process-wide feature cache, or ``None`` when ``TASKGRAPH_FEATURE_CACHE=off``."""
    mode = os.environ.get(FEATURE_CACHE_ENV, "").strip().lower()
    if mode in {"off", "0", "false", "no"}:
        return None
    directory = "" if mode == "memory" else str(cache_dir() / "features")
    key = (mode, directory)
    if key not in _FEATURE_CACHES:
        _FEATURE_CACHES[key] = FeatureCache(directory=Path(directory) if directory else None)
    return _FEATURE_CACHES[key]
