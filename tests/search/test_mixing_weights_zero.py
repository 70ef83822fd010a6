"""`study validate` refuses a mixing weight that can be 0.

An auxiliary with weight 0 was never drawn, yet its runs were recorded as measured gains of a
task set that was not trained; a target with weight 0 made every trial with an auxiliary fail.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from taskgraph.cli.app import app
from taskgraph.errors import SpecError
from taskgraph.search.checks import check_spec
from taskgraph.spec import spec_from_dict

AUX = "an auxiliary with weight 0 is never trained, and the run would be recorded as a task set"


def _spec(weights: Any, **extra: Any) -> Any:
    data: dict[str, Any] = {
        "name": "s",
        "target": "synth_target",
        "candidates": ["synth_related", "synth_conflict"],
        "encoder": {"name": "tiny-bert", "max_length": 16},
        "search": {"mixing": {"weights": weights}},
    }
    data.update(extra)
    return spec_from_dict(data)


def _error(weights: Any, **extra: Any) -> str:
    with pytest.raises(SpecError) as info:
        check_spec(_spec(weights, **extra))
    return str(info.value)


@pytest.mark.parametrize("zero", [0, 0.0])
def test_a_fixed_zero_weight_of_an_auxiliary_is_refused(zero: float) -> None:
    message = _error({"synth_related": zero, "synth_conflict": 0.5})
    assert message == (
        "spec: search.mixing.weights.synth_related: a weight of 0, which never draws a batch of "
        f"synth_related: {AUX} it did not train; leave it out of the candidates (or the "
        "auxiliaries' include) instead"
    )


def test_zero_for_every_auxiliary_names_them_all() -> None:
    assert _error(0.0).startswith(
        "spec: search.mixing.weights: a weight of 0, which never draws a batch of "
        "synth_related, synth_conflict: "
    )
    assert "leave them out of the candidates" in _error(0.0)
    message = _error({"synth_related": 1.0, "*": 0})  # "*": the auxiliaries not named
    assert message.startswith("spec: search.mixing.weights.*: a weight of 0, which never ")
    assert "draws a batch of synth_conflict: " in message
    # weights above 0 pass, and a "*" that covers no auxiliary sets nothing
    check_spec(_spec({"synth_target": 2.0, "synth_related": [0.5, 1.0], "*": 1.5}))
    check_spec(_spec({"low": 0.1, "high": 1.0}))
    check_spec(_spec({"synth_related": 0.5, "synth_conflict": 0.5, "*": 0.0}))


def test_a_choice_of_zero_is_refused() -> None:
    message = _error({"synth_conflict": [0.0, 1.0]})
    assert message.startswith(
        "spec: search.mixing.weights.synth_conflict: the choice 0, which never draws a batch"
    )
    assert AUX in message


@pytest.mark.parametrize(
    ("domain", "shown", "why"),
    [
        ({"low": 0, "high": 2}, "{low: 0, high: 2}", "its low end is on its grid"),
        (
            {"low": 0.0, "high": 1.0, "step": 0.25},
            "{low: 0.0, high: 1.0, step: 0.25}",
            "its low end is on its grid",
        ),
        (
            {"low": 0.0, "high": 1.0},
            "{low: 0.0, high: 1.0}",
            "the gp sampler's optimiser stops on a range's ends",
        ),
    ],
)
def test_a_range_that_can_draw_zero_is_refused(domain: Any, shown: str, why: str) -> None:
    message = _error({"synth_related": domain})
    assert message.startswith(
        f"spec: search.mixing.weights.synth_related: the range {shown} can draw 0 ({why}), "
    )
    assert message.endswith(
        "; start the range above 0, or leave it out of the candidates (or the auxiliaries' "
        "include) instead"
    )


def test_a_zero_weight_of_the_target_is_refused() -> None:
    # Every trial with an auxiliary failed: "the target is drawn with probability 0".
    for weights in ({"synth_target": 0.0}, {"synth_target": [0, 2.0]}):
        message = _error(weights)
        assert message.startswith("spec: search.mixing.weights.synth_target: ")
        assert message.endswith(
            "never draws a batch of the target synth_target: it would never be trained, and "
            "every trial with an auxiliary would fail (the target drawn with probability 0); "
            "give it a weight above 0"
        )


def test_validate_names_the_set_option(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "name: s\ntarget: synth_target\ncandidates: [synth_related, synth_conflict]\n"
        "encoder: {name: tiny-bert, max_length: 16}\n"
    )
    weights = "search.mixing.weights={synth_related: 0.0, synth_target: 1.0}"
    result = CliRunner().invoke(app, ["study", "validate", str(spec), "--set", weights])
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.startswith(
        "error: --set search.mixing.weights: search.mixing.weights.synth_related: a weight of "
        "0, which never draws a batch of synth_related: "
    )
    assert result.stderr.count("\n") == 1
