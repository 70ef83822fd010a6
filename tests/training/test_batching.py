"""Padded task tensors and resumable batch streams."""

from __future__ import annotations

import numpy as np
import torch

from taskgraph.tasks.features import EncodedSplit
from taskgraph.tasks.types import TaskType
from taskgraph.training.batching import BatchStream, TaskTensors


def _parsing_split() -> EncodedSplit:
    features = [
        {"input_ids": [101, 5, 6, 102], "word_starts": [1, 2], "heads": [0, 1], "deprels": [3, 4]},
        {"input_ids": [101, 7, 102], "word_starts": [1], "heads": [0], "deprels": [3]},
        {
            "input_ids": [101, 8, 9, 10, 11, 102],
            "word_starts": [1, 3, 4],
            "heads": [2, 0, 2],
            "deprels": [1, 3, 2],
        },
    ]
    return EncodedSplit(
        task_type=TaskType.DEPENDENCY_PARSING,
        features=features,
        example_index=[0, 1, 2],
        n_examples=3,
    )


def test_padding_masks_and_trimming() -> None:
    tensors = TaskTensors.from_encoded(_parsing_split(), pad_token_id=0)
    batch = tensors.batch(np.array([1, 0]))
    assert batch["input_ids"].tolist() == [[101, 7, 102, 0], [101, 5, 6, 102]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 0], [1, 1, 1, 1]]
    assert batch["word_starts"].tolist() == [[1, 0], [1, 2]]
    assert batch["word_mask"].tolist() == [[1, 0], [1, 1]]
    assert batch["heads"].tolist() == [[0, -100], [0, 1]]
    assert batch["deprels"].tolist() == [[3, -100], [3, 4]]
    assert tensors.tokens_in(np.array([1, 0])) == 7
    full = tensors.batch(np.array([2]))
    assert full["input_ids"].shape == (1, 6) and full["heads"].shape == (1, 3)
    assert all(t.dtype == torch.long for t in full.values())


def test_scalar_labels_and_unlabeled_rows() -> None:
    split = EncodedSplit(
        task_type=TaskType.SENTENCE_CLASSIFICATION,
        features=[{"input_ids": [101, 5, 102], "labels": 1}, {"input_ids": [101, 102]}],
        example_index=[0, 1],
        n_examples=2,
    )
    tensors = TaskTensors.from_encoded(split, pad_token_id=0)
    assert "labels" not in tensors.tensors  # not every row is labeled
    labeled = TaskTensors.from_encoded(
        EncodedSplit(
            task_type=TaskType.SENTENCE_CLASSIFICATION,
            features=[{"input_ids": [101, 102], "labels": 2}],
            example_index=[0],
            n_examples=1,
        ),
        pad_token_id=0,
    )
    assert labeled.batch(np.array([0]))["labels"].tolist() == [2]


def test_eval_batches_cover_each_feature_once() -> None:
    tensors = TaskTensors.from_encoded(_parsing_split(), pad_token_id=0)
    batches = tensors.eval_batches(2)
    assert sorted(np.concatenate(batches).tolist()) == [0, 1, 2]
    assert [tensors.token_lengths[b].tolist() for b in batches] == [[3, 4], [6]]


def test_stream_epochs_and_resume() -> None:
    tensors = TaskTensors.from_encoded(_parsing_split(), pad_token_id=0)
    stream = BatchStream(tensors=tensors, batch_size=2, seed=0)
    first_epoch = np.concatenate([stream.next_indices(), stream.next_indices()])
    assert sorted(first_epoch.tolist()) == [0, 1, 2] and stream.epoch == 0
    state = stream.state_dict()
    ahead = [stream.next_indices().tolist() for _ in range(5)]
    resumed = BatchStream(tensors=tensors, batch_size=2, seed=123)
    resumed.load_state_dict(state)
    assert [resumed.next_indices().tolist() for _ in range(5)] == ahead
    assert resumed.epoch >= 1


def test_masked_lm_batches_are_masked_reproducibly() -> None:
    features = [
        {"input_ids": [101, *range(1000, 1100), 102], "special_tokens_mask": [1] + [0] * 100 + [1]}
    ]
    split = EncodedSplit(
        task_type=TaskType.MASKED_LM, features=features, example_index=[0], n_examples=1
    )
    tensors = TaskTensors.from_encoded(
        split, pad_token_id=0, mlm={"mask_token_id": 103, "vocab_size": 30522}
    )
    one = tensors.batch(np.array([0]), rng=np.random.default_rng(1))
    two = tensors.batch(np.array([0]), rng=np.random.default_rng(1))
    assert torch.equal(one["input_ids"], two["input_ids"])
    assert "special_tokens_mask" not in one
    labels = one["labels"][0]
    assert labels[0] == -100 and labels[-1] == -100 and (labels != -100).sum() > 0


def test_group_by_length_visits_everything_with_less_padding() -> None:
    rng = np.random.default_rng(0)
    lengths = rng.integers(3, 60, size=500)
    split = EncodedSplit(
        task_type=TaskType.SENTENCE_CLASSIFICATION,
        features=[{"input_ids": [1] * int(n), "labels": 0} for n in lengths],
        example_index=list(range(500)),
        n_examples=500,
    )
    tensors = TaskTensors.from_encoded(split, pad_token_id=0)

    def epoch(stream: BatchStream) -> list[np.ndarray]:
        return [stream.next_indices() for _ in range(-(-500 // 16))]

    grouped = BatchStream(tensors=tensors, batch_size=16, seed=1, group_by_length=True)
    plain = BatchStream(tensors=tensors, batch_size=16, seed=1)
    for batches in (epoch(grouped), epoch(plain)):
        assert sorted(np.concatenate(batches).tolist()) == list(range(500))
    padded = {
        name: sum(len(b) * lengths[b].max() for b in epoch(stream))
        for name, stream in [("grouped", grouped), ("plain", plain)]
    }
    assert padded["grouped"] < 0.7 * padded["plain"]
    state = grouped.state_dict()
    ahead = [grouped.next_indices().tolist() for _ in range(40)]
    again = BatchStream(tensors=tensors, batch_size=16, seed=2, group_by_length=True)
    again.load_state_dict(state)
    assert [again.next_indices().tolist() for _ in range(40)] == ahead


def _masked_lm_tensors() -> TaskTensors:
    lengths = np.array([12, 10, 9, 8, 12, 7, 11, 6])
    n, width = len(lengths), int(lengths.max())
    ids = np.zeros((n, width), dtype=np.int64)
    special = np.ones((n, width), dtype=np.int64)
    for i, length in enumerate(lengths):
        ids[i, :length] = 1000 + np.arange(length)
        special[i, 1 : length - 1] = 0
    attention = (np.arange(width)[None] < lengths[:, None]).astype(np.int64)
    return TaskTensors(
        task_type=TaskType.MASKED_LM,
        tensors={
            "input_ids": torch.tensor(ids),
            "special_tokens_mask": torch.tensor(special),
            "attention_mask": torch.tensor(attention),
        },
        token_lengths=lengths,
        word_lengths=np.zeros(n, dtype=np.int64),
        mlm={"mask_token_id": 103, "vocab_size": 30522},
    )


def test_evaluation_masks_do_not_depend_on_the_batch_size() -> None:
    # Two trials with different eval batch sizes must score the same weights on the same
    # masked positions, or their perplexities are not comparable.
    fixed = _masked_lm_tensors().with_fixed_masks(seed=0)

    def masked(batch_size: int) -> dict[int, tuple[list[int], list[int]]]:
        out = {}
        for indices in fixed.eval_batches(batch_size):
            batch = fixed.batch(indices)
            for row, feature in enumerate(indices.tolist()):
                labels = batch["labels"][row]
                positions = (labels != -100).nonzero().flatten().tolist()
                out[feature] = (positions, batch["input_ids"][row, positions].tolist())
        return out

    by_64, by_2 = masked(64), masked(2)
    assert by_64 == by_2
    assert sum(len(p) for p, _ in by_64.values()) > 0  # something is masked
    assert fixed.with_fixed_masks(seed=0).tensors["labels"].equal(fixed.tensors["labels"])
    again = _masked_lm_tensors().with_fixed_masks(seed=0)
    assert again.tensors["labels"].equal(fixed.tensors["labels"])  # by the seed alone
