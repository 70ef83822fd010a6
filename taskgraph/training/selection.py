"""Example-level data selection of the auxiliaries (Ruder and Plank 2017), with its cache.

For each auxiliary, every training example gets the selection features of
:mod:`taskgraph.tasks.selection` against the target's training examples; the trial's
:class:`~taskgraph.trial.DataSelectionConfig` weighs them (standardised) and keeps the top
``keep`` share.  The features depend only on the data (the auxiliary's and the target's
fingerprints and caps) and, for ``embedding_cosine``, the encoder's input embeddings, so they
are computed once and cached (the feature cache: in memory and as a pickle under
``$TASKGRAPH_CACHE/features/``); each trial only recomputes ``w · z`` and a sort.

``embedding_cosine`` is the cheap encoder pass: the mean of the encoder's *input* (word-piece)
embeddings over the example's subword tokens (each distinct word tokenized once), special
tokens left out, against the mean of the target examples' vectors.  No transformer layer
runs, so the whole feature matrix of the largest shipped dataset takes seconds on a CPU (README, *Measured*).  A
tiny random encoder (``tiny-bert``) is read with seed 0 for this, so every seed of a trial
selects the same examples.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import math
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from scipy import sparse

from taskgraph.errors import ConfigError
from taskgraph.tasks import load_examples, task_fingerprint
from taskgraph.tasks.cache import feature_cache
from taskgraph.tasks.features import EncodedSplit, tokenizer_fingerprint
from taskgraph.tasks.selection import (
    SELECTION_FEATURES,
    feature_matrix,
    select_top,
    selection_record,
    selection_scores,
)
from taskgraph.tasks.types import (
    Example,
    ParsedSentence,
    QAExample,
    TaggedSentence,
    TaskDef,
    TextExample,
)
from taskgraph.training.batching import TaskTensors
from taskgraph.trial import DataSelectionConfig, TrialConfig
from taskgraph.vocabulary import stable_seed

__all__ = [
    "AuxiliaryFeatures",
    "Selection",
    "example_words",
    "select",
    "select_auxiliaries",
    "selected_rows",
    "selection_features",
    "subset_tensors",
]

logger = logging.getLogger(__name__)

# bump when the features' definition changes, so stale cached matrices are never read
_VERSION = 3


def example_words(example: Example) -> list[str]:
    """Return the words of one example (tagging/parsing tokens, else whitespace-split text)."""
    if isinstance(example, (TaggedSentence, ParsedSentence)):
        return list(example.tokens)
    if isinstance(example, QAExample):
        return f"{example.question} {example.context}".split()
    if isinstance(example, TextExample):
        return f"{example.text} {example.text_pair or ''}".split()
    raise ConfigError(f"data selection cannot read examples of type {type(example).__name__}")


@dataclass(frozen=True)
class AuxiliaryFeatures:
    """The feature matrix of one auxiliary's (capped) training pool and where it came from.

    ``values[i]`` are the features of example ``pool[i]`` of the training split (file order);
    columns follow :data:`~taskgraph.tasks.selection.SELECTION_FEATURES`.
    """

    values: np.ndarray
    pool: np.ndarray
    size: int  # examples in the whole training split
    seconds: float  # time it took to compute (0.0 unknown)


@dataclass(frozen=True)
class Selection:
    """The examples kept of one auxiliary: positions in its capped pool, and the record."""

    positions: np.ndarray
    record: dict[str, Any]


def _embeddings(
    examples: Sequence[Sequence[str]], tokenizer: Any, table: np.ndarray, *, max_length: int
) -> np.ndarray:
    """Return each example's mean input embedding over its subword tokens (specials left out).

    Each distinct word is tokenized once (a BERT-style tokenizer splits on whitespace first, so
    a word's pieces do not depend on its neighbours); an example's mean is the sum of its
    words' piece embeddings over the number of pieces, up to ``max_length`` pieces per word.
    An example without pieces gets zeros.
    """
    n = len(examples)
    vocabulary: dict[str, int] = {}
    indptr = [0]
    indices: list[int] = []
    for words in examples:
        indices.extend(vocabulary.setdefault(w, len(vocabulary)) for w in words)
        indptr.append(len(indices))
    if not vocabulary:
        return np.zeros((n, table.shape[1]))
    ids = tokenizer(
        list(vocabulary), truncation=True, max_length=max_length, add_special_tokens=False
    )["input_ids"]
    lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
    flat = np.fromiter(itertools.chain.from_iterable(ids), dtype=np.int64, count=int(lengths.sum()))
    rows = np.repeat(np.arange(len(ids)), lengths)
    keep = ~np.isin(flat, np.asarray(getattr(tokenizer, "all_special_ids", ()), dtype=np.int64))
    pieces = sparse.csr_matrix(
        (np.ones(int(keep.sum())), (rows[keep], flat[keep])), shape=(len(ids), table.shape[0])
    )
    word_sums = np.asarray(pieces @ table, dtype=np.float64)
    word_counts = np.asarray(pieces.sum(axis=1)).ravel()
    occurrences = sparse.csr_matrix(
        (np.ones(len(indices)), np.asarray(indices, dtype=np.int64), np.asarray(indptr)),
        shape=(n, len(vocabulary)),
    )
    sums = np.asarray(occurrences @ word_sums)
    totals = occurrences @ word_counts
    return np.divide(sums, totals[:, None], out=np.zeros_like(sums), where=totals[:, None] > 0)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _digest(indices: np.ndarray) -> str:
    return hashlib.sha256(np.asarray(indices, dtype=np.int64).tobytes()).hexdigest()


def _words(
    task: TaskDef, *, data_dir: str | os.PathLike[str] | None, pool: np.ndarray
) -> list[list[str]]:
    examples = load_examples(task, "train", data_dir=data_dir)
    return [example_words(examples[int(i)]) for i in pool]


def selection_features(
    auxiliary: TaskDef,
    target: TaskDef,
    *,
    data_dir: str | os.PathLike[str] | None,
    pool: np.ndarray,
    size: int,
    target_pool: np.ndarray,
    tokenizer: Any,
    embedding_table: np.ndarray | None,
    encoder_key: Any,
    max_length: int,
) -> AuxiliaryFeatures:
    """Return the feature matrix of ``auxiliary``'s ``pool`` against ``target``'s, cached.

    The key is (auxiliary fingerprint, its pool, target fingerprint, its pool, encoder and
    tokenizer, ``max_length``): a hit costs one lookup; a miss reads both training splits.
    """
    cache = feature_cache()
    key = ""
    if cache is not None:
        key = cache.key(
            {
                "selection_features": _VERSION,
                "auxiliary": task_fingerprint(auxiliary, data_dir=data_dir),
                "pool": [size, _digest(pool)],
                "target": task_fingerprint(target, data_dir=data_dir),
                "target_pool": _digest(target_pool),
                "encoder": encoder_key,
                "tokenizer": tokenizer_fingerprint(tokenizer),
                "max_length": max_length,
            }
        )
        hit = cache.get(key)
        if isinstance(hit, AuxiliaryFeatures):
            return hit
    start = time.perf_counter()
    aux_words = _words(auxiliary, data_dir=data_dir, pool=pool)
    target_words = _words(target, data_dir=data_dir, pool=target_pool)
    embeddings = target_embeddings = None
    if embedding_table is not None:
        embeddings = _embeddings(aux_words, tokenizer, embedding_table, max_length=max_length)
        target_embeddings = _embeddings(
            target_words, tokenizer, embedding_table, max_length=max_length
        )
    values = feature_matrix(
        aux_words, target_words, embeddings=embeddings, target_embeddings=target_embeddings
    )
    features = AuxiliaryFeatures(
        values=values, pool=np.asarray(pool), size=size, seconds=time.perf_counter() - start
    )
    logger.info(
        "selection features of %s against %s: %d examples in %.2f s",
        auxiliary.name,
        target.name,
        len(pool),
        features.seconds,
    )
    if cache is not None:
        cache.put(key, features)
    return features


def select(
    features: AuxiliaryFeatures, selection: DataSelectionConfig, *, name: str = ""
) -> Selection:
    """Return the examples ``selection`` keeps of one auxiliary's features.

    Ties are broken in a fixed random order seeded by the auxiliary's ``name``.
    """
    unknown = sorted(set(selection.features) - set(SELECTION_FEATURES))
    if unknown:
        raise ConfigError(
            f"data_selection.features: unknown {unknown}; known: {', '.join(SELECTION_FEATURES)}"
        )
    outside = sorted(set(selection.weights) - set(selection.features))
    if outside:
        raise ConfigError(
            f"data_selection.weights names {outside}, which are not in its features "
            f"{list(selection.features)}"
        )
    for feature, weight in selection.weights.items():
        if not _is_number(weight) or not math.isfinite(weight):
            raise ConfigError(
                f"data_selection.weights[{feature!r}] must be a finite number, but got {weight!r}"
            )
    if not _is_number(selection.keep) or not 0 < selection.keep <= 1:
        raise ConfigError(f"data_selection.keep must be in (0, 1], but got {selection.keep!r}")
    scores = selection_scores(features.values, selection.weights)
    positions = select_top(scores, selection.keep, seed=stable_seed("selection", name))
    ids = features.pool[positions]
    record = selection_record(ids, features.size)
    record["pool"] = len(features.pool)
    return Selection(positions=positions, record=record)


def select_auxiliaries(
    config: TrialConfig,
    tasks: Mapping[str, TaskDef],
    *,
    data_dir: str | os.PathLike[str] | None,
    pools: Mapping[str, tuple[np.ndarray, int]],
    tokenizer: Any,
    embedding_table: np.ndarray | None,
    encoder_key: Any,
) -> dict[str, Selection]:
    """Return each auxiliary's kept examples under ``config.data_selection`` (empty when off).

    ``pools[name]`` is (indices of the capped training pool, size of the training split).
    """
    selection = config.data_selection
    if selection is None or not config.auxiliaries:
        return {}
    target_pool, _ = pools[config.target]
    out: dict[str, Selection] = {}
    for name in config.auxiliaries:
        pool, size = pools[name]
        features = selection_features(
            tasks[name],
            tasks[config.target],
            data_dir=data_dir,
            pool=pool,
            size=size,
            target_pool=target_pool,
            tokenizer=tokenizer,
            embedding_table=(embedding_table if "embedding_cosine" in selection.features else None),
            encoder_key=encoder_key if "embedding_cosine" in selection.features else None,
            max_length=config.max_length,
        )
        out[name] = select(features, selection, name=name)
    return out


def selected_rows(encoded: EncodedSplit, positions: np.ndarray) -> np.ndarray:
    """Return the feature rows of the examples at ``positions`` (every window of a QA example)."""
    wanted = np.zeros(max(encoded.n_examples, 1), dtype=bool)
    wanted[np.asarray(positions, dtype=np.int64)] = True
    index = np.asarray(encoded.example_index, dtype=np.int64)
    return np.flatnonzero(wanted[index]) if len(index) else np.zeros(0, dtype=np.int64)


def subset_tensors(tensors: TaskTensors, rows: np.ndarray) -> TaskTensors:
    """Return the padded ``tensors`` restricted to ``rows`` (batches trim the padding)."""
    index = torch.from_numpy(np.asarray(rows, dtype=np.int64))
    return replace(
        tensors,
        tensors={k: v.index_select(0, index) for k, v in tensors.tensors.items()},
        token_lengths=tensors.token_lengths[rows],
        word_lengths=tensors.word_lengths[rows],
    )
