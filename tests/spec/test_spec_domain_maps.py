"""A setting that takes one domain or a name -> domain mapping (mixing weights and caps,
selection weights): a reversed range reads as a range, a mapping's error names its key, and a
partial selection-weight map without ``"*"`` is a warning."""

from __future__ import annotations

from pathlib import Path

import pytest

from taskgraph.errors import SpecError
from taskgraph.spec import load_spec

MINIMAL = """\
name: s1
target: synth_a
candidates: [synth_b, synth_c]
"""


def error_of(tmp_path: Path, text: str) -> str:
    path = tmp_path / "spec.yaml"
    path.write_text(MINIMAL + text, encoding="utf-8")
    with pytest.raises(SpecError) as info:
        load_spec(path)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{path}:")
    return message.split(": ", 1)[1]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "search:\n  data_selection: {features: [jsd, ttr], weights: {low: 1, high: -1}}\n",
            "search.data_selection.weights: low must be <= high, got low=1 high=-1",
        ),
        (
            "search:\n  mixing: {weights: {low: 2, high: 1}}\n",
            "search.mixing.weights: low must be <= high, got low=2 high=1",
        ),
        (
            "search:\n  mixing: {max_examples: {low: 9, high: 3}}\n",
            "search.mixing.max_examples: low must be <= high, got low=9 high=3",
        ),
    ],
)
def test_a_reversed_range_is_read_as_a_range(tmp_path: Path, text: str, expected: str) -> None:
    assert error_of(tmp_path, text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "search:\n  mixing: {weights: {synth_a: 3.0, synth_b: -1}}\n",
            "search.mixing.weights.synth_b: must be >= 0 and <= 1e+06, got -1",
        ),
        (
            "search:\n  mixing: {max_examples: {synth_a: 300, '*': -5}}\n",
            "search.mixing.max_examples.*: must be >= 1 and <= 1e+09, got -5",
        ),
        (
            "search:\n  data_selection: {features: [jsd], weights: {jsd: 5000}}\n",
            "search.data_selection.weights.jsd: must be >= -1000 and <= 1000, got 5000",
        ),
    ],
)
def test_a_bad_value_of_a_mapping_names_its_key(tmp_path: Path, text: str, expected: str) -> None:
    assert error_of(tmp_path, text) == expected


def test_a_partial_selection_weight_map_is_said_not_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A feature left out gets weight 0: said once, on stderr; not refused, as a study stored
    # with such a map must still load (resume, study show).
    from taskgraph.search.checks.search_settings import _check_data_selection

    path = tmp_path / "spec.yaml"
    path.write_text(
        MINIMAL + "search:\n  data_selection:\n    features: [jsd, ttr, types]\n"
        "    weights: {jsd: {low: -1, high: 1}, types: 0.5}\n",
        encoding="utf-8",
    )
    spec = load_spec(path)
    assert spec.search.data_selection is not None
    _check_data_selection(spec, "s.yaml")
    _check_data_selection(spec, "s.yaml")  # a command checks its spec more than once
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(
        "warning: s.yaml: search.data_selection.weights names no weight for ttr: weight 0"
    )
    assert '"*"' in err


@pytest.mark.parametrize(
    "weights",
    ["{jsd: {low: -1, high: 1}, '*': 0.5}", "{jsd: 1, ttr: 0}", "{low: -1, high: 1}", "0.5"],
)
def test_complete_selection_weights_are_accepted(tmp_path: Path, weights: str) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(
        MINIMAL + f"search:\n  data_selection: {{features: [jsd, ttr], weights: {weights}}}\n",
        encoding="utf-8",
    )
    assert load_spec(path).search.data_selection is not None
