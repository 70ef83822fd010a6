"""Padded tensors per task split and the resumable batch streams that draw from them.

Features are padded once, when a split is loaded, into CPU tensors; a batch is an index into
them trimmed to the longest sequence in the batch (cheap tensor ops, no per-example Python).
Masked-LM batches are masked when drawn (dynamic masking, BERT's 80/10/10) with the stream's own
seeded generator, so a resumed run masks exactly as an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from taskgraph.tasks.features import IGNORE_INDEX, EncodedSplit, mask_tokens
from taskgraph.tasks.types import TaskType

__all__ = ["BatchStream", "TaskTensors", "to_device"]

# key -> (padding value, which length trims it: "tokens" or "words")
_SEQUENCE_KEYS: dict[str, tuple[int, str]] = {
    "input_ids": (0, "tokens"),  # padding id replaced by the tokenizer's in from_encoded
    "token_type_ids": (0, "tokens"),
    "labels": (IGNORE_INDEX, "tokens"),
    "special_tokens_mask": (1, "tokens"),
    "word_starts": (0, "words"),
    "heads": (IGNORE_INDEX, "words"),
    "deprels": (IGNORE_INDEX, "words"),
}


@dataclass
class TaskTensors:
    """One task split as padded CPU tensors, plus per-feature token and word counts."""

    task_type: TaskType
    tensors: dict[str, torch.Tensor]
    token_lengths: np.ndarray
    word_lengths: np.ndarray
    mlm: dict[str, int] | None = None  # mask_token_id, vocab_size for masked-LM tasks

    def __len__(self) -> int:
        return len(self.token_lengths)

    @classmethod
    def from_encoded(
        cls, encoded: EncodedSplit, *, pad_token_id: int, mlm: Mapping[str, int] | None = None
    ) -> TaskTensors:
        """Return the padded tensors of ``encoded`` (scalar keys become 1-D tensors)."""
        features = encoded.features
        n = len(features)
        token_lengths = np.array([len(f["input_ids"]) for f in features], dtype=np.int64)
        word_lengths = np.array([len(f.get("word_starts", ())) for f in features], dtype=np.int64)
        max_tokens = int(token_lengths.max()) if n else 0
        max_words = int(word_lengths.max()) if n else 0
        tensors: dict[str, torch.Tensor] = {}
        # Keys every feature has (unlabeled rows of a classification split carry no "labels").
        keys = sorted(set.intersection(*(set(f) for f in features))) if n else []
        for key in keys:
            first = features[0][key]
            if isinstance(first, list):
                pad, kind = _SEQUENCE_KEYS.get(key, (0, "tokens"))
                if key == "input_ids":
                    pad = pad_token_id
                width = max_tokens if kind == "tokens" else max_words
                array = np.full((n, max(width, 1)), pad, dtype=np.int64)
                for i, feature in enumerate(features):
                    values = feature[key]
                    array[i, : len(values)] = values
                tensors[key] = torch.from_numpy(array)
            else:
                tensors[key] = torch.tensor([f[key] for f in features], dtype=torch.long)
        positions = np.arange(max(max_tokens, 1))
        tensors["attention_mask"] = torch.from_numpy(
            (positions[None, :] < token_lengths[:, None]).astype(np.int64)
        )
        if "word_starts" in tensors:
            word_positions = np.arange(max(max_words, 1))
            tensors["word_mask"] = torch.from_numpy(
                (word_positions[None, :] < word_lengths[:, None]).astype(np.int64)
            )
        return cls(
            task_type=encoded.task_type,
            tensors=tensors,
            token_lengths=token_lengths,
            word_lengths=word_lengths,
            mlm=dict(mlm) if mlm is not None else None,
        )

    def batch(
        self, indices: np.ndarray, *, rng: np.random.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        """Return the batch of ``indices``, trimmed to its longest sequence (CPU tensors)."""
        index = torch.from_numpy(np.asarray(indices, dtype=np.int64))
        max_tokens = max(int(self.token_lengths[indices].max()), 1)
        max_words = max(int(self.word_lengths[indices].max()), 1)
        out: dict[str, torch.Tensor] = {}
        for key, tensor in self.tensors.items():
            rows = tensor.index_select(0, index)
            if rows.dim() >= 2:  # (B, L) ids and masks, (B, L, H) frozen-layer outputs
                kind = (
                    "words"
                    if key in ("word_starts", "heads", "deprels", "word_mask")
                    else ("tokens")
                )
                rows = rows[:, : max_tokens if kind == "tokens" else max_words]
            out[key] = rows
        if self.task_type is TaskType.MASKED_LM:
            special = out.pop("special_tokens_mask")
            if self.mlm is not None and rng is not None:
                ids, labels = mask_tokens(
                    out["input_ids"].numpy(),
                    special.numpy(),
                    mask_token_id=self.mlm["mask_token_id"],
                    vocab_size=self.mlm["vocab_size"],
                    rng=rng,
                )
                out["input_ids"] = torch.from_numpy(ids)
                out["labels"] = torch.from_numpy(labels)
        return out

    def with_fixed_masks(self, seed: int = 0) -> TaskTensors:
        """Return these tensors with every masked-LM row masked once, by ``seed`` alone.

        Evaluation masks must not depend on how the rows are batched: masking batch by batch
        from one generator gave a row different masks under another ``eval_batch_size`` (and
        so different perplexities for the same weights).  Here the whole padded split is
        masked at once, so a row's mask depends on the seed and the split only.  Not a
        masked-LM split (or no mask settings): returned unchanged.
        """
        if self.task_type is not TaskType.MASKED_LM or self.mlm is None:
            return self
        ids, labels = mask_tokens(
            self.tensors["input_ids"].numpy(),
            self.tensors["special_tokens_mask"].numpy(),
            mask_token_id=self.mlm["mask_token_id"],
            vocab_size=self.mlm["vocab_size"],
            rng=np.random.default_rng(seed),
        )
        tensors = {
            **self.tensors,
            "input_ids": torch.from_numpy(ids),
            "labels": torch.from_numpy(labels),
        }
        return dataclasses.replace(self, tensors=tensors, mlm=None)

    def tokens_in(self, indices: np.ndarray) -> int:
        """Return the number of non-padding tokens of ``indices``."""
        return int(self.token_lengths[indices].sum())

    def eval_batches(self, batch_size: int) -> list[np.ndarray]:
        """Return index batches covering every feature once, grouped by length (fast eval)."""
        order = np.argsort(self.token_lengths, kind="stable")
        return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


class BatchStream:
    """Endless shuffled epochs of index batches over one task's training tensors (resumable).

    With ``group_by_length`` each epoch's shuffled order is cut into chunks of 50 batches,
    each chunk sorted by length and re-cut into batches whose order is shuffled again (as
    transformers' ``group_by_length``): batches hold sentences of similar length, so far less
    padding is computed, while every epoch still visits each example once in a random order.
    """

    MEGABATCH = 50

    def __init__(
        self, *, tensors: TaskTensors, batch_size: int, seed: int, group_by_length: bool = False
    ) -> None:
        if len(tensors) == 0:
            raise ValueError("cannot stream batches from an empty split")
        self.tensors = tensors
        self.batch_size = batch_size
        self.group_by_length = group_by_length
        self.rng = np.random.default_rng(seed)
        self.epoch = 0
        self.position = 0
        self.order = self._epoch_order()

    def _epoch_order(self) -> np.ndarray:
        order = self.rng.permutation(len(self.tensors))
        if not self.group_by_length or len(order) <= self.batch_size:
            return order
        size = self.batch_size
        chunk = size * self.MEGABATCH
        lengths = self.tensors.token_lengths
        grouped = np.concatenate(
            [
                part[np.argsort(-lengths[part], kind="stable")]
                for part in (order[i : i + chunk] for i in range(0, len(order), chunk))
            ]
        )
        full = len(grouped) // size
        batches = grouped[: full * size].reshape(full, size)[self.rng.permutation(full)]
        # The short remainder stays last so batches remain fixed-size slices of the order.
        return np.concatenate([batches.reshape(-1), grouped[full * size :]])

    def next_indices(self) -> np.ndarray:
        """Return the next batch's indices (a short last batch closes each epoch)."""
        if self.position >= len(self.order):
            self.epoch += 1
            self.position = 0
            self.order = self._epoch_order()
        indices = self.order[self.position : self.position + self.batch_size]
        self.position += len(indices)
        return indices

    def next_batch(self) -> tuple[dict[str, torch.Tensor], int, int]:
        """Return (batch, examples, tokens) of the next batch."""
        indices = self.next_indices()
        batch = self.tensors.batch(indices, rng=self.rng)
        return batch, len(indices), self.tensors.tokens_in(indices)

    def state_dict(self) -> dict[str, Any]:
        """Return the stream's position and RNG state."""
        return {
            "rng": self.rng.bit_generator.state,
            "epoch": self.epoch,
            "position": self.position,
            "order": self.order.tolist(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a position saved by :meth:`state_dict`."""
        self.rng.bit_generator.state = state["rng"]
        self.epoch = int(state["epoch"])
        self.position = int(state["position"])
        self.order = np.asarray(state["order"], dtype=np.int64)


def to_device(batch: Mapping[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    """Return ``batch`` on ``device`` (asynchronous copies from pinned memory on CUDA)."""
    if device.type == "cpu":
        return dict(batch)
    return {k: v.pin_memory().to(device, non_blocking=True) for k, v in batch.items()}
