"""An empty path in a spec is refused, never read as the working directory.

Paths in a spec are made absolute beside the spec file; ``Path("")`` is ".", so an empty
``data_dir``, ``runner.table`` or inline task file was the directory the command ran in: a study
could read the data found there without a word.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from taskgraph.cli.app import app

INLINE = (
    "tasks:\n  - {name: mine, type: sentence_classification, format: tsv, label_field: label,"
    " reader_options: {text_column: 0, label_column: 1}, %s}\n"
)


@pytest.mark.parametrize(
    ("body", "refusal"),
    [
        (
            "target: ud_en_ewt_deps\ncandidates: [ud_en_ewt_upos]\ndata_dir: ''\n",
            "data_dir: is empty: give the data directory",
        ),
        (
            "target: t\ncandidates: [a]\nrunner: {name: tabular, table: ' '}\n",
            "runner.table: is empty (' '): give the results table's CSV file",
        ),
        (
            "target: mine\ncandidates: [ud_en_ewt_upos]\n" + INLINE % "files: {train: ''}",
            "`files.train` must be a file path, but got ''",
        ),
        (
            "target: mine\ncandidates: [ud_en_ewt_upos]\n" + INLINE % "path: ''",
            "`path` must be a directory or a '{split}' pattern, but got ''",
        ),
    ],
    ids=["data_dir", "runner.table", "files", "path"],
)
def test_an_empty_path_is_refused_not_read_as_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str, refusal: str
) -> None:
    (tmp_path / "specs").mkdir()
    (tmp_path / "cwd").mkdir()
    spec = tmp_path / "specs" / "s.yaml"
    spec.write_text("name: s\n" + body)
    monkeypatch.chdir(tmp_path / "cwd")
    result = CliRunner().invoke(app, ["study", "validate", str(spec)])
    assert result.exit_code == 2, result.output
    assert refusal in result.output
    assert str(tmp_path / "cwd") not in result.output
