"""One rule, one place: the metric direction, the task-set key and stable seeds."""

from __future__ import annotations

import pytest

from taskgraph.storage.records import higher_is_better as records_higher_is_better
from taskgraph.tasks import TaskType, list_tasks, metrics_for_type
from taskgraph.tasks import metric_direction as tasks_metric_direction
from taskgraph.training import stable_seed as training_stable_seed
from taskgraph.vocabulary import (
    first_names,
    higher_is_better,
    metric_direction,
    stable_seed,
    task_set_key,
)


@pytest.mark.parametrize(
    ("metric", "direction"),
    [
        ("f1", "maximize"),
        ("accuracy", "maximize"),
        ("f1_loss_type", "maximize"),
        ("loss", "minimize"),
        ("val_loss", "minimize"),
        ("perplexity", "minimize"),
        ("rmse", "minimize"),  # the catalog said maximize, the records' word list minimize
        ("mae", "minimize"),
        ("wer", "minimize"),
        ("RMSE", "minimize"),
        ("mse", "minimize"),
        ("cer", "minimize"),
        # a per-type entity score is the score's name + the type, whatever the type is called
        ("f1_error", "maximize"),
        ("precision_MAE", "maximize"),
        ("recall_loss", "maximize"),
        ("F1_wer", "maximize"),
        ("accuracy_error", "maximize"),
        ("exact_match_loss", "maximize"),
    ],
)
def test_every_layer_agrees_on_a_metric_direction(metric: str, direction: str) -> None:
    assert metric_direction(metric) == direction
    assert tasks_metric_direction(metric) == direction
    assert records_higher_is_better(metric) is higher_is_better(metric) is (direction == "maximize")


def test_every_builtin_metric_keeps_its_direction() -> None:
    names = {metric for task in list_tasks() for metric in (*task.metrics, task.primary_metric)}
    for task_type in TaskType:
        names |= metrics_for_type(task_type)
    assert {"f1", "mrr", "uas", "macro_f1", "has_ans_exact", "perplexity"} <= names
    directions = {name: metric_direction(name) for name in sorted(names)}
    assert directions == {
        name: "minimize" if name in ("loss", "perplexity") else "maximize" for name in names
    }


def test_task_set_key_is_sorted_and_joined() -> None:
    assert task_set_key(["b", "a", "c"]) == task_set_key({"c", "b", "a"}) == "a+b+c"
    assert task_set_key([]) == ""


def test_stable_seed_has_the_width_asked_and_one_source() -> None:
    wide = stable_seed("x", 1, bits=64)
    assert stable_seed("x", 1) == wide >> 1 < 2**63  # the trainer's 63-bit seeds
    assert training_stable_seed("x", 1) == stable_seed("x", 1)
    assert stable_seed("x", 2) != stable_seed("x", 1)
    with pytest.raises(ValueError, match="bits"):
        stable_seed("x", bits=65)


def test_first_names_lists_five_then_counts_the_rest() -> None:
    assert first_names(["a", "b"]) == "a, b"
    assert first_names([f"t{i}" for i in range(7)]) == "t0, t1, t2, t3, t4 and 2 more"
    assert first_names(iter("abc"), limit=2) == "a, b and 1 more"
