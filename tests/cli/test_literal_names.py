"""Task names, paths and stored text print as they are, never as rich markup or emoji codes.

The consoles read markup: a task named ``x[/]y`` (any name a long table or a tabular spec
gives) made ``records list``, ``study show`` and the ``affinity`` commands end in a
``MarkupError`` traceback after the study had written its records, ``[bold]z`` printed as
``z``, and ``:100:`` (a task name, or the line number in ``file.tsv:100:``) as an emoji.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from taskgraph.affinity.longtable import LongRow, LongTable, write_long_csv
from taskgraph.cli.app import app

runner = CliRunner()

#: names rich would read: a closing tag with nothing to close, a style, an emoji code
ODD = ("x[/]y", "[bold]z", "c:100:")


def _invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), env={"COLUMNS": "250"})
    return result.exit_code, result.stdout, result.stderr


def _table(path: Path) -> Path:
    """Write a long table of target ``a`` and the odd names: baselines, pairs, all three."""
    tasks = ("a", *ODD)
    rows = [LongRow(t, frozenset({t}), "val", 0.5, True) for t in tasks]
    for i, source in enumerate(ODD):
        rows.append(LongRow("a", frozenset({"a", source}), "val", 0.52 + 0.01 * i, True))
        rows.append(LongRow(source, frozenset({"a", source}), "val", 0.51, True))
    rows.append(LongRow("a", frozenset(tasks), "val", 0.6, True))
    write_long_csv(LongTable(rows=rows), path)
    return path


def _assert_literal(text: str) -> None:
    for name in ODD:
        assert name in text, (name, text)
    assert "\N{HUNDRED POINTS SYMBOL}" not in text


@pytest.fixture
def table(tmp_path: Path) -> Path:
    return _table(tmp_path / "odd.csv")


def test_affinity_commands_on_a_table_print_odd_names_literally(table: Path) -> None:
    code, out, err = _invoke("affinity", "top", "--target", "a", "--table", str(table))
    assert code == 0, err
    _assert_literal(out)
    code, out, err = _invoke("affinity", "groups", "--budget", "2", "--table", str(table))
    assert code == 0, err
    assert "x[/]y" in out and "[bold]z" in out


def test_a_study_of_odd_names_is_read_back_literally(tmp_path: Path, table: Path) -> None:
    spec = tmp_path / "spec.yaml"
    candidates = ", ".join(f'"{name}"' for name in ODD)
    spec.write_text(
        f"name: odd\ntarget: a\ncandidates: [{candidates}]\n"
        f"runner: {{name: tabular, table: {table}, split: val}}\n"
        "sampler: {name: random, seed: 0}\nbudget: {trials: 5}\n",
        encoding="utf-8",
    )
    url = f"sqlite:///{tmp_path / 'odd.db'}"
    code, _, err = _invoke("study", "run", str(spec), "--storage", url, "-q")
    assert code == 0, err
    code, out, err = _invoke("records", "list", "--storage", url)
    assert code == 0, err
    _assert_literal(out)
    code, out, err = _invoke("study", "show", "odd", "--storage", url)
    assert code == 0, err
    assert "Traceback" not in err
    assert any(name in out for name in ODD), out
    assert "\N{HUNDRED POINTS SYMBOL}" not in out
    code, out, err = _invoke("affinity", "top", "--target", "a", "--storage", url)
    assert code == 0, err
    assert "Traceback" not in err


def test_a_spec_path_with_brackets_is_named_as_it_is(tmp_path: Path) -> None:
    folder = tmp_path / "a[/b]" / "[red]x:100:"
    folder.mkdir(parents=True)
    spec = folder / "spec.yaml"
    spec.write_text(
        "name: s\ntarget: synth_target\ncandidates: [synth_related]\n"
        "encoder: tiny-bert\nsampler: {name: random, seed: 0}\nbudget: {trials: 2}\n",
        encoding="utf-8",
    )
    code, out, err = _invoke("study", "validate", str(spec))
    assert code == 0, err
    assert out.startswith(f"valid {spec}: study 's'"), out
