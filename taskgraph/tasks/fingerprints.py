"""Dataset fingerprints for provenance: sha256 of each file and of a task's whole definition."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from taskgraph.tasks.cache import default_cache

__all__ = ["file_sha256"]

_CHUNK = 1 << 20


def file_sha256(path: Path) -> str:
    """Return the hex sha256 of ``path``, streamed, cached by path, inode, size and times.

    The change time is in the key because the modification time can be set back (``cp -p``,
    ``rsync -t``, ``tar``) after the contents changed; setting it changes the change time.
    """
    stat = path.stat()
    key = json.dumps(
        [str(path.resolve()), stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns]
    )
    cache = default_cache()
    cached = cache.get("sha256", key)
    if isinstance(cached, str):
        return cached
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    value = digest.hexdigest()
    cache.put("sha256", key, value)
    return value
