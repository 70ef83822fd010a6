"""Wording of spec errors about inline tasks: one mistake is one error, the reason is named."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from taskgraph.cli.app import app
from taskgraph.errors import SpecError
from taskgraph.spec import StudySpec, load_spec, spec_from_dict
from taskgraph.spec.models import InlineTaskSpec

runner = CliRunner()

INLINE = "{{name: {name}, format: iob, type: token_tagging, label_field: ner, files: {{train: t.iob}}{extra}}}"


def inline(name: str, extra: str = "") -> str:
    return INLINE.format(name=name, extra=extra)


def error_of(tmp_path: Path, text: str) -> str:
    (tmp_path / "t.iob").write_text("The\tO\ncat\tB-ANIMAL\n\n", encoding="utf-8")
    spec = tmp_path / "s.yaml"
    spec.write_text(text, encoding="utf-8")
    with pytest.raises(SpecError) as info:
        load_spec(spec)
    return str(info.value)


def test_an_unknown_key_of_an_inline_candidate_is_one_error(tmp_path: Path) -> None:
    # The `str` branch of `str | InlineTaskSpec` was counted: "(and 1 more error)".
    text = f"name: t\ntarget: synth_a\ncandidates: [synth_b, {inline('my_ner', ', colour: red')}]\n"
    assert error_of(tmp_path, text) == (
        f"{tmp_path / 's.yaml'}:3: candidates[1].colour: unknown field 'colour'; allowed: "
        "files, format, label_field, metrics, name, path, reader_options, type"
    )


def test_an_unknown_key_of_a_tasks_entry_is_one_error(tmp_path: Path) -> None:
    text = (
        f"name: t\ntarget: my_ner\ntasks: [{inline('my_ner', ', colour: red')}]\n"
        "candidates: [synth_b]\n"
    )
    assert error_of(tmp_path, text).endswith(
        ":3: tasks[0].colour: unknown field 'colour'; "
        "allowed: files, format, label_field, metrics, "
        "name, path, reader_options, type"
    )


@pytest.mark.parametrize(
    ("candidate", "says"),
    [
        # The mapping's own mistakes are counted, each once; nothing of the `str` branch.
        ({"name": "my_x"}, "candidates[1].format: required field is missing (and 2 more errors)"),
        (
            {
                "name": 3,
                "format": "iob",
                "type": "token_tagging",
                "label_field": "ner",
                "files": {"train": "t.iob"},
            },
            "candidates[1].name: Input should be a valid string, got 3",
        ),
        # Neither a name nor a mapping: the name's error, once.
        (5, "candidates[1]: Input should be a valid string, got 5"),
        ([1], "candidates[1]: Input should be a valid string, got [1]"),
    ],
)
def test_a_candidate_is_checked_as_what_it_is(candidate: Any, says: str) -> None:
    with pytest.raises(SpecError) as info:
        spec_from_dict({"name": "t", "target": "synth_a", "candidates": ["synth_b", candidate]})
    assert str(info.value) == f"spec: {says}"


def test_candidates_still_take_names_and_inline_tasks() -> None:
    task = InlineTaskSpec(
        name="my_x", format="iob", type="token_tagging", label_field="ner", files={"a": "b"}
    )
    spec = StudySpec(name="t", target="synth_a", candidates=["synth_b", task])
    assert spec.candidates == ("synth_b", task)
    again = spec_from_dict(spec.model_dump(mode="json"))
    assert again == spec and again.search_hash() == spec.search_hash()


@pytest.mark.parametrize(
    "candidates",
    [f"[cola, {inline('cola')}]", f"[{inline('cola')}, cola]"],
    ids=["name-then-inline", "inline-then-name"],
)
def test_an_inline_task_named_like_a_catalog_task_says_so(tmp_path: Path, candidates: str) -> None:
    # It said "candidates listed twice: cola".
    text = f"name: t\ntarget: synth_a\ncandidates: {candidates}\n"
    index = 0 if candidates.startswith("[{") else 1
    assert error_of(tmp_path, text).endswith(
        f"(top level): candidates[{index}].name: 'cola' is taken by a built-in task of the "
        "catalog; rename the inline task (e.g. 'my_cola')"
    )


def test_an_inline_target_clash_with_the_catalog_says_so(tmp_path: Path) -> None:
    # It said "target 'cola' is also a candidate".
    text = f"name: t\ntarget: cola\ncandidates: [synth_b, {inline('cola')}]\n"
    assert error_of(tmp_path, text).endswith(
        "candidates[1].name: 'cola' is taken by a built-in task of the catalog; "
        "rename the inline task (e.g. 'my_cola')"
    )


def test_an_inline_task_also_listed_by_name_says_which_entries(tmp_path: Path) -> None:
    text = f"name: t\ntarget: synth_a\ncandidates: [my_x, synth_b, {inline('my_x')}]\n"
    assert error_of(tmp_path, text).endswith(
        "(top level): candidates list 'my_x' twice: by name (candidates[0]) and as an inline "
        "task (candidates[2]); an inline task is a candidate itself, so list it once"
    )


def test_a_name_listed_twice_is_still_listed_twice(tmp_path: Path) -> None:
    text = "name: t\ntarget: synth_a\ncandidates: [synth_b, synth_b]\n"
    assert error_of(tmp_path, text).endswith("(top level): candidates listed twice: synth_b")


def test_a_tasks_entry_named_like_a_catalog_task_is_refused_by_validate(tmp_path: Path) -> None:
    (tmp_path / "t.iob").write_text("The\tO\ncat\tB-ANIMAL\n\n", encoding="utf-8")
    spec = tmp_path / "s.yaml"
    spec.write_text(
        f"name: t\ntarget: my_ner\ntasks: [{inline('my_ner')}, {inline('cola')}]\n"
        "candidates: [cola]\n",
        encoding="utf-8",
    )
    result = runner.invoke(app, ["study", "validate", str(spec)])
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: {spec}: tasks[1]: `name` 'cola' is taken by a built-in task; choose another name\n"
    )


def test_an_inline_task_defined_twice_is_refused(tmp_path: Path) -> None:
    # `inline_task_defs` kept the last definition: the other one's files were silently unused.
    text = (
        f"name: t\ntarget: synth_a\ncandidates: [synth_b, {inline('my_x')}]\n"
        f"tasks: [{inline('my_x', ', metrics: [f1]')}]\n"
    )
    assert error_of(tmp_path, text).endswith(
        "inline task 'my_x' is defined twice (in `candidates` and `tasks`, or twice in one of "
        "them); define it once"
    )


def test_a_study_name_outside_ascii_is_refused_saying_ascii(tmp_path: Path) -> None:
    message = error_of(tmp_path, "name: tüt\ntarget: synth_a\ncandidates: [synth_b]\n")
    assert "use ASCII letters, digits" in message


@pytest.mark.parametrize(
    ("key", "where"),
    [("x[0]", "x[0]"), ("search", "search.y[1]")],
)
def test_an_unknown_key_that_looks_like_an_index_is_named(
    tmp_path: Path, key: str, where: str
) -> None:
    # Keys holding "[" read as pydantic's branch labels and were dropped from the path: an
    # IndexError traceback instead of the error.
    value = '{"y[1]": 2}' if key == "search" else "1"
    text = f'name: t\ntarget: synth_a\ncandidates: [synth_b]\n"{key}": {value}\n'
    unknown = where.rsplit(".", 1)[-1]
    assert error_of(tmp_path, text).startswith(
        f"{tmp_path / 's.yaml'}:4: {where}: unknown field {unknown!r}; allowed: "
    )
