"""Exports and record filters: what a mutation audit of ``storage/export.py`` and
``storage/filters.py`` found no test holding.

A failed run's one csv row keeps its target's data version; a failure reason with commas,
quotes and a newline survives a csv round trip.  ``export_runs`` on its own (no CLI check
before it) writes a file named like a lone SQLite companion (``-wal``), gives a new file the
umask's mode, leaves no temporary file when the rename fails and refuses a FIFO.  A set of
task names is a ``task_set`` filter.
"""

from __future__ import annotations

import csv
import errno
import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from taskgraph.errors import ConfigError, StorageError
from taskgraph.storage import open_repository
from taskgraph.storage.export import export_runs
from taskgraph.trial import Cost, TrialConfig, TrialResult

#: a reason a spreadsheet splits into columns unless the csv quotes it
AWKWARD_REASON = 'loss, "nan" at step 3\nstopped'
NER_PRINT = "ab" * 32


@pytest.fixture
def failed_run_csv(sqlite_url: str, tmp_path: Path) -> list[dict[str, str]]:
    """Return the csv rows of one failed run (no scores) with a recorded target fingerprint."""
    with open_repository(sqlite_url) as repo:
        repo.add_run_result(
            study="s",
            trial_number=0,
            config=TrialConfig(target="ner", auxiliaries=("pos",)),
            result=TrialResult.failed(AWKWARD_REASON, cost=Cost(seconds=1.0)),
            task_fingerprints={"ner": NER_PRINT},
        )
        assert repo.export(tmp_path / "runs.csv", format="csv") == 1
    with open(tmp_path / "runs.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_a_failed_runs_row_has_its_targets_data_version(
    failed_run_csv: list[dict[str, str]],
) -> None:
    # `--family HASH/data:VERSION` picks a run without scores by its target's data version:
    # its row must show the version that picks it.
    assert [(row["task"], row["data_version"]) for row in failed_run_csv] == [("", NER_PRINT[:12])]


def test_a_failure_reason_survives_the_csv_round_trip(
    failed_run_csv: list[dict[str, str]],
) -> None:
    assert [(row["failure_reason"], row["status"]) for row in failed_run_csv] == [
        (AWKWARD_REASON, "failed")
    ]


def test_a_file_named_like_a_lone_companion_is_written(tmp_path: Path) -> None:
    # "-wal" is the whole name: there is no database "" beside it to protect.
    destination = tmp_path / "-wal"
    destination.write_text("old")
    assert export_runs([], destination, format="csv") == 0
    assert destination.read_text().startswith("run_id,study,")


def test_a_new_export_file_gets_the_umasks_mode(tmp_path: Path) -> None:
    # mkstemp makes 0600 files: the export sets the mode `open()` would have given.
    before = os.umask(0o027)
    try:
        export_runs([], tmp_path / "runs.csv", format="csv")
    finally:
        os.umask(before)
    assert stat.S_IMODE((tmp_path / "runs.csv").stat().st_mode) == 0o640


def test_a_failed_write_leaves_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(source: str, destination: object) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(StorageError, match="cross-device"):
        export_runs([], tmp_path / "runs.csv", format="csv")
    assert list(tmp_path.iterdir()) == []


def test_a_fifo_is_refused_by_the_python_api_and_kept(tmp_path: Path) -> None:
    # The CLI checks `--output` first; `export_runs` must refuse on its own, not replace it.
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    with pytest.raises(ConfigError, match="not a regular file"):
        export_runs([], pipe, format="json")
    assert stat.S_ISFIFO(pipe.stat().st_mode)


def test_a_set_of_task_names_picks_the_runs_of_that_task_set(
    sqlite_url: str, make_trial: Callable[..., tuple[TrialConfig, TrialResult]]
) -> None:
    # A task set has no order: a set of names is as good a filter as a list or 'ner+pos'.
    with open_repository(sqlite_url) as repo:
        for number, auxiliaries in enumerate([("pos",), ()]):
            config, result = make_trial("ner", auxiliaries)
            repo.add_run_result(study="s", trial_number=number, config=config, result=result)
        picked = repo.runs(task_set=frozenset({"pos", "ner"}))
        assert [run.task_set_key for run in picked] == ["ner+pos"]
        assert [run.trial_number for run in repo.runs(task_set={"ner"})] == [1]
