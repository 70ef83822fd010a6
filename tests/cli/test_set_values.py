"""`--set key=` with nothing after `=` is named as such (YAML reads it as null, and the
field's own check said "Input should be a valid string, got None")."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from taskgraph.cli.app import app

DEMO = str(Path(__file__).resolve().parents[2] / "searchspaces" / "demo.yaml")


@pytest.mark.parametrize("item", ["name=", "budget.trials= "])
def test_an_empty_set_value_is_one_line_naming_it(item: str) -> None:
    result = CliRunner().invoke(app, ["study", "validate", DEMO, "--set", item])
    assert result.exit_code == 2
    key = item.split("=")[0]
    assert result.stderr.strip() == (
        f"error: --set {key}= has no value: give one (null for none, '\"\"' for an empty string)"
    )


def test_an_explicit_null_is_still_the_fields_own_check() -> None:
    result = CliRunner().invoke(app, ["study", "validate", DEMO, "--set", "name=null"])
    assert result.exit_code == 2 and "--set name" in result.stderr
