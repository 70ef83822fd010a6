"""``taskgraph affinity``/``bench``: flags that would be ignored are refused; messages name options."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from typer.testing import CliRunner

from taskgraph.affinity.longtable import LongRow, LongTable, write_long_csv
from taskgraph.cli.app import app

runner = CliRunner()
TASKS = ("a", "b", "c", "d")
HEADER = "target,task_set,split,value,higher_is_better\n"


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def table_file(tmp_path: Path) -> Path:
    """Every subset of four tasks, one split (lower is better)."""
    rows = [
        LongRow(t, frozenset(combo), "val", 0.1 - 0.01 * len(combo) + 0.001 * i, False)
        for size in range(1, 5)
        for combo in itertools.combinations(TASKS, size)
        for i, t in enumerate(combo)
    ]
    path = tmp_path / "toy.csv"
    write_long_csv(LongTable(rows=rows), path)
    return path


@pytest.fixture
def small_table(tmp_path: Path) -> Path:
    """Two targets and one pair: no evaluation of bench fits an estimator on it."""
    path = tmp_path / "small.csv"
    path.write_text(f"{HEADER}a,a,val,0.5,1\na,a+b,val,0.6,1\nb,b,val,0.5,1\nb,a+b,val,0.4,1\n")
    return path


def refused(args: list[str], message: str) -> None:
    code, out, err = invoke(*args)
    assert code == 2 and out == "", (args, out, err)
    assert err.startswith(message) and err.count("\n") == 1, (args, err)


@pytest.mark.parametrize(
    "command",
    [
        ["fit"],
        ["top", "--target", "a"],
        ["groups", "--budget", "2"],
        ["graph", "--format", "json", "-o", "-"],
    ],
)
def test_table_and_storage_together_are_refused(
    table_file: Path, tmp_path: Path, command: list[str]
) -> None:
    # `--table` read the CSV and ignored the database; `fit` said `saved: False`.
    db = tmp_path / "records.db"
    for storage in ("bogus://x", f"sqlite:///{db}"):
        refused(
            ["affinity", *command, "--table", str(table_file), "--storage", storage],
            "error: `--table` and `--storage` are two sources of records: give one",
        )
    assert not db.exists()


def test_fit_from_a_table_alone_still_says_nothing_was_saved(table_file: Path) -> None:
    code, out, err = invoke("affinity", "fit", "--table", str(table_file))
    assert code == 0, err
    assert "saved: False" in out


@pytest.mark.parametrize(
    ("extra", "flag"),
    [
        (["--pooling", "sum"], "--pooling"),
        (["--pooling", "mean"], "--pooling"),
        (["--no-hyperprior"], "--no-hyperprior"),
        (["--hyperprior"], "--hyperprior"),
    ],
)
def test_setfn_options_with_another_method_are_refused(
    table_file: Path, extra: list[str], flag: str
) -> None:
    for command in (["top", "--target", "a"], ["groups", "--budget", "2"], ["fit"]):
        refused(
            ["affinity", *command, "--table", str(table_file), "--method", "hoa", *extra],
            f"error: `{flag}` is an option of setfn, but --method is 'hoa'",
        )
    code, _, err = invoke(
        "affinity", "top", "--table", str(table_file), "--target", "a", "--method", "hoa"
    )
    assert code == 0, err  # without them, hoa runs as before
    code, _, err = invoke("affinity", "top", "--table", str(table_file), "--target", "a", *extra)
    assert code == 0, err  # and setfn takes them


def test_text_embeddings_with_a_method_that_ignores_them_are_refused(table_file: Path) -> None:
    for command in (["top", "--target", "a"], ["groups", "--budget", "2"], ["fit"]):
        refused(
            ["affinity", *command, "--table", str(table_file), "--method", "hoa",
             "--text-embeddings"],
            "error: `--text-embeddings` is an option of setfn and textemb, but --method is 'hoa'",
        )  # fmt: skip


def test_an_empty_tasks_list_is_refused_not_every_target(table_file: Path) -> None:
    for tasks in ("", ",", " , "):
        refused(
            ["affinity", "groups", "--table", str(table_file), "--budget", "2", "--tasks", tasks],
            "error: `--tasks` names no task",
        )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["top", "--target", "a", "-k", "0"], "error: `-k` must be >= 1, but got 0"),
        (["top", "--target", "a", "--max-size", "0"], "error: `--max-size` must be >= 1, but got 0"),
        (["groups", "--budget", "2", "--max-size", "0"], "error: `--max-size` must be >= 1, but got 0"),
        (["groups", "--budget", "nan"], "error: `--budget` must be a finite number, but got nan"),
        (["groups", "--budget", "inf"], "error: `--budget` must be a finite number, but got inf"),
    ],
)  # fmt: skip
def test_affinity_messages_name_the_option(table_file: Path, args: list[str], message: str) -> None:
    refused(["affinity", *args, "--table", str(table_file)], message)


def test_bench_refuses_samplers_without_a_search(table_file: Path) -> None:
    refused(
        ["bench", "--table", str(table_file), "--no-search", "--samplers", "tpe"],
        "error: `--samplers` 'tpe' chooses the samplers of the search, but --no-search",
    )


def test_bench_refuses_an_unknown_method_whatever_the_table(
    table_file: Path, small_table: Path
) -> None:
    for path in (small_table, table_file):
        refused(
            ["bench", "--table", str(path), "--method", "bogus", "--seeds", "1"],
            "error: unknown affinity estimator 'bogus'; known: hoa, ",
        )


def test_bench_fit_fraction_messages_name_the_option(table_file: Path) -> None:
    for value in ("nan", "inf", "2"):
        refused(
            ["bench", "--table", str(table_file), "--fit-fraction", value],
            "error: `--fit-fraction` must be in [0, 1], but got ",
        )


def test_the_python_api_names_its_keywords_not_the_options(table_file: Path) -> None:
    from taskgraph.app.affinity import fit_and_save, grouping_report, recommendation_report
    from taskgraph.app.bench import bench
    from taskgraph.errors import ConfigError, UnknownNameError

    with pytest.raises(ConfigError, match=r"^`k` must be >= 1, but got 0$"):
        recommendation_report("a", table=table_file, k=0)
    with pytest.raises(ConfigError, match=r"^`storage` and `table` are two sources"):
        fit_and_save(table=table_file, storage="sqlite:///x.db")
    with pytest.raises(ConfigError, match=r"^`storage` and `table` are two sources"):
        recommendation_report("a", table=table_file, storage="sqlite:///x.db")
    with pytest.raises(ConfigError, match=r"^`tasks` names no task"):
        grouping_report(2, tasks=[], table=table_file)
    with pytest.raises(UnknownNameError, match="unknown affinity estimator 'bogus'"):
        bench(table_file, method="bogus", search=False)
