"""Study spec domains and file reading: the checks the existing tests left unpinned."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from taskgraph.spec import StudySpec, load_spec
from taskgraph.spec.domains import Domain, as_domain, check_numbers, reject_non_finite
from taskgraph.spec.limits import MAX_BATCH_SIZE, MAX_LEARNING_RATE
from tests.spec.test_spec_limits import error_of

MINIMAL = """\
name: s1
target: synth_a
candidates: [synth_b, synth_c]
"""

# Documented bounds (docs/search.md, "Limits"), spelled out so a changed constant fails here.
DOC_MAX_BYTES = 1_000_000
DOC_MAX_NODES = 10_000
DOC_MAX_DEPTH = 64


def load(tmp_path: Path, text: str, name: str = "spec.yaml") -> StudySpec:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return load_spec(path)


@pytest.mark.parametrize(
    ("extra", "detail"),
    [
        ("search: {batch_size: []}\n", "search.batch_size: choices must not be empty"),
        ("search: {epochs: {low: 1}}\n", "search.epochs: a range needs both low and high"),
        ("search: {epochs: {high: 3}}\n", "search.epochs: a range needs both low and high"),
        (
            "search: {epochs: {low: 1, high: 3, log: true, step: 1}}\n",
            "search.epochs: a range cannot have both log and step",
        ),
        (
            "search: {epochs: {value: 2, type: float}}\n",
            "search.epochs: log/step/type only apply to ranges",
        ),
        (
            "search: {epochs: {value: 2, low: 1, high: 3}}\n",
            "search.epochs: give either value or low/high, not both",
        ),
        (
            "search: {epochs: {choices: [1, 2], value: 2}}\n",
            "search.epochs: give either choices or low/high, not both",
        ),
        (
            "search: {epochs: {low: 0, high: 3, log: true}}\n",
            "a log range needs low > 0, got low=0",
        ),
        ("search: {epochs: {low: 3, high: 1}}\n", "low must be <= high, got low=3 high=1"),
        ("search: {learning_rate: 0}\n", "search.learning_rate: must be > 0 and <= 10, got 0"),
        ("search: {batch_size: 0}\n", "search.batch_size: must be >= 1 and <= 4096, got 0"),
        (
            f"search: {{batch_size: {MAX_BATCH_SIZE + 1}}}\n",
            f"must be >= 1 and <= {MAX_BATCH_SIZE}, got {MAX_BATCH_SIZE + 1}",
        ),
        ("search: {learning_rate: 1e5}\n", "got '1e5' (YAML reads 1e5 as text; write 1.0e+5)"),
        ("search: {learning_rate: 2.5e5}\n", "(YAML reads 2.5e5 as text; write 2.5e+5)"),
        (
            "search: {max_steps: {low: 1, high: 10, step: 0.5}}\n",
            "search.max_steps: expected an integer, got the float range",
        ),
        (
            "search: {batch_size: {low: 8, high: 16, type: float}}\n",
            "expected an integer, got the float range {'low': 8, 'high': 16, 'type': 'float'}",
        ),
        ("search: {batch_size: [16, true]}\n", "search.batch_size: expected an integer, got True"),
    ],
)
def test_a_domain_that_cannot_work_is_one_line_naming_the_field(
    tmp_path: Path, extra: str, detail: str
) -> None:
    message = error_of(tmp_path, MINIMAL + extra)
    assert detail in message, message


def test_the_upper_bounds_themselves_are_allowed(tmp_path: Path) -> None:
    text = (
        MINIMAL + f"search: {{batch_size: {MAX_BATCH_SIZE}, learning_rate: {MAX_LEARNING_RATE}}}\n"
    )
    spec = load(tmp_path, text)
    assert spec.search.batch_size.fixed_value() == MAX_BATCH_SIZE
    assert spec.search.learning_rate.fixed_value() == MAX_LEARNING_RATE


def test_a_range_of_one_value_is_allowed(tmp_path: Path) -> None:
    spec = load(tmp_path, MINIMAL + "search: {epochs: {low: 3, high: 3}}\n")
    assert spec.search.epochs.describe() == {"low": 3, "high": 3}


@pytest.mark.parametrize(
    ("written", "kind", "shortest"),
    [
        (5.0e-5, "fixed", 5.0e-5),
        ([16, 32], "choice", [16, 32]),
        ((16, 32), "choice", [16, 32]),
        ({"low": 1.0, "high": 5.0}, "float", {"low": 1.0, "high": 5.0}),
        (
            {"low": 1.0e-4, "high": 1.0, "log": True},
            "float",
            {"low": 1.0e-4, "high": 1.0, "log": True},
        ),
        ({"low": 200, "high": 1000, "step": 200}, "int", {"low": 200, "high": 1000, "step": 200}),
        ({"low": 1, "high": 10, "step": 0.5}, "float", {"low": 1, "high": 10, "step": 0.5}),
        ({"low": 1, "high": 10.0}, "float", {"low": 1, "high": 10.0}),
        ({"low": 1.0, "high": 8.0, "type": "int"}, "int", {"low": 1.0, "high": 8.0, "type": "int"}),
        ({"low": 1, "high": 8, "type": "float"}, "float", {"low": 1, "high": 8, "type": "float"}),
    ],
)
def test_each_yaml_form_compiles_to_its_kind_and_dumps_as_written(
    written: object, kind: str, shortest: object
) -> None:
    domain = as_domain(written)  # type: ignore[arg-type]
    assert domain.kind == kind
    assert domain.describe() == shortest
    assert domain.model_dump() == shortest
    assert as_domain(domain.model_dump()) == domain


def test_only_a_one_element_list_counts_as_fixed() -> None:
    assert as_domain([8]).is_fixed and as_domain([8]).fixed_value() == 8
    assert not as_domain([8, 16]).is_fixed
    assert as_domain([8, 16]).fixed_value() == 8
    assert as_domain(3.0).is_fixed
    assert not as_domain({"low": 1, "high": 2}).is_fixed


def test_values_gives_every_choice_or_both_range_ends() -> None:
    assert tuple(as_domain([1, 2, 3]).values()) == (1, 2, 3)
    assert tuple(as_domain(7).values()) == (7,)
    assert tuple(as_domain({"low": 1, "high": 9}).values()) == (1, 9)


def test_check_numbers_checks_the_high_end_of_a_range() -> None:
    with pytest.raises(ValueError, match=r"must be >= 1 and <= 64, got 100"):
        check_numbers(as_domain({"low": 1, "high": 100}), integer=True, low=1, high=64)


def test_check_numbers_bounds_are_inclusive_unless_low_open() -> None:
    closed = as_domain({"low": 0.0, "high": 1.0})
    assert check_numbers(closed, integer=False, low=0.0, high=1.0) is closed
    with pytest.raises(ValueError, match=r"must be > 0 and <= 1, got 0\.0"):
        check_numbers(closed, integer=False, low=0.0, high=1.0, low_open=True)


def test_check_numbers_lets_none_through_only_when_allowed() -> None:
    domain = as_domain([None, 100])
    assert check_numbers(domain, integer=True, low=1, high=1000, allow_none=True) is domain
    with pytest.raises(ValueError, match="expected an integer, got None"):
        check_numbers(domain, integer=True, low=1, high=1000)


def test_null_in_max_examples_means_no_cap_but_elsewhere_is_refused(tmp_path: Path) -> None:
    spec = load(tmp_path, MINIMAL + "search: {mixing: {max_examples: [null, 100]}}\n")
    caps = spec.search.mixing.max_examples
    assert isinstance(caps, Domain) and caps.choices == (None, 100)
    message = error_of(tmp_path, MINIMAL + "search: {batch_size: [null, 16]}\n")
    assert "search.batch_size: expected an integer, got None" in message


def test_an_integer_setting_refuses_a_float_choice() -> None:
    with pytest.raises(ValueError, match=r"expected an integer, got 16\.0"):
        check_numbers(as_domain([8, 16.0]), integer=True, low=1, high=64)


@pytest.mark.parametrize(
    "tree",
    [{"a": {"b": float("nan")}}, [1.0, [2.0, float("inf")]], ({"x": float("-inf")},)],
)
def test_reject_non_finite_looks_inside_mappings_and_lists(tree: object) -> None:
    with pytest.raises(ValueError, match="numbers must be finite"):
        reject_non_finite(tree)


def test_reject_non_finite_accepts_finite_trees() -> None:
    reject_non_finite({"a": [1.0, 2, "x", None, {"b": 1.0e300}]})


def test_an_overridden_merged_key_keeps_the_override(tmp_path: Path) -> None:
    text = MINIMAL + (
        "training:\n  hyperparameters: &d {weight_decay: 0.5, warmup_ratio: 0.1}\n"
        "search:\n  hyperparameters:\n    <<: *d\n    weight_decay: 0.25\n"
    )
    spec = load(tmp_path, text)
    hyper = spec.search.hyperparameters
    assert hyper["weight_decay"].fixed_value() == 0.25
    assert hyper["warmup_ratio"].fixed_value() == 0.1
    assert list(hyper) == ["weight_decay", "warmup_ratio"]


def test_a_key_a_merge_brings_in_may_be_given_again(tmp_path: Path) -> None:
    text = MINIMAL + (
        "training:\n  hyperparameters: &d {weight_decay: 0.5}\n"
        "search:\n  hyperparameters:\n    <<: *d\n    <<: {warmup_ratio: 0.1}\n"
    )
    # Two `<<` keys in one mapping are not a duplicate key: the merge key is not checked.
    spec = load(tmp_path, text)
    assert set(spec.search.hyperparameters) == {"weight_decay", "warmup_ratio"}


def test_a_duplicate_key_names_both_lines(tmp_path: Path) -> None:
    message = error_of(tmp_path, MINIMAL + "name: s2\n")
    assert message.endswith(":4: duplicate key 'name' (first on line 1)"), message


def test_keys_equal_as_values_are_duplicates(tmp_path: Path) -> None:
    # `0x1` and `1` are the same integer key once constructed.
    text = MINIMAL + "encoder: {name: minilm, options: {1: a, 0x1: b}}\n"
    message = error_of(tmp_path, text)
    assert "duplicate key 1 (first on line 4)" in message, message


def test_a_json_duplicate_key_names_both_lines(tmp_path: Path) -> None:
    text = '{\n  "name": "s1",\n  "target": "synth_a",\n  "name": "s2"\n}\n'
    message = error_of(tmp_path, text, name="spec.json")
    assert message.endswith("spec.json:4: duplicate key 'name' (first on line 2)"), message


def test_an_upper_case_json_suffix_is_read_as_json(tmp_path: Path) -> None:
    spec = {
        "name": "s1",
        "target": "synth_a",
        "candidates": ["synth_b"],
        "search": {"learning_rate": 5e-05},
    }
    loaded = load(tmp_path, json.dumps(spec), name="SPEC.JSON")
    assert loaded.search.learning_rate.fixed_value() == 5e-05


def test_a_json_spec_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    spec = {"name": "s1", "target": "synth_a", "candidates": ["synth_b"]}
    loaded = load(tmp_path, "\ufeff" + json.dumps(spec), name="spec.json")
    assert loaded.name == "s1"


def test_a_json_field_error_names_the_line_of_its_list_item(tmp_path: Path) -> None:
    text = (
        '{\n  "name": "s1",\n  "target": "synth_a",\n  "seeds": [\n    0,\n    1,\n    -1\n  ]\n}\n'
    )
    message = error_of(tmp_path, text, name="spec.json")
    assert ":7: seeds[2]:" in message, message


def test_a_json_field_error_inside_a_nested_mapping_names_its_line(tmp_path: Path) -> None:
    text = (
        "{\n"
        '  "name": "s1",\n'
        '  "target": "synth_a",\n'
        '  "candidates": ["synth_b"],\n'
        '  "search": {\n'
        '    "epochs": 2,\n'
        '    "batch_size": 0\n'
        "  }\n"
        "}\n"
    )
    message = error_of(tmp_path, text, name="spec.json")
    assert ":7: search.batch_size:" in message, message


def test_an_unclosed_quote_names_the_line_where_it_opens(tmp_path: Path) -> None:
    message = error_of(tmp_path, MINIMAL + 'description: "never closed\nseeds: 2\n')
    assert ":4: not valid YAML:" in message, message
    assert "at line 6" in message, message


@pytest.mark.parametrize(
    ("extra", "hint"),
    [
        ("search: {learning_rate: 1e+5}\n", "(YAML reads 1e+5 as text; write 1.0e+5)"),
        ("search: {learning_rate: 5E-3}\n", "(YAML reads 5E-3 as text; write 5.0e-3)"),
        ("search: {learning_rate: '0.001'}\n", "got '0.001' (YAML reads 0.001 as text)"),
    ],
)
def test_a_number_written_as_text_gets_the_spelling_to_use(
    tmp_path: Path, extra: str, hint: str
) -> None:
    message = error_of(tmp_path, MINIMAL + extra)
    assert message.endswith(hint), message


def nested_options(levels: int) -> str:
    """Return a spec whose document nests ``levels`` lists below ``encoder.options.x``."""
    return MINIMAL + "encoder: {name: minilm, options: {x: " + "[" * levels + "]" * levels + "}}\n"


def test_nesting_up_to_the_documented_depth_is_read(tmp_path: Path) -> None:
    # The document, encoder and options mappings are three levels.
    spec = load(tmp_path, nested_options(DOC_MAX_DEPTH - 3))
    assert "x" in spec.encoder.options
    message = error_of(tmp_path, nested_options(DOC_MAX_DEPTH - 2))
    assert message.endswith(f"nested deeper than {DOC_MAX_DEPTH} levels"), message


def nested_json(levels: int) -> str:
    inner = "[" * levels + "]" * levels
    return (
        '{"name": "s1", "target": "synth_a", "candidates": ["synth_b"], '
        f'"encoder": {{"name": "minilm", "options": {{"x": {inner}}}}}}}'
    )


def test_json_nesting_up_to_the_documented_depth_is_read(tmp_path: Path) -> None:
    json.loads(nested_json(3))  # the helper writes valid JSON
    spec = load(tmp_path, nested_json(DOC_MAX_DEPTH - 3), name="spec.json")
    assert "x" in spec.encoder.options
    message = error_of(tmp_path, nested_json(DOC_MAX_DEPTH - 2), name="spec.json")
    assert message.endswith(f"nested deeper than {DOC_MAX_DEPTH} levels"), message


def test_json_nested_past_the_recursion_limit_is_one_line(tmp_path: Path) -> None:
    message = error_of(tmp_path, nested_json(5_000), name="spec.json")
    assert message.endswith(f"lists and mappings nested deeper than {DOC_MAX_DEPTH} levels")


def many_values(count: int) -> str:
    """Return a YAML spec of ``count`` values: 17 besides the list under encoder.options.x."""
    items = ", ".join(["1"] * (count - 17))
    return MINIMAL + "encoder: {name: minilm, options: {x: [" + items + "]}}\n"


def test_the_documented_number_of_values_is_read_and_one_more_refused(tmp_path: Path) -> None:
    spec = load(tmp_path, many_values(DOC_MAX_NODES))
    assert len(spec.encoder.options["x"]) == DOC_MAX_NODES - 17
    message = error_of(tmp_path, many_values(DOC_MAX_NODES + 1))
    assert f"more than {DOC_MAX_NODES} values" in message, message


def test_json_the_documented_number_of_values_is_read_and_one_more_refused(tmp_path: Path) -> None:
    def text(count: int) -> str:
        items = ", ".join(["1"] * (count - 17))
        return (
            '{"name": "s1", "target": "synth_a", "candidates": ["synth_b", "synth_c"], '
            f'"encoder": {{"name": "minilm", "options": {{"x": [{items}]}}}}}}'
        )

    spec = load(tmp_path, text(DOC_MAX_NODES), name="spec.json")
    assert len(spec.encoder.options["x"]) == DOC_MAX_NODES - 17
    message = error_of(tmp_path, text(DOC_MAX_NODES + 1), name="spec.json")
    assert f"more than {DOC_MAX_NODES} values" in message, message


def test_an_alias_bomb_of_mappings_is_refused(tmp_path: Path) -> None:
    # Mapping values that are aliases count as everything they stand for.
    lines = ["  m0: &m0 [" + ", ".join(["x"] * 10) + "]"]
    for level in range(1, 5):
        keys = ", ".join(f"k{i}: *m{level - 1}" for i in range(10))
        lines.append(f"  m{level}: &m{level} {{{keys}}}")
    text = MINIMAL + "encoder:\n  name: minilm\n  options:\n  " + "\n  ".join(lines) + "\n"
    message = error_of(tmp_path, text)
    assert f"more than {DOC_MAX_NODES} values once YAML aliases are expanded" in message


def test_a_recursive_alias_names_its_line(tmp_path: Path) -> None:
    message = error_of(tmp_path, MINIMAL + "encoder: {name: minilm, options: &a {x: [*a]}}\n")
    assert message.endswith(
        ":4: an alias refers to a list or mapping that contains it (a recursive structure)"
    ), message


def test_a_file_one_byte_over_the_documented_size_is_refused(tmp_path: Path) -> None:
    head = MINIMAL + "description: '"
    text = head + "x" * (DOC_MAX_BYTES + 1 - len(head) - 2) + "'\n"
    assert len(text.encode()) == DOC_MAX_BYTES + 1
    message = error_of(tmp_path, text)
    assert message.endswith(f"at most {DOC_MAX_BYTES} bytes, this one is {DOC_MAX_BYTES + 1}")


def test_a_yaml_error_on_one_line_names_only_that_line(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    message = error_of(tmp_path, MINIMAL + "search: {batch_size: 8 learning_rate: 2}\n")
    assert message == f"{path}:4: not valid YAML: expected ',' or '}}', but got ':'"
    message = error_of(tmp_path, MINIMAL + "description: a: b\n")
    assert message == f"{path}:4: not valid YAML: mapping values are not allowed here"


def test_a_json_field_error_names_its_keys_line_not_its_values(tmp_path: Path) -> None:
    text = (
        "{\n"
        '  "name": "s1",\n'
        '  "target": "synth_a",\n'
        '  "candidates": ["synth_b"],\n'
        '  "search": {\n'
        '    "batch_size":\n'
        "      0\n"
        "  }\n"
        "}\n"
    )
    message = error_of(tmp_path, text, name="spec.json")
    assert ":6: search.batch_size:" in message, message


def test_a_plain_equals_sign_key_is_text(tmp_path: Path) -> None:
    spec = load(tmp_path, MINIMAL + "encoder: {name: minilm, options: {=: 1}}\n")
    assert spec.encoder.options == {"=": 1}


def test_seeds_up_to_the_documented_bounds(tmp_path: Path) -> None:
    assert load(tmp_path, MINIMAL + "seeds: 1000\n") is not None
    assert "seeds" in error_of(tmp_path, MINIMAL + "seeds: 1001\n")
    spec = load(tmp_path, MINIMAL + "seeds: [0, 4294967295]\n")
    assert tuple(spec.seeds) == (0, 2**32 - 1)
    assert "seeds[0]" in error_of(tmp_path, MINIMAL + "seeds: [4294967296]\n")
