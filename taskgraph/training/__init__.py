"""Training: the multi-task trainer, task mixing, loss weightings, callbacks, lookahead affinity.

>>> from taskgraph.trial import TrialConfig
>>> from taskgraph.training import train_trial
>>> result = train_trial(TrialConfig(target="synth_target", auxiliaries=("synth_related",),
...                                  encoder="tiny-bert", max_steps=200))

Only this package and :mod:`taskgraph.models` import torch; Optuna and Ray plug in through
:class:`TrainerCallback` (``control.should_prune`` / ``on_evaluate``) and are never imported here.
"""

from __future__ import annotations

from taskgraph.training.batching import BatchStream, TaskTensors
from taskgraph.training.callbacks import (
    CallbackHandler,
    TrainerCallback,
    TrainerControl,
    TrainerState,
)
from taskgraph.training.evaluation import EvalSet, evaluate_split, predict_split
from taskgraph.training.lookahead import LookaheadAffinity
from taskgraph.training.options import TrainingOptions
from taskgraph.training.qa_decoding import decode_qa
from taskgraph.training.run import build_task_data, build_trainer, deterministic_subset, train_trial
from taskgraph.training.runtime import resolve_device, seed_everything, stable_seed
from taskgraph.training.sampling import SAMPLING_SCHEMES, TaskSampler
from taskgraph.training.trainer import (
    MultiTaskTrainer,
    NonFiniteLossError,
    TaskData,
    TrainingOutcome,
)
from taskgraph.training.weighting import LOSS_WEIGHTINGS, LossWeighting, build_weighting

__all__ = [
    "LOSS_WEIGHTINGS",
    "SAMPLING_SCHEMES",
    "BatchStream",
    "CallbackHandler",
    "EvalSet",
    "LookaheadAffinity",
    "LossWeighting",
    "MultiTaskTrainer",
    "NonFiniteLossError",
    "TaskData",
    "TaskSampler",
    "TaskTensors",
    "TrainerCallback",
    "TrainerControl",
    "TrainerState",
    "TrainingOptions",
    "TrainingOutcome",
    "build_task_data",
    "build_trainer",
    "build_weighting",
    "decode_qa",
    "deterministic_subset",
    "evaluate_split",
    "predict_split",
    "resolve_device",
    "seed_everything",
    "stable_seed",
    "train_trial",
]
