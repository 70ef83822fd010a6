"""How a study trains and searches, beside its search space and runner: the fixed settings.

The encoder, the per-trial training settings, the budget, the sampler, the pruner and the
recovery of silent trials.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from taskgraph.spec.domains import reject_non_finite
from taskgraph.spec.limits import (
    MAX_COUNT,
    MAX_ENCODER_LENGTH,
    MAX_FAILURES,
    MAX_INTERVAL,
    MAX_SEED,
    MAX_TRIALS,
    MAX_WALL_TIME,
)
from taskgraph.spec.models.base import Count, Number, _shorthand_name, _Strict

__all__ = [
    "BudgetSpec",
    "EncoderSpec",
    "PrunerSpec",
    "RecoverySpec",
    "SamplerSpec",
    "TrainingSpec",
    "parse_duration",
]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d)?\s*$")
_UNIT_SECONDS = {None: 1.0, "s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: float | int | str | None) -> float | None:
    """Return ``value`` in seconds: a number of seconds or a string such as ``"90s"``, ``"10m"``, ``"2h"``."""
    if value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)):
        return None if value is None else float(value)
    # ValueError, not the regex's TypeError: pydantic reports only the former as the field's.
    match = _DURATION.match(value) if isinstance(value, str) else None
    if not match:
        raise ValueError(f"expected a duration such as 600, '90s', '10m' or '2h', got {value!r}")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


class EncoderSpec(_Strict):
    """The shared encoder: ``minilm``, ``tiny-bert`` or a local Hugging Face model directory."""

    name: str = "minilm"
    options: dict[str, Any] = Field(default_factory=dict)
    max_length: Count = Field(default=128, ge=8, le=MAX_ENCODER_LENGTH)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return _shorthand_name(data)


_DEVICE = re.compile(r"(cpu|cuda|mps|xpu)(:\d+)?")


class TrainingSpec(_Strict):
    """Per-trial settings that are not searched."""

    eval_splits: tuple[str, ...] = ("dev",)
    eval_every: Count | None = Field(default=None, ge=1, le=MAX_COUNT)
    early_stopping_patience: Count | None = Field(default=None, ge=1, le=MAX_COUNT)
    lookahead_every: Count | None = Field(default=None, ge=1, le=MAX_COUNT)
    device: str | None = None  # None: CUDA when present, else CPU
    # Fixed trainer settings (any JSON value, e.g. head_options); searched ones go under
    # search.hyperparameters and override these.
    hyperparameters: dict[str, Any] = Field(default_factory=dict)

    @field_validator("hyperparameters")
    @classmethod
    def _finite(cls, value: dict[str, Any]) -> dict[str, Any]:
        reject_non_finite(value)
        return value

    @field_validator("device")
    @classmethod
    def _device(cls, value: str | None) -> str | None:
        # torch's device strings; checked here so `study validate` refuses what every trial
        # would (whether CUDA is present is the running machine's, checked when a trial runs).
        if value is not None and not _DEVICE.fullmatch(value):
            raise ValueError(f"must be like 'cpu', 'cuda' or 'cuda:1', got {value!r}")
        return value


class BudgetSpec(_Strict):
    """How much to spend: trials (configurations), wall time, tolerated failures.

    ``baselines``: ``per_family`` spends a trial on the single-task baseline of each model
    family a complete trial lands in (a searched target cap or pretraining stage makes
    several), so every trial's records have a baseline to give gains against;
    ``per_setting`` one for each family and set of alone settings (a searched learning rate,
    sharing architecture, ...: ``TrialConfig.alone_settings``), so every gain compares runs
    trained alike and measures the transfer alone (a continuous learning rate makes about
    every trial its own); ``one`` trains only the study's first baseline.
    """

    trials: Count = Field(default=20, ge=1, le=MAX_TRIALS)
    # seconds per `run`/`resume` invocation; None: unlimited
    wall_time: Number | None = Field(default=None, le=MAX_WALL_TIME)
    max_failures: Count = Field(default=5, ge=0, le=MAX_FAILURES)
    baselines: Literal["per_family", "per_setting", "one"] = "per_family"

    @field_validator("wall_time", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return parse_duration(value)

    @field_validator("wall_time")
    @classmethod
    def _positive(cls, value: float | None) -> float | None:
        if value is not None and value <= 0:
            raise ValueError(f"must be > 0, got {value}")
        return value


class SamplerSpec(_Strict):
    """The Optuna sampler: ``tpe``, ``gp``, ``random``, ``graph`` (graph-guided) or ``bandit``."""

    name: str = "tpe"
    seed: Count | None = Field(default=None, ge=0, le=MAX_SEED)
    n_startup_trials: Count | None = Field(default=None, ge=0, le=MAX_COUNT)
    options: dict[str, Any] = Field(default_factory=dict)  # extra keyword arguments

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return _shorthand_name(data)


class PrunerSpec(_Strict):
    """Early stopping of poor trials: ``asha`` (= ``successive_halving``), ``median`` or ``none``.

    Resources are evaluation steps (the trainer's evaluations, one per epoch by default).
    """

    name: Literal["asha", "successive_halving", "median", "none"] = "none"
    min_resource: Count = Field(default=1, ge=1, le=MAX_COUNT)
    reduction_factor: Count = Field(default=3, ge=2, le=MAX_COUNT)
    n_startup_trials: Count = Field(default=3, ge=0, le=MAX_COUNT)
    n_warmup_steps: Count = Field(default=0, ge=0, le=MAX_COUNT)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return _shorthand_name(data)


class RecoverySpec(_Strict):
    """Heartbeat settings: a trial silent for ``grace_period`` seconds is failed and retried."""

    heartbeat_interval: Count = Field(default=10, ge=1, le=MAX_INTERVAL)
    grace_period: Count = Field(default=30, ge=2, le=MAX_INTERVAL)
    max_retry: Count = Field(default=3, ge=0, le=MAX_COUNT)

    @model_validator(mode="after")
    def _order(self) -> RecoverySpec:
        if self.grace_period <= self.heartbeat_interval:
            raise ValueError(
                f"grace_period ({self.grace_period}) must exceed heartbeat_interval "
                f"({self.heartbeat_interval})"
            )
        return self
