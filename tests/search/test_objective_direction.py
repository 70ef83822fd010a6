"""A study's objective direction must agree with its metric's (the trainer keeps the best weights
by the metric's own direction, so the other way would record the worst of the search)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from taskgraph.errors import SpecError
from taskgraph.search.checks import check_spec
from taskgraph.spec import spec_from_dict


def spec(objective: dict[str, Any], **extra: Any) -> Any:
    return spec_from_dict(
        {
            "name": "s",
            "target": "synth_target",
            "candidates": ["synth_related"],
            "encoder": "tiny-bert",
            "objective": objective,
            **extra,
        }
    )


def test_a_higher_is_better_metric_minimised_is_refused() -> None:
    with pytest.raises(SpecError) as refused:
        check_spec(spec({"direction": "minimize"}), source="s.yaml")
    assert str(refused.value) == (
        "s.yaml: objective.direction: minimize, but accuracy is higher-is-better; "
        "write `direction: maximize`"
    )


def test_perplexity_with_the_default_direction_is_refused(tmp_path: Path) -> None:
    (tmp_path / "train.tsv").write_text("a b c\nd e f\n")
    (tmp_path / "dev.tsv").write_text("a b c\n")
    words = {
        "name": "words", "format": "tsv", "type": "masked_lm", "label_field": "text",
        "path": str(tmp_path), "reader_options": {"text_column": 0},
    }  # fmt: skip
    data = {"tasks": [words], "target": "words"}
    with pytest.raises(
        SpecError, match="perplexity is lower-is-better; write `direction: minimize`"
    ):
        check_spec(spec({"metric": "perplexity"}, **data))
    check_spec(spec({"metric": "perplexity", "direction": "minimize"}, **data))
