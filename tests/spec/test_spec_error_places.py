"""A spec error names the line to fix and says what is wrong: a bad indent or a stray bracket
inside a block mapping is on the line PyYAML stopped at (it named line 1, where the document's
mapping begins), and a nested list or a mapping among a setting's choices is said to be no
value (pydantic reported its last failed scalar type: "Input should be a valid boolean")."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from taskgraph.cli.app import app

runner = CliRunner()
HEAD = "name: s1\ntarget: synth_target\ncandidates: [synth_related]\n"


def _validate(tmp_path: Path, text: str) -> tuple[int, str]:
    spec = tmp_path / "s.yaml"
    spec.write_text(text)
    result = runner.invoke(app, ["study", "validate", str(spec)])
    return result.exit_code, result.output


@pytest.mark.parametrize(
    ("tail", "line", "found"),
    [
        ("search:\n  batch_size: 8\n learning_rate: 2\n", 6, "'<block mapping start>'"),
        ("x: [a, b]]\n", 4, "']'"),
    ],
)
def test_an_error_inside_a_block_mapping_names_the_line_to_fix(
    tmp_path: Path, tail: str, line: int, found: str
) -> None:
    code, output = _validate(tmp_path, HEAD + tail)
    assert code == 2, output
    assert f"s.yaml:{line}: not valid YAML: expected <block end>, but found {found} (in the " \
        "block mapping from line 1)" in output, output  # fmt: skip


def test_an_unclosed_flow_list_still_names_the_line_it_opens_on(tmp_path: Path) -> None:
    code, output = _validate(tmp_path, "name: s1\nc: [a, b\ntarget: x\n")
    assert code == 2
    assert "s.yaml:2: not valid YAML: while parsing a flow sequence here" in output, output


@pytest.mark.parametrize(
    ("domain", "field", "what", "got"),
    [
        ("[[8, 16], 32]", "choices", "each choice", "[8, 16]"),
        ("{choices: [8, {a: 1}]}", "choices", "each choice", "{'a': 1}"),
        ("{value: [8, 16]}", "value", "a fixed value", "[8, 16]"),
    ],
)
def test_a_nested_list_or_mapping_as_a_value_is_named_as_such(
    tmp_path: Path, domain: str, field: str, what: str, got: str
) -> None:
    code, output = _validate(tmp_path, HEAD + f"search:\n  batch_size: {domain}\n")
    assert code == 2, output
    assert (
        f"s.yaml:5: search.batch_size.{field}: {what} must be a number, a string or true/false, "
        f"got {got}" in output
    ), output
    assert "valid boolean" not in output
