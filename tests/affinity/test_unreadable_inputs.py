"""Task-metadata files and long tables that cannot be read are one error naming the file.

``--task-metadata`` had no regular-file check (``--table`` has one): a FIFO waited for a
writer and ``/dev/zero`` was read until memory ran out; a regular file the system cannot read
(``/proc/self/mem``: EIO) was a traceback from both readers; a metadata file whose tasks hold
no ``texts`` or ``features`` (a misspelled key) was taken, and ``bench`` said its metadata
described no task.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from taskgraph.affinity.longtable import read_long_csv
from taskgraph.affinity.metadata import load_task_metadata
from taskgraph.errors import ConfigError, DataNotFoundError

UNREADABLE = Path("/proc/self/mem")  # a regular file whose read fails with EIO


def test_a_metadata_path_that_is_no_regular_file_is_refused(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for path in (fifo, Path("/dev/zero"), tmp_path):
        with pytest.raises(ConfigError, match="not a regular file") as error:
            load_task_metadata(path)
        assert str(error.value).startswith(f"task metadata {path}: ")


@pytest.mark.skipif(not UNREADABLE.is_file(), reason="needs Linux's /proc")
def test_an_unreadable_regular_file_is_one_error() -> None:
    with pytest.raises(ConfigError, match=r"task metadata /proc/self/mem: cannot read it: "):
        load_task_metadata(UNREADABLE)
    with pytest.raises(DataNotFoundError, match=r"table file cannot be read: /proc/self/mem: "):
        read_long_csv(UNREADABLE)


def test_metadata_whose_tasks_hold_nothing_known_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "meta.json"
    path.write_text(json.dumps({"tasks": {"a": {"textz": ["x"]}, "b": {"categories": []}}}))
    with pytest.raises(ConfigError) as error:
        load_task_metadata(path)
    assert str(error.value) == (
        f"task metadata {path}: no task has 'texts' or 'features' (the tasks' keys: "
        "categories, textz)"
    )
