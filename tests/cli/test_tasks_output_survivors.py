"""Mutation-audit survivors of ``taskgraph tasks list|show`` and the shared output helpers.

Pins, for ``tasks``: why an unreadable file is unreadable (the reason, not ``[Errno 13]``),
every metric in ``--json`` and the primary one in the table, the table's title counting the
tasks listed (one line in a pipe, "1 task"), thousands separators, and what ``show`` prints (the file's full path, its
fingerprint, reader options, the 12-character hash prefix, ``(none)`` for no labels) and that
a synthetic task needs no data directory.  For ``cli.output``: JSON keeps non-ASCII text,
``--json`` with ``--csv`` is refused, CSV has its header and round-tripping floats, table cells
(fixed four decimals, zero, ``+``-joined lists, sorted mappings), long cells folded rather
than cut, ``print_line`` on stderr, and ``resolve_output`` (``-`` where no stdout is allowed,
a blank path, ``~``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import pytest
from typer.testing import CliRunner

from taskgraph.cli import output
from taskgraph.cli.app import app
from taskgraph.errors import ConfigError
from taskgraph.tasks import TaskDef, get_task, list_tasks, task_fingerprint
from taskgraph.tasks.cache import CACHE_ENV
from taskgraph.tasks.fingerprints import file_sha256
from taskgraph.testing import write_sst2_data
from tests.tasks.test_cli_tasks_unreadable import COLA_FILES, write_cola

runner = CliRunner()


@pytest.fixture(autouse=True)
def _cold_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Counts are cached by file; each test counts its own files afresh.
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """A data directory with sst2 (1,200 training sentences, 16 in dev and test) and cola."""
    root = write_sst2_data(tmp_path / "data")
    rows = ["sentence\tlabel"] + [f"film number {i}\t{i % 2}" for i in range(1200)]
    (root / "sst2" / "train.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return write_cola(root)


def invoke(*args: str) -> Any:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result


def line_with(text: str, out: str) -> str:
    (line,) = [line for line in out.splitlines() if text in line]
    return line


# --- taskgraph tasks list ---------------------------------------------------------------


def test_an_unreadable_file_says_why_in_words(data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # No permission (simulated: tests may run as root): "path: Permission denied", not
    # "path: [Errno 13] Permission denied: 'path'".
    from taskgraph.cli import tasks as tasks_cli

    train = data / "cola" / COLA_FILES["train"]
    count = tasks_cli.count_examples

    def no_permission(task: TaskDef, split: str, **kwargs: Any) -> int:
        if task.name == "cola" and split == "train":
            raise PermissionError(13, "Permission denied", str(train))
        return count(task, split, **kwargs)

    monkeypatch.setattr(tasks_cli, "count_examples", no_permission)
    result = invoke("tasks", "list", "--data", str(data), "--json")
    (cola,) = [row for row in json.loads(result.stdout) if row["name"] == "cola"]
    assert cola["splits"] == {"train": None, "dev": 8, "dev_ood": 8}
    assert cola["error"] == f"{train}: Permission denied"
    assert f"note: task cola is unreadable: {train}: Permission denied" in result.stderr


def test_list_json_has_every_metric_and_the_table_the_primary_one(data: Path) -> None:
    rows = json.loads(invoke("tasks", "list", "--data", str(data), "--json").stdout)
    by_name = {row["name"]: row for row in rows}
    assert by_name["cola"]["metrics"] == ["mcc", "accuracy"]
    assert by_name["sst2"]["metrics"] == ["accuracy"]
    table = invoke("tasks", "list", "--data", str(data)).stdout
    cola = line_with(" cola ", table)
    assert "mcc" in cola and "accuracy" not in cola


def test_list_table_title_counts_the_tasks_listed_and_sizes_have_separators(
    data: Path,
) -> None:
    result = invoke("tasks", "list", "--data", str(data))
    # 2 of the catalog's tasks have data here: the title counts those, not the catalog
    assert len(list_tasks()) > 2
    # In a pipe the title is one line, however long the path: a script can grep it.
    assert result.stdout.splitlines()[0] == f"2 tasks in {data}"
    assert "train 1,200" in line_with(" sst2 ", result.stdout)


def test_a_long_title_of_a_piped_table_is_one_line_and_one_task_is_singular(
    tmp_path: Path,
) -> None:
    # rich wrapped a title to the table's width: a long data directory broke across lines.
    data = write_sst2_data(tmp_path / ("a-long-directory-name-" * 6) / "data")
    result = invoke("tasks", "list", "--data", str(data))
    assert result.stdout.splitlines()[0] == f"1 task in {data}"
    assert len(str(data)) > 120  # wider than the table below it


class RecordedProgress:
    """Stands in for rich's ``Progress``: records how it was made and what it counted."""

    made: ClassVar[list[RecordedProgress]] = []

    def __init__(self, *columns: object, **options: Any) -> None:
        self.options = options
        self.total: int | None = None
        self.counted: list[str] = []
        RecordedProgress.made.append(self)

    def __enter__(self) -> RecordedProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def add_task(self, description: str, *, total: int) -> int:
        self.total = total
        return 0

    def update(self, bar: int, *, description: str) -> None:
        self.counted.append(description)

    def advance(self, bar: int) -> None:
        pass


def test_only_uncounted_files_are_counted_under_a_bar_hidden_in_a_pipe(
    data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("taskgraph.cli.tasks.Progress", RecordedProgress)
    monkeypatch.setattr(RecordedProgress, "made", [])
    invoke("tasks", "list", "--data", str(data), "--synthetic", "--json")
    (progress,) = RecordedProgress.made
    # the files of sst2 and cola, not the synthetic tasks (they have no files)
    assert progress.total == 6 and len(progress.counted) == 6
    assert "counting sst2 train" in progress.counted
    assert not any("synth" in line for line in progress.counted)
    # stderr is no terminal here: the bar is off, and would go away when done
    assert progress.options["disable"] is True and progress.options["transient"] is True
    # counted once and cached: a second listing has nothing to count, so no bar
    invoke("tasks", "list", "--data", str(data), "--json")
    assert len(RecordedProgress.made) == 1


# --- taskgraph tasks show ---------------------------------------------------------------


def test_show_json_gives_each_split_file_its_full_path(data: Path) -> None:
    info = json.loads(invoke("tasks", "show", "cola", "--data", str(data), "--json").stdout)
    train = info["splits"]["train"]
    assert train["file"] == f"cola/{COLA_FILES['train']}"
    assert train["path"] == str(data / "cola" / COLA_FILES["train"])


def test_show_text_names_fingerprint_options_hashes_and_sizes(data: Path) -> None:
    out = invoke("tasks", "show", "sst2", "--data", str(data)).stdout
    fingerprint = task_fingerprint(get_task("sst2"), data_dir=data)
    assert f"  fingerprint: {fingerprint}" in out.splitlines()
    assert line_with("reader_options:", out).startswith("  reader_options: {'header': True")
    sha = file_sha256(data / "sst2" / "train.tsv")
    train = line_with(sha[:12], out)
    assert sha[:13] not in train  # 12 characters of the hash
    assert "1,200" in train


def test_show_says_none_for_a_task_without_labels(
    data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("taskgraph.cli.tasks.label_vocabulary", lambda task, **_: [])
    out = invoke("tasks", "show", "sst2", "--data", str(data)).stdout
    assert "  labels (0): (none)" in out.splitlines()


def test_show_of_a_synthetic_task_needs_no_data_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No --data, no TASKGRAPH_DATA, no ../shared/data: a synthetic task reads no files.
    monkeypatch.delenv("TASKGRAPH_DATA", raising=False)
    monkeypatch.setattr("taskgraph.tasks.datadir._default_candidates", lambda: [])
    monkeypatch.chdir(tmp_path)
    result = invoke("tasks", "show", "synth_target", "--json")
    assert json.loads(result.stdout)["name"] == "synth_target"


# --- taskgraph.cli.output ---------------------------------------------------------------


def test_emit_json_keeps_non_ascii_text(capsys: pytest.CaptureFixture[str]) -> None:
    output.emit_json({"name": "Zürich – 東京"})
    assert '"name": "Zürich – 東京"' in capsys.readouterr().out


def test_json_and_csv_together_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ConfigError, match="`--json` and `--csv` exclude each other"):
        output.emit_rows([{"a": 1}], columns=["a"], as_json=True, as_csv=True)
    assert capsys.readouterr().out == ""


def test_csv_has_a_header_and_floats_that_round_trip(
    capsys: pytest.CaptureFixture[str],
) -> None:
    rows = [{"name": "x", "value": 0.123456789, "tasks": ["a", "b"], "skip": 1}]
    output.emit_rows(rows, columns=["name", "value", "tasks"], as_csv=True)
    assert capsys.readouterr().out.splitlines() == ["name,value,tasks", "x,0.123456789,a+b"]


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (0.0, "0.0000"),
        (0.001, "0.0010"),
        (0.5, "0.5000"),
        (0.0001234, "0.0001234"),
        (None, ""),
        (["a", "b", "c"], "a+b+c"),
        ({"b": 1, "a": 2}, '{"a": 2, "b": 1}'),
    ],
)
def test_table_cells(value: Any, shown: str) -> None:
    assert output._cell(value) == shown


def test_a_long_cell_is_folded_not_cut(capsys: pytest.CaptureFixture[str]) -> None:
    # Into a pipe the table is up to 1000 columns wide; a longer value folds onto more lines.
    value = "".join(f"{i:04d}" for i in range(400))  # 1,600 characters
    output.emit_rows([{"name": "n", "long": value}], columns=["name", "long"])
    out = capsys.readouterr().out
    assert "…" not in out
    kept = "".join(line.split("│")[2].strip() for line in out.splitlines() if "│" in line)
    assert kept.replace("long", "", 1) == value


def test_a_piped_table_is_as_wide_as_it_needs(capsys: pytest.CaptureFixture[str]) -> None:
    value = "-".join(f"part{i}" for i in range(40))  # 239 characters, wider than 80 columns
    output.emit_rows([{"name": "n", "long": value}], columns=["name", "long"], title="t")
    assert value in capsys.readouterr().out  # one line, not wrapped at 80 columns


def test_print_line_with_err_goes_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    output.print_line("to the error stream [b]x[/b]", err=True)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == "to the error stream [b]x[/b]\n"


def test_dash_is_refused_where_standard_output_is_not_possible() -> None:
    with pytest.raises(ConfigError, match=r"`--report -` \(standard output\) is not possible"):
        output.resolve_output("-", option="--report", stdout_ok=False)
    assert output.resolve_output("-") is None


def test_a_blank_output_path_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"`--output` is empty"):
        output.resolve_output("  ")


def test_a_tilde_output_path_is_under_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    assert output.resolve_output("~/out.json") == tmp_path.resolve() / "out.json"


def test_the_journal_of_the_storage_file_is_refused(tmp_path: Path) -> None:
    # The database is not there yet, so only its name says what the journal belongs to.
    storage = f"sqlite:///{tmp_path / 'records.db'}"
    for suffix in ("", "-wal", "-shm", "-journal"):
        path = str(tmp_path / "records.db") + suffix
        with pytest.raises(ConfigError, match="is the records database this command reads"):
            output.resolve_output(path, storage=storage)
    assert output.resolve_output(tmp_path / "records.db-other", storage=storage) is not None


def test_a_failed_write_says_the_reason_in_words(tmp_path: Path) -> None:
    path = tmp_path / "out.json"
    with pytest.raises(output.OutputError) as caught, output.output_errors(path, option="-o"):
        raise PermissionError(13, "Permission denied", str(path))
    assert str(caught.value) == f"cannot write `-o` {str(path)!r}: Permission denied"
