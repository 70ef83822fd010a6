"""The trainer's settings read from ``TrialConfig.hyperparameters`` (validated, with defaults).

=====================  =========  ===============================================================
key                    default    meaning
=====================  =========  ===============================================================
warmup_ratio           0.1        share of the steps with linearly rising learning rate
weight_decay           0.01       AdamW decoupled weight decay (not on biases and LayerNorms)
grad_clip              1.0        max global gradient norm (0 or None: no clipping)
head_options           {}         ``{task: {option: value}}`` for the heads, e.g. ``{"ner": {"crf": true}}``
tasks_per_step         auto       batches per step: 1, or one per task for gradient weightings
lookahead_lr           None       step size of the lookahead probe (None: the current lr)
lookahead_targets      None       tasks whose loss the probe measures (None: every task; a
                                  screen measures the target's only)
lookahead_steps        None       the joint run's steps after which a lookahead probe runs,
                                  increasing, in [1, max_steps] under ``step_budget: total``
                                  (None: every ``lookahead_every``-th step); instead of the
                                  trial's ``lookahead_every``, never with it
log_every              50         steps between loss logs and NaN checks
checkpoint_every       None       steps between checkpoints (always: after each evaluation)
max_eval_examples      None       cap on each evaluation split (a fixed random subset)
eval_batch_size        2x, >= 64  batch size at evaluation: max(64, 2 x batch_size)
doc_stride             128        QA window overlap in tokens (Hugging Face's ``stride``)
group_by_length        True       batches of similar-length sentences (less padding), see BatchStream
source_epochs          None       sequential transfer: epochs of the source phase (None: epochs)
source_max_steps       None       sequential transfer: steps of the source phase (None: max_steps)
source_tasks           None       sequential transfer: the auxiliaries of the source phase (None:
                                  all); the trial's other auxiliaries train with the target in
                                  the target phase (e.g. SQuAD first, then BioASQ + NER jointly)
freeze_layers          0          freeze the embeddings and the bottom k encoder layers; their
                                  outputs are computed once per example (taskgraph.models.frozen)
=====================  =========  ===============================================================
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from itertools import pairwise
from typing import TYPE_CHECKING, Any, Literal

from taskgraph.errors import ConfigError
from taskgraph.trial import TrialConfig

if TYPE_CHECKING:  # the weightings import torch; the spec checks read SETTINGS without it
    from taskgraph.training.weighting import LossWeighting

__all__ = ["SETTINGS", "Setting", "TrainingOptions"]


@dataclass(frozen=True)
class Setting:
    """What a scalar trainer setting takes: a ``flag`` (true or false), or a number (an
    ``integer`` one for counts) ``>= low`` (``> low`` when ``low_open``, and ``< 1`` too when
    ``below_one``); ``null`` too when ``nullable``.  A boolean is never a number here."""

    kind: Literal["flag", "integer", "number"]
    low: float = 0.0
    low_open: bool = False
    below_one: bool = False
    nullable: bool = False

    def describe(self) -> str:
        """Return what the setting must be, as in "must be an integer >= 1"."""
        if self.kind == "flag":
            return "true or false"
        what = "an integer" if self.kind == "integer" else "a number"
        if self.below_one:
            bound = f"in [{self.low:g}, 1)"
        else:
            bound = f"{'>' if self.low_open else '>='} {self.low:g}"
        return f"{what} {bound}{' or null' if self.nullable else ''}"

    def admits(self, value: Any) -> bool:
        """Return whether ``value`` is one the setting takes."""
        if value is None:
            return self.nullable
        if self.kind == "flag":
            return isinstance(value, bool)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if not math.isfinite(value) or (self.kind == "integer" and not float(value).is_integer()):
            return False  # an integral float (YAML's `2.0`, which ran before) is a count
        too_low = value <= self.low if self.low_open else value < self.low
        return not too_low and not (self.below_one and value >= 1)


# The scalar settings by their spec names (``tasks_per_step``, not the field's name); the
# others (head_options, lookahead_targets, lookahead_steps, source_tasks) are checked against
# the trial's tasks and steps.  Counts are >= 1: log_every 0 divides by zero, a batch size,
# tasks_per_step or max_eval_examples of 0 draws or evaluates nothing, and a doc_stride of 0
# gives QA windows that share no token, so an answer across a boundary is in no window.
# The spec checks (taskgraph.search.checks) read this table too, before a study is created.
SETTINGS: dict[str, Setting] = {
    "warmup_ratio": Setting("number", below_one=True),
    "weight_decay": Setting("number"),
    "grad_clip": Setting("number", nullable=True),  # 0 or null: no clipping
    "tasks_per_step": Setting("integer", low=1, nullable=True),
    "lookahead_lr": Setting("number", low_open=True, nullable=True),
    "log_every": Setting("integer", low=1),
    "checkpoint_every": Setting("integer", low=1, nullable=True),
    "max_eval_examples": Setting("integer", low=1, nullable=True),
    "eval_batch_size": Setting("integer", low=1),
    "doc_stride": Setting("integer", low=1),
    "group_by_length": Setting("flag"),
    "source_epochs": Setting("number", low_open=True, nullable=True),
    "source_max_steps": Setting("integer", low=1, nullable=True),
    "freeze_layers": Setting("integer"),  # at most the encoder's depth: the model build checks
}


@dataclass(frozen=True)
class TrainingOptions:
    """Validated trainer settings (see the module docstring for each key)."""

    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    grad_clip: float | None = 1.0
    head_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    tasks_per_step_override: int | None = None
    lookahead_lr: float | None = None
    lookahead_targets: tuple[str, ...] | None = None
    lookahead_steps: tuple[int, ...] | None = None
    log_every: int = 50
    checkpoint_every: int | None = None
    max_eval_examples: int | None = None
    eval_batch_size: int = 64
    doc_stride: int = 128
    group_by_length: bool = True
    source_epochs: float | None = None
    source_max_steps: int | None = None
    source_tasks: tuple[str, ...] | None = None
    freeze_layers: int = 0

    @classmethod
    def from_config(cls, config: TrialConfig) -> TrainingOptions:
        """Return the options of ``config.hyperparameters``; unknown keys are a ConfigError."""
        values = dict(config.hyperparameters)
        for name, setting in SETTINGS.items():
            value = values.get(name)
            if setting.kind == "integer" and isinstance(value, float) and value.is_integer():
                values[name] = int(value)  # `log_every: 2.0` counts steps as 2 does
        if "tasks_per_step" in values:
            values["tasks_per_step_override"] = values.pop("tasks_per_step")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            allowed = sorted((known - {"tasks_per_step_override"}) | {"tasks_per_step"})
            raise ConfigError(
                f"unknown hyperparameter(s) {', '.join(unknown)}; known: {', '.join(allowed)}"
            )
        # Evaluation keeps no activations (inference_mode) and sorts by length: larger batches
        # cost no padding and fewer kernel launches.
        values.setdefault("eval_batch_size", max(64, 2 * config.batch_size))
        sources = values.get("source_tasks")
        if sources is not None:
            if isinstance(sources, str) or not all(isinstance(t, str) for t in sources):
                raise ConfigError(
                    f"hyperparameter `source_tasks` must be a list of task names, but got {sources!r}"
                )
            values["source_tasks"] = tuple(sources)
        if values.get("lookahead_targets") is not None:
            values["lookahead_targets"] = tuple(values["lookahead_targets"])
        if isinstance(values.get("lookahead_steps"), list):
            values["lookahead_steps"] = tuple(values["lookahead_steps"])
        options = cls(**values)
        options._validate(config)
        return options

    def _validate(self, config: TrialConfig) -> None:
        for name, setting in SETTINGS.items():
            value = getattr(self, "tasks_per_step_override" if name == "tasks_per_step" else name)
            if not setting.admits(value):
                raise ConfigError(
                    f"hyperparameter `{name}` must be {setting.describe()}, but got {value!r}"
                )
        for name, value, in_range in [
            ("learning_rate", config.learning_rate, config.learning_rate > 0),
            ("batch_size", config.batch_size, config.batch_size >= 1),
            ("max_length", config.max_length, config.max_length >= 8),
            ("epochs", config.epochs, config.epochs > 0 or config.max_steps is not None),
            ("max_steps", config.max_steps, config.max_steps is None or config.max_steps >= 1),
            (
                "lookahead_every",
                config.lookahead_every,
                config.lookahead_every is None or config.lookahead_every >= 1,
            ),
            ("eval_every", config.eval_every, config.eval_every is None or config.eval_every >= 1),
            (
                "early_stopping_patience",
                config.early_stopping_patience,
                config.early_stopping_patience is None or config.early_stopping_patience >= 1,
            ),
        ]:
            if not in_range:
                raise ConfigError(f"trial `{name}` is out of range: {value!r}")
        if config.step_budget not in ("target", "total"):
            raise ConfigError(
                f"trial `step_budget` must be target or total, but got {config.step_budget!r}"
            )
        self.phases(config)  # a `source_tasks` that names no auxiliary fails here, not later
        if self.lookahead_targets is not None:
            outside = sorted(set(self.lookahead_targets) - set(config.task_set))
            if not self.lookahead_targets or outside:
                raise ConfigError(
                    f"hyperparameter `lookahead_targets` must name tasks of the task set "
                    f"({', '.join(config.task_set)}), but got {list(self.lookahead_targets)!r}"
                )
        self._validate_lookahead_steps(config)
        unknown_heads = sorted(set(self.head_options) - set(config.task_set))
        if unknown_heads:
            raise ConfigError(
                f"hyperparameter `head_options` names tasks not in the task set: "
                f"{', '.join(unknown_heads)} (task set: {', '.join(config.task_set)})"
            )

    def _validate_lookahead_steps(self, config: TrialConfig) -> None:
        steps = self.lookahead_steps
        if steps is None:
            return
        if config.lookahead_every is not None:
            raise ConfigError(
                f"hyperparameter `lookahead_steps` ({_listed(steps)}) and trial "
                f"`lookahead_every` ({config.lookahead_every}) both set the probe steps; give one"
            )
        # Under the target step budget a joint run counts every task's steps, more than
        # max_steps: its length is known only once the sampler has planned it.
        last = config.max_steps if config.step_budget == "total" else None
        ints = isinstance(steps, tuple) and all(
            isinstance(s, int) and not isinstance(s, bool) for s in steps
        )
        if (
            not ints
            or not steps
            or steps[0] < 1
            or any(a >= b for a, b in pairwise(steps))
            or (last is not None and steps[-1] > last)
        ):
            where = f"in [1, {last}] (max_steps)" if last is not None else ">= 1"
            raise ConfigError(
                f"hyperparameter `lookahead_steps` must be increasing step numbers {where}, "
                f"but got {_listed(steps)}"
            )

    def probes_after(self, step: int, config: TrialConfig) -> bool:
        """Return whether a lookahead probe runs at joint-run step ``step`` (1 for the first):
        a step ``lookahead_steps`` lists, else every ``config.lookahead_every``-th one."""
        if self.lookahead_steps is not None:
            return step in self.lookahead_steps
        return config.lookahead_every is not None and step % config.lookahead_every == 0

    def has_probes(self, config: TrialConfig) -> bool:
        """Return whether the trial has lookahead probes (``lookahead_steps`` or
        ``lookahead_every``); they run in a joint phase of two or more tasks only."""
        return self.lookahead_steps is not None or bool(config.lookahead_every)

    def phases(self, config: TrialConfig) -> list[tuple[str, list[str]]]:
        """Return the trial's training phases: ``(name, tasks)`` in order.

        Joint transfer (or no auxiliaries): one ``joint`` phase on the task set.  Sequential:
        a ``source`` phase on the source tasks (``source_tasks`` among the auxiliaries, else
        all of them), then a ``target`` phase on the target and the remaining auxiliaries.
        """
        if config.transfer_mode != "sequential" or not config.auxiliaries:
            return [("joint", list(config.task_set))]
        sources = list(config.source_phase_tasks())
        if not sources:
            assert self.source_tasks is not None  # by default every auxiliary is a source
            raise ConfigError(
                f"hyperparameter `source_tasks` ({', '.join(self.source_tasks)}) names none of "
                f"the trial's auxiliaries ({', '.join(config.auxiliaries)}): sequential transfer "
                "needs a source"
            )
        rest = [t for t in config.auxiliaries if t not in sources]
        return [("source", sources), ("target", [config.target, *rest])]

    def tasks_per_step(self, n_tasks: int, weighting: LossWeighting) -> int:
        """Return how many batches one step draws."""
        if self.tasks_per_step_override is not None:
            return int(self.tasks_per_step_override)
        return n_tasks if weighting.needs_task_gradients else 1


def _listed(value: Any) -> str:
    """Return ``value`` as the spec writes it: a tuple as a list."""
    return repr(list(value) if isinstance(value, tuple) else value)
