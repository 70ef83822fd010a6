"""Task-metadata files and long tables that cannot be read are one error naming the file.

``--task-metadata`` had no regular-file check (``--table`` has one): a FIFO waited for a
writer and ``/dev/zero`` was read until memory ran out; a regular file the system cannot read
(``/proc/self/mem``: EIO) was a traceback from both readers (now one line, exit 1, as for a
permission); a metadata file whose tasks hold
no ``texts`` or ``features`` (a misspelled key) was taken, and ``bench`` said its metadata
described no task.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from taskgraph.affinity.metadata import load_task_metadata
from taskgraph.cli.app import app
from taskgraph.errors import ConfigError
from taskgraph.testing import write_pair_table

UNREADABLE = Path("/proc/self/mem")  # a regular file whose read fails with EIO (Linux)


def _load_in_a_process(path: Path) -> subprocess.CompletedProcess[str]:
    """Load the metadata file ``path`` in a child process that is given 60 s: a regression
    would wait on a FIFO or read /dev/zero until memory ran out, not fail."""
    code = (
        "import sys\n"
        "from taskgraph.affinity.metadata import load_task_metadata\n"
        "from taskgraph.errors import ConfigError\n"
        "try:\n"
        "    load_task_metadata(sys.argv[1])\n"
        "except ConfigError as error:\n"
        "    print(error)\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=60
    )


def test_a_metadata_path_that_is_no_regular_file_is_refused(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for path in (fifo, Path("/dev/zero"), tmp_path):
        done = _load_in_a_process(path)
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith(f"task metadata {path}: not a regular file"), done.stdout


def test_an_unreadable_regular_file_is_one_line_and_exit_1(tmp_path: Path) -> None:
    # EIO, the environment's fault like a permission: a traceback before.
    table = write_pair_table(tmp_path / "t.csv", seed=0)
    runs = {
        "table": ["affinity", "top", "--target", "t0", "--table", str(UNREADABLE)],
        "metadata": ["bench", "--table", str(table), "--task-metadata", str(UNREADABLE)],
    }
    for args in runs.values():
        done = CliRunner().invoke(app, args)
        assert done.exit_code == 1, done.output
        assert done.stderr == "error: /proc/self/mem: input/output error\n", done.stderr


def test_metadata_whose_tasks_hold_nothing_known_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "meta.json"
    path.write_text(json.dumps({"tasks": {"a": {"textz": ["x"]}, "b": {"categories": []}}}))
    with pytest.raises(ConfigError) as error:
        load_task_metadata(path)
    assert str(error.value) == (
        f"task metadata {path}: no task has 'texts' or 'features' (the tasks' keys: "
        "categories, textz)"
    )
