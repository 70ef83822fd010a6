"""Without --storage or TASKGRAPH_STORAGE the study commands name the default database as
the default, as `records list` does (they used to say it was given by --storage)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from taskgraph.cli.app import app

runner = CliRunner()
SPEC = Path(__file__).resolve().parents[2] / "searchspaces" / "quick" / "masking.yaml"


@pytest.mark.parametrize(
    "args",
    [
        ["study", "list"],
        ["study", "status", "x"],
        ["study", "show", "x"],
        ["study", "resume", "x"],
        ["study", "screen", str(SPEC), "--show"],
        ["records", "list"],
    ],
)
def test_a_missing_default_database_is_named_the_default(
    args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TASKGRAPH_STORAGE", raising=False)
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "(sqlite:///taskgraph.db, the default): run a study first, or pass --storage / set " \
        "TASKGRAPH_STORAGE" in result.output  # fmt: skip
    assert "given by --storage" not in result.output
    assert not (tmp_path / "taskgraph.db").exists()


def test_the_variable_and_the_option_are_still_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TASKGRAPH_STORAGE", "sqlite:///from_env.db")
    result = runner.invoke(app, ["study", "show", "x"])
    assert "(sqlite:///from_env.db, from TASKGRAPH_STORAGE)" in result.output
    result = runner.invoke(app, ["study", "show", "x", "--storage", "sqlite:///given.db"])
    assert "(sqlite:///given.db, given by --storage)" in result.output


def test_a_screen_of_a_spec_with_a_storage_field_names_the_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The command line resolved the spec's URL; the screen resolved it again and called it
    # --storage's.
    monkeypatch.delenv("TASKGRAPH_STORAGE", raising=False)
    spec = tmp_path / "s.yaml"
    url = f"sqlite:///{tmp_path / 'none.db'}"
    spec.write_text(SPEC.read_text() + f"storage: {url}\n")
    result = runner.invoke(app, ["study", "screen", str(spec), "--show"])
    assert result.exit_code == 2, result.output
    assert f"({url}, the spec's storage field)" in result.output
    assert not (tmp_path / "none.db").exists()


@pytest.mark.parametrize(
    "args",
    [
        ["study", "validate"],
        ["study", "run"],
        ["study", "submit", "--address", "ray://127.0.0.1:1"],
        ["study", "screen"],
    ],
)
def test_a_bad_storage_set_with_set_names_the_option_not_the_spec(
    args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The project's rule: an error in a field names the option that set it."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TASKGRAPH_STORAGE", raising=False)
    url = f"sqlite:///{tmp_path / 'nope' / 'x.db'}"
    result = runner.invoke(app, [*args[:2], str(SPEC), *args[2:], "--set", f"storage={url}"])
    assert result.exit_code == 2, result.output
    assert f"error: --set storage: storage URL {url!r}: directory " in result.output
    assert "the spec's storage field" not in result.output
    assert not (tmp_path / "nope").exists()
