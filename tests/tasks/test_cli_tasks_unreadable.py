"""``taskgraph tasks``: a broken or misplaced data file is named; ``list`` goes on past it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from taskgraph.cli.app import app
from taskgraph.errors import DataFormatError, DataNotFoundError
from taskgraph.tasks import get_task, split_file
from taskgraph.tasks.readers.squad import load_located_json
from taskgraph.testing import write_sst2_data

runner = CliRunner()

COLA_FILES = {"train": "in_domain_train.tsv", "dev": "in_domain_dev.tsv"}
COLA_FILES["dev_ood"] = "out_of_domain_dev.tsv"


def write_cola(root: Path, *, broken_line: int | None = None) -> Path:
    """Write 8 CoLA rows per split under ``root/cola``; ``broken_line`` of train has no tabs."""
    folder = root / "cola"
    folder.mkdir(parents=True)
    for split, name in COLA_FILES.items():
        rows = [f"src\t{i % 2}\t\tSentence number {i} of {split}." for i in range(8)]
        if split == "train" and broken_line is not None:
            rows[broken_line - 1] = "a line without any tab"
        (folder / name).write_text("\n".join(rows) + "\n", encoding="utf-8")
    return root


def list_json(data: Path) -> tuple[int, list[dict[str, object]], str]:
    result = runner.invoke(app, ["tasks", "list", "--data", str(data), "--json"])
    return result.exit_code, json.loads(result.stdout or "null"), result.stderr


def test_list_goes_on_past_a_malformed_file_and_names_it(tmp_path: Path) -> None:
    data = write_cola(write_sst2_data(tmp_path / "data"), broken_line=5)
    train = data / "cola" / COLA_FILES["train"]
    code, rows, stderr = list_json(data)
    assert code == 0, stderr
    by_name = {row["name"]: row for row in rows}
    assert set(by_name) == {"sst2", "cola"}
    assert by_name["sst2"]["splits"] == {"train": 16, "dev": 16, "test": 16}
    assert by_name["sst2"]["error"] is None
    cola = by_name["cola"]
    assert cola["splits"] == {"train": None, "dev": 8, "dev_ood": 8}
    assert isinstance(cola["error"], str) and cola["error"].startswith(f"{train}:5: expected ")
    notes = [line for line in stderr.splitlines() if line.startswith("note: task cola")]
    assert notes == [f"note: task cola is unreadable: {cola['error']}"]
    # the table marks it too, and the exit is still 0
    table = runner.invoke(app, ["tasks", "list", "--data", str(data)])
    assert table.exit_code == 0, table.output
    assert "train unreadable" in table.stdout and "sst2" in table.stdout
    assert f"{train}:5:" in table.stderr
    # `show` of that task still fails with the one line
    shown = runner.invoke(app, ["tasks", "show", "cola", "--data", str(data)])
    assert shown.exit_code != 0 and shown.stdout == ""
    assert shown.stderr.strip().splitlines() == [f"error: {cola['error']}"]


def test_a_directory_in_place_of_a_data_file_is_named_as_one(tmp_path: Path) -> None:
    data = write_cola(write_sst2_data(tmp_path / "data"))
    dev = data / "cola" / COLA_FILES["dev"]
    dev.unlink()
    dev.mkdir()
    message = f"data file of task 'cola' split 'dev' is a directory, not a file: {dev}"
    with pytest.raises(DataNotFoundError) as caught:
        split_file(get_task("cola"), "dev", data_dir=data)
    assert str(caught.value) == message
    shown = runner.invoke(app, ["tasks", "show", "cola", "--data", str(data)])
    assert shown.exit_code != 0
    assert shown.stderr.strip() == f"error: {message}"
    # `list` shows it as unreadable, not as a task without data
    code, rows, stderr = list_json(data)
    assert code == 0, stderr
    cola = next(row for row in rows if row["name"] == "cola")
    assert cola["splits"] == {"train": 8, "dev": None, "dev_ood": 8} and cola["error"] == message
    assert f"note: task cola is unreadable: {message}" in stderr.splitlines()
    assert "cola" not in next(line for line in stderr.splitlines() if "have no data" in line)


def test_a_missing_file_still_means_no_data(tmp_path: Path) -> None:
    data = write_cola(write_sst2_data(tmp_path / "data"))
    (data / "cola" / COLA_FILES["dev"]).unlink()
    code, rows, stderr = list_json(data)
    assert code == 0, stderr
    assert [row["name"] for row in rows] == ["sst2"]
    assert "unreadable" not in stderr
    assert "have no data in" in stderr and "cola" in stderr


def test_truncated_squad_json_names_line_and_column(tmp_path: Path) -> None:
    # SQuAD files are one line of megabytes: the line alone said nothing.
    paragraph = {"context": "x " * 200, "qas": []}
    text = json.dumps({"version": "v2.0", "data": [{"title": "t", "paragraphs": [paragraph]}]})
    path = tmp_path / "squad.json"
    path.write_text(text[:300], encoding="utf-8")
    with pytest.raises(DataFormatError) as caught:
        load_located_json(path)
    error = caught.value
    start = text.index('"x ') + 1  # the string's opening quote, 1-based
    assert error.line == 1 and error.expected == "valid JSON"
    assert error.got == f"Unterminated string starting at column {start}"
    assert str(error) == f"{path}:1: expected valid JSON, got {error.got}"
    # several lines: the line of the failure, and its column on that line
    path.write_text('{"data": [\n\n  {"title": }]}', encoding="utf-8")
    with pytest.raises(DataFormatError) as caught:
        load_located_json(path)
    assert caught.value.line == 3 and caught.value.got == "Expecting value at column 13"
