"""How the app layer fits an affinity estimator and notes what it was fitted on: cases the
mutation audit of taskgraph/app/affinity/fitting.py found untested (textemb without gains, the
screens and text embeddings ``fit_estimator`` gathers, the wording of the baseline notes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import taskgraph.app.affinity.fitting as fitting
import taskgraph.models.task_embeddings as task_embeddings
from taskgraph.affinity.records import ScoreRecord
from taskgraph.app.affinity import (
    fit_estimator,
    fit_records,
    graph_report,
    grouping_report,
    recommendation_report,
)
from taskgraph.errors import ConfigError
from taskgraph.storage import open_repository
from taskgraph.testing import RunWriter, write_long_rows
from tests.cli.test_affinity_evidence_and_honesty import store_screen


def test_textemb_ranks_from_embeddings_when_no_gain_is_measured() -> None:
    # textemb needs no record of the target (its cold start): only baselines is no refusal.
    records = [ScoreRecord("a", frozenset({"a"}), 0.5), ScoreRecord("b", frozenset({"b"}), 0.6)]
    embeddings = {"a": np.array([1.0, 0.0]), "b": np.array([1.0, 1.0])}
    estimator = fit_records("textemb", records, lookahead=[], embeddings=embeddings)
    assert not estimator.table.gains
    assert estimator.predict("a", frozenset({"b"}))[0] == pytest.approx(2**-0.5)


def test_setfn_is_fitted_with_the_screens_of_the_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'screen.db'}"
    with open_repository(url) as repo:
        store_screen(repo)
    seen: dict[str, Any] = {}

    def spy(method: str, records: list[ScoreRecord], **options: Any) -> Any:
        seen.update(options, method=method)

    monkeypatch.setattr(fitting, "fit_records", spy)
    fit_estimator(method="setfn", storage=url)
    assert seen["method"] == "setfn"
    assert [m.tasks for m in seen["lookahead"]] == [["chunk", "ner", "pos"]]


def _embedded(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Return the task lists asked for text embeddings, which find no text."""
    asked: list[list[str]] = []

    def no_text(tasks: list[str], **_: Any) -> dict[str, np.ndarray]:
        asked.append(list(tasks))
        return {}

    monkeypatch.setattr(task_embeddings, "task_text_embeddings", no_text)
    return asked


def test_text_embeddings_are_asked_for_the_auxiliaries_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # b is never a target here, but setfn and textemb read its embedding as a source.
    asked = _embedded(monkeypatch)
    table = write_long_rows(tmp_path, ["a,a,val,0.5,1", "a,a+b,val,0.6,1"])
    with pytest.raises(ConfigError, match=r"of the records' 2 tasks \(a, b\)"):
        fit_estimator(table=table, text_embeddings=True)
    assert asked == [["a", "b"]]


def test_five_tasks_without_text_are_listed_without_an_ellipsis(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _embedded(monkeypatch)
    rows = ["a,a,val,0.5,1", *(f"a,a+{t},val,0.6,1" for t in "bcde")]
    with pytest.raises(ConfigError) as raised:
        fit_estimator(table=write_long_rows(tmp_path, rows), text_embeddings=True)
    assert "of the records' 5 tasks (a, b, c, d, e) is one" in str(raised.value)


ZERO_B = [
    "a,a,val,0.5,1",
    "a,a+b,val,0.6,1",
    "a,a+c,val,0.55,1",
    "b,b,val,0.0,1",
    "b,a+b,val,0.3,1",
    "c,c,val,0.4,1",
    "c,a+c,val,0.45,1",
]


def test_a_grouping_of_named_tasks_has_no_note_on_another_tasks_zero_baseline(
    tmp_path: Path,
) -> None:
    report = grouping_report(1, tasks=["a", "c"], table=write_long_rows(tmp_path, ZERO_B))
    assert not any("single-task score of 0" in n for n in report.notes), report.notes
    every = grouping_report(3, table=write_long_rows(tmp_path, ZERO_B))
    assert any(n.startswith("'b' has a single-task score of 0") for n in every.notes)


def _other_settings(
    url: str,
    targets: tuple[str, ...],
    *,
    families: tuple[str, ...] = ("minilm",),
    alike: tuple[str, ...] = (),
) -> None:
    """Write each target alone at one learning rate and with the next target at another, in
    each family; the first target also runs with each task of ``alike`` at its baseline's."""
    with open_repository(url) as repo:
        runs = RunWriter(repo)
        for encoder in families:
            for i, target in enumerate(targets):
                other = targets[(i + 1) % len(targets)]
                runs.add(target, (), {target: 0.5}, encoder=encoder, learning_rate=1e-4)
                runs.add(target, (other,), {target: 0.6}, encoder=encoder, learning_rate=1e-3)
        for task in alike:
            runs.add(targets[0], (task,), {targets[0]: 0.55}, learning_rate=1e-4)


def _settings_note(notes: tuple[str, ...]) -> str:
    (note,) = [n for n in notes if "other settings" in n]
    return note


def test_one_gain_of_two_with_other_settings_is_counted_one_of_two(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    _other_settings(url, ("ner", "pos"), alike=("chunk",))
    report = recommendation_report("ner", storage=url, metric="f1", method="pairwise")
    assert _settings_note(report.notes).startswith(
        "1 of the 2 measured gains of 'ner' (auxiliary set pos) compares runs"
    )


def test_a_gain_measured_in_two_families_is_one_measured_gain(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    _other_settings(url, ("ner", "pos"), families=("minilm", "tiny-bert"))
    report = recommendation_report("ner", storage=url, metric="f1", method="pairwise")
    assert _settings_note(report.notes).startswith("the only measured gain of 'ner'")


def test_the_targets_note_counts_each_set_once_across_families(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    _other_settings(url, ("ner", "pos"), families=("minilm", "tiny-bert"))
    report = graph_report(storage=url, metric="f1", method="pairwise")
    assert _settings_note(report.notes).startswith(
        "both measured gains of 2 targets ('ner', 'pos') compare runs"
    )
