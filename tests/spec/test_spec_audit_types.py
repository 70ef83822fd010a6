"""Spec values of the wrong type are one SpecError line naming the field, never a TypeError.

``budget.wall_time: [1]`` reached a regex match inside a pydantic "before" validator, whose
TypeError pydantic does not turn into a validation error: a traceback in ``study validate``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from taskgraph.cli.app import app
from taskgraph.errors import SpecError
from taskgraph.spec import load_spec, parse_duration, spec_from_dict

SPEC = """\
name: types
target: synth_target
candidates: [synth_related]
"""

WRONG_TYPES: list[Any] = [[1], {"a": 1}, b"10m", [], {}]


@pytest.mark.parametrize("value", WRONG_TYPES, ids=repr)
def test_parse_duration_refuses_a_value_of_the_wrong_type_with_value_error(value: Any) -> None:
    with pytest.raises(ValueError, match="expected a duration"):
        parse_duration(value)


@pytest.mark.parametrize("value", WRONG_TYPES, ids=repr)
def test_a_wall_time_of_the_wrong_type_is_one_line_naming_the_field(value: Any) -> None:
    data = {"name": "types", "target": "a", "candidates": ["b"], "budget": {"wall_time": value}}
    with pytest.raises(SpecError) as info:
        spec_from_dict(data)
    message = str(info.value)
    assert message.startswith("spec: budget.wall_time: expected a duration"), message
    assert "\n" not in message


def test_a_wall_time_list_in_a_spec_file_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "wt.yaml"
    path.write_text(SPEC + "budget: {wall_time: [1]}\n", encoding="utf-8")
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert str(info.value) == (
        f"{path}:4: budget.wall_time: expected a duration such as 600, '90s', '10m' or '2h', "
        "got [1]"
    )


def test_a_wall_time_override_of_the_wrong_type_names_the_option(tmp_path: Path) -> None:
    path = tmp_path / "wt.yaml"
    path.write_text(SPEC, encoding="utf-8")
    with pytest.raises(SpecError) as info:
        load_spec(path, overrides={"budget.wall_time": {"a": 1}})
    assert str(info.value).startswith("--set budget.wall_time: expected a duration")


def test_study_validate_of_a_wall_time_list_is_one_error_line(tmp_path: Path) -> None:
    path = tmp_path / "wt.yaml"
    path.write_text(SPEC + "budget: {wall_time: [1]}\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["study", "validate", str(path)])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {path}:4: budget.wall_time: expected a duration")
    assert result.stderr.count("\n") == 1
    result = CliRunner().invoke(
        app, ["study", "validate", str(path), "--set", "budget.wall_time=[1]"]
    )
    assert result.exit_code == 2
    assert result.stderr == (
        "error: --set budget.wall_time: expected a duration such as 600, '90s', '10m' or '2h', "
        "got [1]\n"
    )
