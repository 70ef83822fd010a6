"""`study validate` refuses sampler and pruner settings every run would fail on or ignore.

Optuna checks some sampler values only when a trial uses them (after the start-up trials),
so building the sampler accepted them; a function or a sampler cannot come from YAML; a
setting of another pruner, ``n_startup_trials`` with ``random`` and ``max_size: 0`` did
nothing.  The tabular runner keeps these checks free of training.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from taskgraph.cli.app import app
from taskgraph.errors import SpecError
from taskgraph.search.checks import check_spec
from taskgraph.spec import spec_from_dict

CANDIDATES = ["synth_related", "synth_unrelated", "synth_conflict", "synth_cls_related"]


def _spec(**overrides: Any) -> Any:
    data: dict[str, Any] = {
        "name": "s",
        "target": "synth_target",
        "candidates": CANDIDATES,
        "encoder": {"name": "tiny-bert", "max_length": 16},
    }
    data.update(overrides)
    return spec_from_dict(data)


@pytest.mark.parametrize(
    ("sampler", "message"),
    [
        (
            {"name": "tpe", "n_startup_trials": 1, "options": {"gamma": 5}},
            r"sampler\.options\.gamma: TPESampler takes a function here",
        ),
        ({"name": "tpe", "options": {"weights": 1}}, r"options\.weights: .* a function"),
        (
            {"name": "tpe", "options": {"constraints_func": "f"}},
            r"options\.constraints_func: .* a function",
        ),
        (
            {"name": "bandit", "options": {"independent_sampler": "tpe"}},
            r"options\.independent_sampler: BanditSampler takes a sampler here",
        ),
        (
            {"name": "graph", "options": {"independent_sampler": "tpe"}},
            r"options\.independent_sampler: GraphGuidedSampler takes a sampler here",
        ),
        (
            {"name": "gp", "options": {"independent_sampler": "random"}},
            r"options\.independent_sampler: GPSampler takes a sampler here",
        ),
        ({"name": "tpe", "options": {"n_ei_candidates": 0}}, r"n_ei_candidates: must be >= 1"),
        ({"name": "tpe", "options": {"n_ei_candidates": 2.5}}, r"expected an integer"),
        ({"name": "gp", "options": {"n_startup_trials": -3}}, r"n_startup_trials: must be >= 0"),
        ({"name": "tpe", "options": {"prior_weight": 0}}, r"prior_weight: must be > 0"),
        ({"name": "tpe", "options": {"multivariate": "no"}}, r"multivariate: expected true or"),
        ({"name": "gp", "options": {"deterministic_objective": 1}}, r"expected true or false"),
        ({"name": "graph", "options": {"max_enumeration": 0}}, r"max_enumeration: must be >= 1"),
        ({"name": "bandit", "options": {"max_enumeration": 0}}, r"max_enumeration: must be"),
    ],
)
@pytest.mark.parametrize("trains", [True, False])
def test_a_sampler_option_a_run_would_fail_on_is_refused(
    sampler: dict[str, Any], message: str, trains: bool
) -> None:
    with pytest.raises(SpecError, match=rf"^spec: .*{message}"):
        check_spec(_spec(sampler=sampler), trains=trains)


@pytest.mark.parametrize(
    ("name", "option"),
    [("tpe", "gamma"), ("tpe", "weights"), ("graph", "independent_sampler"),
     ("bandit", "independent_sampler"), ("gp", "constraints_func")],
)  # fmt: skip
def test_options_a_spec_cannot_give_are_not_listed_as_allowed(name: str, option: str) -> None:
    with pytest.raises(SpecError) as error:
        check_spec(_spec(sampler={"name": name, "options": {"nosuch": 1}}), trains=False)
    allowed = str(error.value).split("allowed: ")[1].split(", ")
    assert option not in allowed


@pytest.mark.parametrize(
    "sampler",
    [
        {"name": "tpe", "options": {"n_ei_candidates": 1, "multivariate": True, "group": False}},
        {"name": "gp", "n_startup_trials": 0, "options": {"deterministic_objective": True}},
        {"name": "graph", "seed": 0, "n_startup_trials": 2, "options": {"max_repeats": 2}},
        {"name": "bandit", "n_startup_trials": 2, "options": {"alpha": 2.0, "max_redraws": 0}},
        {"name": "random", "seed": 0},
    ],
)
def test_good_sampler_settings_pass(sampler: dict[str, Any]) -> None:
    check_spec(_spec(sampler=sampler), trains=False)


def test_n_startup_trials_with_the_random_sampler_is_refused() -> None:
    with pytest.raises(
        SpecError, match=r"^spec: sampler\.n_startup_trials: the random sampler .* no start-up"
    ):
        check_spec(_spec(sampler={"name": "random", "n_startup_trials": 3}), trains=False)


@pytest.mark.parametrize(
    ("pruner", "key", "owner"),
    [
        ({"name": "median", "reduction_factor": 3}, "reduction_factor", "asha"),
        ({"name": "median", "min_resource": 2}, "min_resource", "asha"),
        ({"name": "asha", "n_warmup_steps": 2}, "n_warmup_steps", "median"),
        ({"name": "successive_halving", "n_startup_trials": 2}, "n_startup_trials", "median"),
        ({"name": "none", "min_resource": 5}, "min_resource", "asha"),
    ],
)
def test_a_setting_of_another_pruner_is_refused(
    pruner: dict[str, Any], key: str, owner: str
) -> None:
    with pytest.raises(
        SpecError, match=rf"^spec: pruner\.{key}: a setting of the {owner} pruner, which"
    ):
        check_spec(_spec(pruner=pruner), trains=False)


@pytest.mark.parametrize(
    "pruner",
    [
        "median",
        {"name": "median", "n_startup_trials": 6, "n_warmup_steps": 2},
        {"name": "asha", "min_resource": 1, "reduction_factor": 3},
        "none",
    ],
)
def test_a_pruner_with_its_own_settings_passes(pruner: Any) -> None:
    check_spec(_spec(pruner=pruner), trains=False)


def test_a_stored_spec_with_every_pruner_setting_at_its_default_passes() -> None:
    # A study's stored spec (and one given --runner) is the model's dump: every setting present.
    spec = _spec(pruner={"name": "median", "n_warmup_steps": 2})
    check_spec(spec_from_dict(spec.model_dump(mode="json")), trains=False)


def test_max_size_zero_is_refused() -> None:
    with pytest.raises(
        SpecError, match=r"^spec: search\.auxiliaries\.max_size: max_size 0 leaves no auxiliary"
    ):
        check_spec(_spec(search={"auxiliaries": {"max_size": 0}}), trains=False)


def test_study_validate_refuses_them_in_one_line(tmp_path: Path) -> None:
    base = {
        "name": "s",
        "target": "synth_target",
        "candidates": CANDIDATES,
        "encoder": {"name": "tiny-bert", "max_length": 16},
    }
    for extra, message in (
        ({"sampler": {"name": "tpe", "n_startup_trials": 1, "options": {"gamma": 5}}}, "gamma"),
        ({"pruner": {"name": "median", "reduction_factor": 3}}, "pruner.reduction_factor"),
        ({"search": {"auxiliaries": {"max_size": 0}}}, "max_size 0 leaves no auxiliary"),
    ):
        path = tmp_path / "spec.yaml"
        path.write_text(yaml.safe_dump({**base, **extra}))
        result = CliRunner().invoke(app, ["study", "validate", str(path)])
        assert result.exit_code != 0, result.output
        assert message in result.output
        assert "Traceback" not in result.output
