"""Study spec: a key given twice in one mapping is refused, naming both lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from taskgraph.errors import SpecError
from taskgraph.spec import load_spec

MINIMAL = "name: a\ntarget: synth_a\ncandidates: [synth_b, synth_c]\n"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (MINIMAL + "name: b\n", ":4: duplicate key 'name' (first on line 1)"),
        (
            MINIMAL + "search:\n  sharing: [hard]\nseeds: 2\nsearch:\n  batch_size: [8]\n",
            ":7: duplicate key 'search' (first on line 4)",
        ),
        (
            MINIMAL + "budget: {trials: 2, trials: 3}\n",
            ":4: duplicate key 'trials' (first on line 4)",
        ),
    ],
)
def test_duplicate_key_is_one_line_with_both_lines(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert str(info.value) == f"{path}{message}"


def test_a_merged_key_may_be_overridden(tmp_path: Path) -> None:
    text = MINIMAL.replace("name: a\n", "") + (
        "budget:\n  <<: {trials: 2, wall_time: 10m}\n  trials: 3\nname: a\n"
    )
    spec = load_spec(write(tmp_path, text))
    assert spec.name == "a" and spec.budget.trials == 3 and spec.budget.wall_time == 600.0


def sampler_options(block: str) -> str:
    """Return a spec whose free-form ``sampler.options`` mapping is ``block``."""
    indented = "".join(f"    {line}\n" for line in block.splitlines())
    return MINIMAL + "sampler:\n  name: tpe\n  options:\n" + indented


def test_an_anchor_merged_deeper_than_its_alias_keeps_its_override(tmp_path: Path) -> None:
    # Merging `*b` into `use` rewrites b's node in place before b itself is built: b's own
    # `x` must not then read as a duplicate of the `x` merged from `*a`, nor lose to it.
    text = sampler_options(
        "base: &a {x: 1}\ndefs:\n  inner:\n    b: &b {<<: *a, x: 5}\nuse: {<<: *b}"
    )
    options = load_spec(write(tmp_path, text)).sampler.options
    assert options["use"] == {"x": 5}
    assert options["defs"]["inner"]["b"] == {"x": 5}
    assert options["base"] == {"x": 1}


def test_a_duplicate_in_a_deeply_nested_anchor_names_its_own_lines(tmp_path: Path) -> None:
    text = sampler_options(
        "base: &a {x: 1}\n"
        "defs:\n"
        "  inner:\n"
        "    b: &b\n"
        "      <<: *a\n"
        "      x: 5\n"
        "      y: 2\n"
        "      x: 6\n"
        "use: {<<: *b}"
    )
    path = write(tmp_path, text)
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert str(info.value) == f"{path}:14: duplicate key 'x' (first on line 12)"


@pytest.mark.parametrize("key", ["x", "trials"])
def test_the_earlier_merged_mapping_wins(tmp_path: Path, key: str) -> None:
    # YAML's merge rule, whatever the key's length (PyYAML 6.0.4 decides by string identity).
    text = sampler_options(
        f"a: &a {{{key}: 1}}\nb: &b {{<<: *a, {key}: 2}}\n"
        f"first_b: {{<<: [*b, *a]}}\nfirst_a: {{<<: [*a, *b]}}"
    )
    options = load_spec(write(tmp_path, text)).sampler.options
    assert options["first_b"] == {key: 2}
    assert options["first_a"] == {key: 1}


def test_an_override_keeps_the_merged_keys_place(tmp_path: Path) -> None:
    # The merge put `hard` first; the own key that overrides it used to move it last, and
    # search.sharing's order is the order of Optuna's sharing choices (a stored study then
    # failed: "CategoricalDistribution does not support dynamic value space").
    text = sampler_options("m: {<<: {a: 1, bee: 2, c: 3}, a: 9, d: 4}")
    options = load_spec(write(tmp_path, text)).sampler.options
    assert list(options["m"].items()) == [("a", 9), ("bee", 2), ("c", 3), ("d", 4)]
    spec = write(
        tmp_path,
        "name: s\ntarget: ud_en_ewt_deps\ncandidates: [ud_en_ewt_upos]\n"
        "search:\n  sharing: {<<: {hard: {}, soft: {}, mmoe: {}}, hard: {}}\n",
    )
    assert list(load_spec(spec).search.sharing) == ["hard", "soft", "mmoe"]
