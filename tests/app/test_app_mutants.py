"""Behaviours of the app layer that an audit's mutants showed no test pinned.

Each test names what it pins: the options ``fit_records`` hands setfn, ``bench``'s task-metadata
notes, the grouping's default network size, ``affinity top`` with another task's zero baseline,
the records' split and metric checks, ``number``'s finite check and a same-name runner override.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import taskgraph.app.affinity.fitting as fitting
import taskgraph.app.affinity.records as app_records
import taskgraph.search.bench_report as bench_report
from taskgraph.affinity.metadata import TaskMetadata
from taskgraph.affinity.records import ScoreRecord
from taskgraph.app.affinity.grouping import grouping_report
from taskgraph.app.affinity.recommendations import (
    _records_on_unbaselined_data,
    recommendation_report,
)
from taskgraph.app.affinity.records import _target_objectives_differ, load_records
from taskgraph.app.arguments import number
from taskgraph.app.bench import _coverage_notes, bench
from taskgraph.app.studies.specs import _with_runner
from taskgraph.errors import ConfigError
from taskgraph.spec import spec_from_dict
from taskgraph.storage import open_repository
from taskgraph.testing import write_long_rows

# Three tasks, each measured alone and with each other task; no three-task set.
THREE = [
    "a,a,val,0.5,1",
    "a,a+b,val,0.6,1",
    "a,a+c,val,0.45,1",
    "b,b,val,0.7,1",
    "b,a+b,val,0.72,1",
    "b,b+c,val,0.65,1",
    "c,c,val,0.4,1",
    "c,a+c,val,0.42,1",
    "c,b+c,val,0.5,1",
]

RECORDS = [
    ScoreRecord("a", frozenset({"a"}), 0.5),
    ScoreRecord("a", frozenset({"a", "b"}), 0.6),
    ScoreRecord("b", frozenset({"b"}), 0.7),
    ScoreRecord("b", frozenset({"a", "b"}), 0.72),
]


class _Reached(Exception):
    """Raised by the spy once it has seen the estimator's options."""


def _spy_options(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    def spy(method: str, **options: Any) -> Any:
        seen.update(options, method=method)
        raise _Reached

    monkeypatch.setattr(fitting, "make_estimator", spy)
    return seen


def test_setfn_gets_the_text_embeddings(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _spy_options(monkeypatch)
    embeddings = {"a": np.ones(4), "b": np.zeros(4)}
    with pytest.raises(_Reached):
        fitting.fit_records("setfn", RECORDS, lookahead=[], embeddings=embeddings)
    assert seen["method"] == "setfn" and seen["task_embeddings"] is embeddings
    assert "lookahead" not in seen


def test_setfn_gets_the_stored_lookahead_matrices(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _spy_options(monkeypatch)
    matrices = [object()]
    with pytest.raises(_Reached):
        fitting.fit_records("setfn", RECORDS, lookahead=matrices, embeddings={})
    assert seen["method"] == "setfn" and seen["lookahead"] is matrices
    assert "task_embeddings" not in seen


class _Report:
    def __init__(self) -> None:
        self.notes: list[str] = []

    def as_dict(self) -> dict[str, Any]:
        return {"notes": list(self.notes)}


def test_bench_metadata_covering_none_of_the_tables_tasks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, Any] = {}

    def run_bench(data: Any, **options: Any) -> _Report:
        seen.update(options)
        return _Report()

    monkeypatch.setattr(bench_report, "run_bench", run_bench)
    metadata = tmp_path / "md.json"
    metadata.write_text(
        '{"tasks": {"x": {"features": {"size": 1.0}}, "y": {"features": {"size": 2.0}}}}'
    )
    out = bench(write_long_rows(tmp_path, THREE), method="sourcerank", task_metadata=metadata)
    # Nothing of x and y reaches the estimator, and the note says why.
    assert seen["estimator_options"] == {}
    assert any(
        "has no text or feature for any of the table's 3 tasks" in note for note in out["notes"]
    ), out["notes"]


def test_a_features_only_file_gives_no_text_coverage_note() -> None:
    metadata = TaskMetadata(texts={}, features={"a": {"size": 1.0}, "b": {"size": 2.0}})
    assert _coverage_notes("sourcerank", metadata, ["a", "b"]) == []


def test_ten_tasks_default_to_one_network_of_all(tmp_path: Path) -> None:
    tasks = [f"t{i}" for i in range(10)]
    rows = [f"{t},{t},val,{0.5 + i / 100},1" for i, t in enumerate(tasks)]
    for i in range(9):
        pair = f"{tasks[i]}+{tasks[i + 1]}"
        value = 0.52 + i / 100
        rows += [f"{tasks[i]},{pair},val,{value},1", f"{tasks[i + 1]},{pair},val,{value},1"]
    report = grouping_report(1, table=write_long_rows(tmp_path, rows))
    assert [sorted(n) for n in report.grouping.networks] == [tasks]


def test_a_network_with_no_measured_member_is_not_partly_measured(tmp_path: Path) -> None:
    details = grouping_report(1, table=write_long_rows(tmp_path, THREE)).to_dict()[
        "network_details"
    ]
    assert details == [
        {
            "network": ["a", "b", "c"],
            "serves": ["a", "b", "c"],
            "measured": False,
            "partly": False,
            "predicted": ["a", "b", "c"],
        }
    ]


def test_top_for_a_target_when_another_tasks_baseline_is_zero(tmp_path: Path) -> None:
    rows = [
        "a,a,val,0.5,1",
        "a,a+b,val,0.6,1",
        "a,a+c,val,0.55,1",
        "b,b,val,0.0,1",
        "b,a+b,val,0.3,1",
        "c,c,val,0.4,1",
    ]
    report = recommendation_report("c", table=write_long_rows(tmp_path, rows))
    assert report.recommendations
    zero = [note for note in report.notes if "single-task score of 0" in note]
    assert len(zero) == 1 and zero[0].startswith("'b' has") and "'c'" not in zero[0]


def test_records_on_another_version_of_the_targets_data() -> None:
    records = [
        ScoreRecord("a", frozenset({"a"}), 0.5, family="f"),
        ScoreRecord("a", frozenset({"a", "b"}), 0.6, family="f/data:abc123"),
    ]
    assert _records_on_unbaselined_data(records, "a") == 1
    # Its own single-task record on that version baselines it.
    again = [*records, ScoreRecord("a", frozenset({"a"}), 0.5, family="f/data:abc123")]
    assert _records_on_unbaselined_data(again, "a") == 0


class _Database:
    def __init__(self, records: Sequence[ScoreRecord], specs: dict[str, Any] | None = None) -> None:
        self.records = list(records)
        self.specs = specs or {}

    def score_records(
        self, split: str | None = None, metric: str | None = None
    ) -> list[ScoreRecord]:
        return [
            r
            for r in self.records
            if (split is None or r.split == split) and (metric is None or r.metric == metric)
        ]

    def study_specs(self) -> dict[str, Any]:
        return self.specs

    def lookahead_matrices(self) -> list[Any]:
        return []


def _serve(monkeypatch: pytest.MonkeyPatch, database: _Database) -> None:
    @contextmanager
    def records_database(storage: str | None, repository: Any = None) -> Iterator[_Database]:
        yield database

    monkeypatch.setattr(app_records, "_records_database", records_database)


def test_records_on_dev_and_val_read_dev() -> None:
    records = [
        ScoreRecord("a", frozenset({"a"}), 0.5, split=split, metric="acc")
        for split in ("val", "dev")
    ]
    chosen = load_records(metric="all", repository=_Database(records))  # type: ignore[arg-type]
    assert {r.split for r in chosen} == {"dev"}


def test_two_studies_reading_the_target_in_different_metrics(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    records = [
        ScoreRecord("a", frozenset({"a"}), 0.5, metric="f1", study="s1"),
        ScoreRecord("a", frozenset({"a"}), 0.5, metric="acc", study="s2"),
    ]
    specs = {"s1": {"objective": {"metric": "f1"}}, "s2": {"objective": {"metric": "acc"}}}
    _serve(monkeypatch, _Database(records, specs))
    with pytest.raises(ConfigError, match="'s1' optimises f1; 's2' optimises acc"):
        _target_objectives_differ("a", storage=None, split=None)


def test_top_on_an_empty_database_has_no_records_to_fit(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'records.db'}"
    with open_repository(url):
        pass
    with pytest.raises(ConfigError, match="no score records to fit on"):
        recommendation_report("a", storage=url)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_number_refuses_what_is_not_finite(value: float) -> None:
    with pytest.raises(ConfigError, match="`budget` must be a finite number"):
        number(value, "budget")


def test_a_same_name_runner_override_wins_over_the_files_settings() -> None:
    spec = spec_from_dict(
        {
            "name": "x",
            "target": "synth_target",
            "candidates": ["synth_related"],
            "runner": {"name": "local", "threads": 1},
        },
        source="test",
    )
    runner = _with_runner(spec, {"name": "local", "threads": 2}, source="test")
    dumped = runner.model_dump(mode="json")["runner"]
    assert dumped["name"] == "local" and dumped["threads"] == 2
