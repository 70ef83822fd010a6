"""``run_bench``: what ``taskgraph bench`` reports, pinned where a changed line (a mutation
audit's survivor) went unnoticed by the other bench tests."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

import taskgraph.search.bench_report as bench_report
from taskgraph.affinity.evaluation.metrics import _paired
from taskgraph.affinity.longtable import LongTable, read_long_csv
from taskgraph.errors import ConfigError
from taskgraph.search.bench_report import BenchReport, run_bench
from taskgraph.testing import write_pair_table, write_rising_table
from tests.search.test_bench_table_shapes import G3, GROUPS_ONLY


def _table(tmp_path: Path, text: str) -> LongTable:
    path = tmp_path / "table.csv"
    path.write_text(text)
    return read_long_csv(path)


def _two_splits(tmp_path: Path) -> LongTable:
    """Seven tasks with their baselines and every pair, on val and on test."""
    return read_long_csv(write_pair_table(tmp_path / "pairs.csv", seed=3, splits=("val", "test")))


@pytest.fixture(scope="module")
def setfn_report(tmp_path_factory: pytest.TempPathFactory) -> BenchReport:
    """Return setfn's report on seven tasks with every pair (pair gains and source ranking),
    in which a popular source helps every target alike: the differences from the prior are
    not 0 (-0.049 and +0.071)."""
    path = tmp_path_factory.mktemp("pairs") / "pairs.csv"
    return run_bench(read_long_csv(write_pair_table(path, seed=0, popular=0.1)), seeds=1,
                     search=False)  # fmt: skip


def test_the_score_split_given_is_the_one_pair_gains_are_scored_on(tmp_path: Path) -> None:
    report = run_bench(_two_splits(tmp_path), method="pairwise", seeds=1, search=False,
                       score_split="val")  # fmt: skip
    assert report.results["pair_scored_on"] == "val"


def test_one_fold_is_refused_before_anything_runs(tmp_path: Path) -> None:
    steps: list[str] = []
    with pytest.raises(ConfigError, match=r"^`folds` must be in \[2, \d+\], but got 1$"):
        run_bench(_table(tmp_path, GROUPS_ONLY), folds=1, search=False,
                  on_step=lambda name, done, total: steps.append(name))  # fmt: skip
    assert steps == []


def test_a_negative_baseline_is_not_taken_for_a_zero_one(tmp_path: Path) -> None:
    # A loss-like score can be negative: its gains are defined, the target is not rank-only.
    table = _two_splits(tmp_path)
    rows = [replace(r, value=-r.value) if r.target == "t0" else r for r in table]
    report = run_bench(LongTable(rows=rows), method="pairwise", seeds=1, search=False)
    assert not any("a baseline row of 0" in note for note in report.notes), report.notes


def test_pairs_the_score_split_lacks_do_not_count_towards_a_spearman(tmp_path: Path) -> None:
    # Three pairs per target on val, two of them on test: nothing to rank on test.
    table = read_long_csv(
        write_pair_table(tmp_path / "pairs.csv", seed=3, tasks=4, splits=("val", "test"))
    )
    rows = [r for r in table if not (r.split == "test" and "t3" in r.task_set - {r.target})]
    rows = [r for r in rows if not (r.target == "t3" and r.split == "test" and "t2" in r.task_set)]
    report = run_bench(LongTable(rows=rows), method="pairwise", seeds=1, search=False)
    assert report.skipped["pair_gains"] == (
        "no target has 3 pair rows on both 'val' and 'test'; a Spearman of two is +-1 whatever "
        "the predictions"
    )


def test_seeds_that_leave_exactly_min_ranked_gains_are_scored(tmp_path: Path) -> None:
    # a's three groups, none fitted: three gains, as many as a Spearman needs.
    assert bench_report.MIN_RANKED == 3
    report = run_bench(_table(tmp_path, G3), method="hoa", fit_fraction=0.0, seeds=1, search=False)
    assert "gain_prediction" in report.evaluations and "gain_prediction" not in report.skipped
    assert not any(note.startswith("gain_prediction:") for note in report.notes)


def test_a_table_without_pair_rows_says_that_it_has_none(tmp_path: Path) -> None:
    report = run_bench(_table(tmp_path, GROUPS_ONLY), seeds=1, search=False)
    assert report.skipped["pair_gains"] == "no pair rows (target + one auxiliary)"


def test_each_paired_difference_is_the_method_minus_the_prior(setfn_report: BenchReport) -> None:
    results = setfn_report.results
    for key in ("pair_spearman", "ranking_spearman"):
        assert all(math.isfinite(results[k]) for k in (key, f"{key}_prior")), results
        difference = results[key] - results[f"{key}_prior"]
        assert abs(difference) > 0.01
        assert results[f"{key}_diff_vs_prior"] == pytest.approx(difference)
        assert results[f"{key}_diff_vs_prior_se"] > 0


def test_the_one_target_se_note_names_the_target_the_ranking_scored(tmp_path: Path) -> None:
    # t0 has six pairs; t1 has five: rankable, but with three observed only two are hidden.
    counts = {"t0": 6, "t1": 5, **{f"t{i}": 0 for i in range(2, 7)}}
    path = write_pair_table(tmp_path / "pairs.csv", seed=3, popular=0.05, counts=counts)
    report = run_bench(read_long_csv(path), seeds=1, search=False)
    assert math.isnan(report.results["ranking_spearman_diff_vs_prior_se"])
    assert (
        "ranking_spearman_diff_vs_prior_se is undefined (nan): a standard error over targets "
        "needs two or more targets scored by both setfn and the popular-source prior, and only "
        "one was ('t0')" in report.notes
    ), report.notes


def test_targets_with_too_few_pairs_to_rank_are_named_as_not_scored(tmp_path: Path) -> None:
    """t2's four pairs leave one hidden source beside three observed: it is not ranked at all,
    and the report says so beside t1 (ranked, but two hidden sources get no Spearman)."""
    counts = {"t0": 6, "t1": 5, "t2": 4, "t3": 6, **{f"t{i}": 0 for i in range(4, 7)}}
    path = write_pair_table(tmp_path / "pairs.csv", seed=3, popular=0.05, counts=counts)
    report = run_bench(read_long_csv(path), seeds=1, search=False)
    assert "source_ranking" in report.evaluations
    assert [n for n in report.notes if n.startswith("source_ranking:")] == [
        "source_ranking: t1, t2 not scored: with 3 observed, fewer than 3 hidden sources "
        "are left (a Spearman of two is +-1 whatever the ranking)"
    ], report.notes


def test_max_size_bounds_every_search(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The table answers groups of four; a search told to stop at two must never go past it.
    bounds: list[int | None] = []

    def search_efficiency(table: LongTable, **options: Any) -> list[Any]:
        bounds.append(options["max_size"])
        return []

    monkeypatch.setattr(bench_report, "search_efficiency", search_efficiency)
    path = write_rising_table(tmp_path / "rising.csv", ["a", "b", "c", "d"], max_size=4)
    run_bench(read_long_csv(path), seeds=1, samplers=["random"], max_size=2,
              fit_fraction=0.0, method="hoa")  # fmt: skip
    assert bounds == [2, 2, 2, 2]


def test_a_paired_se_is_the_sample_sd_of_the_differences_over_root_n() -> None:
    # Per-target differences 0.1, 0.3, 0.2: mean 0.2, sample sd 0.1.
    method = {"a": [0.5], "b": [0.7], "c": [0.6]}
    prior = {"a": [0.4], "b": [0.4], "c": [0.4]}
    paired = _paired(method, prior, lower_is_better=False)
    assert paired["diff"] == pytest.approx(0.2)
    assert paired["se"] == pytest.approx(0.1 / math.sqrt(3))
    assert (paired["better"], paired["worse"]) == (3, 0)
