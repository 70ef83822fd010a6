"""The task-metadata cache (`tasks-cache.json`): merged writes, and no stray file on failure."""

from __future__ import annotations

import errno
import json
import multiprocessing
import threading
from pathlib import Path
from typing import Any

import pytest

from taskgraph.tasks import cache as cache_module
from taskgraph.tasks.cache import TaskCache


def _cache_files(directory: Path) -> list[str]:
    """Return the files in ``directory`` but the write lock's (which stays, by design)."""
    return sorted(p.name for p in directory.iterdir() if p.name != "tasks-cache.json.lock")


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
    assert _cache_files(tmp_path) == ["tasks-cache.json"]
    monkeypatch.undo()
    assert json.loads(path.read_text())["sections"] == {"labels": {"a": [1]}}


def test_a_concurrent_put_keeps_the_other_writers_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Writer A (`first`) has read the file to merge into it when writer B (`second`) puts its
    # entry; A then writes.  Unlocked, A's file (read before B wrote) replaced B's: "b" lost.
    path = tmp_path / "tasks-cache.json"
    first, second = TaskCache(path=path), TaskCache(path=path)
    # Both loaded first: each put's only read is the one it merges into.
    first.get("labels", "a")
    second.get("labels", "b")
    first_has_read, second_is_done = threading.Event(), threading.Event()
    read = TaskCache._read

    def read_then_wait(self: TaskCache) -> dict[str, dict[str, Any]]:
        sections = read(self)
        if self is first:
            first_has_read.set()
            second_is_done.wait(timeout=0.5)  # locked: B waits for A, so A goes on after 0.5 s
        return sections

    monkeypatch.setattr(TaskCache, "_read", read_then_wait)

    def put_second() -> None:
        first_has_read.wait(timeout=5)
        second.put("labels", "b", [2])
        second_is_done.set()

    other = threading.Thread(target=put_second)
    other.start()
    first.put("labels", "a", [1])
    other.join(timeout=5)
    assert not other.is_alive()
    assert json.loads(path.read_text())["sections"] == {"labels": {"a": [1], "b": [2]}}


def _put_many(path: str, writer: int, start: Any, count: int) -> None:
    start.wait()
    cache = TaskCache(path=Path(path))
    for index in range(count):
        cache.put("labels", f"{writer}-{index}", [writer, index])


def test_processes_putting_at_once_lose_no_entry(tmp_path: Path) -> None:
    # Not deterministic unlocked (most runs lost a few of the 120 entries), whole when locked.
    path = tmp_path / "tasks-cache.json"
    context = multiprocessing.get_context("fork")
    start = context.Event()
    writers = [
        context.Process(target=_put_many, args=(str(path), writer, start, 30))
        for writer in range(4)
    ]
    for process in writers:
        process.start()
    start.set()
    for process in writers:
        process.join(timeout=60)
        assert process.exitcode == 0
    labels = json.loads(path.read_text())["sections"]["labels"]
    assert labels == {f"{w}-{i}": [w, i] for w in range(4) for i in range(30)}
    assert _cache_files(tmp_path) == ["tasks-cache.json"]
