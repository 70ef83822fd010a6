"""``taskgraph bench``: name: value lines or JSON for any long-format table; one-line errors."""

from __future__ import annotations

import itertools
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from taskgraph.affinity.longtable import LongRow, LongTable, read_long_csv, write_long_csv
from taskgraph.cli.app import app
from taskgraph.testing import write_pair_table

runner = CliRunner()


@pytest.fixture
def table_file(tmp_path: Path) -> Path:
    tasks = ("a", "b", "c", "d", "e")
    rng = np.random.default_rng(0)
    effect = {(t, s): float(rng.normal(0, 0.05)) for t in tasks for s in tasks if s != t}
    rows = []
    for size in range(1, 6):
        for combo in itertools.combinations(tasks, size):
            for t in combo:
                others = [s for s in combo if s != t]
                gain = float(np.mean([effect[(t, s)] for s in others])) if others else 0.0
                rows.append(LongRow(t, frozenset(combo), "val", 0.7 * (1 + gain), True))
                rows.append(
                    LongRow(
                        t, frozenset(combo), "test", 0.7 * (1 + gain + rng.normal(0, 0.01)), True
                    )
                )
    path = tmp_path / "five.csv"
    write_long_csv(LongTable(rows=rows), path)
    return path


def test_json_output(table_file: Path) -> None:
    result = runner.invoke(
        app,
        ["bench", "--table", str(table_file), "--seeds", "2", "--fit-fraction", "0.3", "--json",
         "--samplers", "graph,tpe,random,bandit"],
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["evaluations"] == ["gain_prediction", "pair_gains", "search"]
    # 4 sources per target: 3 observed leave too few to rank
    assert data["skipped"] == {"source_ranking": "no target has more than 4 pair rows"}
    # 4 pairs per target: the default 5 folds cut 4, and the report says the k it used
    assert data["notes"] == [
        "pair_gains: `--folds` 5 is more than any target's pairs (4 each): min(5, pairs) folds "
        "per target, leave-one-out for every target here"
    ]
    searched = {f"{kind}_{s}" for kind in ("trials_to_best", "distinct_to_best", "not_found")
                for s in ("graph", "tpe", "random", "bandit")}  # fmt: skip
    ranking = {f"pair_spearman{s}" for s in ("", "_prior", "_diff_vs_prior", "_diff_vs_prior_se")}
    numbers = {"spearman", "spearman_hoa", "pair_folds", *ranking, *searched}
    assert set(data) == {"evaluations", "skipped", "notes", "scored_on", "pair_scored_on", *numbers}
    assert data["scored_on"] == data["pair_scored_on"] == "test" and data["pair_folds"] == 4
    assert all(math.isfinite(data[k]) for k in numbers)
    # 16 auxiliary sets per target; the graph sampler never asks one twice
    assert 1 <= data["distinct_to_best_graph"] == data["trials_to_best_graph"] <= 16


def test_name_value_lines(table_file: Path) -> None:
    result = runner.invoke(
        app, ["bench", "--table", str(table_file), "--seeds", "1", "--no-search"]
    )
    assert result.exit_code == 0, result.stderr
    lines = dict(line.split(": ", 1) for line in result.stdout.strip().splitlines())
    assert list(lines)[:3] == ["evaluations", "skipped_source_ranking", "skipped_search"]
    assert lines["evaluations"] == "gain_prediction, pair_gains"
    assert lines["scored_on"] == "test"
    assert -1.0 <= float(lines["spearman"]) <= 1.0


def test_pooling_reaches_setfn_and_auto_keeps_the_mean_of_a_mean_table(table_file: Path) -> None:
    # The table's gains are means of the members' effects: the evidence ("auto") picks the mean,
    # and the default ("bma") gives "sum" a weight of exactly 0, so both give the mean's numbers
    # exactly; "sum" is another model, so other numbers.
    def spearman(*extra: str) -> float:
        base = ["bench", "--table", str(table_file), "--seeds", "2", "--no-search", "--json"]
        result = runner.invoke(app, [*base, *extra])
        assert result.exit_code == 0, result.stderr
        return float(json.loads(result.stdout)["spearman"])

    default = spearman()
    assert spearman("--pooling", "auto") == default == spearman("--pooling", "mean")
    assert abs(spearman("--pooling", "sum") - default) > 1e-3
    for extra, message in (
        (["--pooling", "max"], "error: `--pooling` must be mean, sum, auto or bma, but got 'max'"),
        (
            ["--method", "hoa", "--pooling", "sum"],
            "error: `--pooling` is an option of setfn, but --method is 'hoa'",
        ),
    ):
        refused = runner.invoke(app, ["bench", "--table", str(table_file), *extra])
        assert refused.exit_code != 0 and refused.stdout == ""
        assert refused.stderr.strip() == message


def test_bad_input(tmp_path: Path, table_file: Path) -> None:
    missing = runner.invoke(app, ["bench", "--table", str(tmp_path / "nope.csv")])
    assert missing.exit_code != 0 and missing.stderr.startswith("error: table file does not exist")
    bad = tmp_path / "bad.csv"
    bad.write_text("target,task_set,split,value,higher_is_better\na,a,val,0.5,2\n")
    malformed = runner.invoke(app, ["bench", "--table", str(bad)])
    assert malformed.stderr.strip() == f"error: {bad}:2: expected higher_is_better 1 or 0, got '2'"
    fraction = runner.invoke(app, ["bench", "--table", str(table_file), "--fit-fraction", "2"])
    assert (
        fraction.exit_code != 0
        and "`--fit-fraction` must be in [0, 1], but got 2.0" in fraction.stderr
    )
    trials = runner.invoke(app, ["bench", "--table", str(table_file), "--max-trials", "0"])
    assert trials.exit_code != 0 and trials.stdout == ""
    assert trials.stderr.strip() == "error: `--max-trials` must be in [1, 100000], but got 0"
    # As many seeds as a run could not finish in days: refused before anything runs (it ran).
    for option, value, bounds in (("--seeds", "99999999999999999999", "[1, 1000]"),
                                  ("--max-trials", "100000000", "[1, 100000]"),
                                  ("--folds", "5000", "[2, 1000]")):  # fmt: skip
        huge = runner.invoke(app, ["bench", "--table", str(table_file), option, value])
        assert huge.exit_code == 2 and huge.stdout == ""
        assert huge.stderr.strip() == f"error: `{option}` must be in {bounds}, but got {value}"
    assert "--fit-fraction" in runner.invoke(app, ["bench", "--help"]).stdout


def test_a_pairs_only_one_split_table_without_baselines_runs_what_it_supports(
    tmp_path: Path,
) -> None:
    """A real-world table: pairs only, one split, baseline rows for some targets only."""
    tasks = [f"t{i}" for i in range(7)]
    rng = np.random.default_rng(1)
    popular = dict(zip(tasks, rng.normal(0, 0.05, len(tasks)), strict=True))
    rows = []
    for target in tasks:
        if target not in ("t0", "t1"):  # t0 and t1 were published without their baseline
            rows.append(LongRow(target, frozenset({target}), "val", 0.6, True))
        for source in tasks:
            if source != target:
                value = 0.6 * (1 + popular[source] + rng.normal(0, 0.01))
                rows.append(LongRow(target, frozenset({target, source}), "val", value, True))
    path = tmp_path / "pairs.csv"
    write_long_csv(LongTable(rows=rows), path)
    result = runner.invoke(
        app, ["bench", "--table", str(path), "--seeds", "2", "--samplers", "graph,tpe,bandit"]
    )
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    values = dict(line.split(": ", 1) for line in lines if not line.startswith("note: "))
    notes = [line for line in lines if line.startswith("note: ")]
    assert values["evaluations"] == "pair_gains, source_ranking, search"
    assert values["skipped_gain_prediction"] == "no groups of size >= 3"
    assert any("one split ('val')" in n and "5-fold" in n for n in notes)
    assert any(
        "no baseline row on 'val' for 2 of 7 targets (t0, t1): rank-only" in n for n in notes
    )
    assert any("--max-size 1" in n for n in notes)
    assert values["pair_folds"] == "5"
    # The popular source is the same for every target here: the prior ranks well.
    assert float(values["pair_spearman_prior"]) > 0.5
    # Single auxiliaries only (6 per target): never more than 6 distinct sets plus the baseline.
    assert 1 <= float(values["distinct_to_best_graph"]) <= 7
    assert float(values["not_found_tpe"]) == 0  # every proposal of the repaired space is answered


def test_a_one_target_transfer_table_skips_source_ranking_and_says_the_prior_is_undefined(
    tmp_path: Path,
) -> None:
    """One target with its baseline and 6 single auxiliaries (a docs/results transfer table)."""
    rows = [LongRow("tgt", frozenset({"tgt"}), "val", 0.6, True)]
    for i, gain in enumerate((0.02, -0.01, 0.03, -0.04, 0.0, 0.01)):
        rows.append(LongRow("tgt", frozenset({"tgt", f"a{i}"}), "val", 0.6 + gain, True))
    path = tmp_path / "one_target.csv"
    write_long_csv(LongTable(rows=rows), path)
    result = runner.invoke(app, ["bench", "--table", str(path), "--seeds", "2", "--no-search"])
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    values = dict(line.split(": ", 1) for line in lines if not line.startswith("note: "))
    assert values["evaluations"] == "pair_gains"
    assert values["skipped_source_ranking"] == (
        "the ranking learns from the other targets' pair rows, and only 'tgt' has any"
    )
    assert "ranking_spearman" not in values
    assert any("only 'tgt' has pair rows: no prior (nan)" in line for line in lines)


def test_split_options_name_a_missing_split(tmp_path: Path, table_file: Path) -> None:
    result = runner.invoke(
        app, ["bench", "--table", str(table_file), "--fit-split", "train", "--no-search"]
    )
    assert result.exit_code != 0 and result.stdout == ""
    assert result.stderr.strip() == (
        "error: `--fit-split` 'train' is not a split of table 'five'; it has val, test"
    )
    result = runner.invoke(
        app, ["bench", "--table", str(table_file), "--samplers", "cmaes", "--no-search"]
    )
    assert result.exit_code != 0
    assert "`--samplers`: unknown sampler 'cmaes'" in result.stderr


def test_task_metadata_reaches_the_estimator_or_says_why_not(tmp_path: Path) -> None:
    from taskgraph.affinity.estimators.sourcerank import DEFAULT_FEATURES
    from taskgraph.app.bench import metadata_options
    from taskgraph.errors import ConfigError
    from taskgraph.search.bench_report import run_bench

    path = write_pair_table(tmp_path / "pairs.csv", seed=2)
    metadata = tmp_path / "meta.json"
    metadata.write_text(json.dumps({"tasks": {f"t{i}": {"features": {"x": i}} for i in range(7)}}))
    base = ["bench", "--table", str(path), "--seeds", "1", "--no-search"]
    result = runner.invoke(app, [*base, "--method", "sourcerank", "--task-metadata", str(metadata)])
    assert result.exit_code == 0, result.stderr
    # Every ranking fit weighed the eight against the eight plus the file's feature, and says so.
    assert re.search(
        r"note: source ranking: sourcerank's cross-validation added the task-metadata scores "
        r"in \d+ of 7 fits",
        result.stdout,
    ), result.stdout
    assert "ranking_spearman: " in result.stdout
    hoa = runner.invoke(app, [*base, "--method", "hoa", "--task-metadata", str(metadata)])
    assert "note: --task-metadata: method 'hoa' uses no task metadata" in hoa.stdout
    assert "cross-validation" not in hoa.stdout
    options, notes = metadata_options("sourcerank", metadata)
    assert options["alternatives"] == [[*DEFAULT_FEATURES, "source:x"]]
    assert options["task_features"]["t3"] == {"x": 3.0} and notes == []
    # The options reach the estimator in every evaluation (a bad one is refused there).
    with pytest.raises(ConfigError, match="source:<name>"):
        run_bench(
            read_long_csv(path),
            method="sourcerank", seeds=1, search=False, estimator_options={"features": ["source:nope"]},
        )  # fmt: skip
    bad = tmp_path / "bad.json"
    bad.write_text('{"tasks": {"t0": {"features": {"x": "high"}}}}')
    refused = runner.invoke(app, [*base, "--task-metadata", str(bad)])
    assert refused.exit_code != 0
    assert "tasks.t0.features.x must be a finite number" in refused.stderr


def _pairs_without_baselines(tmp_path: Path) -> Path:
    """Pairs only, one split, no baseline row for any target (what many papers publish)."""
    return write_pair_table(
        tmp_path / "no_baselines.csv", seed=3, baselines=False, popular=0.05, noise=0.01
    )


def test_a_table_without_any_baseline_row_is_ranked_rank_only(tmp_path: Path) -> None:
    path = _pairs_without_baselines(tmp_path)
    result = runner.invoke(app, ["bench", "--table", str(path), "--seeds", "2", "--json"])
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["evaluations"] == ["pair_gains", "source_ranking", "search"]
    assert any("for 7 of 7 targets" in n and "stand-in baseline" in n for n in data["notes"])
    # The popular source is the same for every target: both the prior and setfn, fitted on the
    # stand-in baselines, rank the held-out sources well.
    assert data["pair_spearman"] > 0.5 and data["pair_spearman_prior"] > 0.5
    assert data["ranking_spearman"] > 0.5


def test_an_undefined_spearman_is_null_in_json_and_explained(tmp_path: Path) -> None:
    path = _pairs_without_baselines(tmp_path)
    base = ["bench", "--table", str(path), "--seeds", "1", "--no-search", "--method", "pairwise"]
    result = runner.invoke(app, [*base, "--json"])
    assert result.exit_code == 0, result.stderr
    assert "NaN" not in result.stdout
    data = json.loads(result.stdout)
    assert data["pair_spearman"] is None and data["pair_spearman_prior"] > 0.5
    assert any(n.startswith("pair_spearman is undefined (nan): pairwise's") for n in data["notes"])


@pytest.mark.parametrize(
    ("method", "message"),
    [
        ("lookahead", "error: `--method lookahead` needs lookahead-affinity matrices"),
        ("textemb", "error: `--method textemb` needs task texts: pass --task-metadata FILE"),
    ],
)
def test_methods_that_need_inputs_a_table_lacks_are_refused(
    tmp_path: Path, method: str, message: str
) -> None:
    path = _pairs_without_baselines(tmp_path)
    result = runner.invoke(app, ["bench", "--table", str(path), "--method", method])
    assert result.exit_code != 0 and result.stdout == ""
    assert result.stderr.startswith(message) and result.stderr.count("\n") == 1


def test_each_evaluation_names_the_split_it_is_scored_on(tmp_path: Path) -> None:
    """The source ranking hides cells of the fit split and scores them there, while the one
    `scored_on: test` suggested every evaluation was scored on test."""
    path = write_pair_table(tmp_path / "two_splits.csv", seed=4, splits=("val", "test"))
    result = runner.invoke(
        app, ["bench", "--table", str(path), "--seeds", "1", "--no-search", "--json"]
    )
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["evaluations"] == ["pair_gains", "source_ranking"]
    assert data["pair_scored_on"] == "test" and data["ranking_scored_on"] == "val"
    assert "scored_on" not in data  # gain prediction did not run
    assert any(
        n.startswith("source_ranking is fitted and scored on 'val'") and "'test' is not used" in n
        for n in data["notes"]
    )


def test_an_empty_sampler_list_is_refused_unless_the_search_is_off(table_file: Path) -> None:
    # `--samplers ""` listed `search` among the evaluations run and reported nothing of it.
    base = ["bench", "--table", str(table_file), "--seeds", "1", "--samplers", ""]
    refused = runner.invoke(app, base)
    assert refused.exit_code != 0 and refused.stdout == ""
    assert refused.stderr.startswith("error: `--samplers` names no sampler: name one or more (")
    assert refused.stderr.strip().endswith("or pass --no-search")
    assert refused.stderr.count("\n") == 1
    result = runner.invoke(app, [*base, "--no-search"])
    assert result.exit_code == 0, result.stderr
    assert "evaluations: gain_prediction, pair_gains\n" in result.stdout


def test_a_zero_baseline_row_makes_its_target_rank_only_not_an_error(tmp_path: Path) -> None:
    # A baseline of 0 (an F1 of 0) made every evaluation fail with a gain kind bench has no
    # option for; the target is ranked by its values, as one published without a baseline.
    path = write_pair_table(tmp_path / "pairs.csv", seed=2, popular=0.05, noise=0.01)
    table = read_long_csv(path)
    rows = [
        LongRow(r.target, r.task_set, r.split, 0.0, True)
        if r.target == "t0" and len(r.task_set) == 1 else r
        for r in table
    ]  # fmt: skip
    write_long_csv(LongTable(rows=rows), path)
    result = runner.invoke(
        app, ["bench", "--table", str(path), "--seeds", "1", "--no-search", "--json"]
    )
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["evaluations"] == ["pair_gains", "source_ranking"]
    assert data["notes"][0] == (
        "a baseline row of 0 (below 1e-12 in magnitude) for t0: a gain relative to it is "
        "undefined, so the affinity evaluations treat those rows as missing (rank-only)"
    )
    assert any("for 1 of 7 targets (t0): rank-only" in n for n in data["notes"])
    assert math.isfinite(data["pair_spearman"]) and math.isfinite(data["ranking_spearman"])


def _pairs_per_target(tmp_path: Path, counts: dict[str, int]) -> Path:
    """Seven tasks with baselines; target ``t`` has pairs with the first ``counts[t]`` others."""
    return write_pair_table(tmp_path / "few.csv", seed=5, popular=0.05, noise=0.01, counts=counts)


def test_targets_with_two_ranked_items_are_not_scored_and_named(tmp_path: Path) -> None:
    # t0 has two pair rows, and t1..t6 five (3 observed leave 2 hidden): each Spearman was +-1
    # whatever the predictions, and went into the reported means as a measurement.
    counts = {"t0": 2} | {f"t{i}": 5 for i in range(1, 7)}
    base = ["bench", "--seeds", "2", "--no-search", "--json", "--table"]
    result = runner.invoke(app, [*base, str(_pairs_per_target(tmp_path, counts))])
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["evaluations"] == ["pair_gains"]
    assert data["skipped"]["source_ranking"] == (
        "no target has more than 5 pair rows: with 3 observed, fewer than 3 hidden sources are "
        "left to rank"
    )
    assert any(
        n.startswith("pair_gains: t0 not scored: a Spearman needs 3 pair rows")
        for n in data["notes"]
    )
    # A sixth pair for t1 only: t1 is ranked, and the others are named (t0 too: with two
    # pairs it is not ranked at all)
    result = runner.invoke(app, [*base, str(_pairs_per_target(tmp_path, counts | {"t1": 6}))])
    data = json.loads(result.stdout)
    assert data["evaluations"] == ["pair_gains", "source_ranking"]
    assert any(
        n.startswith("source_ranking: t0, t2, t3, t4, t5 and 1 more not scored: with 3 observed")
        for n in data["notes"]
    ), data["notes"]
    assert math.isfinite(data["ranking_spearman"])
    # Two pair rows per target: nothing to score, and said so.
    path = _pairs_per_target(tmp_path, dict.fromkeys(counts, 2))
    result = runner.invoke(app, ["bench", "--table", str(path), "--seeds", "1", "--no-search"])
    assert result.exit_code == 0, result.stderr
    assert (
        "skipped_pair_gains: no target has 3 pair rows on 'val'; a Spearman of two is +-1 "
        "whatever the predictions" in result.stdout
    )


def test_search_counts_print_as_counts(table_file: Path) -> None:
    result = runner.invoke(
        app, ["bench", "--table", str(table_file), "--seeds", "2", "--samplers", "random,bandit"]
    )
    assert result.exit_code == 0, result.stderr
    lines = dict(line.split(": ", 1) for line in result.stdout.splitlines() if ": " in line)
    counts = {
        k: v for k, v in lines.items() if k.startswith(("trials_to", "distinct_to", "not_found"))
    }
    assert len(counts) == 6
    # whole numbers, or a median's half: 24, 9.5; never 0.0000
    assert all(re.fullmatch(r"\d+(\.5)?", v) for v in counts.values()), counts
    assert re.fullmatch(r"-?\d\.\d{4}", lines["spearman"])
