"""Results tables from a synthetic records database: cells, intervals, cost, CSV and README."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from taskgraph.affinity.longtable import read_long_csv
from taskgraph.app.results.build import build_table, results_table
from taskgraph.app.results.intervals import Cell, Paired, mean_interval
from taskgraph.app.results.table import ResultRow
from taskgraph.app.results.writing import replace_section, section_markers, write_results
from taskgraph.cli.app import app
from taskgraph.errors import ConfigError, StorageError
from taskgraph.storage import open_repository
from taskgraph.testing import SHARING_SPACES, run_fake_study

runner = CliRunner()

# The fake evaluator scores every task 0.5 + its auxiliaries' known effects + 0.001 x seed on
# dev: good +0.2, bad -0.15.
ROWS = [
    {"name": "alone", "params": {"sharing": "hard"}},
    {"name": "good", "auxiliaries": ["good"], "params": {"sharing": "hard"}},
    {
        "name": "good_soft",
        "auxiliaries": ["good"],
        "params": {"sharing": "soft", "soft/lambda": 0.1},
    },
    {"name": "good_bad", "auxiliaries": ["good", "bad"], "params": {"sharing": "hard"}},
]
SPEC: dict[str, Any] = {
    "name": "table",
    "target": "tgt",
    "objective": {"metric": "accuracy"},
    "candidates": ["good", "bad", "meh"],
    "search": {"sharing": ["hard", "soft"]},
    "sampler": {"name": "random", "seed": 0},
    "budget": {"trials": 4},
    "seeds": 3,
    "rows": ROWS,
}
T_975_2 = 4.302652729749464  # Student t, 97.5 % quantile, 2 degrees of freedom (tables)


@pytest.fixture(scope="module")
def storage(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('results') / 'records.db'}"
    return run_fake_study(SPEC, url)


@pytest.fixture(autouse=True)
def _fake_sharing_spaces(monkeypatch: pytest.MonkeyPatch) -> None:
    # The fake `soft` architecture's space stands in for the registry's.
    import taskgraph.search.sharing_space as sharing_space

    monkeypatch.setattr(sharing_space, "registry_spaces", lambda names, **_: SHARING_SPACES)


def test_mean_interval_hand_computed() -> None:
    mean, half = mean_interval([0.5, 0.501, 0.502])
    assert mean == pytest.approx(0.501)
    assert half == pytest.approx(T_975_2 * 0.001 / math.sqrt(3))
    mean, half = mean_interval([2.0])
    assert mean == 2.0 and math.isnan(half)
    with pytest.raises(ConfigError, match="at least one number"):
        mean_interval([])


def test_a_one_seed_cell_shows_its_value_alone() -> None:
    # one seed has no interval: the value alone, no "± nan"
    assert Cell(values=(0.5,)).text() == "0.500"
    assert Cell(values=(0.5,)).text(digits=2) == "0.50"
    assert Cell(values=()).text() == "not run"
    assert Cell(values=(0.5, 0.5)).text() == "0.500 ± 0.000"


def test_paired_difference_hand_computed() -> None:
    paired = Paired(differences=(0.024, 0.033, 0.032))
    mean = (0.024 + 0.033 + 0.032) / 3
    sd = math.sqrt(sum((d - mean) ** 2 for d in paired.differences) / 2)
    assert paired.mean == pytest.approx(mean) and paired.se == pytest.approx(sd / math.sqrt(3))
    # t = mean / se with 2 degrees of freedom: p = 2 * (1 - F(t)), F the t distribution's CDF
    t = mean / (sd / math.sqrt(3))
    assert paired.p_value == pytest.approx(1 - t / math.sqrt(2 + t * t))  # closed form, 2 d.f.
    assert paired.text() == f"+{mean:.3f} ± {sd / math.sqrt(3):.3f} (p {paired.p_value:.2f})"
    assert Paired(differences=(-0.01,)).text() == "-0.010" and Paired(differences=()).text() == ""
    assert math.isnan(Paired(differences=(0.1,)).p_value)


def test_paired_difference_without_spread_has_no_p_value() -> None:
    # Every seed 0.010 better (tabular studies with identical seeds): p 0.00 claimed a
    # certainty no t-test can give, and an identical pair claimed p 1.00.
    for differences in ((0.01, 0.01, 0.01), (0.0, 0.0), (0.3 - 0.2, 0.4 - 0.3, 0.5 - 0.4)):
        paired = Paired(differences=differences)
        assert math.isnan(paired.p_value) and paired.no_spread, differences
    assert (
        Paired(differences=(0.01, 0.01, 0.01)).text() == "+0.010 ± 0.000 (no spread over 3 seeds)"
    )
    assert Paired(differences=(0.0, 0.0)).text() == "+0.000 ± 0.000 (no spread over 2 seeds)"
    # A spread below the printed digits is still a spread: the t-test applies.
    tiny = Paired(differences=(0.0100, 0.0101, 0.0102))
    assert not tiny.no_spread and tiny.p_value < 0.001
    assert tiny.text() == "+0.010 ± 0.000 (p 0.00)"
    assert not Paired(differences=(0.1,)).no_spread and not Paired(differences=()).no_spread
    # Scores near 1e5 (a raw MSE) plus a constant 0.1: their rounding, not the differences',
    # bounds the spread; the t-test used to print p 0.00 for it.
    from types import SimpleNamespace

    def run(seed: int, value: float) -> Any:
        scores = {"t": {"test": {"f1": value}}}
        return SimpleNamespace(status="complete", seed=seed, id=seed, scores=scores)

    base = (123456.789, 234567.891, 456789.123)
    reference = ResultRow("a", ("t",), tuple(run(i, v) for i, v in enumerate(base)))
    row = ResultRow("b", ("t",), tuple(run(i, v + 0.1) for i, v in enumerate(base)))
    offset = row.paired(reference, "test", "f1", task="t")
    assert offset.se > 0 and offset.no_spread and math.isnan(offset.p_value)
    assert offset.text() == "+0.100 ± 0.000 (no spread over 3 seeds)"


def test_results_json_gives_null_not_nan_for_a_paired_difference_without_spread(
    storage: str,
) -> None:
    import json

    table = results_table("table", storage=storage, metrics=["accuracy"], split="dev")
    text = json.dumps(table.to_dict(), allow_nan=False)  # NaN would raise here
    paired = json.loads(text)["rows"][3]["paired_difference"]
    assert paired["p_value"] is None and paired["se"] == pytest.approx(0.0, abs=1e-12)


def test_rows_cells_seeds_and_cost_from_the_records(storage: str) -> None:
    table = results_table("table", storage=storage, metrics=["accuracy"], split="dev")
    assert [row.name for row in table.rows] == ["alone", "good", "good_soft", "good_bad"]
    assert [row.task_set for row in table.rows] == [
        ("tgt",),
        ("good", "tgt"),
        ("good", "tgt"),
        ("bad", "good", "tgt"),
    ]
    half = T_975_2 * 0.001 / math.sqrt(3)
    for row, base in zip(table.rows, (0.5, 0.7, 0.7, 0.55), strict=True):
        cell = row.cell("dev", "accuracy", task="tgt")
        assert cell.values == pytest.approx((base, base + 0.001, base + 0.002))
        assert cell.mean == pytest.approx(base + 0.001)
        assert cell.half_width == pytest.approx(half)
        assert row.seconds == pytest.approx((0.01, 0.03))  # the fake's cost per run
    markdown = table.to_markdown()
    assert "| row | auxiliaries | accuracy | Δ accuracy vs alone | seeds |" in markdown
    assert "| alone | (none) | 0.501 ± 0.002 |  | 3 | 0 | 0 |" in markdown
    # every seed's good_bad run is 0.05 above the alone run of the same seed
    # (no p-value: a t-test on differences without spread has none to give)
    assert (
        "| good_bad | `bad`, `good` | 0.551 ± 0.002 | +0.050 ± 0.000 (no spread over 3 seeds) | 3 |"
        in markdown
    )
    paired = table.to_dict()["rows"][3]["paired_difference"]
    assert paired["reference"] == "alone" and paired["differences"] == pytest.approx([0.05] * 3)
    assert table.to_dict()["rows"][0]["paired_difference"] is None
    assert "Row good_soft has the task set of good" in markdown
    # no test scores: the default is the objective's split, and asking for test says what exists
    assert results_table("table", storage=storage).split == "dev"
    with pytest.raises(ConfigError, match=r"^`split` 'test': no run of 'table' has .* dev$"):
        results_table("table", storage=storage, split="test")
    with pytest.raises(ConfigError, match=r"^`metrics`: no run of 'table' has .* f9 on dev; its"):
        results_table("table", storage=storage, metrics=["accuracy", "f9"], split="dev")


def test_storage_defaults_to_taskgraph_storage(
    storage: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TASKGRAPH_STORAGE", storage)
    assert results_table("table", split="dev").to_markdown() == (
        results_table("table", storage=storage, split="dev").to_markdown()
    )


def test_long_csv_reads_back_and_bench_reads_it(storage: str, tmp_path: Path) -> None:
    table = results_table("table", storage=storage, split="dev")
    readme = tmp_path / "README.md"
    begin, end = section_markers("table")
    readme.write_text(f"# Results\n\n{begin}\n**Not yet run.**\n{end}\n\nafter\n")
    paths = write_results(table, tmp_path)
    assert paths == [tmp_path / "table.csv", readme]
    text = readme.read_text()
    assert "Not yet run" not in text and "| alone | (none) | 0.501 ± 0.002 |" in text
    assert text.endswith(f"{end}\n\nafter\n")
    long = read_long_csv(tmp_path / "table.csv")
    # one score per task set: good_soft shares good's task set and is left out
    assert [(r.task_set_key, r.split) for r in long] == [
        ("tgt", "val"),
        ("good+tgt", "val"),
        ("bad+good+tgt", "val"),
    ]
    assert [r.value for r in long] == pytest.approx([0.501, 0.701, 0.551])
    result = runner.invoke(app, ["bench", "--table", str(tmp_path / "table.csv"), "--seeds", "2"])
    assert result.exit_code == 0, result.stderr
    # written twice, the page is the same
    write_results(table, tmp_path)
    assert readme.read_text() == text


def test_a_page_without_the_section_is_refused_and_nothing_is_written(
    storage: str, tmp_path: Path
) -> None:
    table = results_table("table", storage=storage, split="dev")
    (tmp_path / "README.md").write_text("# Results\n")
    with pytest.raises(ConfigError, match="add the lines '<!-- results:table -->'"):
        write_results(table, tmp_path)
    assert not (tmp_path / "table.csv").exists()
    with pytest.raises(StorageError, match="no study 'other'"):
        results_table("other", storage=storage)
    with pytest.raises(ConfigError):
        replace_section("text", "table", "body")


def test_a_study_without_rows_gets_one_row_per_configuration(storage: str) -> None:
    with open_repository(storage) as repo:
        runs = repo.runs(study="table")
    plain = {k: v for k, v in SPEC.items() if k != "rows"}
    table = build_table("table", plain, runs, split="dev")
    assert [row.name for row in table.rows] == ["alone", "good", "good (2)", "bad+good"]
    assert [len(row.complete) for row in table.rows] == [3, 3, 3, 3]


def test_the_command_prints_and_writes(storage: str, tmp_path: Path) -> None:
    begin, end = section_markers("table")
    (tmp_path / "README.md").write_text(f"{begin}\n{end}\n")
    result = runner.invoke(
        app,
        [
            "records",
            "table",
            "table",
            "--storage",
            storage,
            "--split",
            "dev",
            "--write",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith(
        "| row | auxiliaries | accuracy | Δ accuracy vs alone | seeds |"
    )
    assert (tmp_path / "table.csv").is_file()
    missing = runner.invoke(app, ["records", "table", "nope", "--storage", storage])
    assert missing.exit_code == 2 and missing.stderr.startswith("error: no study 'nope'")
    # a folder the table cannot go to is the error, before the table is printed
    for folder, message in (
        (tmp_path / "none", f"error: --write {tmp_path / 'none'}: not a directory"),
        (tmp_path / "README.md", f"error: --write {tmp_path / 'README.md'}: not a directory"),
        (tmp_path / "empty", f"error: --write {tmp_path / 'empty'}: no README.md there; the "
         "results page is a README.md with the lines '<!-- results:table -->' and"),
    ):  # fmt: skip
        (tmp_path / "empty").mkdir(exist_ok=True)
        refused = runner.invoke(
            app, ["records", "table", "table", "--storage", storage, "--write", str(folder)]
        )
        assert refused.exit_code != 0 and refused.stdout == ""
        assert refused.stderr.startswith(message), refused.stderr


def test_a_screen_of_the_study_is_not_a_row(tmp_path: Path) -> None:
    from taskgraph.trial import LookaheadMatrix, TrialConfig, TrialResult, TrialStatus

    url = f"sqlite:///{tmp_path / 'screened.db'}"
    plain = {k: v for k, v in SPEC.items() if k != "rows"}
    run_fake_study(plain, url)
    rows_before = [row.name for row in results_table("table", storage=url, split="dev").rows]
    tasks = ["tgt", "good", "bad", "meh"]
    with open_repository(url) as repo:
        repo.add_screen(
            study="table",
            config=TrialConfig(target="tgt", auxiliaries=("good", "bad", "meh")),
            result=TrialResult(
                status=TrialStatus.COMPLETE,
                lookahead=LookaheadMatrix(tasks=tasks, values=[[0.0] * 4 for _ in tasks]),
            ),
            details={},
        )
        assert any(run.trial_number < 0 for run in repo.runs(study="table"))
    table = results_table("table", storage=url, split="dev")
    assert [row.name for row in table.rows] == rows_before
    assert all(row.complete for row in table.rows)


def test_pruned_runs_are_not_counted_as_failed() -> None:
    """A pruned run was stopped early by the pruner; the table said '(1 failed)' for it."""
    from types import SimpleNamespace

    from taskgraph.app.results.table import ResultRow

    def runs(*states: str) -> tuple[Any, ...]:
        return tuple(SimpleNamespace(status=s, seed=i, id=i) for i, s in enumerate(states))

    row = ResultRow(name="r", task_set=("tgt",), runs=runs("complete", "pruned", "pruned"))
    assert (row.n_failed, row.n_pruned, row.incomplete_note()) == (0, 2, " (2 pruned)")
    row = ResultRow(name="r", task_set=("tgt",), runs=runs("failed", "pruned", "complete"))
    assert row.incomplete_note() == " (1 failed, 1 pruned)"
    assert ResultRow(name="r", task_set=("tgt",), runs=runs("complete")).incomplete_note() == ""


def test_two_rows_of_one_configuration_give_the_runs_to_the_first(storage: str) -> None:
    # A stored spec whose last row repeats `good`: the first of them showed "not run" and the
    # note said the long CSV keeps it, while the runs (and the CSV's score) went to the last.
    with open_repository(storage) as repo:
        runs = repo.runs(study="table")
    again = {"name": "good_again", "auxiliaries": ["good"], "params": {"sharing": "hard"}}
    spec = {**SPEC, "rows": [*ROWS, again], "budget": {"trials": 5}}
    table = build_table("table", spec, runs, split="dev")
    complete = {row.name: len(row.complete) for row in table.rows}
    assert complete == {"alone": 3, "good": 3, "good_soft": 3, "good_bad": 3, "good_again": 0}
    assert table.notes == (
        "Row good_again trains the same configuration as good: its runs are shown under good.",
        "Row good_soft has the task set of good: the long CSV (one score per task set) keeps good.",
    )


def test_the_long_csv_note_names_the_row_the_csv_keeps(storage: str) -> None:
    # Without `good`'s runs, the CSV's score of the task set good+tgt is good_soft's.
    with open_repository(storage) as repo:
        runs = repo.runs(study="table")
    full = build_table("table", SPEC, runs, split="dev")
    good = {run.id for run in full.rows[1].runs}
    table = build_table("table", SPEC, [r for r in runs if r.id not in good], split="dev")
    assert not any("keeps good." in note for note in table.notes), table.notes
    soft = table.rows[2].cell("dev", "accuracy", task="tgt").mean
    kept = [r for r in table.long_rows() if r.task_set_key == "good+tgt"]
    assert [r.value for r in kept] == pytest.approx([soft])


def test_without_scores_the_default_split_is_the_objectives(storage: str) -> None:
    # Every run failed (no scores) or none ran: the footer and `--json` said split `test`,
    # a split the target may not have; the runs are scored on the objective's split.
    import dataclasses

    with open_repository(storage) as repo:
        runs = repo.runs(study="table")
    failed = [dataclasses.replace(r, status="failed", scores={}) for r in runs]
    spec = {**SPEC, "objective": {"metric": "accuracy", "split": "val"}}
    for given in (failed, []):
        table = build_table("table", spec, given)
        assert table.split == "val"
        assert "split `val`" in table.to_markdown()
        assert table.to_dict()["split"] == "val"
    assert build_table("table", SPEC, failed).split == "dev"  # the default objective split
