"""What the mutation audit of the phase, batching, checkpoint and frozen-state modules found
untested: padding that would be scored or masked, examples skipped or counted twice by an epoch
with a short last batch, tasks sharing one shuffle, a checkpoint lost to a failed save, stale
best weights after a restart, and frozen-layer outputs served where they do not apply.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from taskgraph.models.frozen import FROZEN_KEY
from taskgraph.tasks.cache import FEATURE_CACHE_ENV
from taskgraph.tasks.features import EncodedSplit
from taskgraph.tasks.synthetic import synthetic_family
from taskgraph.tasks.types import TaskType
from taskgraph.tasks.user import define_task
from taskgraph.testing import tiny_trial_config
from taskgraph.training import build_trainer, train_trial
from taskgraph.training.batching import BatchStream, TaskTensors
from taskgraph.training.checkpoint import CheckpointStore
from taskgraph.training.options import TrainingOptions
from taskgraph.training.phase import build_phase
from taskgraph.training.weighting import build_weighting
from taskgraph.trial import TrialStatus

MLM = {"mask_token_id": 103, "vocab_size": 30522}


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # Frozen-layer outputs on disk go to this test's folder, not the user's cache.
    monkeypatch.setenv("TASKGRAPH_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv(FEATURE_CACHE_ENV, raising=False)
    return tmp_path / "cache"


def _split(task_type: TaskType, features: list[dict[str, Any]]) -> EncodedSplit:
    n = len(features)
    return EncodedSplit(
        task_type=task_type, features=features, example_index=list(range(n)), n_examples=n
    )


def _masked_lm_split(lengths: list[int]) -> TaskTensors:
    features = [
        {
            "input_ids": [101, *range(1000, 1000 + length - 2), 102],
            "special_tokens_mask": [1] + [0] * (length - 2) + [1],
        }
        for length in lengths
    ]
    return TaskTensors.from_encoded(_split(TaskType.MASKED_LM, features), pad_token_id=0, mlm=MLM)


# ---------------------------------------------------------------------------- padding


def test_padded_token_labels_are_ignored_not_scored_as_the_first_label() -> None:
    split = _split(
        TaskType.TOKEN_TAGGING,
        [
            {"input_ids": [101, 5, 102], "labels": [-100, 0, -100]},
            {"input_ids": [101, 5, 6, 7, 102], "labels": [-100, 1, 2, 0, -100]},
        ],
    )
    batch = TaskTensors.from_encoded(split, pad_token_id=0).batch(np.array([0, 1]))
    assert batch["labels"].tolist() == [[-100, 0, -100, -100, -100], [-100, 1, 2, 0, -100]]


def test_input_ids_are_padded_with_the_tokenizers_padding_id() -> None:
    # RoBERTa-style tokenizers pad with 1, and 0 is a real token (<s>).
    split = _split(
        TaskType.SENTENCE_CLASSIFICATION,
        [{"input_ids": [0, 5, 2], "labels": 0}, {"input_ids": [0, 2], "labels": 1}],
    )
    batch = TaskTensors.from_encoded(split, pad_token_id=1).batch(np.array([0, 1]))
    assert batch["input_ids"].tolist() == [[0, 5, 2], [0, 2, 1]]


def test_padding_is_never_masked_or_scored_in_masked_lm_batches() -> None:
    tensors = _masked_lm_split([3, 40, 4, 40])
    rng = np.random.default_rng(0)
    for _ in range(20):
        batch = tensors.batch(np.array([0, 1, 2, 3]), rng=rng)
        padding = batch["attention_mask"] == 0
        assert padding.any()
        assert (batch["labels"][padding] == -100).all()
        assert (batch["input_ids"][padding] == 0).all()


# ---------------------------------------------------------------------------- batch streams


def test_training_batches_of_a_masked_lm_stream_are_masked_and_resume_alike() -> None:
    tensors = _masked_lm_split([30, 25, 30, 20])
    stream = BatchStream(tensors=tensors, batch_size=2, seed=0)
    batch, _, _ = stream.next_batch()
    masked = batch["labels"] != -100
    assert masked.any()
    assert (batch["input_ids"][masked] != batch["labels"][masked]).any()  # something corrupted
    state = stream.state_dict()
    ahead = [stream.next_batch()[0] for _ in range(3)]
    resumed = BatchStream(tensors=tensors, batch_size=2, seed=1)
    resumed.load_state_dict(state)
    for expected in ahead:
        again = resumed.next_batch()[0]
        assert torch.equal(again["input_ids"], expected["input_ids"])
        assert torch.equal(again["labels"], expected["labels"])


@pytest.mark.parametrize("step_budget", ["target", "total"])
def test_one_epoch_with_a_short_last_batch_trains_every_example_once(step_budget: str) -> None:
    # 10 examples in batches of 4: three steps of 4, 4 and 2 examples.
    family = synthetic_family(target_train=10, aux_train=10, eval_size=8)
    cfg = tiny_trial_config(
        max_steps=None, epochs=1, batch_size=4, eval_every=100, step_budget=step_budget
    )
    trainer = build_trainer(cfg, tasks=family.tasks, device="cpu")
    seen: list[int] = []  # the examples of every training batch (evaluation runs in eval mode)

    def count(module: torch.nn.Module, args: tuple[Any, ...]) -> None:
        if module.training:
            seen.append(len(args[1]["input_ids"]))

    trainer.model.register_forward_pre_hook(count)
    outcome = trainer.train()
    assert outcome.status is TrialStatus.COMPLETE
    assert sorted(seen) == [2, 4, 4]
    assert outcome.total_steps == 3 and outcome.examples == 10


def test_tasks_of_one_size_are_shuffled_apart() -> None:
    # Two auxiliaries of one size must not walk their examples in the same order.
    tasks = ["synth_target", "synth_related"]
    cfg = tiny_trial_config(auxiliaries=("synth_related",), step_budget="total")
    split = _split(
        TaskType.SENTENCE_CLASSIFICATION,
        [{"input_ids": [101, i, 102], "labels": i % 2} for i in range(32)],
    )
    tensors = TaskTensors.from_encoded(split, pad_token_id=0)
    phase = build_phase(
        "joint",
        tasks,
        train={t: tensors for t in tasks},
        model=torch.nn.Linear(2, 2),
        weighting=build_weighting("equal", tasks=tasks),
        config=cfg,
        options=TrainingOptions.from_config(cfg),
    )
    orders = {t: np.concatenate([phase.streams[t].next_indices() for _ in range(4)]) for t in tasks}
    assert sorted(orders["synth_target"].tolist()) == list(range(32))
    assert orders["synth_target"].tolist() != orders["synth_related"].tolist()


# ---------------------------------------------------------------------------- checkpoints


class _FailsToPickle:
    def __reduce__(self) -> Any:
        raise RuntimeError("the disk filled up")


def test_a_save_that_fails_leaves_the_previous_checkpoint_readable(tmp_path: Path) -> None:
    store = CheckpointStore(directory=tmp_path, config=tiny_trial_config())
    store.save({"step": 4, "weights": torch.ones(3)})
    with pytest.raises(RuntimeError, match="disk filled"):
        store.save({"step": 8, "weights": torch.zeros(3), "extra": _FailsToPickle()})
    loaded = store.load()
    assert loaded["step"] == 4 and torch.equal(loaded["weights"], torch.ones(3))
    # and no partial copy is left taking space (a full disk would stay full)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt", "config.json"]


def test_discarding_a_checkpoint_discards_its_best_weights_too(tmp_path: Path) -> None:
    # A trial restarted from scratch (its data changed) must not end on the old run's best.
    store = CheckpointStore(directory=tmp_path, config=tiny_trial_config())
    store.save({"step": 4})
    store.save_best({"w": torch.ones(2)})
    store.discard()
    again = CheckpointStore(directory=tmp_path, config=tiny_trial_config())
    assert not again.exists() and again.load_best() is None


# ---------------------------------------------------------------------------- frozen layers


def _words_task(directory: Path) -> Any:
    vocabulary = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"]
    rng = random.Random(0)
    for split, n in (("train", 8), ("dev", 4)):
        lines = (" ".join(rng.choices(vocabulary, k=rng.randint(8, 14))) for _ in range(n))
        (directory / f"{split}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return define_task(
        "words",
        format="tsv",
        type="masked_lm",
        label_field="text",
        path=str(directory),
        reader_options={"text_column": 0},
    )


def test_masked_lm_training_batches_run_the_frozen_layers_on_their_masked_inputs(
    tmp_path: Path, cache_dir: Path
) -> None:
    # Outputs cached from the unmasked text would show the model every masked word.
    tasks = {
        **synthetic_family(target_train=8, aux_train=8, eval_size=8).tasks,
        "words": _words_task(tmp_path),
    }
    cfg = tiny_trial_config(auxiliaries=("words",), hyperparameters={"freeze_layers": 1})
    trainer = build_trainer(cfg, tasks=tasks, device="cpu")
    train = trainer.data["words"].train
    assert train is not None
    batch, _, _ = BatchStream(tensors=train, batch_size=8, seed=0).next_batch()
    assert (batch["labels"] != -100).any()
    model: Any = trainer.model  # its encoder is a Hugging Face model
    model.eval()
    with torch.no_grad():
        served = model.encode("words", batch)
        full = model.encoder(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            token_type_ids=batch.get("token_type_ids"),
        ).last_hidden_state
    mask = batch["attention_mask"].bool()
    assert torch.allclose(served[mask], full[mask], atol=1e-5)


def test_evaluation_splits_get_the_frozen_outputs_computed_once(cache_dir: Path) -> None:
    tasks = synthetic_family(target_train=8, aux_train=8, eval_size=8).tasks
    cfg = tiny_trial_config(hyperparameters={"freeze_layers": 1})
    trainer = build_trainer(cfg, tasks=tasks, device="cpu")
    evals = trainer.data["synth_target"].evals
    assert evals
    for name, eval_set in evals.items():
        assert FROZEN_KEY in eval_set.tensors.tensors, name
    result = train_trial(cfg, tasks=tasks)
    assert result.status is TrialStatus.COMPLETE, result.failure_reason
