"""What `study validate` checks of a spec before any database is touched, where the other tests
left a mutant of ``taskgraph.search.checks`` (search settings, trainer settings, tasks) alive.

Each test names the mutant it kills: a good spec that must pass, or a bad one that must be
refused with a message naming the field the user wrote.
"""

from __future__ import annotations

import pytest

from taskgraph.errors import SpecError
from taskgraph.search.checks import check_spec
from taskgraph.testing import spec_check_error, synthetic_spec


def test_successive_halving_takes_the_asha_settings() -> None:
    # `successive_halving` is another name of `asha`: its settings are its own, not another
    # pruner's (mutant: reduction_factor read by asha only).
    pruner = {"name": "successive_halving", "min_resource": 2, "reduction_factor": 4}
    check_spec(synthetic_spec(pruner=pruner), trains=False)


def test_an_unknown_training_hyperparameter_is_refused_naming_its_section() -> None:
    # Only `search.hyperparameters` checked (mutant): the typo was ignored in silence; or the
    # message named `search.hyperparameters` for a key the user wrote under `training`.
    message = spec_check_error(synthetic_spec(training={"hyperparameters": {"warmup_ration": 0.1}}))
    assert message.startswith(
        "spec: training.hyperparameters.warmup_ration: unknown trainer setting; allowed: "
    ), message


def test_every_choice_of_a_searched_source_tasks_is_checked_past_a_null() -> None:
    # A null choice ("no sources") must not end the check of the choices after it.
    spec = synthetic_spec(search={"hyperparameters": {"source_tasks": [None, "synth_related"]}})
    assert spec_check_error(spec) == (
        "spec: search.hyperparameters.source_tasks: expected a list of candidate task names, "
        "got 'synth_related'"
    )


@pytest.mark.parametrize("value", [True, False])
def test_a_boolean_freeze_layers_is_refused(value: bool) -> None:
    # `freeze_layers: true` is no layer count, though Python counts True as 1.
    message = spec_check_error(
        synthetic_spec(training={"hyperparameters": {"freeze_layers": value}})
    )
    assert message == (
        "spec: training.hyperparameters.freeze_layers: must be a whole number of layers in "
        f"[0, 2] (encoder 'tiny-bert' has 2 layers), got {value!r}"
    )


def test_an_objective_split_the_target_lacks_is_refused() -> None:
    # Every trial would score the target on a split it does not have.
    message = spec_check_error(synthetic_spec(objective={"split": "dev_ood"}))
    assert message == (
        "spec: objective.split: synth_target has no split 'dev_ood'; allowed: train, dev, test"
    )


def test_table_rows_of_one_auxiliary_set_in_another_order_are_refused() -> None:
    # A set of tasks has no order: both rows would look up one row of the table.
    rows = [
        {"name": "one", "auxiliaries": ["synth_related", "synth_conflict"]},
        {"name": "two", "auxiliaries": ["synth_conflict", "synth_related"]},
    ]
    with pytest.raises(SpecError, match=r"^spec: rows\[1\] \(two\) trains the same configuration "):
        check_spec(synthetic_spec(rows=rows), trains=False)
