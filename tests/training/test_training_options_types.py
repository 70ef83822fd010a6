"""`TrainingOptions.from_config` refuses a setting of the wrong type as a ConfigError naming
the setting and the value: `doc_stride: abc` used to reach a comparison and fail each trial
with a TypeError (and a traceback), and a boolean passed for a number (`True` is 1)."""

from __future__ import annotations

from typing import Any

import pytest

from taskgraph.errors import ConfigError
from taskgraph.training.options import TrainingOptions
from taskgraph.trial import TrialConfig


def _options(**hyperparameters: Any) -> TrainingOptions:
    config = TrialConfig(
        target="synth_target", encoder="tiny-bert", max_steps=4, hyperparameters=hyperparameters
    )
    return TrainingOptions.from_config(config)


@pytest.mark.parametrize(
    ("key", "value", "wanted"),
    [
        ("doc_stride", "abc", "hyperparameter `doc_stride` must be an integer >= 1, but got 'abc'"),
        ("doc_stride", 64.5, "hyperparameter `doc_stride` must be an integer >= 1, but got 64.5"),
        ("doc_stride", True, "hyperparameter `doc_stride` must be an integer >= 1, but got True"),
        ("doc_stride", None, "hyperparameter `doc_stride` must be an integer >= 1, but got None"),
        (
            "warmup_ratio",
            "0.1",
            "hyperparameter `warmup_ratio` must be a number in [0, 1), but got '0.1'",
        ),
        ("warmup_ratio", 5, "hyperparameter `warmup_ratio` must be a number in [0, 1), but got 5"),
        (
            "weight_decay",
            False,
            "hyperparameter `weight_decay` must be a number >= 0, but got False",
        ),
        ("grad_clip", "1", "hyperparameter `grad_clip` must be a number >= 0 or null, but got '1'"),
        ("log_every", 10.5, "hyperparameter `log_every` must be an integer >= 1, but got 10.5"),
        (
            "eval_batch_size",
            "64",
            "hyperparameter `eval_batch_size` must be an integer >= 1, but got '64'",
        ),
        (
            "max_eval_examples",
            0,
            "hyperparameter `max_eval_examples` must be an integer >= 1 or null, but got 0",
        ),
        (
            "max_eval_examples",
            [5],
            "hyperparameter `max_eval_examples` must be an integer >= 1 or null, but got [5]",
        ),
        (
            "checkpoint_every",
            True,
            "hyperparameter `checkpoint_every` must be an integer >= 1 or null, but got True",
        ),
        (
            "tasks_per_step",
            "2",
            "hyperparameter `tasks_per_step` must be an integer >= 1 or null, but got '2'",
        ),
        (
            "lookahead_lr",
            float("nan"),
            "hyperparameter `lookahead_lr` must be a number > 0 or null, but got nan",
        ),
        ("group_by_length", 1, "hyperparameter `group_by_length` must be true or false, but got 1"),
        (
            "source_epochs",
            "2",
            "hyperparameter `source_epochs` must be a number > 0 or null, but got '2'",
        ),
        (
            "source_max_steps",
            2.5,
            "hyperparameter `source_max_steps` must be an integer >= 1 or null, but got 2.5",
        ),
        (
            "freeze_layers",
            "1",
            "hyperparameter `freeze_layers` must be an integer >= 0, but got '1'",
        ),
    ],
)
def test_a_setting_of_the_wrong_type_is_a_config_error_naming_it(
    key: str, value: Any, wanted: str
) -> None:
    with pytest.raises(ConfigError) as info:
        _options(**{key: value})
    assert str(info.value) == wanted


def test_settings_of_the_right_types_are_kept() -> None:
    options = _options(
        doc_stride=1,
        warmup_ratio=0,
        weight_decay=0.0,
        grad_clip=None,
        log_every=1,
        max_eval_examples=None,
        tasks_per_step=2,
        lookahead_lr=1e-3,
        group_by_length=False,
        source_epochs=1,
        freeze_layers=0,
    )
    assert (options.doc_stride, options.warmup_ratio, options.tasks_per_step_override) == (1, 0, 2)
    assert options.group_by_length is False and options.source_epochs == 1


def test_an_integral_float_count_is_the_integer_it_ran_as() -> None:
    # `log_every: 2.0` (YAML) ran before the settings table: a stored study that has it must
    # not fail every trial on resume.
    options = _options(
        log_every=2.0, checkpoint_every=100.0, source_max_steps=200.0, doc_stride=64.0
    )
    assert (options.log_every, options.checkpoint_every) == (2, 100)
    assert (options.source_max_steps, options.doc_stride) == (200, 64)
    assert all(
        type(v) is int
        for v in (options.log_every, options.checkpoint_every, options.source_max_steps)
    )


def test_every_scalar_setting_has_a_rule_and_a_default_it_admits() -> None:
    # The spec checks read SETTINGS: a setting missing there would pass them unchecked.
    from taskgraph.training.options import SETTINGS

    defaults = TrainingOptions()
    for name, setting in SETTINGS.items():
        field = "tasks_per_step_override" if name == "tasks_per_step" else name
        assert setting.admits(getattr(defaults, field)), name
    structured = {"head_options", "lookahead_targets", "lookahead_steps", "source_tasks"}
    names = {f.name for f in TrainingOptions.__dataclass_fields__.values()}
    assert names - {"tasks_per_step_override"} | {"tasks_per_step"} == set(SETTINGS) | structured
