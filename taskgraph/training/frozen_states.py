"""The outputs of an encoder's frozen bottom layers, attached to each example and cached.

With ``freeze_layers`` above 0, :func:`attach_frozen_states` freezes the bottom layers and
computes their outputs once per input; the trainer then runs only the layers above them.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from taskgraph.tasks.cache import FEATURE_CACHE_ENV, FeatureCache, cache_dir
from taskgraph.tasks.types import TaskType
from taskgraph.training.options import TrainingOptions
from taskgraph.training.selection import subset_tensors
from taskgraph.training.trainer import TaskData
from taskgraph.trial import TrialConfig

__all__ = ["attach_frozen_states"]

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
