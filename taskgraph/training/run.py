"""``train_trial``: one :class:`~taskgraph.trial.TrialConfig` in, one
:class:`~taskgraph.trial.TrialResult` out, and never an exception for a failing trial.

It resolves the task names (catalog, the caller's inline tasks, ``synth_*``), loads and
tokenizes each task's data (training examples capped by ``mixing.max_examples`` with a fixed
random subset, so every seed of a configuration trains on the same examples), builds the encoder,
heads and sharing architecture, and runs :class:`~taskgraph.training.MultiTaskTrainer`.

Failures become ``TrialResult.failed(reason)`` with a reason that starts with its kind:
``NaN loss: ...``, ``out of memory (CUDA): ...``, ``out of memory (CPU): ...``,
``data error: ...`` (a missing or malformed data file: the file, the line, what was
expected), ``invalid configuration: ...`` (any other :class:`~taskgraph.errors.TaskgraphError`,
e.g. an unknown task or sharing name) or ``exception: TypeName: ...``.  ``KeyboardInterrupt`` still propagates:
an interrupted run resumes when ``train_trial`` is called again with the same ``checkpoint_dir``
(in a study the ``local`` runner gives each (trial, seed) one that its retries share:
:mod:`taskgraph.runners.local`).
"""

from __future__ import annotations

import gc
import logging
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from taskgraph.encoder_files import encoder_version
from taskgraph.errors import ConfigError, DataFormatError, DataNotFoundError, TaskgraphError
from taskgraph.tasks import count_examples, get_task
from taskgraph.tasks.loading import task_set_fingerprints
from taskgraph.tasks.types import TaskDef
from taskgraph.training.callbacks import TrainerCallback
from taskgraph.training.frozen_states import attach_frozen_states
from taskgraph.training.options import TrainingOptions
from taskgraph.training.runtime import (
    describe_device,
    resolve_device,
    resolve_threads,
    seed_everything,
    stable_seed,
    torch_threads,
)
from taskgraph.training.selection import Selection, select_auxiliaries
from taskgraph.training.task_data import build_task_data, check_caps, deterministic_subset
from taskgraph.training.trainer import MultiTaskTrainer, NonFiniteLossError
from taskgraph.training.weighting import build_weighting
from taskgraph.trial import Cost, TrialConfig, TrialResult
from taskgraph.vocabulary import direction_mismatch, metric_direction, unknown_metric

__all__ = ["build_trainer", "train_trial"]

logger = logging.getLogger(__name__)


def build_trainer(
    config: TrialConfig,
    *,
    tasks: Mapping[str, TaskDef] | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    callbacks: Sequence[TrainerCallback] = (),
    device: str | torch.device | None = None,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    progress: bool = False,
) -> MultiTaskTrainer:
    """Return a ready :class:`MultiTaskTrainer` for ``config`` (data loaded, model on device)."""
    from taskgraph.models import HeadSpec, build_model, load_encoder

    check_caps(config)
    options = TrainingOptions.from_config(config)
    resolved = resolve_device(device)
    task_defs = {name: get_task(name, extra=tasks) for name in config.task_set}
    _check_objective_direction(config, task_defs[config.target])
    seed_everything(config.seed)
    encoder_options = dict(config.encoder_options)
    if config.encoder == "tiny-bert":
        # A randomly initialised encoder is part of what a seed varies.
        encoder_options.setdefault("seed", config.seed)
    encoder = load_encoder(config.encoder, options=encoder_options)
    if config.pretraining is not None:
        from taskgraph.training.pretraining import pretrained_encoder_state

        state, _ = pretrained_encoder_state(
            config, encoder, tasks=tasks, data_dir=data_dir, device=resolved
        )
        encoder.model.load_state_dict(state)
        seed_everything(config.seed)
    selections = _data_selection(config, task_defs, encoder.tokenizer, data_dir=data_dir)
    data = build_task_data(
        config,
        task_defs,
        encoder.tokenizer,
        data_dir=data_dir,
        options=options,
        selections=selections,
    )
    heads = [
        HeadSpec(
            task=name,
            type=task.type,
            num_labels=len(data[name].labels or ()),
            options=dict(options.head_options.get(name, {})),
        )
        for name, task in task_defs.items()
    ]
    seed_everything(config.seed)
    model = build_model(
        sharing=config.sharing, encoder=encoder, heads=heads, params=dict(config.sharing_params)
    )
    model.to(resolved)
    attach_frozen_states(model, data, config, options=options, device=resolved)
    weighting = build_weighting(
        config.loss_weighting,
        tasks=list(config.task_set),
        seed=stable_seed(config.seed, "weighting"),
    ).to(resolved)
    return MultiTaskTrainer(
        config=config,
        model=model,
        weighting=weighting,
        data=data,
        options=options,
        device=resolved,
        callbacks=callbacks,
        checkpoint_dir=str(Path(checkpoint_dir)) if checkpoint_dir is not None else None,
        progress=progress,
    )


def _check_objective_direction(config: TrialConfig, target: TaskDef) -> None:
    """Raise ConfigError when ``config.objective`` names a metric the target does not have, or
    a direction against its metric's own.

    The trainer keeps the weights of the best evaluation by the metric's direction
    (:func:`~taskgraph.vocabulary.metric_direction`), whatever the objective says: a caller
    that believed the other direction would read the best result as the worst.  A study's
    spec checks refuse the same; a config built by hand is checked here.
    """
    metric = config.objective.metric or target.primary_metric
    if metric not in target.metrics:
        raise ConfigError(
            unknown_metric(
                source="TrialConfig", metric=metric, task=target.name, allowed=target.metrics
            )
        )
    wanted = metric_direction(metric)
    if config.objective.direction != wanted:
        scores = (
            f"{metric} is"
            if config.objective.metric
            else f"{metric} (the primary metric of {target.name}) is"
        )
        raise ConfigError(
            direction_mismatch(
                source="TrialConfig",
                direction=config.objective.direction,
                wanted=wanted,
                scores=scores,
            )
        )


def _data_selection(
    config: TrialConfig,
    task_defs: Mapping[str, TaskDef],
    tokenizer: Any,
    *,
    data_dir: str | os.PathLike[str] | None,
) -> dict[str, Selection]:
    """Return the auxiliaries' kept examples under ``config.data_selection`` (empty when off)."""
    selection = config.data_selection
    if selection is None or not config.auxiliaries:
        return {}
    from taskgraph.models import load_encoder
    from taskgraph.models.encoders import weights_fingerprint

    pools: dict[str, tuple[np.ndarray, int]] = {}
    for name in (config.target, *config.auxiliaries):
        size = count_examples(task_defs[name], "train", data_dir=data_dir)
        cap = config.mixing.max_examples.get(name)
        pools[name] = (deterministic_subset(size, cap, key=name), size)
    table = None
    # A random tiny encoder is read with seed 0 here, so every seed selects the same examples.
    encoder_key = [config.encoder, dict(config.encoder_options)]
    if "embedding_cosine" in selection.features:
        bundle = load_encoder(config.encoder, options=dict(config.encoder_options))
        embeddings: torch.nn.Module = bundle.model.get_input_embeddings()
        weight = embeddings.weight
        assert isinstance(weight, torch.Tensor)
        table = weight.detach().float().cpu().numpy()
        # The features read the table: a directory whose weights changed under the same name
        # must not get the cached features of the old ones.
        encoder_key.append(weights_fingerprint(embeddings))
    return select_auxiliaries(
        config,
        task_defs,
        data_dir=data_dir,
        pools=pools,
        tokenizer=tokenizer,
        embedding_table=table,
        encoder_key=encoder_key,
    )


def _changed_task(before: Mapping[str, str], after: Mapping[str, str]) -> str | None:
    """Return the first task whose fingerprint differs between ``before`` and ``after``."""
    return next((name for name in sorted(before) if before[name] != after.get(name)), None)


def _device_name(device: str | torch.device | None, threads: int) -> str:
    try:
        return describe_device(resolve_device(device), threads=threads)
    except TaskgraphError:
        return str(device)


def train_trial(
    config: TrialConfig,
    *,
    tasks: Mapping[str, TaskDef] | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    callbacks: Sequence[TrainerCallback] = (),
    device: str | None = None,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    progress: bool = False,
    threads: float | None = None,
) -> TrialResult:
    """Return the result of training ``config``; a failing trial gives a FAILED result.

    ``tasks`` are inline task definitions (by name) besides the catalog; ``checkpoint_dir``
    makes the run resumable (rerun with the same directory to continue a killed run).
    ``threads`` is the number of cores the runner gives the trial (``None``: the cores this
    process may use); torch runs that many intra-op threads during the trial, and the count is
    recorded in the result's cost.
    """
    try:
        count = resolve_threads(threads)
    except TaskgraphError as error:
        return TrialResult.failed(f"invalid configuration: {error}")
    with torch_threads(count):
        return _train_trial(
            config,
            tasks=tasks,
            data_dir=data_dir,
            callbacks=callbacks,
            device=device,
            checkpoint_dir=checkpoint_dir,
            progress=progress,
            threads=count,
        )


def _encoder_changed(config: TrialConfig) -> str | None:
    """Return the failure reason of a trial whose encoder directory's files are not those it
    was configured with (``config.encoder_version``), else None.

    The version is part of the run's model family: training on other weights than it names
    would record a run under the wrong family.  The next trial the study configures reads
    the files again and is of the new weights' family.  (A Ray worker reads its own copy:
    a node whose copy differs from the driver's fails its trials this way.)
    """
    if config.encoder_version is None:
        return None
    now = encoder_version(config.encoder)
    if now == config.encoder_version:
        return None
    found = "no directory here" if now is None else f"here version {now[:12]}"
    return (
        f"encoder error: the files of encoder {config.encoder!r} are not those the trial was "
        f"configured with (version {config.encoder_version[:12]}, {found}): they changed since, "
        "or this machine has another copy; it would have trained other weights than its model "
        "family names"
    )


def _train_trial(
    config: TrialConfig,
    *,
    tasks: Mapping[str, TaskDef] | None,
    data_dir: str | os.PathLike[str] | None,
    callbacks: Sequence[TrainerCallback],
    device: str | None,
    checkpoint_dir: str | os.PathLike[str] | None,
    progress: bool,
    threads: int,
) -> TrialResult:
    start = time.perf_counter()
    trainer: MultiTaskTrainer | None = None
    report: dict[str, Any] | None = None
    # The dataset fingerprints of the data the trainer read: what the run's records carry,
    # whatever the files hold by the time they are written (they may change meanwhile).
    loaded: dict[str, str] | None = None

    def cost() -> Cost:
        state = trainer.state if trainer is not None else None
        seconds, tokens = Cost.of_pretraining(report)
        # A resumed run's time before its kill counts, as it does on success.
        before = trainer.elapsed_before if trainer is not None else 0.0
        return Cost(
            seconds=time.perf_counter() - start + before,
            examples=state.examples if state else 0,
            tokens=(state.tokens if state else 0) + tokens,
            device=_device_name(device, threads),
            threads=threads,
            target_steps=state.target_steps if state else 0,
            total_steps=state.total_steps if state else 0,
            pretrain_seconds=seconds,
            pretrain_tokens=tokens,
        )

    def failed(reason: str) -> TrialResult:
        result = TrialResult.failed(reason, cost=cost())
        result.data_fingerprints = loaded
        # The stage ran and its cost is counted: its report goes with the run, as on success.
        result.pretraining = report
        return result

    try:
        if (moved := _encoder_changed(config)) is not None:
            return failed(moved)
        check_caps(config)  # before a pretraining stage is paid for
        _check_objective_direction(config, get_task(config.target, extra=tasks))
        if config.pretraining is not None:
            report = _pretraining_report(config, tasks=tasks, data_dir=data_dir, device=device)
        before = task_set_fingerprints(config.task_set, tasks=tasks, data_dir=data_dir)
        trainer = build_trainer(
            config,
            tasks=tasks,
            data_dir=data_dir,
            callbacks=callbacks,
            device=device,
            checkpoint_dir=checkpoint_dir,
            progress=progress,
        )
        # Every split is in memory now: the same fingerprints as before reading them mean the
        # trainer read one version of each task's data, the one recorded with the run.
        after = task_set_fingerprints(config.task_set, tasks=tasks, data_dir=data_dir)
        changed = _changed_task(before, after)
        if changed is not None:
            return failed(
                f"data error: the files of task {changed!r} changed while the trial read them; "
                "it was not trained on one version of its data"
            )
        if (moved := _encoder_changed(config)) is not None:  # while it was being loaded
            return failed(moved)
        loaded = after
        trainer.data_fingerprints = loaded  # a checkpoint saved on other data is not resumed
        trainer.pretraining = report
        outcome = trainer.train()
        seconds, tokens = Cost.of_pretraining(report)
        return TrialResult(
            status=outcome.status,
            scores=outcome.scores,
            objective=outcome.objective,
            cost=Cost(
                seconds=time.perf_counter() - start + trainer.elapsed_before,
                examples=outcome.examples,
                tokens=outcome.tokens + tokens,
                device=describe_device(trainer.device, threads=threads),
                threads=threads,
                target_steps=outcome.target_steps,
                total_steps=outcome.total_steps,
                pretrain_seconds=seconds,
                pretrain_tokens=tokens,
            ),
            lookahead=outcome.lookahead,
            intermediate=outcome.intermediate,
            selection=trainer.selection(),
            pretraining=report,
            data_fingerprints=loaded,
        )
    except NonFiniteLossError as error:
        return failed(f"NaN loss: {error}")
    except torch.OutOfMemoryError as error:
        return failed(f"out of memory (CUDA): {_first_line(error)}")
    except MemoryError as error:
        return failed(f"out of memory (CPU): {_first_line(error)}")
    except (DataFormatError, DataNotFoundError) as error:
        return failed(f"data error: {error}")
    except TaskgraphError as error:
        return failed(f"invalid configuration: {error}")
    except (KeyboardInterrupt, SystemExit, GeneratorExit):
        raise
    except BaseException as error:
        # Not only Exception: a Rust panic in the tokenizers library (pyo3's PanicException)
        # derives from BaseException and must not crash the study either.
        logger.exception("trial %s failed", config.task_set_key)
        return failed(f"exception: {type(error).__name__}: {_first_line(error)}")
    finally:
        trainer = None
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def _pretraining_report(
    config: TrialConfig,
    *,
    tasks: Mapping[str, TaskDef] | None,
    data_dir: str | os.PathLike[str] | None,
    device: str | None,
) -> dict[str, Any]:
    """Return the report of ``config``'s pretraining stage, running the stage if not cached.

    :func:`build_trainer` then finds the weights in the cache's memory level.
    """
    from taskgraph.models import load_encoder
    from taskgraph.training.pretraining import pretrained_encoder_state

    encoder_options = dict(config.encoder_options)
    if config.encoder == "tiny-bert":
        encoder_options.setdefault("seed", config.seed)
    encoder = load_encoder(config.encoder, options=encoder_options)
    _, report = pretrained_encoder_state(
        config, encoder, tasks=tasks, data_dir=data_dir, device=resolve_device(device)
    )
    return report


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
