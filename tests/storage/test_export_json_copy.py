"""A run's dict and its JSON export: what ``dataclasses.asdict`` gave, without its deepcopy.

``RunRecord.to_dict`` deep-copied every leaf of the run (most of ``records export -f json``'s
time on 10^4 runs); it now copies the containers only, and the export encodes one run at a
time.  The dict and the exported bytes stay what they were.
"""

from __future__ import annotations

import copy
import io
import json
import math
from dataclasses import asdict
from datetime import datetime, timezone
from typing import Any

import pytest

from taskgraph.storage.export import export_runs
from taskgraph.storage.records import RunRecord
from taskgraph.trial import LookaheadMatrix
from taskgraph.vocabulary import json_safe

WHEN = datetime(2026, 5, 1, 12, 30, tzinfo=timezone.utc)


def _run(run_id: int, **changes: Any) -> RunRecord:
    values: dict[str, Any] = {
        "id": run_id,
        "study": "s",
        "trial_number": run_id,
        "target": "ner",
        "task_set": ("ner", "pos"),
        "seed": 0,
        "status": "complete",
        "failure_reason": None,
        "objective": 0.5,
        "cost_seconds": 1.5,
        "cost_examples": 10,
        "cost_tokens": 1280,
        "device": "cpu",
        "target_steps": 3,
        "total_steps": 6,
        "started_at": WHEN,
        "finished_at": None,
        "created_at": WHEN,
        "code_version": "v1",
        "host": "hôte\nzwei",  # a newline in a string, and a non-ASCII character
        "model_config_hash": "abc",
        "family": "fam",
        "transfer_mode": "joint",
        "config": {"target": "ner", "encoder": "bert", "nested": {"a": [1, 2.5, None]}},
        "scores": {"ner": {"test": {"f1": 0.5, "loss": math.nan}}, "pos": {"dev": {"acc": 1.0}}},
        "task_fingerprints": {"ner": "f" * 64},
        "intermediate": [(1, 0.25), (2, math.inf)],
        "lookahead": LookaheadMatrix(
            tasks=["ner", "pos"], values=[[0.0, math.nan], [0.1, 0.2]], n_probes=2
        ),
    }
    values.update(changes)
    return RunRecord(**values)


def _old_to_dict(run: RunRecord) -> dict[str, Any]:
    """What ``to_dict`` returned through ``dataclasses.asdict``."""
    data = asdict(run)
    data["task_set"] = list(run.task_set)
    data["task_set_key"] = run.task_set_key
    for key in ("started_at", "finished_at", "created_at"):
        value = data[key]
        data[key] = value.isoformat() if value is not None else None
    return data


def test_to_dict_is_asdicts_copy_without_deepcopy(monkeypatch: pytest.MonkeyPatch) -> None:
    runs = [_run(1), _run(2, lookahead=None, intermediate=[], scores={})]
    expected = [_old_to_dict(run) for run in runs]

    def no_deepcopy(*args: object, **kwargs: object) -> None:
        raise AssertionError("to_dict deep-copied a value")

    monkeypatch.setattr(copy, "deepcopy", no_deepcopy)
    got = [run.to_dict() for run in runs]
    monkeypatch.undo()
    # Same keys in the same order, same values (NaN compared by its repr), same types:
    # tuples stay tuples, the lookahead matrix is a dict.
    assert [list(d) for d in got] == [list(d) for d in expected]
    assert repr(got) == repr(expected)
    assert type(got[0]["intermediate"][0]) is tuple
    assert got[0]["lookahead"] == {
        "tasks": ["ner", "pos"], "values": [[0.0, got[0]["lookahead"]["values"][0][1]], [0.1, 0.2]],
        "n_probes": 2, "stderr": None,
    }  # fmt: skip
    # A copy: changing the dict leaves the (frozen) run as it was.
    got[0]["config"]["nested"]["a"].append(3)
    got[0]["scores"]["ner"]["test"]["f1"] = 0.0
    assert runs[0].config["nested"]["a"] == [1, 2.5, None]
    assert runs[0].scores["ner"]["test"]["f1"] == 0.5


@pytest.mark.parametrize("count", [0, 1, 3])
def test_json_export_bytes_are_the_indented_list_of_run_objects(count: int) -> None:
    runs = [_run(i + 1) for i in range(count)]
    stream = io.StringIO()
    assert export_runs(runs, stream, format="json") == count
    objects = [
        json_safe({**_old_to_dict(run), "measured_in": {
            task: {"task_set": run.task_set_key, "family": run.family} for task in run.scores
        }, "pretraining": "none"})
        for run in runs
    ]  # fmt: skip
    # What `json.dump(objects, indent=2)` wrote before: pretty, strict JSON, one final newline.
    expected = json.dumps(objects, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    assert stream.getvalue() == expected
    assert json.loads(stream.getvalue()) == json.loads(expected)
    if count:
        assert '"host": "hôte\\nzwei"' in stream.getvalue()
        assert json.loads(stream.getvalue())[0]["scores"]["ner"]["test"]["loss"] is None
