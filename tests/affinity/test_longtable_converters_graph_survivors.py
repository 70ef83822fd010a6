"""What the mutation audit of longtable.py, converters.py and graph.py found untested.

The long CSV reader's error lines and its leniency (blank rows, spaces after commas), values
written and keys built as the format says, the published tables converted with each number
under its own target, source and setting, and the graph's edges and exports saying what the
estimator found (pair runs, left-out edges, baselines, measured gains, line widths).
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest

from taskgraph.affinity.converters import STANDLEY_TASKS, convert
from taskgraph.affinity.estimators import HigherOrderEstimator, SetFunctionEstimator
from taskgraph.affinity.graph import affinity_graph, graph_from_edges, write_graph
from taskgraph.affinity.longtable import (
    LongRow,
    LongTable,
    check_magnitudes,
    read_long_csv,
    write_long_csv,
)
from taskgraph.affinity.records import ScoreRecord
from taskgraph.errors import DataFormatError
from taskgraph.testing import write_long_rows

# --- the long CSV format ------------------------------------------------------------------


def test_a_repeated_row_names_the_line_of_its_first_occurrence(tmp_path: Path) -> None:
    path = write_long_rows(tmp_path, ["a,a,val,0.5,1", "a,a+b,val,0.6,1", "a,a,val,0.7,1"])
    with pytest.raises(DataFormatError, match=r"t.csv:4: .*got a repeat of line 2$"):
        read_long_csv(path)


def test_a_direction_change_names_the_targets_first_row(tmp_path: Path) -> None:
    path = write_long_rows(tmp_path, ["a,a,val,0.5,1", "a,a+b,val,0.6,1", "a,a+c,val,0.4,0"])
    with pytest.raises(DataFormatError, match=r"t.csv:4: .*for target 'a' as on line 2, got 0"):
        read_long_csv(path)


def test_rows_of_empty_cells_are_read_past(tmp_path: Path) -> None:
    # A spreadsheet writes its blank rows as bare commas.
    path = write_long_rows(tmp_path, ["a,a,val,0.5,1", ",,,,", " , , , , ", "a,a+b,val,0.6,1"])
    table = read_long_csv(path)
    assert [r.value for r in table] == [0.5, 0.6]
    assert table.lines[("a", frozenset({"a", "b"}), "val")] == 5


def test_spaces_around_cells_are_read_past(tmp_path: Path) -> None:
    path = write_long_rows(tmp_path, ["a, a, val, 0.5, 1", " a , a + b , test , 0.6 , 1 "])
    assert read_long_csv(path).rows == [
        LongRow("a", frozenset({"a"}), "val", 0.5, True),
        LongRow("a", frozenset({"a", "b"}), "test", 0.6, True),
    ]


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e999"])
def test_a_value_that_is_no_finite_number_is_refused(tmp_path: Path, value: str) -> None:
    path = write_long_rows(tmp_path, ["a,a,val,0.5,1", f"a,a+b,val,{value},1"])
    with pytest.raises(DataFormatError, match=r"t.csv:3: expected a finite number in 'value'"):
        read_long_csv(path)


def test_written_task_sets_are_sorted_names(tmp_path: Path) -> None:
    # Set iteration follows string hashes: only sorting makes one file per table.
    names = ["t7", "t3", "t0", "t5", "t1", "t6", "t2", "t4"]
    rows = [
        LongRow(combo[0], frozenset(combo), "val", 0.5, True)
        for combo in itertools.combinations(names, 4)
    ]
    path = tmp_path / "t.csv"
    write_long_csv(LongTable(rows=rows), path)
    written = [line.split(",")[1] for line in path.read_text().splitlines()[1:]]
    assert written == ["+".join(sorted(r.task_set)) for r in rows]


def test_records_carry_the_family_asked_for(tmp_path: Path) -> None:
    table = read_long_csv(write_long_rows(tmp_path, ["a,a,val,0.5,1"], name="pub.csv"))
    assert {r.family for r in table.to_records(family="bert")} == {"bert"}
    assert {(r.family, r.study) for r in table.to_records()} == {("pub", "pub")}


def test_a_large_negative_value_is_refused_like_a_large_positive_one(tmp_path: Path) -> None:
    path = write_long_rows(tmp_path, ["a,a,val,0.5,0", "a,a+b,val,-1e101,0"])
    with pytest.raises(DataFormatError, match=r"got -1e\+101 on line 3"):
        check_magnitudes(read_long_csv(path), path=path)


# --- converters ---------------------------------------------------------------------------


def _taskonomy_root(root: Path, mask: list[str], gains: list[str]) -> Path:
    """Write MTG-Net's Taskonomy files (mask: comma-separated, gains: spaces) under ``root``."""
    folder = root / "mtgnet2022_song" / "taskonomy"
    folder.mkdir(parents=True)
    (folder / "taskonomy_x.csv").write_text("".join(f"{line}\n" for line in mask))
    (folder / "taskonomy.csv").write_text("".join(f"{line}\n" for line in gains))
    return root


def test_each_member_of_a_group_gets_its_own_column(tmp_path: Path) -> None:
    root = _taskonomy_root(
        tmp_path,
        ["1,0,0,0,0", "0,1,0,0,0", "0,1,1,0,1"],
        ["0 0 0 0 0", "0 0 0 0 0", "0 0.01 0.02 0 0.05"],
    )
    table = convert("taskonomy5", root=root)
    group = {"taskonomy1", "taskonomy2", "taskonomy4"}
    assert table.networks("val")[frozenset(group)] == pytest.approx(
        {"taskonomy1": 1.01, "taskonomy2": 1.02, "taskonomy4": 1.05}
    )


def test_a_gain_file_of_other_length_than_its_mask_names_the_file(tmp_path: Path) -> None:
    root = _taskonomy_root(tmp_path, ["1,0,0,0,0", "1,1,0,0,0"], ["0 0 0 0 0"])
    with pytest.raises(DataFormatError, match=r"taskonomy.csv: expected 2 rows like"):
        convert("taskonomy5", root=root)


def test_a_short_row_of_a_gain_file_names_its_line(tmp_path: Path) -> None:
    root = _taskonomy_root(
        tmp_path, ["1,0,0,0,0", "1,1,0,0,0"], ["0 0 0 0 0", "", "0 0.1 0 0"]
    )  # the blank line still counts
    with pytest.raises(DataFormatError, match=r"taskonomy.csv:3: expected 5 columns, got 4"):
        convert("taskonomy5", root=root)


def _standley_root(root: Path, val: list[str]) -> Path:
    """Write setting 1's files: ``val`` (after the half-size line) and a one-subset test file."""
    folder = root / "standley2020_taskgrouping"
    folder.mkdir(parents=True)
    half = "\t".join(["0.5"] * 5)
    (folder / "results.txt").write_text("\n".join([half, *val]) + "\n")
    (folder / "results_test.txt").write_text("\n".join([half, "0.1\t\t\t\t"]) + "\n")
    return root


def test_a_bad_standley_line_is_named_by_its_line_in_the_file(tmp_path: Path) -> None:
    root = _standley_root(tmp_path, ["0.1\t\t\t\t", "\t0.2\t\t"])
    with pytest.raises(DataFormatError, match=r"results.txt:3: expected 5 tab-separated cells"):
        convert("standley_s1", root=root)


def test_a_repeated_standley_subset_is_refused(tmp_path: Path) -> None:
    root = _standley_root(tmp_path, ["0.1\t0.2\t\t\t", "0.3\t0.4\t\t\t"])
    with pytest.raises(DataFormatError, match=r"results.txt:3: expected a new non-empty task"):
        convert("standley_s1", root=root)


def test_only_standley_setting_4_has_the_other_task_names(benchmarks_dir: Path) -> None:
    for setting in (1, 2, 3):
        table = convert(f"standley_s{setting}", root=benchmarks_dir)
        assert table.targets == sorted(STANDLEY_TASKS), setting
    assert convert("standley_s4", root=benchmarks_dir).targets == [f"alt{i}" for i in range(5)]


def _taskweb_root(root: Path, rows: list[str]) -> Path:
    folder = root / "taskweb2023_kim"
    folder.mkdir(parents=True)
    header = "target,source,adaptation,model,PC_avg_pct_change,PM_prop_positive"
    (folder / "taskweb_pairwise.csv").write_text("\n".join([header, *rows]) + "\n")
    return root


def test_taskweb_scores_each_target_from_its_own_rows_and_setting(tmp_path: Path) -> None:
    root = _taskweb_root(
        tmp_path,
        [
            "x,y,ALL,ALL,0.2,0.6",  # 0.5 * 0.2 + 0.5 * (0.2 * 0.6 - 0.1) = 0.11
            "y,x,ALL,ALL,-0.4,0.0",  # -0.2 - 0.05 = -0.25
            "x,y,bitfit,t5b,0.9,1.0",
            "x,y,ALL,t5b,0.7,1.0",
        ],
    )
    table = convert("taskweb", root=root)
    networks = table.networks("val")
    assert networks[frozenset({"x", "y"})] == pytest.approx({"x": 1.11, "y": 0.75})
    assert networks[frozenset({"x"})] == {"x": 1.0}


def test_a_csv_source_without_its_columns_names_the_file(tmp_path: Path) -> None:
    folder = tmp_path / "bingel2017_eacl"
    folder.mkdir()
    (folder / "pairwise_mtl_gain.csv").write_text("main_task,aux_task,change\nccg,pos,1.0\n")
    with pytest.raises(DataFormatError, match=r"pairwise_mtl_gain.csv:1: expected columns"):
        convert("bingel", root=tmp_path)


# --- the graph and its exports ------------------------------------------------------------


def _record(target: str, task_set: set[str], value: float) -> ScoreRecord:
    return ScoreRecord(task=target, task_set=frozenset(task_set | {target}), value=value)


def test_pair_runs_count_only_the_runs_of_the_pair_alone() -> None:
    # setfn counts a run of any set holding the source as evidence (pair-based estimators: pairs)
    records = [
        _record("a", set(), 0.5),
        _record("a", {"b"}, 0.6),
        _record("a", {"b", "c"}, 0.55),
        _record("b", set(), 0.5),
        _record("b", {"a"}, 0.4),
        _record("c", set(), 0.5),
    ]
    edge = affinity_graph(SetFunctionEstimator().fit(records)).edges["b", "a"]
    assert (edge["evidence_runs"], edge["pair_runs"]) == (2, 1)


def _sparse_records() -> list[ScoreRecord]:
    """Return records in which target a was never trained with c: a has no evidence from c."""
    return [
        _record("a", set(), 0.5),
        _record("a", {"b"}, 0.6),
        _record("b", set(), 0.5),
        _record("b", {"a"}, 0.4),
        _record("b", {"c"}, 0.45),
        _record("c", set(), 0.5),
        _record("c", {"a"}, 0.55),
    ]


def test_edges_left_out_for_min_evidence_one_are_counted_in_the_graph_and_dot(
    tmp_path: Path,
) -> None:
    graph = affinity_graph(HigherOrderEstimator().fit(_sparse_records()), min_evidence=1)
    assert ("c", "a") not in graph.edges and ("b", "a") in graph.edges
    left_out = 6 - graph.number_of_edges()
    assert left_out > 0
    assert (graph.graph["min_evidence"], graph.graph["left_out_edges"]) == (1, left_out)
    dot = write_graph(graph, tmp_path / "g.dot").read_text()
    assert f"// {left_out} edges with fewer than 1 runs left out (min evidence)" in dot


def test_targets_restrict_the_edges_to_those_into_them() -> None:
    graph = affinity_graph(HigherOrderEstimator().fit(_sparse_records()), targets=["a"])
    assert sorted(graph.edges) == [("b", "a"), ("c", "a")]


def test_dot_says_baselines_measured_gains_and_widths_by_magnitude(tmp_path: Path) -> None:
    graph = graph_from_edges(
        [
            {"source": "b", "target": "a", "predicted_relative_gain": -0.4,
             "measured_relative_gain": 0.1},
            {"source": "c", "target": "a", "predicted_relative_gain": 0.2},
        ]
    )  # fmt: skip
    graph.nodes["a"]["baseline"] = 0.8125
    dot = write_graph(graph, tmp_path / "g.dot").read_text()
    assert '"a" [label="a\\nbaseline 0.8125"];' in dot
    harmful = next(line for line in dot.splitlines() if '"b" -> "a"' in line)
    helpful = next(line for line in dot.splitlines() if '"c" -> "a"' in line)
    assert 'label="-0.40 (meas. +0.10)"' in harmful and "color=firebrick" in harmful
    widths = [
        float(w) for line in (harmful, helpful) for w in re.findall(r"penwidth=([-0-9.]+)", line)
    ]
    assert widths == [5.0, 2.75]  # the largest |gain| is widest, whatever its sign
