"""`check_spec` refuses what every trial of a run would fail on, or silently ignore.

Sampler options are checked by building the sampler (its constructor's signature and its own
value checks), an encoder directory must hold a model's ``config.json``, and the per-task
mappings of ``search.mixing`` may name only the study's tasks.
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
from taskgraph.testing import synthetic_spec, write_tiny_encoder

#: sampler -> an option its constructor takes ("" for RandomSampler, which takes none)
AN_OPTION = {
    "tpe": "n_ei_candidates",
    "gp": "deterministic_objective",
    "random": "",
    "graph": "acquisition",
    "bandit": "max_redraws",
}


@pytest.mark.parametrize("trains", [True, False])
@pytest.mark.parametrize("sampler", sorted(AN_OPTION))
def test_an_unknown_sampler_option_is_refused_with_the_allowed_ones(
    sampler: str, trains: bool
) -> None:
    spec = synthetic_spec(sampler={"name": sampler, "options": {"nosuch": 1}})
    with pytest.raises(
        SpecError, match=r"^spec: sampler\.options\.nosuch: unknown option"
    ) as error:
        check_spec(spec, trains=trains)
    allowed = str(error.value).split("allowed: ")[1]
    assert AN_OPTION[sampler] in allowed if AN_OPTION[sampler] else allowed == "(none)"


def test_a_sampler_option_the_spec_sets_is_refused() -> None:
    spec = synthetic_spec(sampler={"name": "tpe", "options": {"seed": 3}})
    with pytest.raises(SpecError, match=r"sampler\.options\.seed: TPESampler takes it from"):
        check_spec(spec)


@pytest.mark.parametrize(
    ("sampler", "options", "message"),
    [
        ("graph", {"acquisition": "best"}, "acquisition"),
        ("graph", {"estimator": "nosuch"}, "nosuch"),
        ("bandit", {"alpha": -1.0}, "alpha"),
        ("tpe", {"multivariate": False}, "group"),  # Optuna's own ValueError
    ],
)
def test_a_sampler_option_value_the_sampler_refuses_is_refused(
    sampler: str, options: dict[str, Any], message: str
) -> None:
    spec = synthetic_spec(sampler={"name": sampler, "seed": 0, "options": options})
    with pytest.raises(SpecError, match=rf"^spec: sampler\.options: .*{message}"):
        check_spec(spec)


@pytest.mark.parametrize(
    ("sampler", "options"),
    [
        ("tpe", {"n_ei_candidates": 7, "constant_liar": False}),
        ("gp", {"warn_independent_sampling": True}),
        ("graph", {"acquisition": "ei", "max_repeats": 2}),
        ("bandit", {"alpha": 2.0}),
    ],
)
def test_known_sampler_options_pass(sampler: str, options: dict[str, Any]) -> None:
    check_spec(synthetic_spec(sampler={"name": sampler, "options": options}))


def test_a_run_with_an_unknown_sampler_option_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        "name: s\ntarget: synth_target\ncandidates: [synth_related]\n"
        "encoder: {name: tiny-bert, max_length: 16}\n"
    )
    database = tmp_path / "so.db"
    result = CliRunner().invoke(
        app,
        [
            "study",
            "run",
            str(path),
            "--set",
            "sampler={name: tpe, options: {nosuch: 1}}",
            "--trials",
            "1",
            "--storage",
            f"sqlite:///{database}",
            "-q",
        ],
    )
    assert result.exit_code != 0
    assert not database.exists()
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert "sampler.options.nosuch" in lines[0] and "Traceback" not in result.output


@pytest.mark.parametrize(
    ("config", "reason"),
    [
        (None, "has no config.json, so it is not a model directory"),
        ("{not json", "config.json' is not JSON: Expecting property name"),
        ("[1, 2]", "config.json' names no model type transformers knows (model_type: none)"),
    ],
)
def test_a_directory_that_is_not_a_model_is_refused(
    tmp_path: Path, config: str | None, reason: str
) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    if config is not None:
        (folder / "config.json").write_text(config)
    spec = synthetic_spec(encoder={"name": str(folder)})
    with pytest.raises(SpecError, match=r"encoder\.name: encoder '.*/m': ") as error:
        check_spec(spec)
    assert reason in str(error.value), str(error.value)


def test_a_model_directory_still_passes(tmp_path: Path) -> None:
    folder = write_tiny_encoder(tmp_path / "m", num_hidden_layers=2, max_position_embeddings=64)
    check_spec(synthetic_spec(encoder={"name": str(folder), "max_length": 16}))


@pytest.mark.parametrize(
    ("field", "mapping"),
    [("weights", {"nosuch": 2.0}), ("max_examples", {"synth_related": 8, "nosuch": 8})],
)
def test_an_unknown_task_in_a_mixing_mapping_is_refused(
    field: str, mapping: dict[str, Any]
) -> None:
    spec = synthetic_spec(search={"mixing": {field: mapping}})
    with pytest.raises(SpecError, match=rf"search\.mixing\.{field}\.nosuch: not a task") as error:
        check_spec(spec)
    assert "allowed: synth_target, synth_related, synth_conflict" in str(error.value)


def test_mixing_mappings_of_the_study_tasks_pass() -> None:
    mixing = {
        "weights": {"synth_target": 2.0, "synth_related": 0.5, "*": 1.5},
        "max_examples": {"synth_conflict": 8, "*": 16},
    }
    check_spec(synthetic_spec(search={"mixing": mixing}))


def test_an_eval_split_no_task_has_is_refused() -> None:
    # Accepted before: stored in every run's configuration and scored nowhere.
    with pytest.raises(
        SpecError, match=r"training\.eval_splits: no task of the study has a split 'nosuch'"
    ):
        check_spec(synthetic_spec(training={"eval_splits": ["nosuch", "test"]}))
    check_spec(synthetic_spec(training={"eval_splits": ["dev", "test"]}))


def test_an_eval_split_some_task_lacks_is_taken() -> None:
    # cola has no test split; sst2, its auxiliary, has one and is scored on it.
    spec = spec_from_dict(
        {"name": "s", "target": "cola", "candidates": ["sst2"],
         "training": {"eval_splits": ["dev", "test"]},
         "encoder": {"name": "tiny-bert", "max_length": 16}}
    )  # fmt: skip
    check_spec(spec)
