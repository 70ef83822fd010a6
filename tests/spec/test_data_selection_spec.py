"""`search.data_selection`: validation with one-line errors, the search space, old specs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest

from taskgraph.errors import SpecError
from taskgraph.search.checks import check_spec
from taskgraph.search.space import BASELINE_ROLE, ROLE_ATTR, SearchSpace
from taskgraph.spec import load_spec, spec_from_dict

optuna.logging.set_verbosity(optuna.logging.WARNING)
SPECS = Path(__file__).resolve().parents[2] / "searchspaces"


def spec(selection: Any) -> Any:
    data = {
        "name": "s",
        "target": "synth_target",
        "candidates": ["synth_related", "synth_conflict"],
        "encoder": "tiny-bert",
        "search": {"data_selection": selection},
    }
    return spec_from_dict(data)


def error_of(selection: Any) -> str:
    with pytest.raises(SpecError) as info:
        check_spec(spec(selection))
    message = str(info.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(
    ("selection", "expected"),
    [
        ({}, "search.data_selection.features"),
        ({"features": []}, "name at least one selection feature"),
        ({"features": ["jsd", "jsd"]}, "features listed twice: jsd"),
        ({"features": ["jsd"], "keep": 0}, "search.data_selection.keep"),
        ({"features": ["jsd"], "keep": {"low": 0.5, "high": 1.5}}, "search.data_selection.keep"),
        ({"features": ["jsd"], "weights": "high"}, "search.data_selection.weights"),
        ({"features": ["jsd"], "weights": {"ttr": 1.0}}, "'ttr' is not one of the features"),
        ({"features": ["jsd"], "bogus": 1}, "search.data_selection.bogus"),
        ({"features": ["jsd", "perplexity"]}, "unknown feature 'perplexity'; allowed: jsd, renyi"),
    ],
)
def test_bad_selection_is_one_line_naming_the_field(selection: Any, expected: str) -> None:
    assert expected in error_of(selection)


def test_selection_parameters_are_searched_and_compiled() -> None:
    space = SearchSpace(
        spec=spec(
            {
                "features": ["jsd", "ttr", "embedding_cosine"],
                "weights": {"ttr": 0.5, "*": {"low": -1.0, "high": 1.0}},
                "keep": {"low": 0.2, "high": 0.9},
            }
        )
    )
    described = space.describe()
    assert set(described) >= {"selection/jsd", "selection/embedding_cosine", "selection/keep"}
    assert "selection/ttr" not in described  # fixed weight
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.enqueue_trial(space.baseline_params(), user_attrs=space.baseline_user_attrs())
    baseline = study.ask()
    assert baseline.user_attrs[ROLE_ATTR] == BASELINE_ROLE
    base = space.suggest(baseline)
    assert base.auxiliaries == () and base.data_selection is not None
    assert base.data_selection.keep == 1.0 and not base.data_selection.weights
    assert not any(k.startswith("selection/") for k in baseline.params)
    seen = []
    for _ in range(6):
        trial = study.ask()
        config = space.suggest(trial)
        if config.auxiliaries:
            selection = config.data_selection
            assert selection is not None and 0.2 <= selection.keep <= 0.9
            assert selection.weights["ttr"] == 0.5
            assert selection.weights["jsd"] == trial.params["selection/jsd"]
            assert config.family_key() == base.family_key()  # the baseline is of its family
            seen.append(selection.keep)
        study.tell(trial, 0.0)
    assert len(set(seen)) > 1


def test_specs_without_selection_keep_their_hash_and_configs() -> None:
    plain = spec_from_dict({"name": "s", "target": "synth_target", "candidates": ["synth_related"]})
    assert plain.search.data_selection is None
    assert "data_selection" not in plain.model_dump(mode="json", exclude_none=True)["search"]
    # computed before search.data_selection existed (commit 28cd131)
    assert load_spec(SPECS / "demo.yaml").search_hash() == "ce903b7fdb06daa5"
    assert load_spec(SPECS / "bioner_aux.yaml").search_hash() == "23bde5f89a985672"


@pytest.mark.parametrize("name", ["data_selection.yaml", "quick/data_selection.yaml"])
def test_shipped_selection_studies_validate(name: str) -> None:
    loaded = load_spec(SPECS / name)
    assert loaded.search.data_selection is not None
    assert loaded.encoder.name == "minilm"
    check_spec(loaded, source=name)
