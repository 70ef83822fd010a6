"""What a trial costs before its first step: the feature cache, encoder reuse, threads, and the
frozen-layer option (issue 14).  Tiny random BERT on the synthetic family: seconds."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import PreTrainedTokenizerBase

from taskgraph.errors import ConfigError
from taskgraph.models import load_encoder
from taskgraph.models.frozen import FROZEN_KEY, run_top
from taskgraph.spec import spec_from_dict
from taskgraph.tasks.cache import FEATURE_CACHE_ENV, FeatureCache, feature_cache
from taskgraph.tasks.synthetic import synthetic_family
from taskgraph.testing import SMALL_BERT, unavailable
from taskgraph.training import TrainerCallback, build_trainer, train_trial
from taskgraph.training.frozen_states import attach_frozen_states
from taskgraph.training.runtime import available_cores, resolve_threads
from taskgraph.trial import TrialConfig, TrialStatus

FAMILY = synthetic_family(target_train=8, aux_train=60, eval_size=30)
TASKS = FAMILY.tasks


def config(**overrides: Any) -> TrialConfig:
    values: dict[str, Any] = {
        "target": "synth_target",
        "auxiliaries": ("synth_related",),
        "encoder": "tiny-bert",
        "encoder_options": SMALL_BERT,
        "max_steps": 6,
        "batch_size": 8,
        "learning_rate": 1e-3,
        "eval_every": 3,
        "max_length": 32,
    }
    values.update(overrides)
    return TrialConfig(**values)


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TASKGRAPH_CACHE", str(tmp_path))
    monkeypatch.delenv(FEATURE_CACHE_ENV, raising=False)
    return tmp_path


@pytest.fixture
def tokenizer_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count calls of every Hugging Face tokenizer (``tokenizer(texts, ...)``)."""
    calls = [0]
    original = PreTrainedTokenizerBase.__call__

    def counting(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return original(self, *args, **kwargs)

    monkeypatch.setattr(PreTrainedTokenizerBase, "__call__", counting)
    return calls


def scores_and_counts(result: Any) -> dict[str, Any]:
    data = result.to_dict()
    data["cost"].pop("seconds")
    return data  # type: ignore[no-any-return]


def test_second_trial_on_the_same_data_does_not_tokenize_again(
    cache_dir: Path, tokenizer_calls: list[int]
) -> None:
    first = train_trial(config(), tasks=TASKS)
    assert first.status is TrialStatus.COMPLETE and tokenizer_calls[0] > 0
    tokenizer_calls[0] = 0
    second = train_trial(config(seed=1), tasks=TASKS)  # another seed: same features
    assert second.status is TrialStatus.COMPLETE
    assert tokenizer_calls[0] == 0
    # A new process finds them on disk (one file per split, written atomically).
    cache = feature_cache()
    assert cache is not None
    cache.clear_memory()
    hits = cache.disk_hits
    train_trial(config(), tasks=TASKS)
    assert tokenizer_calls[0] == 0 and cache.disk_hits > hits
    assert list((cache_dir / "features").glob("*.pkl"))
    assert not list((cache_dir / "features").glob(".*"))  # no temporary file left behind
    # A different max_length is different features: tokenized again.
    train_trial(config(max_length=24), tasks=TASKS)
    assert tokenizer_calls[0] > 0


def test_dev_scores_are_identical_with_and_without_the_feature_cache(
    cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(FEATURE_CACHE_ENV, "off")
    assert feature_cache() is None
    uncached = scores_and_counts(train_trial(config(), tasks=TASKS))
    monkeypatch.delenv(FEATURE_CACHE_ENV)
    filled = scores_and_counts(train_trial(config(), tasks=TASKS))  # misses: fills the cache
    from_memory = scores_and_counts(train_trial(config(), tasks=TASKS))
    cache = feature_cache()
    assert cache is not None and cache.hits > 0
    cache.clear_memory()
    from_disk = scores_and_counts(train_trial(config(), tasks=TASKS))
    assert cache.disk_hits > 0
    assert uncached["scores"] and uncached == filled == from_memory == from_disk


def test_a_damaged_cache_file_is_a_miss(tmp_path: Path) -> None:
    cache = FeatureCache(directory=tmp_path, memory_items=0)
    key = cache.key({"x": 1})
    cache.put(key, [1, 2])
    assert cache.get(key) == [1, 2]
    (tmp_path / f"{key}.pkl").write_bytes(b"not a pickle")
    assert cache.get(key) is None
    cache.put(key, [3])
    assert cache.get(key) == [3]


class ThreadProbe(TrainerCallback):
    def __init__(self) -> None:
        self.seen: set[int] = set()

    def on_step_end(self, *args: Any, **kwargs: Any) -> None:
        self.seen.add(torch.get_num_threads())


def test_trial_threads_follow_the_runner_and_are_recorded(cache_dir: Path) -> None:
    before = torch.get_num_threads()
    probe = ThreadProbe()
    result = train_trial(config(), tasks=TASKS, threads=1, callbacks=[probe])
    assert probe.seen == {1}
    assert result.cost.threads == 1 and result.cost.device == "cpu/1 threads"
    assert torch.get_num_threads() == before  # restored after the trial
    # No count given: the cores this process may run on.
    default = train_trial(config(), tasks=TASKS, callbacks=[probe := ThreadProbe()])
    assert probe.seen == {available_cores()} == {default.cost.threads}
    assert available_cores() == len(os.sched_getaffinity(0))
    assert (resolve_threads(0.5), resolve_threads(2.7), resolve_threads(3)) == (1, 2, 3)
    bad = train_trial(config(), tasks=TASKS, threads=0)
    assert bad.status is TrialStatus.FAILED and "threads" in (bad.failure_reason or "")


def _spec(runner: dict[str, Any]) -> Any:
    return spec_from_dict(
        {
            "name": "threads",
            "target": "synth_target",
            "candidates": ["synth_related"],
            "encoder": {"name": "tiny-bert"},
            "runner": runner,
        }
    )


def test_runner_resources_set_the_evaluator_threads() -> None:
    from taskgraph.runners.builtin import LOCAL

    assert LOCAL.build_evaluator(_spec({"name": "local"})).threads is None  # -> available_cores()
    assert LOCAL.build_evaluator(_spec({"name": "local", "threads": 3})).threads == 3
    with pytest.raises(Exception, match="threads"):
        _spec({"name": "local", "threads": 0})
    try:
        import ray  # noqa: F401 - the `ray` extra, which CI installs
    except ImportError:
        unavailable("ray is not installed: the Ray runner's threads are not checked")
    from taskgraph.runners.ray.worker import local_evaluator

    ray_spec = _spec({"name": "ray", "resources": {"cpu": 2}})
    assert resolve_threads(local_evaluator(ray_spec, None).threads) == 2
    half = _spec({"name": "ray", "resources": {"cpu": 0.5}})
    assert resolve_threads(local_evaluator(half, None).threads) == 1
    pinned = _spec({"name": "ray", "resources": {"cpu": 4}, "threads": 1})
    assert local_evaluator(pinned, None).threads == 1


def test_minilm_is_read_once_per_process_and_copied_per_trial() -> None:
    first, second = load_encoder("minilm"), load_encoder("minilm")
    assert first.model is not second.model and first.tokenizer is second.tokenizer
    weight = first.model.embeddings.word_embeddings.weight
    with torch.no_grad():
        weight.add_(1.0)  # one trial's training never reaches the next trial's start
    assert not torch.equal(weight, second.model.embeddings.word_embeddings.weight)
    assert torch.equal(
        load_encoder("minilm").model.embeddings.word_embeddings.weight,
        second.model.embeddings.word_embeddings.weight,
    )


def test_frozen_layers_run_once_and_match_the_full_encoder(cache_dir: Path) -> None:
    cfg = config(hyperparameters={"freeze_layers": 1})
    trainer = build_trainer(cfg, tasks=TASKS)
    model = trainer.model
    layers = model.encoder.encoder.layer
    assert not any(p.requires_grad for p in model.encoder.embeddings.parameters())
    assert not any(p.requires_grad for p in layers[0].parameters())
    assert all(p.requires_grad for p in layers[1].parameters())
    train = trainer.data["synth_target"].train
    assert train is not None and FROZEN_KEY in train.tensors
    batch = train.batch(train.tensors["input_ids"].new_tensor([0, 1, 2]).numpy())
    model.eval()
    with torch.no_grad():
        full = model.encoder(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
        ).last_hidden_state
        top = run_top(model, batch, architecture="hard")
    mask = batch["attention_mask"].bool()
    assert torch.allclose(full[mask], top[mask], atol=1e-5)
    # A second trial on the same data and encoder reuses the outputs: nothing computed.
    again = build_trainer(cfg, tasks=TASKS)
    options = again.options
    assert (
        attach_frozen_states(again.model, again.data, cfg, options=options, device=again.device)
        == 0
    )
    result = train_trial(cfg, tasks=TASKS)
    assert result.status is TrialStatus.COMPLETE and result.objective is not None


def test_frozen_layers_are_refused_where_they_do_not_apply(cache_dir: Path) -> None:
    soft = train_trial(config(sharing="soft", hyperparameters={"freeze_layers": 1}), tasks=TASKS)
    assert soft.status is TrialStatus.FAILED
    assert "freeze_layers" in (soft.failure_reason or "") and "soft" in (soft.failure_reason or "")
    deep = train_trial(config(hyperparameters={"freeze_layers": 3}), tasks=TASKS)
    assert "must be in [0, 2]" in (deep.failure_reason or "")
    with pytest.raises(ConfigError, match="freeze_layers"):
        from taskgraph.training import TrainingOptions

        TrainingOptions.from_config(config(hyperparameters={"freeze_layers": -1}))


def test_frozen_outputs_stay_within_their_memory_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    import taskgraph.training.frozen_states as frozen_states

    cache = FeatureCache(directory=None, memory_items=64)
    monkeypatch.setattr(frozen_states, "_FROZEN_BYTES", 3 * 400)  # three tensors of 100 float32
    for name in "abcd":
        frozen_states._remember_frozen(cache, name, torch.zeros(100))
    assert [key for key, _ in cache.items()] == ["b", "c", "d"]
    frozen_states._remember_frozen(
        cache, "big", torch.zeros(1000)
    )  # over budget alone: kept, the rest dropped
    assert [key for key, _ in cache.items()] == ["big"]


def test_frozen_outputs_are_read_from_disk_by_a_later_process(cache_dir: Path) -> None:
    """A later process (here: the memory level cleared) reads the frozen outputs from
    $TASKGRAPH_CACHE/frozen/ instead of computing them, bit for bit; other frozen weights
    (another random encoder) are another key."""
    import taskgraph.training.frozen_states as frozen_states

    cfg = config(hyperparameters={"freeze_layers": 1})
    first = build_trainer(cfg, tasks=TASKS)
    hidden = first.data["synth_target"].train.tensors[FROZEN_KEY]  # type: ignore[union-attr]
    files = list((cache_dir / "frozen").glob("*.pkl"))
    assert files and not list((cache_dir / "frozen").glob(".*"))
    cache = frozen_states._frozen_cache()
    assert cache is not None
    cache.clear_memory()
    later = build_trainer(cfg, tasks=TASKS)
    options = later.options
    assert (
        attach_frozen_states(later.model, later.data, cfg, options=options, device=later.device)
        == 0
    )
    assert cache.disk_hits > 0
    again = later.data["synth_target"].train.tensors[FROZEN_KEY]  # type: ignore[union-attr]
    assert torch.equal(hidden, again)
    other = build_trainer(config(hyperparameters={"freeze_layers": 1}, seed=1), tasks=TASKS)
    assert not torch.equal(
        other.data["synth_target"].train.tensors[FROZEN_KEY],
        hidden,  # type: ignore[union-attr]
    )
    assert len(list((cache_dir / "frozen").glob("*.pkl"))) > len(files)


def test_the_frozen_cache_key_covers_every_input_the_layers_read() -> None:
    # Same ids, different segments (a pair task) or padding: different frozen outputs.
    from taskgraph.training.frozen_states import _input_digest

    ids = torch.tensor([[101, 7, 102, 8, 102]])
    base = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    pair = {**base, "token_type_ids": torch.tensor([[0, 0, 0, 1, 1]])}
    shorter = {**base, "attention_mask": torch.tensor([[1, 1, 1, 1, 0]])}
    digests = [_input_digest(t) for t in (base, pair, shorter)]
    assert len({repr(d) for d in digests}) == 3
    assert _input_digest(dict(base)) == digests[0]  # and stable
