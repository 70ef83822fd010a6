"""The cache of pretrained encoder states: in the process's memory and under
``$TASKGRAPH_CACHE/pretrained/<key>/`` (``encoder.pt`` and ``report.json``).

:func:`pretraining_key` keys a stage by everything that changes its weights (see
:mod:`taskgraph.training.pretraining`); a directory is written under a temporary name and
renamed into place, so parallel trials never read half a checkpoint.
``TASKGRAPH_PRETRAIN_CACHE=off`` disables the disk level.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from taskgraph.tasks.cache import FeatureCache, cache_dir
from taskgraph.trial import TrialConfig

__all__ = ["PRETRAIN_CACHE_ENV", "pretraining_key"]

PRETRAIN_CACHE_ENV = "TASKGRAPH_PRETRAIN_CACHE"
_VERSION = 3  # 3: scheme-free window order and corruption draws, [UNK] never masked
_MEMORY = FeatureCache(directory=None, memory_items=4)


def pretraining_key(
    config: TrialConfig, corpus_fingerprint: str, *, precision: str, weights: str
) -> str:
    """Return the cache key of ``config``'s pretraining stage run in ``precision``.

    ``precision`` is :func:`~taskgraph.training.pretraining.stage_precision` of the device: a
    bf16 (CUDA) checkpoint is not the fp32 (CPU) one.  The seed is part of the key: each seed pretrains separately.
    ``weights`` is the starting encoder's :func:`~taskgraph.models.encoders.weights_fingerprint`:
    an encoder directory whose weights changed under the same path is another stage.
    """
    assert config.pretraining is not None
    encoder_options = dict(config.encoder_options)
    if config.encoder == "tiny-bert":
        encoder_options.setdefault("seed", config.seed)
    payload = {
        "version": _VERSION,
        "corpus": corpus_fingerprint,
        "pretraining": asdict(config.pretraining),
        "seed": config.seed,
        "encoder": [config.encoder, encoder_options],
        "weights": weights,
        "max_length": config.pretraining.max_length or config.max_length,
        "precision": precision,
    }
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _disk_dir() -> Path | None:
    mode = os.environ.get(PRETRAIN_CACHE_ENV, "").strip().lower()
    if mode in {"off", "0", "false", "no"}:
        return None
    return cache_dir() / "pretrained"


def _read(key: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
    hit = _MEMORY.get(key)
    if hit is not None:
        return hit
    root = _disk_dir()
    if root is None:
        return None
    folder = root / key
    try:
        report = json.loads((folder / "report.json").read_text(encoding="utf-8"))
        state = torch.load(folder / "encoder.pt", map_location="cpu", weights_only=True)
    except Exception:  # missing or damaged: computed again
        return None
    _MEMORY.put(key, (state, report))
    return state, report


def _write(key: str, state: dict[str, torch.Tensor], report: dict[str, Any]) -> None:
    _MEMORY.put(key, (state, report))
    root = _disk_dir()
    if root is None:
        return
    tmp: Path | None = None
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".{key[:16]}."))
        torch.save(state, tmp / "encoder.pt")
        (tmp / "report.json").write_text(json.dumps(report), encoding="utf-8")
        os.replace(tmp, root / key)  # fails when another process put it there first
        tmp = None
    except (OSError, RuntimeError):
        # An unwritable or full cache only costs time (torch.save reports a full disk as a
        # RuntimeError of its zip writer): the trial goes on with the weights in memory.
        pass
    finally:
        if tmp is not None:  # a partial or unneeded copy takes no space
            shutil.rmtree(tmp, ignore_errors=True)
