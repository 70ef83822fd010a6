"""``taskgraph tasks list|show``: JSON shape, counts, help texts, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from taskgraph.cli.app import app
from taskgraph.tasks import count_examples, get_task, list_tasks, task_fingerprint
from taskgraph.tasks.cache import CACHE_ENV

runner = CliRunner()


def test_list_json(data_dir: Path) -> None:
    result = runner.invoke(app, ["tasks", "list", "--data", str(data_dir), "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert len(rows) >= 30
    for row in rows:
        assert {"name", "type", "format", "dataset", "splits", "metrics", "label_field"} <= set(row)
    by_name = {row["name"]: row for row in rows}
    assert by_name["ud_tr_imst_deps"]["splits"] == {"train": 3435, "dev": 1100, "test": 1100}
    assert by_name["squad2"]["type"] == "extractive_qa"
    assert by_name["rte"]["splits"]["test_unlabeled"] == 3000
    mrpc = get_task("mrpc")
    assert by_name["mrpc"]["splits"] == {
        s: count_examples(mrpc, s, data_dir=data_dir) for s in mrpc.splits
    }


def test_list_by_type_cold_cache_and_table(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cold"))
    result = runner.invoke(
        app, ["tasks", "list", "--data", str(data_dir), "--type", "extractive_qa", "--json"]
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert {row["name"] for row in rows} == {"squad2", "bioasq_factoid"}
    assert sum(rows[0]["splits"].values()) in (1809, 6078)
    assert (tmp_path / "cold" / "tasks-cache.json").is_file()  # counted once, cached
    table = runner.invoke(
        app, ["tasks", "list", "--data", str(data_dir), "--type", "extractive_qa"]
    )
    assert table.exit_code == 0 and "squad2" in table.stdout and "bioasq_factoid" in table.stdout
    # Into a pipe the table takes the width it needs: rich cut the type column at 80 columns.
    table = runner.invoke(app, ["tasks", "list", "--data", str(data_dir)])
    assert table.exit_code == 0 and "sentence_classification" in table.stdout
    assert "…" not in table.stdout


def test_show_json(data_dir: Path) -> None:
    result = runner.invoke(app, ["tasks", "show", "squad2", "--data", str(data_dir), "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["name"] == "squad2" and info["labels"] == []
    assert info["fingerprint"] == task_fingerprint(get_task("squad2"), data_dir=data_dir)
    dev = info["splits"]["dev"]
    assert dev["file"] == "squad2_dev_half/dev-v2.0.cs224n-half.json" and len(dev["sha256"]) == 64
    assert "unit: article" in dev["rule"]
    assert sum(s["examples"] for s in info["splits"].values()) == 6078
    cola = runner.invoke(app, ["tasks", "show", "cola", "--data", str(data_dir)])
    assert cola.exit_code == 0 and "dev_ood" in cola.stdout and "acceptable" in cola.stdout


def test_show_prints_a_description_with_brackets_as_text(data_dir: Path) -> None:
    result = runner.invoke(app, ["tasks", "show", "synth_target", "--data", str(data_dir)])
    assert result.exit_code == 0, result.output
    # rich would read `[c(w) >= K/2]` as a markup tag and drop it
    assert "h(w) = [c(w) >= K/2]" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["tasks", "show", "nope"], "error: unknown task 'nope'; known: anatem"),
        (
            ["tasks", "list", "--data", "/no/such/dir"],
            "error: data directory from --data does not exist: /no/such/dir",
        ),
        (
            ["tasks", "show", "cola", "--data", "/no/such/dir"],
            "error: data directory from --data does not exist",
        ),
        (["tasks", "list", "--type", "ner"], "error: --type must be one of token_tagging"),
    ],
)
def test_bad_input_is_one_line_and_non_zero(args: list[str], message: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code != 0
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), result.stderr


def test_missing_file_names_it(tmp_path: Path) -> None:
    (tmp_path / "cola").mkdir()
    result = runner.invoke(app, ["tasks", "show", "cola", "--data", str(tmp_path)])
    assert result.exit_code != 0
    assert result.stderr.strip() == (
        f"error: data file of task 'cola' split 'train' does not exist: {tmp_path}/cola/in_domain_train.tsv"
    )


def test_every_command_and_option_has_help() -> None:
    group = typer.main.get_command(app)
    with group.make_context("taskgraph", ["tasks"]) as ctx:
        tasks = group.get_command(ctx, "tasks")  # type: ignore[attr-defined]
    assert tasks.help
    for name, command in tasks.commands.items():
        assert command.help, name
        for param in command.params:
            assert getattr(param, "help", None), f"{name} {param.name} has no help"
        result = runner.invoke(app, ["tasks", name, "--help"])
        assert result.exit_code == 0 and "--data" in result.stdout
    assert runner.invoke(app, ["tasks", "--help"]).exit_code == 0


def test_list_on_a_partial_data_directory_lists_what_is_there(
    data_dir: Path, tmp_path: Path
) -> None:
    # A user's own folder with some of the datasets failed whole on the first missing one.
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "ncbi_disease").symlink_to(data_dir / "ncbi_disease", target_is_directory=True)
    result = runner.invoke(app, ["tasks", "list", "--data", str(partial), "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [row["name"] for row in rows] == ["ncbi_disease"]
    assert rows[0]["splits"] == {"train": 5424, "dev": 923, "test": 940}
    total = len(list_tasks())
    assert result.stderr.startswith(
        f"note: {total - 1} of {total} tasks have no data in {partial}: "
    )
    # A folder with none of them is a wrong folder: one line, as before.
    empty = tmp_path / "empty"
    empty.mkdir()
    result = runner.invoke(app, ["tasks", "list", "--data", str(empty)])
    assert result.exit_code != 0 and result.stdout == ""
    assert result.stderr.startswith(f"error: no task has its data in {empty}: data file of task")


def test_show_names_labels_that_no_training_example_has(data_dir: Path) -> None:
    # CLTT's test file has relations its training file never shows: a model cannot learn
    # them, which caps the score; the count comes from the split's own examples.
    result = runner.invoke(app, ["tasks", "show", "ud_cs_cltt_deps", "--data", str(data_dir)])
    assert result.exit_code == 0, result.output
    assert (
        "note: test has 3 label(s) no training example has, which a model cannot learn: "
        "compound csubj:pass det:nummod"
    ) in result.stderr
    result = runner.invoke(
        app, ["tasks", "show", "ud_cs_cltt_deps", "--data", str(data_dir), "--json"]
    )
    unseen = json.loads(result.stdout)["unseen_labels"]
    assert unseen == {"dev": ["csubj:pass"], "test": ["compound", "csubj:pass", "det:nummod"]}
    result = runner.invoke(app, ["tasks", "show", "wnut17", "--data", str(data_dir), "--json"])
    assert json.loads(result.stdout)["unseen_labels"] == {}
    assert "no training example has" not in result.stderr
