"""What ``train_trial`` and ``build_trainer`` take from a trial's configuration: the seed of a
random encoder and of the loss weighting, each task's head options, the capped pool a data
selection ranks, an encoder directory without a recorded version.  Survivors of the mutation
audit of ``taskgraph/training/run.py``; tiny random BERT on the synthetic family: seconds."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch

from taskgraph.models import load_encoder
from taskgraph.tasks.loading import task_set_fingerprints
from taskgraph.tasks.selection import decode_ids
from taskgraph.tasks.synthetic import synthetic_family
from taskgraph.testing import SMALL_BERT, KillAtStep, tiny_trial_config, write_tiny_encoder
from taskgraph.training import TrainerCallback, build_trainer, train_trial
from taskgraph.training.task_data import deterministic_subset
from taskgraph.trial import (
    DataSelectionConfig,
    MixingConfig,
    PretrainingConfig,
    TrialStatus,
)

TASKS = synthetic_family(target_train=8, aux_train=120, eval_size=16).tasks
#: a stage no other test runs: one kept in the process's memory would cost nothing again
PRETRAINING = PretrainingConfig(scheme="random", steps=3, batch_size=4, learning_rate=7e-4)


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A pretraining stage found in a cache on disk would cost nothing.
    monkeypatch.setenv("TASKGRAPH_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("TASKGRAPH_FEATURE_CACHE", raising=False)
    monkeypatch.delenv("TASKGRAPH_PRETRAIN_CACHE", raising=False)


class _Steps(TrainerCallback):
    """Keeps the trainer's tokens after every step and the time training ended; sleeps
    ``pause`` seconds at step ``at``."""

    def __init__(self, *, at: int = 0, pause: float = 0.0) -> None:
        self.at, self.pause = at, pause
        self.tokens: list[int] = []
        self.ended = 0.0

    def on_step_end(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
        self.tokens.append(state.tokens)
        if state.global_step == self.at:
            time.sleep(self.pause)

    def on_train_end(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
        self.ended = time.perf_counter()


class _Fails(TrainerCallback):
    def on_step_end(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("a hook failed\n  the details, on later lines")


def _word_embeddings(seed: int) -> torch.Tensor:
    trainer = build_trainer(tiny_trial_config(seed=seed), tasks=TASKS, device="cpu")
    return trainer.model.word_embeddings().weight.detach().clone()


def test_a_random_encoder_starts_from_the_weights_of_the_trials_seed() -> None:
    # A randomly initialised encoder is part of what a seed varies: the seeds of one
    # configuration must not all fine-tune the same draw.
    drawn = load_encoder("tiny-bert", options={**SMALL_BERT, "seed": 1})
    expected = drawn.model.get_input_embeddings().weight
    assert isinstance(expected, torch.Tensor)
    assert torch.equal(_word_embeddings(1), expected)
    assert not torch.equal(_word_embeddings(0), expected)


def test_each_task_s_head_gets_its_own_head_options() -> None:
    config = tiny_trial_config(
        auxiliaries=("synth_related",),
        hyperparameters={"head_options": {"synth_related": {"dropout": 0.3}}},
    )
    model = build_trainer(config, tasks=TASKS, device="cpu").model
    assert model.head("synth_related").options["dropout"] == 0.3
    assert model.head("synth_target").options["dropout"] == 0.1  # its own default


def test_the_seeds_of_a_trial_draw_their_own_pcgrad_order() -> None:
    def seed_of(seed: int) -> int:
        config = tiny_trial_config(
            auxiliaries=("synth_related",), loss_weighting="pcgrad", seed=seed
        )
        return int(build_trainer(config, tasks=TASKS, device="cpu").weighting.seed)

    assert seed_of(0) != seed_of(1)
    assert seed_of(1) == seed_of(1)


def test_data_selection_ranks_the_capped_pool_of_an_auxiliary() -> None:
    # The trainer trains on the capped pool: a selection over the whole split would keep
    # examples the trial never reads and record a pool it did not have.
    config = tiny_trial_config(
        auxiliaries=("synth_related",),
        mixing=MixingConfig(max_examples={"synth_related": 40}),
        data_selection=DataSelectionConfig(features=("jsd",), weights={"jsd": 1.0}, keep=0.5),
    )
    selection = build_trainer(config, tasks=TASKS, device="cpu").selection()
    assert selection is not None
    record = selection["synth_related"]
    assert record["pool"] == 40 and record["kept"] == 20 and record["examples"] == 120
    kept = decode_ids(record["selected"], record["examples"])
    pool = deterministic_subset(120, 40, key="synth_related")
    assert set(kept) <= set(pool.tolist())


def test_an_encoder_directory_without_a_recorded_version_trains(tmp_path: Path) -> None:
    # A configuration built by hand (or before versions were recorded) names no version:
    # nothing to compare the directory's files with.
    encoder = write_tiny_encoder(tmp_path / "enc", **SMALL_BERT)
    config = tiny_trial_config(encoder=str(encoder), encoder_options={}, max_steps=2)
    assert config.encoder_version is None
    result = train_trial(config, tasks=TASKS)
    assert result.status is TrialStatus.COMPLETE, result.failure_reason


def test_a_resumed_run_s_cost_counts_the_time_before_the_kill(tmp_path: Path) -> None:
    config = tiny_trial_config()
    # 3 s spent before the checkpoint at step 4, then killed at step 6.  The pause is well
    # above the margin below plus what the resumed call spends outside its trainer's clock
    # (loading the encoder and data: well under a second, more on a loaded machine).
    with pytest.raises(KeyboardInterrupt):
        train_trial(
            config,
            tasks=TASKS,
            checkpoint_dir=tmp_path / "run",
            callbacks=[_Steps(at=2, pause=3.0), KillAtStep(6)],
        )
    resumed_steps = _Steps()
    start = time.perf_counter()
    resumed = train_trial(
        config, tasks=TASKS, checkpoint_dir=tmp_path / "run", callbacks=[resumed_steps]
    )
    assert resumed.status is TrialStatus.COMPLETE, resumed.failure_reason
    assert len(resumed_steps.tokens) == 4  # steps 5 to 8: resumed from the checkpoint
    # This call's own time is at most a few ms more than up to the end of its training.
    assert resumed.cost.seconds > resumed_steps.ended - start + 0.5


def test_a_pretrained_trial_s_tokens_add_the_stage_s_to_the_fine_tuning_s() -> None:
    steps = _Steps()
    result = train_trial(tiny_trial_config(pretraining=PRETRAINING), tasks=TASKS, callbacks=[steps])
    assert result.status is TrialStatus.COMPLETE, result.failure_reason
    assert result.cost.pretrain_tokens > 0 and steps.tokens[-1] > 0
    assert result.cost.tokens == steps.tokens[-1] + result.cost.pretrain_tokens


def test_a_trial_failing_in_training_records_the_data_it_read_and_the_error_s_first_line() -> None:
    config = tiny_trial_config(auxiliaries=("synth_related",))
    result = train_trial(config, tasks=TASKS, callbacks=[_Fails()])
    assert result.status is TrialStatus.FAILED
    assert result.failure_reason == "exception: RuntimeError: a hook failed"
    assert result.data_fingerprints == task_set_fingerprints(config.task_set, tasks=TASKS)


def test_a_cap_outside_the_trial_is_refused_before_the_pretraining_stage_is_paid() -> None:
    # A stage of its own, as for PRETRAINING.
    stage = PretrainingConfig(scheme="random", steps=2, batch_size=4, learning_rate=6e-4)
    config = tiny_trial_config(
        pretraining=stage, mixing=MixingConfig(max_examples={"synth_related": 8})
    )
    result = train_trial(config, tasks=TASKS)
    assert result.status is TrialStatus.FAILED
    reason = result.failure_reason or ""
    assert reason.startswith("invalid configuration: mixing.max_examples.synth_related"), reason
    assert result.cost.pretrain_tokens == 0 and result.cost.pretrain_seconds == 0.0
