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
import hashlib
import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from taskgraph.errors import ConfigError, DataFormatError, DataNotFoundError, TaskgraphError
from taskgraph.tasks import (
    count_examples,
    get_task,
    has_unanswerable,
    label_vocabulary,
    load_examples,
    task_fingerprint,
)
from taskgraph.tasks.cache import FEATURE_CACHE_ENV, FeatureCache, cache_dir, feature_cache
from taskgraph.tasks.features import EncodedSplit, encode_examples, tokenizer_fingerprint
from taskgraph.tasks.loading import task_set_fingerprints
from taskgraph.tasks.types import Example, TaskDef, TaskType
from taskgraph.training.batching import TaskTensors
from taskgraph.training.callbacks import TrainerCallback
from taskgraph.training.evaluation import EvalSet
from taskgraph.training.options import TrainingOptions
from taskgraph.training.runtime import (
    describe_device,
    resolve_device,
    resolve_threads,
    seed_everything,
    stable_seed,
    torch_threads,
)
from taskgraph.training.selection import (
    Selection,
    select_auxiliaries,
    selected_rows,
    subset_tensors,
)
from taskgraph.training.trainer import MultiTaskTrainer, NonFiniteLossError, TaskData
from taskgraph.training.weighting import build_weighting
from taskgraph.trial import Cost, TrialConfig, TrialResult

__all__ = [
    "attach_frozen_states",
    "build_task_data",
    "build_trainer",
    "check_caps",
    "deterministic_subset",
    "train_trial",
]

logger = logging.getLogger(__name__)

# Outputs of frozen bottom layers by (frozen weights, token ids, segment ids, attention mask): in memory for this process,
# at most _FROZEN_BYTES of them (float32 (N, L, H): 1,500 sentences of 96 tokens of MiniLM are
# 221 MB), and on disk under $TASKGRAPH_CACHE/frozen/ for later processes (Ray workers, a
# resumed study), each file at most _FROZEN_FILE_BYTES.  TASKGRAPH_FEATURE_CACHE=memory keeps
# them in memory only, =off computes them in every trial.
_FROZEN_BYTES = 2 * 1024**3
_FROZEN_FILE_BYTES = 1024**3
_FROZEN_CACHES: dict[str, FeatureCache] = {}


def _frozen_cache() -> FeatureCache | None:
    """Return the process-wide cache of frozen outputs for the current cache settings."""
    mode = os.environ.get(FEATURE_CACHE_ENV, "").strip().lower()
    if mode in {"off", "0", "false", "no"}:
        return None
    directory = "" if mode == "memory" else str(cache_dir() / "frozen")
    if directory not in _FROZEN_CACHES:
        _FROZEN_CACHES[directory] = FeatureCache(
            directory=Path(directory) if directory else None, memory_items=64
        )
    return _FROZEN_CACHES[directory]


def _remember_frozen(cache: FeatureCache, key: str, hidden: torch.Tensor) -> None:
    # A prefix too large for one file stays in this process only.
    cache.put(key, hidden, disk=hidden.numel() * hidden.element_size() <= _FROZEN_FILE_BYTES)
    held = cache.items()
    total = sum(t.numel() * t.element_size() for _, t in held)
    for old, tensor in held:  # oldest first
        if total <= _FROZEN_BYTES or old == key:
            break
        cache.forget(old)
        total -= tensor.numel() * tensor.element_size()


_LABELED = (
    TaskType.TOKEN_TAGGING,
    TaskType.DEPENDENCY_PARSING,
    TaskType.SENTENCE_CLASSIFICATION,
    TaskType.SENTENCE_PAIR_CLASSIFICATION,
)


def deterministic_subset(size: int, cap: int | None, *, key: str) -> np.ndarray:
    """Return the sorted indices of a fixed random subset of ``cap`` out of ``size`` items."""
    if cap is None or cap >= size:
        return np.arange(size)
    if cap < 1:
        raise ConfigError(f"`max_examples` for {key!r} must be >= 1, but got {cap}")
    rng = np.random.default_rng(stable_seed("subset", key))
    return np.sort(rng.choice(size, size=cap, replace=False))


def check_caps(config: TrialConfig) -> None:
    """Raise ConfigError for a ``mixing.max_examples`` task that is not one of the trial's.

    Such a cap would be silently ignored; the spec checks refuse the same for a study.
    """
    tasks = config.task_set
    for name in config.mixing.max_examples:
        if name not in tasks:
            raise ConfigError(
                f"mixing.max_examples.{name}: not a task of the trial; its tasks: "
                f"{', '.join(tasks)}"
            )


def _mlm_info(tokenizer: Any) -> dict[str, int]:
    return {"mask_token_id": int(tokenizer.mask_token_id), "vocab_size": len(tokenizer)}


def _encoded(
    task: TaskDef,
    split: str,
    tokenizer: Any,
    *,
    data_dir: str | os.PathLike[str] | None,
    cap: int | None,
    subset_key: str,
    labels: list[str] | None,
    max_length: int,
    doc_stride: int,
    keep_examples: bool,
) -> tuple[list[Example], EncodedSplit]:
    """Return the (capped) examples of ``split`` and their features, from the feature cache.

    The key holds everything the features depend on: the task's data fingerprint (file
    contents, carve rule, format, reader options), the split, the tokenizer's fingerprint,
    ``max_length``, the QA stride, the label vocabulary and the subset cap.  A hit skips
    reading the file and tokenizing.  Training splits keep no examples (only evaluation scores
    against them), so their entries are smaller.
    """
    cache = feature_cache()
    key = ""
    fingerprint = ""
    if cache is not None:
        fingerprint = task_fingerprint(task, data_dir=data_dir)
        key = cache.key(
            {
                "task": fingerprint,
                "split": split,
                "tokenizer": tokenizer_fingerprint(tokenizer),
                "max_length": max_length,
                "doc_stride": doc_stride if task.type is TaskType.EXTRACTIVE_QA else None,
                "labels": labels,
                "cap": cap,
                "subset": subset_key,
                "examples": keep_examples,
            }
        )
        hit = cache.get(key)
        if hit is not None:
            examples, encoded = hit
            return list(examples), encoded
    examples = load_examples(task, split, data_dir=data_dir)
    keep = deterministic_subset(len(examples), cap, key=subset_key)
    examples = [examples[i] for i in keep]
    encoded = encode_examples(
        task, examples, tokenizer, labels=labels, max_length=max_length, doc_stride=doc_stride
    )
    # A file edited between the key's fingerprint and the read would store the new examples
    # under the old data's key (the trial itself then fails: _changed_task).
    if cache is not None and task_fingerprint(task, data_dir=data_dir) == fingerprint:
        cache.put(key, (examples if keep_examples else [], encoded))
    return examples, encoded


def build_task_data(
    config: TrialConfig,
    tasks: Mapping[str, TaskDef],
    tokenizer: Any,
    *,
    data_dir: str | os.PathLike[str] | None,
    options: TrainingOptions,
    selections: Mapping[str, Selection] | None = None,
) -> dict[str, TaskData]:
    """Return every task's label vocabulary, training tensors and evaluation sets.

    Encoded splits come from the feature cache (:func:`taskgraph.tasks.cache.feature_cache`)
    when an earlier trial or process tokenized the same data the same way.  ``selections``
    (example-level data selection) keep only the chosen examples of those tasks' training
    splits.
    """
    selections = selections or {}
    out: dict[str, TaskData] = {}
    eval_splits = list(dict.fromkeys([*config.eval_splits, config.objective.split]))
    pad = int(tokenizer.pad_token_id)
    for name, task in tasks.items():
        labels = label_vocabulary(task, data_dir=data_dir) if task.type in _LABELED else None
        if labels is not None and not labels:
            raise ConfigError(f"task {name!r} has no labels in any split")
        mlm = _mlm_info(tokenizer) if task.type is TaskType.MASKED_LM else None
        if "train" not in task.splits:
            raise ConfigError(
                f"task {name!r} has no train split (splits: {', '.join(task.splits)})"
            )
        _, encoded = _encoded(
            task,
            "train",
            tokenizer,
            data_dir=data_dir,
            cap=config.mixing.max_examples.get(name),
            subset_key=name,
            labels=labels,
            max_length=config.max_length,
            doc_stride=options.doc_stride,
            keep_examples=False,
        )
        truncated = {"train": encoded.truncated_words}
        train = TaskTensors.from_encoded(encoded, pad_token_id=pad, mlm=mlm)
        data = TaskData(task=task, labels=labels, train=train, truncated_words=truncated)
        chosen = selections.get(name)
        if chosen is not None:
            rows = selected_rows(encoded, chosen.positions)
            data.train = subset_tensors(train, rows)
            data.train_pool, data.selected_rows = train, rows
            data.selection = chosen.record
        splits = [s for s in eval_splits if s in task.splits]
        allow_null = has_unanswerable(task, data_dir=data_dir) if splits else None
        if name == config.target and config.objective.split not in task.splits:
            raise ConfigError(
                f"target task {name!r} has no {config.objective.split!r} split for the objective "
                f"(splits: {', '.join(task.splits)})"
            )
        for split in splits:
            gold, encoded = _encoded(
                task,
                split,
                tokenizer,
                data_dir=data_dir,
                cap=options.max_eval_examples,
                subset_key=f"{name}/{split}",
                labels=labels,
                max_length=config.max_length,
                doc_stride=options.doc_stride,
                keep_examples=True,
            )
            truncated[split] = encoded.truncated_words
            data.evals[split] = EvalSet(
                task=task,
                split=split,
                examples=gold,
                encoded=encoded,
                tensors=TaskTensors.from_encoded(encoded, pad_token_id=pad, mlm=mlm),
                labels=labels,
                allow_null=allow_null,
            )
        if any(truncated.values()):
            logger.warning(
                "task %s: words cut off by max_length=%d: %s", name, config.max_length, truncated
            )
        out[name] = data
    return out


#: what the frozen layers read: the outputs depend on all of these, not on the ids alone
_FROZEN_INPUTS = ("input_ids", "token_type_ids", "attention_mask")


def _input_digest(tensors: Mapping[str, torch.Tensor]) -> list[Any]:
    """Return the key parts of what the frozen layers read (each input's hash and shape)."""
    parts: list[Any] = []
    for name in _FROZEN_INPUTS:
        if name in tensors:
            array = tensors[name].numpy()
            parts += [name, hashlib.sha256(array.tobytes()).hexdigest(), list(array.shape)]
    return parts


def attach_frozen_states(
    model: Any,
    data: Mapping[str, TaskData],
    config: TrialConfig,
    *,
    options: TrainingOptions,
    device: torch.device,
) -> int:
    """Freeze the bottom ``options.freeze_layers`` layers and attach their outputs per example.

    Each split's outputs are computed once per (token ids, segment ids, attention mask, frozen weights) and kept in memory
    for later trials of this process and on disk for later processes (``_frozen_cache``).  Masked-LM splits get none (their inputs are re-masked at
    every step) and run the frozen layers each time.  Returns the number of sequences whose
    outputs were computed now (0 when all came from the cache).
    """
    from taskgraph.models.frozen import (
        FROZEN_KEY,
        freeze_bottom,
        frozen_fingerprint,
        frozen_prefix,
    )

    layers = options.freeze_layers
    if layers == 0:
        return 0
    freeze_bottom(model, layers, architecture=config.sharing)
    cache = _frozen_cache()
    weights = frozen_fingerprint(model, architecture=config.sharing)
    computed = 0
    for task_data in data.values():
        holders: list[Any] = [task_data, *task_data.evals.values()]
        for holder in holders:
            tensors = holder.train if isinstance(holder, TaskData) else holder.tensors
            if isinstance(holder, TaskData) and holder.train_pool is not None:
                tensors = holder.train_pool  # selected below, after the pool's outputs
            if tensors is None or tensors.task_type is TaskType.MASKED_LM:
                continue
            key = FeatureCache.key(["frozen", weights, *_input_digest(tensors.tensors)])
            hidden = cache.get(key) if cache is not None else None
            if hidden is None:
                hidden = frozen_prefix(
                    model,
                    tensors.tensors,
                    architecture=config.sharing,
                    batch_size=options.eval_batch_size,
                    device=device,
                )
                computed += len(hidden)
                if cache is not None:
                    _remember_frozen(cache, key, hidden)
            extended = replace(tensors, tensors={**tensors.tensors, FROZEN_KEY: hidden})
            if isinstance(holder, TaskData) and holder.selected_rows is not None:
                holder.train = subset_tensors(extended, holder.selected_rows)
            elif isinstance(holder, TaskData):
                holder.train = extended
            else:
                holder.tensors = extended
    return computed


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
        return Cost(
            seconds=time.perf_counter() - start,
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
        return result

    try:
        check_caps(config)  # before a pretraining stage is paid for
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
