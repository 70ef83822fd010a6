"""`check_spec` refuses a ``freeze_layers`` past the encoder's depth and a data selection
of a study that never has auxiliaries, before the study is created."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from taskgraph.cli.app import app
from taskgraph.search.checks import check_spec
from taskgraph.spec import spec_from_dict
from taskgraph.testing import spec_check_error as _error

SPECS = Path(__file__).resolve().parents[2] / "searchspaces"


def _spec(**search: Any) -> Any:
    return spec_from_dict(
        {
            "name": "s",
            "target": "synth_target",
            "candidates": ["synth_related", "synth_conflict"],
            "encoder": {"name": "tiny-bert", "max_length": 16},  # 2 layers
            "search": search,
        }
    )


@pytest.mark.parametrize(
    ("freeze", "got"),
    [
        (99, "got 99"),
        (-3, "got -3"),
        (3, "got 3"),
        (1.0, "got 1.0"),
        ({"low": 0, "high": 4}, "got 4"),
        ([0, 1, 5], "got 5"),
    ],
)
def test_a_freeze_layers_outside_the_encoders_depth_is_refused(freeze: Any, got: str) -> None:
    message = _error(_spec(hyperparameters={"freeze_layers": freeze}))
    assert message.startswith("spec: search.hyperparameters.freeze_layers: ")
    assert "in [0, 2] (encoder 'tiny-bert' has 2 layers)" in message and message.endswith(got)


def test_a_fixed_freeze_layers_of_the_training_settings_is_checked_too() -> None:
    spec = spec_from_dict(
        {
            "name": "s",
            "target": "synth_target",
            "candidates": ["synth_related"],
            "encoder": {"name": "tiny-bert", "options": {"num_hidden_layers": 3}},
            "training": {"hyperparameters": {"freeze_layers": 4}},
        }
    )
    message = _error(spec)
    assert message.startswith("spec: training.hyperparameters.freeze_layers: ")
    assert "(encoder 'tiny-bert' has 3 layers), got 4" in message


@pytest.mark.parametrize("freeze", [0, 2, {"low": 0, "high": 2}, [1, 2]])
def test_a_freeze_layers_within_the_depth_is_valid(freeze: Any) -> None:
    check_spec(_spec(hyperparameters={"freeze_layers": freeze}))


def test_the_shipped_selection_spec_on_tiny_bert_is_one_clear_line(tmp_path: Path) -> None:
    # The spec freezes 4 of MiniLM's 6 layers; tiny-bert has 2, so every trial would fail.
    database = tmp_path / "quick.db"
    result = CliRunner().invoke(
        app,
        [
            "study",
            "run",
            str(SPECS / "quick" / "data_selection.yaml"),
            "--set",
            "encoder.name=tiny-bert",
            "--storage",
            f"sqlite:///{database}",
            "-q",
        ],
    )
    assert result.exit_code == 2, result.output
    assert not database.exists()
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert "search.hyperparameters.freeze_layers" in lines[0]
    assert "(encoder 'tiny-bert' has 2 layers), got 4" in lines[0]


@pytest.mark.parametrize(
    "study",
    [
        {"candidates": []},
        {
            "candidates": ["synth_related"],
            "search": {"auxiliaries": {"exclude": ["synth_related"]}},
        },
    ],
)
def test_a_selection_without_auxiliaries_is_refused(study: dict[str, Any]) -> None:
    search = {"data_selection": {"features": ["jsd"]}, **study.pop("search", {})}
    spec = spec_from_dict(
        {"name": "s", "target": "synth_target", "encoder": "tiny-bert", "search": search, **study}
    )
    message = _error(spec)
    assert message.startswith(
        "spec: search.data_selection: the study has no auxiliary tasks to select from"
    )


def test_the_masking_spec_with_a_selection_is_refused_not_counted() -> None:
    result = CliRunner().invoke(
        app,
        [
            "study",
            "validate",
            str(SPECS / "quick" / "masking.yaml"),
            "--set",
            "search.data_selection={features: [jsd]}",
        ],
    )
    assert result.exit_code == 2, result.output
    assert "searched parameters" not in result.output
    assert "search.data_selection: the study has no auxiliary tasks" in result.stderr
