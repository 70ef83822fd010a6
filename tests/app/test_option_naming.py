"""Errors and notes name what the caller gave: a keyword from Python (`split`), an option on the
command line (`--split`); two keywords for one spec field are refused."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import taskgraph
from taskgraph.cli.app import app
from taskgraph.errors import ConfigError, TaskgraphError, command_line_wording, option_name
from taskgraph.tasks import get_task, split_file
from taskgraph.testing import run_fake_study, write_rising_table

runner = CliRunner()
DEMO = Path(__file__).parents[2] / "searchspaces" / "demo.yaml"
STUDY: dict[str, Any] = {
    "name": "named",
    "target": "tgt",
    "objective": {"metric": "accuracy"},
    "candidates": ["good", "bad"],
    "search": {"sharing": ["hard"]},
    "sampler": {"name": "random", "seed": 0},
    "budget": {"trials": 2},
}


@pytest.fixture(scope="module")
def places(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A results table, a records database with study ``named`` (dev scores only), and a
    folder that does not exist."""
    root = tmp_path_factory.mktemp("naming")
    table = write_rising_table(root / "table.csv", ("a", "b", "c", "d", "e"), max_size=2)
    storage = run_fake_study(STUDY, f"sqlite:///{root / 'records.db'}")
    return {"table": str(table), "storage": storage, "missing": str(root / "missing")}


def test_option_name_is_the_keyword_from_python_and_the_option_on_the_command_line() -> None:
    cases = [
        (("split",), {}, "split", "--split"),
        (("max_size",), {}, "max_size", "--max-size"),
        (("metric",), {"metavar": "NAME"}, "metric=NAME", "--metric NAME"),
        (("metric", "all"), {}, "metric='all'", "--metric all"),
        (("max_size", 1), {}, "max_size=1", "--max-size 1"),
        (("text_embeddings", True), {}, "text_embeddings=True", "--text-embeddings"),
        (("search", False), {"flag": "--no-search"}, "search=False", "--no-search"),
        (("directory", Path("/r")), {"flag": "--write"}, "directory='/r'", "--write /r"),
    ]
    for args, keywords, python, command_line in cases:
        assert option_name(*args, **keywords) == python
        with command_line_wording():
            assert option_name(*args, **keywords) == command_line
    # the wording is the caller's again after the block, also when it raised
    with pytest.raises(RuntimeError), command_line_wording():
        raise RuntimeError
    assert option_name("split") == "split"


#: a call from Python, the same input on the command line, and what each says
CASES: dict[str, tuple[Callable[[dict[str, str]], object], list[str], str, str]] = {
    "affinity-target": (
        lambda p: taskgraph.recommend("nosuch", table=p["table"]),
        ["affinity", "top", "--target", "nosuch", "--table", "{table}"],
        "`target` 'nosuch' has no records; known tasks: a, b, c, d, e",
        "`--target` 'nosuch' has no records; known tasks: a, b, c, d, e",
    ),
    "affinity-metric-of-a-table": (
        lambda p: taskgraph.recommend("a", table=p["table"], metric="f1"),
        ["affinity", "top", "--target", "a", "--table", "{table}", "--metric", "f1"],
        "`metric` 'f1' chooses among the metrics of a records database, but a table holds one "
        "score per row and names no metric: leave metric out",
        "`--metric` 'f1' chooses among the metrics of a records database, but a --table holds "
        "one score per row and names no metric: leave --metric out",
    ),
    "affinity-groups-coverage": (
        lambda p: taskgraph.groupings(1, table=p["table"], max_size=1),
        ["affinity", "groups", "--budget", "1", "--table", "{table}", "--max-size", "1"],
        "(max_size) serve at most 1; raise max_size to 5 or budget to 5",
        "(--max-size) serve at most 1; raise --max-size to 5 or --budget to 5",
    ),
    "results-split": (
        lambda p: taskgraph.results_table("named", storage=p["storage"], split="test"),
        ["records", "table", "named", "--storage", "{storage}", "--split", "test"],
        "`split` 'test': no run of 'named' has scores of 'tgt' on it; they have dev",
        "`--split` 'test': no run of 'named' has scores of 'tgt' on it; they have dev",
    ),
    "results-no-metrics": (
        lambda p: taskgraph.results_table("named", storage=p["storage"], metrics=" , "),
        ["records", "table", "named", "--storage", "{storage}", "--metrics", " , "],
        "`metrics` names no metric (got ' , ')",
        "`--metrics` names no metric (got ' , ')",
    ),
    "results-metrics": (
        lambda p: taskgraph.results_table("named", storage=p["storage"], metrics="accuracy,f9"),
        ["records", "table", "named", "--storage", "{storage}", "--metrics", "accuracy,f9"],
        "`metrics`: no run of 'named' has tgt f9 on dev",
        "`--metrics`: no run of 'named' has tgt f9 on dev",
    ),
    "storage-empty": (
        lambda p: taskgraph.results_table("named", storage=""),
        ["records", "table", "named", "--storage", ""],
        "storage is empty: give a database URL",
        "--storage is empty: give a database URL",
    ),
    "data-directory-of-a-task": (
        lambda p: split_file(get_task("cola"), "train", data_dir=p["missing"]),
        ["tasks", "show", "cola", "--data", "{missing}"],
        "data directory from data_dir does not exist",
        "data directory from --data does not exist",
    ),
    "data-directory-of-a-study": (
        lambda p: taskgraph.run_study(DEMO, storage=p["storage"], data=p["missing"]),
        ["study", "run", str(DEMO), "--storage", "{storage}", "--data", "{missing}"],
        "data: data directory does not exist",
        "--data: data directory does not exist",
    ),
    "bench-range": (
        lambda p: taskgraph.bench(p["table"], seeds=0),
        ["bench", "--table", "{table}", "--seeds", "0"],
        "`seeds` must be in [1, 1000], but got 0",
        "`--seeds` must be in [1, 1000], but got 0",
    ),
    "bench-pooling": (
        lambda p: taskgraph.bench(p["table"], method="hoa", pooling="sum"),
        ["bench", "--table", "{table}", "--method", "hoa", "--pooling", "sum"],
        "`pooling` is an option of setfn, but method is 'hoa'",
        "`--pooling` is an option of setfn, but --method is 'hoa'",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_an_error_names_the_keyword_from_python_and_the_option_on_the_command_line(
    case: str, places: dict[str, str]
) -> None:
    call, args, from_python, from_command_line = CASES[case]
    result = runner.invoke(app, [arg.format(**places) for arg in args])
    assert result.exit_code != 0 and from_command_line in result.stderr, result.stderr
    # after a command, Python's wording again
    with pytest.raises(TaskgraphError) as error:
        call(places)
    assert from_python in str(error.value)
    assert "--" not in str(error.value)


def test_a_bench_note_names_the_keyword_from_python(places: dict[str, str]) -> None:
    report = taskgraph.bench(places["table"], method="hoa", seeds=1, search=False)
    assert report["skipped"]["search"] == "search=False"
    args = ["bench", "--table", places["table"], "--method", "hoa", "--seeds", "1"]
    result = runner.invoke(app, [*args, "--no-search", "--json"])
    assert result.exit_code == 0, result.stderr
    assert '"search": "--no-search"' in result.stdout


@pytest.mark.parametrize("call", ["run_study", "screen_study"])
@pytest.mark.parametrize("as_object", [False, True], ids=["file", "object"])
def test_two_keywords_for_one_spec_field_are_refused_before_anything_is_written(
    call: str, as_object: bool, tmp_path: Path
) -> None:
    spec = taskgraph.load_study_spec(DEMO) if as_object else DEMO
    database = tmp_path / "records.db"
    with pytest.raises(ConfigError) as error:
        getattr(taskgraph, call)(
            spec, storage=f"sqlite:///{database}", **{"budget.trials": 1, "budget__trials": 2}
        )
    assert str(error.value) == (
        "`budget.trials` and `budget__trials` both set spec field budget.trials (1 and 2): pass one"
    )
    assert not database.exists()
