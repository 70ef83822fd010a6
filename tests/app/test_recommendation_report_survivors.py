"""`affinity top`'s report (recommendation_report): the refusal of a zero baseline, the notes
on sets without evidence and on records left out, and the measured gains beside each set —
cases the mutation audit of taskgraph/app/affinity/recommendations.py found untested."""

from __future__ import annotations

from pathlib import Path

import pytest

from taskgraph.app.affinity import recommendation_report
from taskgraph.storage import open_repository
from taskgraph.testing import RunWriter, write_pair_table
from tests.cli.test_affinity_evidence_and_honesty import store_screen


def test_a_zero_baseline_in_one_family_is_no_refusal_when_another_family_has_gains(
    tmp_path: Path,
) -> None:
    # Refusing on any zero baseline would turn away a target whose other family measures gains.
    url = f"sqlite:///{tmp_path / 'r.db'}"
    with open_repository(url) as repo:
        runs = RunWriter(repo)
        for encoder, alone in (("minilm", 0.0), ("tiny-bert", 0.5)):
            runs.add("a", (), {"a": alone}, encoder=encoder)
            runs.add("b", (), {"b": 0.6}, encoder=encoder)
            runs.add("a", ("b",), {"a": alone + 0.1, "b": 0.6}, encoder=encoder)
    report = recommendation_report("a", storage=url, method="pairwise")
    assert [r.auxiliaries for r in report.recommendations] == [("b",)]
    assert any(note.startswith("'a' has a single-task score of 0") for note in report.notes)


def test_the_no_evidence_note_names_what_pairwise_lacks(tmp_path: Path) -> None:
    # t0 ran with t1 only: {t2}, {t3} and {t2, t3} have no measured pair gain of t0.
    table = write_pair_table(tmp_path / "pairs.csv", seed=0, tasks=4, counts={"t0": 1})
    report = recommendation_report("t0", table=table, method="pairwise", k=9)
    assert all("t1" in r.auxiliaries for r in report.recommendations)
    (note,) = [n for n in report.notes if "have no evidence" in n]
    assert note.startswith(
        "3 auxiliary set(s) have no evidence for pairwise (no measured single-auxiliary gain "
        "of 't0' with any of their tasks)"
    )


def _data_and_family_left_out(url: str) -> None:
    """ner alone and with pos on data V1 (minilm); with pos once on V2 (minilm), and once with
    tiny-bert on V1, where ner never ran alone."""
    v1, v2, pos = {"ner": "a" * 64}, {"ner": "b" * 64}, {"pos": "p" * 64}
    with open_repository(url) as repo:
        runs = RunWriter(repo)
        runs.add("ner", (), {"ner": 0.5}, prints=v1)
        runs.add("ner", ("pos",), {"ner": 0.55, "pos": 0.9}, prints=v1 | pos)
        runs.add("ner", ("pos",), {"ner": 0.6, "pos": 0.9}, prints=v2 | pos)
        runs.add("ner", ("pos",), {"ner": 0.7, "pos": 0.9}, encoder="tiny-bert", prints=v1 | pos)


def test_one_record_on_other_data_and_one_of_another_family_get_a_note_each(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    _data_and_family_left_out(url)
    report = recommendation_report("ner", storage=url, metric="f1", method="pairwise")
    notes = [note for note in report.notes if "left out of its gains" in note]
    assert len(notes) == 2, report.notes
    assert notes[0].startswith("1 of 'ner''s records are on another version of 'ner''s data")
    assert notes[1].startswith("1 of 'ner''s records are of a model family without a single")


def test_top_names_only_its_targets_gains_with_other_settings(tmp_path: Path) -> None:
    # ner's and pos's gains both hold a searched learning rate; `top --target ner` is about ner.
    url = f"sqlite:///{tmp_path / 'r.db'}"
    with open_repository(url) as repo:
        runs = RunWriter(repo)
        runs.add("ner", (), {"ner": 0.5}, learning_rate=1e-4)
        runs.add("ner", ("pos",), {"ner": 0.6}, learning_rate=1e-3)
        runs.add("pos", (), {"pos": 0.8}, learning_rate=1e-4)
        runs.add("pos", ("ner",), {"pos": 0.85}, learning_rate=1e-3)
    report = recommendation_report("ner", storage=url, metric="f1", method="pairwise")
    (note,) = [n for n in report.notes if "other settings" in n]
    assert "of 'ner' (auxiliary set" in note and "'pos'" not in note, note


def test_the_families_note_counts_the_targets_families_only(tmp_path: Path) -> None:
    # Only b ran in a second family: a's gains all come from one.
    url = f"sqlite:///{tmp_path / 'r.db'}"
    with open_repository(url) as repo:
        runs = RunWriter(repo)
        runs.add("a", (), {"a": 0.5})
        runs.add("b", (), {"b": 0.6})
        runs.add("a", ("b",), {"a": 0.55, "b": 0.6})
        runs.add("b", (), {"b": 0.7}, encoder="tiny-bert")
        runs.add("b", ("a",), {"b": 0.75, "a": 0.4}, encoder="tiny-bert")
    b_notes = recommendation_report("b", storage=url, method="hoa").notes
    assert any("2 model families" in n for n in b_notes), b_notes
    report = recommendation_report("a", storage=url, method="hoa")
    assert not any("model families" in n for n in report.notes), report.notes


def test_the_pooled_data_versions_note_lists_five_sets_then_an_ellipsis(tmp_path: Path) -> None:
    # Each of six auxiliaries' data changed between its two runs with ner.
    url = f"sqlite:///{tmp_path / 'r.db'}"
    ner = {"ner": "n" * 64}
    with open_repository(url) as repo:
        runs = RunWriter(repo)
        runs.add("ner", (), {"ner": 0.5}, prints=ner)
        for aux in ("a1", "a2", "a3", "a4", "a5", "a6"):
            for version in ("p", "q"):
                runs.add("ner", (aux,), {"ner": 0.55}, prints=ner | {aux: version * 64})
    report = recommendation_report("ner", storage=url, metric="f1", method="pairwise")
    (note,) = [n for n in report.notes if "more than one version of their" in n]
    assert note.startswith("6 auxiliary set(s) of 'ner' ran on more than one version"), note
    assert "pool the versions: a1, a2, a3, a4, a5, ...;" in note


def test_each_sets_measured_absolute_gain_is_its_own(tmp_path: Path) -> None:
    table = write_pair_table(tmp_path / "pairs.csv", seed=0, tasks=4, noise=0.2)
    report = recommendation_report("t0", table=table, method="setfn", k=9)
    measured = [r for r in report.recommendations if r.measured_gain is not None]
    assert len(measured) == 3  # t1, t2, t3 alone; no larger set ran
    assert len({r.measured_gain for r in measured}) == 3
    for r, absolute in zip(report.recommendations, report.measured_absolute, strict=True):
        # The baselines are 0.6: the absolute gain is 0.6 times the relative one.
        expected = None if r.measured_gain is None else pytest.approx(0.6 * r.measured_gain)
        assert absolute == expected, (r.auxiliaries, absolute)


def test_lookahead_from_a_screen_alone_has_no_pair_method_note(tmp_path: Path) -> None:
    # The note that pairwise and hoa read only pair gains is not about lookahead's matrices.
    url = f"sqlite:///{tmp_path / 'screen.db'}"
    with open_repository(url) as repo:
        store_screen(repo)
    report = recommendation_report("ner", storage=url, method="lookahead")
    assert report.recommendations and report.calibrated is False
    assert not any("single auxiliary task is measured" in n for n in report.notes), report.notes
