"""A small JSON cache for file hashes, example counts and label sets.

Counting every split of every dataset means parsing ~100 MB of text; the answer only changes
when a file changes, so it is kept in ``$TASKGRAPH_CACHE/tasks-cache.json`` (default
``$XDG_CACHE_HOME/taskgraph`` or ``~/.cache/taskgraph``).  File hashes are keyed by path, size
and modification time; counts and label sets by the file's sha256 and the reading options, so
an edited file is re-read.  The cache is an optimisation only: if it cannot be written, work
goes on uncached; a corrupt cache file is ignored and replaced.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["CACHE_ENV", "TaskCache", "cache_dir", "default_cache"]

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
    """Sections of key -> JSON value, loaded once and written back atomically on each put."""

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
        merged = self._read()
        for name, entries in self._load().items():
            merged.setdefault(name, {}).update(entries)
        self._data = merged
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".tasks-cache.")
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                json.dump({"version": _VERSION, "sections": merged}, out)
            os.replace(tmp, self.path)
        except OSError:
            pass  # a read-only cache only costs time


_CACHES: dict[Path, TaskCache] = {}


def default_cache() -> TaskCache:
    """Return the process-wide cache for the current :func:`cache_dir`."""
    path = cache_dir() / _FILE_NAME
    if path not in _CACHES:
        _CACHES[path] = TaskCache(path=path)
    return _CACHES[path]
