"""``taskgraph bench`` on tables of unusual shapes: it runs what each supports, skips the rest with
the reason, and reports what it measured (the items a Spearman is over, the folds it cut)."""

from __future__ import annotations

import itertools
import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from taskgraph.affinity.longtable import LongRow, LongTable, read_long_csv, write_long_csv
from taskgraph.cli.app import app
from taskgraph.testing import write_pair_table

runner = CliRunner()
HEADER = "target,task_set,split,value,higher_is_better\n"

#: Four targets with their pairs; only `a` has groups, three of them (a results table).
G3 = (
    HEADER
    + """\
a,a,val,0.5537,1
a,a+b,val,0.6232,1
a,a+c,val,0.6065,1
a,a+d,val,0.5047,1
b,b,val,0.6982,1
b,a+b,val,0.6881,1
b,b+c,val,0.7285,1
b,b+d,val,0.7559,1
c,c,val,0.5375,1
c,a+c,val,0.4432,1
c,b+c,val,0.6047,1
c,c+d,val,0.5241,1
d,d,val,0.8049,1
d,a+d,val,0.7053,1
d,b+d,val,0.794,1
d,c+d,val,0.8492,1
a,a+b+c,val,0.61,1
a,a+b+d,val,0.58,1
a,a+c+d,val,0.52,1
"""
)

#: Groups of size >= 3 and baselines, no pair row.
GROUPS_ONLY = (
    HEADER
    + """\
a,a,val,0.50,1
a,a+b+c,val,0.55,1
a,a+b+d,val,0.52,1
a,a+c+d,val,0.47,1
a,a+b+c+d,val,0.60,1
b,b,val,0.70,1
b,a+b+c,val,0.72,1
b,a+b+d,val,0.66,1
b,b+c+d,val,0.75,1
b,a+b+c+d,val,0.69,1
"""
)


def _write(tmp_path: Path, text: str, name: str = "table.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _bench(*args: str) -> Any:
    return runner.invoke(app, ["bench", *args])


def _json(result: Any) -> dict[str, Any]:
    assert result.exit_code == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def _every_subset(
    tmp_path: Path,
    *,
    splits: tuple[str, ...] = ("val", "test"),
    no_baseline: dict[str, str] | None = None,
) -> Path:
    """Four tasks, every subset on each split; ``no_baseline``: target -> split without its baseline."""
    tasks = ("a", "b", "c", "d")
    rng = np.random.default_rng(7)
    effect = {(t, s): float(rng.normal(0, 0.05)) for t in tasks for s in tasks if s != t}
    rows = []
    for size in range(1, 5):
        for combo in itertools.combinations(tasks, size):
            for target in combo:
                gain = sum(effect[(target, s)] for s in combo if s != target)
                for split in splits:
                    if size == 1 and (no_baseline or {}).get(target) == split:
                        continue
                    value = 0.6 * (1 + gain + float(rng.normal(0, 0.002)))
                    rows.append(LongRow(target, frozenset(combo), split, value, True))
    path = tmp_path / "subsets.csv"
    write_long_csv(LongTable(rows=rows), path)
    return path


def _pairs(
    tmp_path: Path,
    counts: dict[str, int] | None = None,
    *,
    splits: tuple[str, ...] = ("val",),
    no_baseline: dict[str, str] | None = None,
) -> Path:
    """Seven tasks with baselines; target ``t`` has pairs with the first ``counts[t]`` others (all 6 by default)."""
    return write_pair_table(
        tmp_path / "pairs.csv", seed=5, popular=0.05, noise=0.01,
        splits=splits, counts=counts, no_baseline=no_baseline,
    )  # fmt: skip


# ------------------------------------------------------------------ 1. task metadata coverage
def test_metadata_of_none_of_the_tables_tasks_is_a_note_not_a_traceback(tmp_path: Path) -> None:
    # `source:x` alternatives were built from the whole file, and a fit whose tasks lack `x`
    # died with "ValueError: 'x' is not in list".
    metadata = tmp_path / "meta.json"
    metadata.write_text(json.dumps({"tasks": {"zzz": {"features": {"x": 1}}}}))
    base = ["--table", str(_pairs(tmp_path)), "--seeds", "1", "--no-search", "--json"]
    data = _json(_bench(*base, "--method", "sourcerank", "--task-metadata", str(metadata)))
    assert data["evaluations"] == ["pair_gains", "source_ranking"]
    assert (
        "--task-metadata: the file has no text or feature for any of the table's 7 tasks (it "
        "describes zzz): sourcerank gets no task metadata" in data["notes"]
    )
    assert not any("cross-validation" in n for n in data["notes"])  # no alternative was weighed


def test_metadata_of_some_tasks_is_used_and_the_gaps_are_named(tmp_path: Path) -> None:
    from taskgraph.affinity.estimators.sourcerank import DEFAULT_FEATURES
    from taskgraph.app.bench import metadata_options

    metadata = tmp_path / "meta.json"
    described = {f"t{i}": {"features": {"x": i}} for i in range(5)} | {
        "zzz": {"features": {"y": 1}}
    }
    metadata.write_text(json.dumps({"tasks": described}))
    tasks = [f"t{i}" for i in range(7)]
    options, notes = metadata_options("sourcerank", metadata, tasks=tasks)
    assert options["alternatives"] == [
        [*DEFAULT_FEATURES, "source:x"]
    ]  # no `y`: no table task has it
    assert set(options["task_features"]) == {f"t{i}" for i in range(5)}
    assert notes == [
        "task_metadata: 2 of the table's 7 tasks lack feature 'x' (t5, t6): their source:x "
        "score is the average one"
    ]
    base = ["--table", str(_pairs(tmp_path)), "--seeds", "1", "--no-search", "--json"]
    data = _json(_bench(*base, "--method", "sourcerank", "--task-metadata", str(metadata)))
    assert "--task-metadata: 2 of the table's 7 tasks lack feature 'x' (t5, t6)" in " ".join(
        data["notes"]
    )
    assert math.isfinite(data["ranking_spearman"])


def test_a_sourcerank_fit_without_the_tasks_that_have_a_feature_gets_the_average_score(
    tmp_path: Path,
) -> None:
    # A held-out fold can remove every task that has a feature (a source seen with one target
    # only): the fit then had no column for it and failed on `source:x`.
    from taskgraph.affinity.estimators.sourcerank import DEFAULT_FEATURES, SourceRankEstimator

    table = read_long_csv(_pairs(tmp_path))
    records = [r for r in table.to_records(split="val") if "t6" not in r.task_set]
    estimator = SourceRankEstimator(
        features=[*DEFAULT_FEATURES, "source:x"], task_features={"t6": {"x": 1.0}}
    ).fit(records)
    mean, _ = estimator.predict("t0", {"t1"})
    assert math.isfinite(mean)


def test_textemb_with_texts_of_other_tasks_only_is_refused_naming_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Texts of tasks the table does not have were embedded and handed over: textemb predicted
    # one gain for everything and bench printed `pair_spearman: nan`, blaming pairwise and hoa.
    import taskgraph.models.task_embeddings as embeddings

    def fake(texts: dict[str, list[str]], **_: Any) -> dict[str, np.ndarray]:
        return {t: np.full(4, float(len(t))) for t in texts}

    monkeypatch.setattr(embeddings, "text_embeddings", fake)
    texts = tmp_path / "texts.json"
    texts.write_text(
        json.dumps({"tasks": {"zz": {"texts": ["classify"]}, "yy": {"texts": ["tag"]}}})
    )
    features = tmp_path / "features.json"
    features.write_text(json.dumps({"tasks": {"t0": {"features": {"x": 1}}}}))
    path = _pairs(tmp_path)
    for metadata in (texts, features):
        result = _bench(
            "--table", str(path), "--method", "textemb", "--task-metadata", str(metadata)
        )
        assert result.exit_code != 0 and result.stdout == ""
        assert result.stderr.strip() == (
            f"error: `--method textemb` needs task texts, and --task-metadata {metadata} has no "
            "text for any of the table's 7 tasks (docs/affinity.md, Estimators, 'Task metadata')"
        )


def test_setfn_with_texts_of_some_tasks_names_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import taskgraph.models.task_embeddings as embeddings
    from taskgraph.app.bench import metadata_options

    embedded: list[set[str]] = []

    def fake(texts: dict[str, list[str]], **_: Any) -> dict[str, np.ndarray]:
        embedded.append(set(texts))
        return {t: np.arange(4.0) + len(t) for t in texts}

    monkeypatch.setattr(embeddings, "text_embeddings", fake)
    metadata = tmp_path / "meta.json"
    metadata.write_text(json.dumps({"tasks": {"t0": {"texts": ["a"]}, "zz": {"texts": ["b"]}}}))
    options, notes = metadata_options("setfn", metadata, tasks=["t0", "t1"])
    assert embedded == [{"t0"}] and set(options["task_embeddings"]) == {"t0"}
    assert notes == [
        "task_metadata: 1 of the table's 2 tasks have no text (t1): setfn gives them no text "
        "similarity to any other task"
    ]


# --------------------------------------------------- 2-4. what gain prediction can score
def test_a_score_split_without_baselines_skips_gain_prediction_and_says_so(tmp_path: Path) -> None:
    # Every baseline on val only: no gain is defined on test, and bench exited 2 ("no seed gave
    # setfn a finite Spearman") instead of running the pair gains.
    path = _every_subset(tmp_path, no_baseline=dict.fromkeys("abcd", "test"))
    data = _json(_bench("--table", str(path), "--seeds", "2", "--no-search", "--json"))
    assert data["evaluations"] == ["pair_gains"]
    assert data["skipped"]["gain_prediction"] == (
        "no target with groups of size >= 3 has a baseline row on 'test', the score split: "
        "their gains there are undefined"
    )
    assert (
        "no baseline row on 'test' (the score split) for 4 of 4 targets (a, b, c, d), though "
        "'val' has one: their gains on 'test' are undefined, so they are rank-only in "
        "pair_gains (their pairs scored against their 'test' values) and left out of "
        "gain_prediction" in data["notes"]
    )


def test_some_targets_without_a_score_baseline_are_noted(tmp_path: Path) -> None:
    path = _every_subset(tmp_path, no_baseline={"a": "test"})
    data = _json(_bench("--table", str(path), "--seeds", "2", "--no-search", "--json"))
    assert data["evaluations"] == ["gain_prediction", "pair_gains"]
    assert any(
        n.startswith("no baseline row on 'test' (the score split) for 1 of 4 targets (a)")
        for n in data["notes"]
    ), data["notes"]
    assert math.isfinite(data["spearman"])


def test_groups_without_pairs_skip_gain_prediction(tmp_path: Path) -> None:
    # Nothing but baselines in the fit: every prediction equal, and bench exited 2.
    path = _write(tmp_path, GROUPS_ONLY)
    result = _bench("--table", str(path), "--seeds", "2", "--no-search")
    assert result.exit_code == 0, result.stderr
    assert (
        "skipped_gain_prediction: nothing to learn a gain from: no pair row on 'val' of a target "
        "with a baseline there, and `--fit-fraction` 0.1 fits none of the 5 groups of size >= 3"
        in result.stdout
    )
    assert "evaluations: (none)" in result.stdout
    # With groups fitted, setfn learns from them; HOA, which needs pairs, is nan and said so.
    data = _json(_bench("--table", str(path), "--seeds", "2", "--no-search", "--json",
                        "--fit-fraction", "0.5"))  # fmt: skip
    assert data["evaluations"] == ["gain_prediction"]
    assert data["spearman_hoa"] is None and math.isfinite(data["spearman"])
    assert any(n.startswith("spearman_hoa is undefined (nan): HOA predicts") for n in data["notes"])


@pytest.mark.parametrize(("fraction", "left"), [("0.4", 2), ("0.5", 1)])
def test_a_fit_fraction_that_leaves_too_few_gains_skips_gain_prediction(
    tmp_path: Path, fraction: str, left: int
) -> None:
    # 0.4 fits one of a's three groups: `spearman: 1.0000` over the two left (a Spearman of two
    # is +-1 whatever the predictions); 0.5 fits two and bench exited 2.
    path = _write(tmp_path, G3)
    result = _bench("--table", str(path), "--seeds", "2", "--no-search", "--fit-fraction", fraction)
    assert result.exit_code == 0, result.stderr
    fitted = round(float(fraction) * 3)
    assert (
        f"skipped_gain_prediction: `--fit-fraction` {fraction} fits {fitted} of the 3 groups of "
        f"size >= 3 and leaves at most {left} of their 3 gains with a baseline row to score; a "
        "Spearman needs 3" in result.stdout
    )
    assert "\nspearman:" not in result.stdout
    assert "evaluations: pair_gains" in result.stdout


def test_seeds_that_leave_too_few_gains_are_not_scored(tmp_path: Path) -> None:
    # Seed 0 fits {b,c,d} (three gains) and leaves two; seed 1 fits {a,b,d} and leaves four.
    rows = [f"{t},{t},val,{v},1" for t, v in zip("abcd", (0.5, 0.6, 0.7, 0.8), strict=True)]
    rows += [
        f"{t},{'+'.join(sorted({t, s}))},val,{0.5 + 0.1 * i + 0.013 * j},1"
        for i, t in enumerate("abcd") for j, s in enumerate("abcd") if s != t
    ]  # fmt: skip
    rows += ["a,a+b+c,val,0.55,1", "a,a+b+d,val,0.53,1", "b,b+c+d,val,0.66,1",
             "c,b+c+d,val,0.71,1", "d,b+c+d,val,0.79,1"]  # fmt: skip
    path = _write(tmp_path, HEADER + "\n".join(rows) + "\n")
    data = _json(_bench("--table", str(path), "--seeds", "2", "--no-search", "--json",
                        "--fit-fraction", "0.4"))  # fmt: skip
    assert data["evaluations"][0] == "gain_prediction"
    assert (
        "gain_prediction: 1 of 2 seeds fit groups that leave fewer than 3 gains to score "
        "(`--fit-fraction` 0.4); the Spearman is the mean over the other 1" in data["notes"]
    )
    assert data["spearman"] is not None and -1.0 <= data["spearman"] <= 1.0


def test_gain_prediction_reports_no_spearman_over_fewer_than_min_ranked_gains(
    tmp_path: Path,
) -> None:
    from taskgraph.affinity.evaluation import (
        MIN_RANKED,
        evaluate_gain_prediction,
        gain_prediction_cells,
    )

    table = read_long_csv(_write(tmp_path, G3))
    cells = gain_prediction_cells(table, fit_fraction=0.4, seeds=[0, 1], fit_split="val",
                                  score_split="val")  # fmt: skip
    assert {seed: len(c) for seed, c in cells.items()} == {0: 2, 1: 2}
    outcome = evaluate_gain_prediction(
        table, ["hoa"], fit_fraction=0.4, fit_split="val", score_split="val", min_ranked=MIN_RANKED
    )
    assert outcome["n_queries"] == 2 and math.isnan(outcome["hoa"]["spearman"])


# ----------------------------------------------------------------- 5. the search's bound
def test_a_target_without_its_baseline_row_is_still_searched_over_every_subset(
    tmp_path: Path,
) -> None:
    # `a` has every group but no baseline row: it was searched over single auxiliaries, with a
    # note that the table lacked its larger groups.
    from taskgraph.search.benchmarking import search_max_size

    path = _every_subset(tmp_path, splits=("val",), no_baseline={"a": "val"})
    table = read_long_csv(path)
    assert search_max_size(table, "a") is None and search_max_size(table, "b") is None
    data = _json(_bench("--table", str(path), "--seeds", "1", "--json", "--samplers", "random"))
    assert not any("lacks larger groups" in n for n in data["notes"]), data["notes"]
    assert (
        "search: no baseline row on 'val' for a: the first trial of each of their searches, the "
        "target alone as a study enqueues it, has no answer and counts as a failed trial"
        in data["notes"]
    )
    pairs_only = read_long_csv(_pairs(tmp_path))
    assert search_max_size(pairs_only, "t0") == 1  # what a pairs-only table still gets


# -------------------------------------------------------------------- 6. the folds cut
def test_the_reported_folds_are_the_folds_cut(tmp_path: Path) -> None:
    # `--folds 50` on 6 pairs per target printed `pair_folds: 50`; each target was cut into 6.
    path = _pairs(tmp_path)
    base = ["--table", str(path), "--seeds", "1", "--no-search", "--json"]
    fifty = _json(_bench(*base, "--folds", "50"))
    assert fifty["pair_folds"] == 6
    assert (
        "pair_gains: `--folds` 50 is more than any target's pairs (6 each): min(50, pairs) "
        "folds per target, leave-one-out for every target here" in fifty["notes"]
    )
    assert any("leave-one-out over each target's pairs" in n for n in fifty["notes"])
    six = _json(_bench(*base, "--folds", "6"))
    assert six["pair_folds"] == 6 and six["pair_spearman"] == fifty["pair_spearman"]
    # Targets of different sizes: the k is per target, and the report says which got fewer.
    mixed = _json(_bench("--table", str(_pairs(tmp_path, {"t0": 3, "t1": 4})), "--seeds", "1",
                         "--no-search", "--json"))  # fmt: skip
    assert mixed["pair_folds"] == "min(5, pairs)"
    assert (
        "pair_gains: `--folds` 5 is more than the pairs of 2 of 7 targets (t0, t1): min(5, "
        "pairs) folds per target, leave-one-out for those, 5 folds for the others" in mixed["notes"]
    )


# ------------------------------------------------------------------------ 7. cosmetics
def test_a_negative_zero_prints_as_zero() -> None:
    from taskgraph.cli.bench import _text

    assert _text(-1e-17) == "0.0000" and _text(-0.0) == "0.0000"
    assert _text(-0.00004) == "0.0000" and _text(-0.00006) == "-0.0001"


def test_the_one_split_note_names_only_the_evaluations_that_ran(tmp_path: Path) -> None:
    data = _json(_bench("--table", str(_pairs(tmp_path)), "--seeds", "1", "--no-search", "--json"))
    assert data["notes"][0] == (
        "one split ('val'): every evaluation fits and scores disjoint cells of it (5-fold over "
        "each target's pairs; each target's hidden sources)"
    )
    assert not any("held-out groups" in n for n in data["notes"])


def test_progress_shows_each_evaluation_from_its_start_and_moves_per_fit(tmp_path: Path) -> None:
    # A setfn fit of MIMIC-27 takes half a minute: the pair gains (135 fits) and the source
    # ranking reported once, at their end, and nothing showed for 15 minutes.
    from taskgraph.search.bench_report import run_bench

    steps: list[tuple[str, int, int]] = []
    run_bench(
        read_long_csv(_every_subset(tmp_path, splits=("val",))), seeds=2, fit_fraction=0.3,
        samplers=["random"], on_step=lambda name, done, total: steps.append((name, done, total)),
    )  # fmt: skip
    by_name: dict[str, list[tuple[int, int]]] = {}
    for name, done, total in steps:
        by_name.setdefault(name, []).append((done, total))
    # 2 seeds x (setfn + hoa); 4 targets x 3 pairs, leave-one-out; 2 seeds x 4 targets
    assert by_name["gain prediction"] == [(i, 4) for i in range(5)]
    assert by_name["pair gains"] == [(i, 12) for i in range(13)]
    assert by_name["search efficiency"] == [(i, 8) for i in range(9)]


def test_the_progress_display_is_off_with_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import rich.progress

    from taskgraph.cli.output import stderr_console

    shown: list[bool] = []

    class Recorded(rich.progress.Progress):
        def __init__(self, *columns: Any, disable: bool = False, **options: Any) -> None:
            shown.append(not disable)
            super().__init__(*columns, disable=True, **options)

    monkeypatch.setattr(rich.progress, "Progress", Recorded)
    monkeypatch.setattr(stderr_console, "_force_terminal", True)  # as in a terminal
    base = ["--table", str(_pairs(tmp_path)), "--seeds", "1", "--no-search"]
    assert _bench(*base).exit_code == 0
    assert _bench(*base, "--json").exit_code == 0
    assert shown == [True, False]
    assert re.search(r"^pair_spearman: -?\d\.\d{4}$", _bench(*base).stdout, re.MULTILINE)
