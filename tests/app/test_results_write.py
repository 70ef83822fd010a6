"""``records table --write``: a file that cannot be written is one error line, nothing changed."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from taskgraph.app.results.build import results_table
from taskgraph.app.results.writing import ResultsWriteError, write_results
from taskgraph.cli.app import app
from taskgraph.storage import open_repository
from taskgraph.trial import Cost, TrialConfig, TrialResult, TrialStatus

runner = CliRunner()
SPEC = {"name": "s", "target": "ner", "objective": {"metric": "f1"}, "candidates": ["pos"]}
README = "# Results\n\n<!-- results:s -->\nold table\n<!-- /results:s -->\n"


@pytest.fixture
def storage(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'records.db'}"
    with open_repository(url) as repo:
        repo.ensure_study("s", spec=SPEC, target="ner")
        for number, auxiliaries in enumerate([(), ("pos",)]):
            config = TrialConfig(target="ner", auxiliaries=auxiliaries, seed=0)
            result = TrialResult(
                status=TrialStatus.COMPLETE,
                scores={task: {"test": {"f1": 0.5 + number / 10}} for task in config.task_set},
                objective=0.5,
                cost=Cost(seconds=1.0),
            )
            repo.add_run_result(study="s", trial_number=number, config=config, result=result)
    return url


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    results = tmp_path / "results"
    results.mkdir()
    (results / "README.md").write_text(README)
    (results / "s.csv").write_text("old csv\n")
    return results


def _one_error_line(result, *words: str) -> None:
    assert result.exit_code != 0 and "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert all(word in lines[0] for word in words), lines[0]


def test_a_directory_where_the_csv_goes_is_one_line_and_nothing_is_written(storage, tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    (results / "README.md").write_text(README)
    (results / "s.csv").mkdir()
    done = runner.invoke(
        app, ["records", "table", "s", "--storage", storage, "--write", str(results)]
    )
    _one_error_line(done, f"cannot write {results / 's.csv'}", "not a regular file")
    assert done.stdout == ""  # refused before the table was printed
    assert (results / "README.md").read_text() == README
    assert sorted(p.name for p in results.iterdir()) == ["README.md", "s.csv"]


def test_a_readme_that_cannot_be_staged_leaves_the_csv_as_it_was(storage, folder, monkeypatch):
    from taskgraph.app.results import writing

    original = writing.temporary_sibling

    def refuse_the_readme(path: Path) -> tuple[int, str]:
        if path.name == "README.md":
            raise PermissionError(13, "Permission denied")
        return original(path)

    monkeypatch.setattr(writing, "temporary_sibling", refuse_the_readme)
    done = runner.invoke(
        app, ["records", "table", "s", "--storage", storage, "--write", str(folder)]
    )
    _one_error_line(done, f"cannot write {folder / 'README.md'}", "Permission denied")
    assert (folder / "s.csv").read_text() == "old csv\n"  # not replaced ahead of the README
    assert (folder / "README.md").read_text() == README
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "s.csv"]  # no temporary


@pytest.mark.parametrize("fails", [False, True])
def test_files_named_like_the_temporary_files_are_left_alone(
    storage: str, folder: Path, monkeypatch: pytest.MonkeyPatch, fails: bool
) -> None:
    # The temporary files were NAME.tmp: a user's own file of that name was overwritten, then
    # renamed over the output (or removed when the write failed).
    users = {"README.md.tmp": b"the user's README draft\n", "s.csv.tmp": b"user,csv\n"}
    for name, data in users.items():
        (folder / name).write_bytes(data)
    table = results_table("s", storage=storage)
    if fails:
        _refuse_the_readme_rename(monkeypatch)
        with pytest.raises(ResultsWriteError):
            write_results(table, folder)
        assert (folder / "README.md").read_text() == README
        assert (folder / "s.csv").read_text() == "old csv\n"
    else:
        write_results(table, folder)
        assert (folder / "s.csv").read_text().startswith("target,task_set,split,value")
        assert "old table" not in (folder / "README.md").read_text()
    assert sorted(p.name for p in folder.iterdir()) == sorted(["README.md", "s.csv", *users])
    assert all((folder / name).read_bytes() == data for name, data in users.items())


def test_a_failed_rename_removes_both_temporary_files(storage, folder, monkeypatch):
    table = results_table("s", storage=storage)

    def refuse(self: Path, target: Path) -> Path:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "replace", refuse)
    with pytest.raises(ResultsWriteError, match=r"cannot write .*s\.csv: Permission denied"):
        write_results(table, folder)
    monkeypatch.undo()
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "s.csv"]
    assert (folder / "s.csv").read_text() == "old csv\n"
    written = write_results(table, folder)  # and it works once the folder lets it
    assert written == [folder / "s.csv", folder / "README.md"]
    assert (folder / "s.csv").read_text().startswith("target,task_set,split,value")
    assert "old table" not in (folder / "README.md").read_text()


def _is_temporary(path: Path, name: str) -> bool:
    """Return whether ``path`` is the hidden temporary file of ``name`` (``.NAME.XXXX.tmp``)."""
    return path.name.startswith(f".{name}.") and path.suffix == ".tmp"


def _refuse_the_readme_rename(monkeypatch: pytest.MonkeyPatch) -> None:
    original = Path.replace

    def replace(self: Path, target: Path) -> Path:
        if _is_temporary(self, "README.md"):
            raise PermissionError(13, "Permission denied")
        return original(self, target)

    monkeypatch.setattr(Path, "replace", replace)


def test_a_failed_readme_rename_puts_the_previous_csv_back(
    storage: str, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The CSV was renamed into place before the README: a failure between the two renames
    # left the new CSV beside the old README.
    table = results_table("s", storage=storage)
    _refuse_the_readme_rename(monkeypatch)
    with pytest.raises(ResultsWriteError, match=r"cannot write .*README\.md: Permission denied"):
        write_results(table, folder)
    assert (folder / "s.csv").read_text() == "old csv\n"
    assert (folder / "README.md").read_text() == README
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "s.csv"]  # no copy, no .tmp


def test_an_interrupt_while_the_previous_csv_is_copied_aside_leaves_nothing(
    storage: str, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    def interrupted(source: Path, target: Path) -> None:
        Path(target).write_text("half")  # a partial copy, then Ctrl-C
        raise KeyboardInterrupt

    monkeypatch.setattr(shutil, "copy2", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_results(results_table("s", storage=storage), folder)
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "s.csv"]  # no .bak, no .tmp
    assert (folder / "s.csv").read_text() == "old csv\n"
    assert (folder / "README.md").read_text() == README


def test_a_failed_readme_rename_removes_a_csv_that_was_not_there(
    storage: str, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (folder / "s.csv").unlink()
    _refuse_the_readme_rename(monkeypatch)
    with pytest.raises(ResultsWriteError, match=r"README\.md: Permission denied"):
        write_results(results_table("s", storage=storage), folder)
    assert sorted(p.name for p in folder.iterdir()) == ["README.md"]
    assert (folder / "README.md").read_text() == README


def test_a_previous_csv_that_cannot_be_put_back_is_kept_and_named(
    storage: str, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = Path.replace

    def replace(self: Path, target: Path) -> Path:
        if _is_temporary(self, "README.md") or self.suffix == ".bak":
            raise PermissionError(13, "Permission denied")
        return original(self, target)

    monkeypatch.setattr(Path, "replace", replace)
    with pytest.raises(ResultsWriteError) as error:
        write_results(results_table("s", storage=storage), folder)
    (copy,) = folder.glob(".s.csv.*.bak")  # the only copy of the previous table
    assert str(error.value).endswith(f"the previous one is in {copy}")
    assert copy.read_text() == "old csv\n" and (folder / "README.md").read_text() == README


def test_write_long_csv_removes_its_temporary_file_when_the_rename_fails(tmp_path):
    from taskgraph.affinity.longtable import LongRow, write_long_csv

    (tmp_path / "t.csv").mkdir()
    row = LongRow(
        target="a", task_set=frozenset({"a"}), split="val", value=0.5, higher_is_better=True
    )
    with pytest.raises(IsADirectoryError):
        write_long_csv([row], tmp_path / "t.csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.csv"]


def test_markers_on_one_line_are_a_section(storage: str, folder: Path) -> None:
    # Both markers were there, but with nothing between them on one line the page was refused.
    readme = folder / "README.md"
    readme.write_text("# Results\n\n<!-- results:s --><!-- /results:s -->\n\nafter\n")
    write_results(results_table("s", storage=storage), folder)
    text = readme.read_text()
    assert text.startswith("# Results\n\n<!-- results:s -->\n| row |")
    assert text.endswith("\n<!-- /results:s -->\n\nafter\n")


def test_a_crlf_readme_keeps_its_line_endings(storage: str, folder: Path) -> None:
    readme = folder / "README.md"
    readme.write_bytes(README.replace("\n", "\r\n").encode())
    write_results(results_table("s", storage=storage), folder)
    data = readme.read_bytes()
    assert data.startswith(b"# Results\r\n\r\n<!-- results:s -->\r\n| row |")
    assert data.count(b"\n") == data.count(b"\r\n") > 5
    # an LF page stays LF
    readme.write_text(README)
    write_results(results_table("s", storage=storage), folder)
    assert b"\r" not in readme.read_bytes()
