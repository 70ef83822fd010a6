"""The task-metadata cache (`tasks-cache.json`): merged writes, and no stray file on failure."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest

from taskgraph.tasks import cache as cache_module
from taskgraph.tasks.cache import TaskCache


def test_a_put_merges_what_another_process_wrote(tmp_path: Path) -> None:
    path = tmp_path / "tasks-cache.json"
    first, second = TaskCache(path=path), TaskCache(path=path)
    first.put("labels", "a", [1])
    second.put("labels", "b", [2])  # loaded nothing before `first` wrote; must keep "a"
    assert TaskCache(path=path).get("labels", "a") == [1]
    assert TaskCache(path=path).get("labels", "b") == [2]


def test_a_failed_write_leaves_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "tasks-cache.json"
    TaskCache(path=path).put("labels", "a", [1])

    def full_disk(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(cache_module.json, "dump", full_disk)
    cache = TaskCache(path=path)
    cache.put("labels", "b", [2])  # a cache that cannot be written only costs time
    assert cache.get("labels", "b") == [2]  # still served from memory
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tasks-cache.json"]
    monkeypatch.undo()
    assert json.loads(path.read_text())["sections"] == {"labels": {"a": [1]}}
