"""Training: the multi-task trainer, task mixing, loss weightings, callbacks, lookahead affinity.

>>> from taskgraph.trial import TrialConfig
>>> from taskgraph.training import train_trial
>>> result = train_trial(TrialConfig(target="synth_target", auxiliaries=("synth_related",),
...                                  encoder="tiny-bert", max_steps=200))

Only this package and :mod:`taskgraph.models` import torch; Optuna and Ray plug in through
:class:`TrainerCallback` (``control.should_prune`` / ``on_evaluate``) and are never imported here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from taskgraph.registry import lazy_exports

if TYPE_CHECKING:
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
    from taskgraph.training.run import build_trainer, train_trial
    from taskgraph.training.runtime import resolve_device, seed_everything, stable_seed
    from taskgraph.training.sampling import SAMPLING_SCHEMES, TaskSampler
    from taskgraph.training.task_data import build_task_data, deterministic_subset
    from taskgraph.training.trainer import (
        MultiTaskTrainer,
        NonFiniteLossError,
        TaskData,
        TrainingOutcome,
    )
    from taskgraph.training.weighting import LOSS_WEIGHTINGS, LossWeighting, build_weighting

# name -> module: importing the package (say, for the callback types a Ray worker needs)
# imports neither torch nor transformers; the first use of a name imports its module.
_LAZY: dict[str, str] = {
    "BatchStream": "taskgraph.training.batching",
    "CallbackHandler": "taskgraph.training.callbacks",
    "EvalSet": "taskgraph.training.evaluation",
    "LOSS_WEIGHTINGS": "taskgraph.training.weighting",
    "LookaheadAffinity": "taskgraph.training.lookahead",
    "LossWeighting": "taskgraph.training.weighting",
    "MultiTaskTrainer": "taskgraph.training.trainer",
    "NonFiniteLossError": "taskgraph.training.trainer",
    "SAMPLING_SCHEMES": "taskgraph.training.sampling",
    "TaskData": "taskgraph.training.trainer",
    "TaskSampler": "taskgraph.training.sampling",
    "TaskTensors": "taskgraph.training.batching",
    "TrainerCallback": "taskgraph.training.callbacks",
    "TrainerControl": "taskgraph.training.callbacks",
    "TrainerState": "taskgraph.training.callbacks",
    "TrainingOptions": "taskgraph.training.options",
    "TrainingOutcome": "taskgraph.training.trainer",
    "build_task_data": "taskgraph.training.task_data",
    "build_trainer": "taskgraph.training.run",
    "build_weighting": "taskgraph.training.weighting",
    "decode_qa": "taskgraph.training.qa_decoding",
    "deterministic_subset": "taskgraph.training.task_data",
    "evaluate_split": "taskgraph.training.evaluation",
    "predict_split": "taskgraph.training.evaluation",
    "resolve_device": "taskgraph.training.runtime",
    "seed_everything": "taskgraph.training.runtime",
    "stable_seed": "taskgraph.training.runtime",
    "train_trial": "taskgraph.training.run",
}


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


# PEP 562 (taskgraph.registry.lazy_exports): each name is imported on its first use.
__getattr__, __dir__ = lazy_exports(__name__, globals(), _LAZY)
