"""Study spec: a ``.json`` file is read as JSON, with YAML's limits and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from taskgraph.errors import SpecError
from taskgraph.spec import load_spec
from taskgraph.spec.limits import MAX_SPEC_NODES

MINIMAL: dict[str, Any] = {"name": "s1", "target": "synth_a", "candidates": ["synth_b", "synth_c"]}


def write(tmp_path: Path, text: str, name: str = "spec.json") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def load_error(path: Path) -> str:
    with pytest.raises(SpecError) as info:
        load_spec(path)
    return str(info.value)


@pytest.mark.parametrize("indent", [2, "\t"])
def test_a_json_number_such_as_5e_05_is_a_number(tmp_path: Path, indent: int | str) -> None:
    # json.dumps writes 5e-05, which YAML 1.1 reads as the text '5e-05'.
    spec = {**MINIMAL, "search": {"learning_rate": 5e-05, "epochs": {"low": 1e-1, "high": 2}}}
    text = json.dumps(spec, indent=indent)
    assert '"learning_rate": 5e-05' in text
    loaded = load_spec(write(tmp_path, text))
    assert loaded.search.learning_rate.values() == (5e-05,)
    assert isinstance(loaded.search.learning_rate.value, float)
    assert (loaded.search.epochs.low, loaded.search.epochs.high) == (0.1, 2)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{\n  "name": "s1",\n  "target": "synth_a"\n  "seeds": 2\n}', "4: not valid JSON: "
         "Expecting ',' delimiter (column 3)"),
        ('{\n  "name": "s1"\n}\n{"seeds": 2}\n', "4: not valid JSON: Extra data (column 1)"),
        ('{"name": "s1",\n "target": \'synth_a\'}', "2: not valid JSON: "
         "Expecting value (column 12)"),
        ("", "1: not valid JSON: Expecting value (column 1)"),
    ],
)  # fmt: skip
def test_malformed_json_is_one_line_with_its_line_and_column(
    tmp_path: Path, text: str, message: str
) -> None:
    path = write(tmp_path, text)
    assert load_error(path) == f"{path}:{message}"


def test_an_error_inside_a_json_spec_names_the_field_and_its_line(tmp_path: Path) -> None:
    spec = {**MINIMAL, "search": {"learning_rate": 5e-05, "batch_size": 0}}
    text = json.dumps(spec, indent="\t")  # tabs, which YAML refuses as indentation
    path = write(tmp_path, text)
    assert text.splitlines()[9].strip() == '"batch_size": 0'
    assert load_error(path) == f"{path}:10: search.batch_size: must be >= 1 and <= 4096, got 0"
    # A list item is found where it starts; a field is found at its key.
    spec = {**MINIMAL, "search": {"learning_rate": 5e-05}, "seeds": [1, 2, -3]}
    path = write(tmp_path, json.dumps(spec, indent=1))
    assert load_error(path).startswith(f"{path}:14: seeds[2]: ")


def test_a_key_given_twice_in_a_json_mapping_is_refused_with_both_lines(tmp_path: Path) -> None:
    text = '{\n\t"name": "s1",\n\t"target": "synth_a",\n\t"name": "s2"\n}\n'
    path = write(tmp_path, text)
    assert load_error(path) == f"{path}:4: duplicate key 'name' (first on line 2)"


def test_a_json_spec_past_the_node_limit_is_refused_without_alias_advice(tmp_path: Path) -> None:
    spec = {**MINIMAL, "training": {"hyperparameters": {"big": [0] * MAX_SPEC_NODES}}}
    path = write(tmp_path, json.dumps(spec, indent=1))
    message = load_error(path)
    assert message.startswith(f"{path}:")
    assert f"the spec holds more than {MAX_SPEC_NODES} values" in message
    assert "alias" not in message


@pytest.mark.parametrize(("quoted", "hint"), [("5e-05", "5e-05"), ("0.001", "0.001")])
def test_a_quoted_number_in_json_is_told_to_drop_the_quotes(
    tmp_path: Path, quoted: str, hint: str
) -> None:
    # YAML's hint ("write 5.0e-05") is wrong for JSON, which reads 5e-05 as a number.
    spec = {**MINIMAL, "search": {"learning_rate": quoted}}
    path = write(tmp_path, json.dumps(spec, indent=2))
    message = load_error(path)
    assert message == (
        f"{path}:9: search.learning_rate: expected a number, got {quoted!r} "
        f"(a quoted number is text in JSON; write {hint} unquoted)"
    )
    assert "YAML" not in message


def test_a_quoted_number_in_yaml_keeps_the_yaml_hint(tmp_path: Path) -> None:
    path = write(tmp_path, "name: s1\ntarget: synth_a\nsearch:\n  learning_rate: 5e-05\n", "s.yaml")
    assert load_error(path).endswith("(YAML reads 5e-05 as text; write 5.0e-05)")
