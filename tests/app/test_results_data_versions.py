"""A results table and `affinity top` never set scores on two versions of the target's data
against each other (the runs' recorded dataset fingerprints)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from taskgraph.app.results.build import build_table
from taskgraph.storage import open_repository
from taskgraph.trial import Cost, TrialConfig, TrialResult, TrialStatus

V1, V2 = "a" * 64, "b" * 64
AUX = {"pos": "p" * 64}
SPEC: dict[str, Any] = {
    "name": "s",
    "target": "ner",
    "objective": {"metric": "f1", "split": "dev"},
    "candidates": ["pos"],
    "budget": {"trials": 4},
    "seeds": 2,
}


def _add(repo, number: int, aux: tuple[str, ...], seed: int, f1: float, prints) -> None:
    config = TrialConfig(target="ner", auxiliaries=aux, seed=seed)
    scores = {"ner": {"dev": {"f1": f1}}} | {t: {"dev": {"f1": 0.9}} for t in aux}
    result = TrialResult(
        status=TrialStatus.COMPLETE, scores=scores, objective=f1, cost=Cost(seconds=1.0)
    )
    repo.add_run_result(
        study="s", trial_number=number, config=config, result=result, task_fingerprints=prints
    )


def _retrained_on_new_data(url: str) -> list[Any]:
    """Two seeds of ner alone and ner+pos on V1, then ner+pos again after ner's dev labels
    changed (V2): what `study resume` after a data fix stores."""
    with open_repository(url) as repo:
        for seed in (0, 1):
            _add(repo, 0, (), seed, 0.55, {"ner": V1})
        for seed in (0, 1):
            _add(repo, 1, ("pos",), seed, 0.55, {"ner": V1} | AUX)
        for seed in (0, 1):
            _add(repo, 2, ("pos",), seed, 0.60, {"ner": V2} | AUX)
        return repo.runs(study="s")


def test_no_difference_is_taken_across_two_versions_of_the_targets_data(
    tmp_path: Path,
) -> None:
    # The table printed pos +0.050 against alone 0.550: the latest pos runs (V2) minus the
    # alone runs of V1, on different dev labels, where `study show` says there is no gain.
    runs = _retrained_on_new_data(f"sqlite:///{tmp_path / 'r.db'}")
    table = build_table("s", SPEC, runs, split="dev")
    assert "+0.050" not in table.to_markdown()
    assert all(
        not row["paired_difference"] or 0.05 not in row["paired_difference"]["differences"]
        for row in table.to_dict()["rows"]
    )
    titles = [row.title for row in table.rows]
    assert titles == [
        f"alone (data:{V1[:12]}, earlier data)",
        "pos",
        f"pos (data:{V1[:12]}, earlier data)",
    ]
    alone_v1, pos_v2, pos_v1 = table.rows
    assert pos_v2.cell("dev", "f1", task="ner").values == (0.60, 0.60)
    assert not table.paired(pos_v2).differences  # no alone run on V2: no Δ
    assert table.paired(pos_v1).differences == (0.0, 0.0)  # within V1
    markdown = table.to_markdown()
    assert "| pos | `pos` | 0.600 ± 0.000 |  | 2 |" in markdown
    assert any("Row pos has no Δ: alone has no complete run" in note for note in table.notes)
    assert any("2 versions of its data" in note for note in table.notes)
    data = table.to_dict()
    assert data["rows"][1]["paired_difference"]["differences"] == []
    assert data["rows"][1]["paired_difference"]["reference"] is None
    assert data["rows"][1]["data_version"] == f"data:{V2[:12]}"
    assert data["rows"][2]["paired_difference"]["reference"] == alone_v1.title
    assert [row["earlier_data"] for row in data["rows"]] == [True, False, True]
    # The long CSV (no column for the version) keeps the latest version only.
    assert [(sorted(r.task_set), r.value) for r in table.long_rows()] == [
        (["ner", "pos"], pytest.approx(0.60))
    ]


def test_a_baseline_on_the_new_data_is_the_reference_of_the_new_runs(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    runs = _retrained_on_new_data(url)
    with open_repository(url) as repo:
        for seed in (0, 1):
            _add(repo, 3, (), seed, 0.52, {"ner": V2})
        runs = repo.runs(study="s")
    table = build_table("s", SPEC, runs, split="dev")
    assert [row.title for row in table.rows] == [
        "alone",
        f"alone (data:{V1[:12]}, earlier data)",
        "pos",
        f"pos (data:{V1[:12]}, earlier data)",
    ]
    assert table.paired(table.rows[2]).differences == pytest.approx((0.08, 0.08))
    assert table.paired(table.rows[3]).differences == (0.0, 0.0)
    assert not any("has no Δ" in note for note in table.notes)
    assert sorted((sorted(r.task_set), round(r.value, 6)) for r in table.long_rows()) == [
        (["ner"], 0.52),
        (["ner", "pos"], 0.60),
    ]


def test_runs_on_one_version_or_without_fingerprints_are_one_row_as_before(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    with open_repository(url) as repo:
        for seed in (0, 1):
            _add(repo, 0, (), seed, 0.50, {})
            _add(repo, 1, ("pos",), seed, 0.60, {})
        runs = repo.runs(study="s")
    table = build_table("s", SPEC, runs, split="dev")
    # A regression guard: no version is told apart where none (or one) was recorded.
    assert [row.name for row in table.rows] == ["alone", "pos"]
    assert table.paired(table.rows[1]).differences == pytest.approx((0.1, 0.1))
    assert table.notes == ()


def test_affinity_top_says_the_records_are_on_another_version_of_the_data(
    tmp_path: Path,
) -> None:
    # The note blamed another encoder, input length or cap: the runs were on other data.
    from taskgraph.app.affinity import recommendation_report

    url = f"sqlite:///{tmp_path / 'r.db'}"
    _retrained_on_new_data(url)
    report = recommendation_report("ner", storage=url, metric="f1", method="pairwise")
    notes = [note for note in report.notes if "left out of its gains" in note]
    assert len(notes) == 1, report.notes
    assert notes[0].startswith("2 of 'ner''s records are on another version of 'ner''s data")
    assert "train 'ner' alone on that version of its data" in notes[0]
    assert "encoder" not in notes[0]


def test_a_failed_run_on_new_data_does_not_make_the_scored_rows_earlier(tmp_path: Path) -> None:
    """The latest version is the latest complete run's: a baseline that failed on new data
    (no scores) made every scored row an earlier version's, and --write kept none."""
    url = f"sqlite:///{tmp_path / 'r.db'}"
    runs = _retrained_on_new_data(url)
    with open_repository(url) as repo:
        repo.add_run_result(
            study="s",
            trial_number=3,
            config=TrialConfig(target="ner"),
            result=TrialResult.failed("boom"),
            task_fingerprints={"ner": "c" * 64},
        )
        runs = repo.runs(study="s")
    table = build_table("s", SPEC, runs, split="dev")
    pos = next(row for row in table.rows if row.title == "pos")
    assert not pos.earlier_data and pos.cell("dev", "f1", task="ner").values == (0.60, 0.60)
    assert table.long_rows()
