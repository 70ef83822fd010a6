"""The pretraining stage through ``taskgraph.training``: a tiny end-to-end trial, the
checkpoint cache (a second trial reuses it), the corpus, and what goes into the result."""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch

from taskgraph.errors import ConfigError
from taskgraph.models.encoders import weights_fingerprint
from taskgraph.tasks.synthetic import synthetic_family
from taskgraph.training import pretraining as stage
from taskgraph.training import pretraining_cache as cache
from taskgraph.training import pretraining_corpus as corpus
from taskgraph.training import train_trial
from taskgraph.trial import PretrainingConfig, TrialConfig, TrialResult, TrialStatus

FAMILY = synthetic_family(target_train=24, aux_train=24, eval_size=16)
SMALL_BERT = {"hidden_size": 32, "num_attention_heads": 2, "intermediate_size": 64}


def config(scheme: str = "random", **pretraining: Any) -> TrialConfig:
    values: dict[str, Any] = {"steps": 3, "batch_size": 4, "learning_rate": 1e-3}
    values.update(pretraining)
    return TrialConfig(
        target="synth_target",
        encoder="tiny-bert",
        encoder_options=SMALL_BERT,
        max_steps=2,
        batch_size=8,
        learning_rate=1e-3,
        max_length=32,
        pretraining=PretrainingConfig(scheme=scheme, **values),
    )


@pytest.fixture(autouse=True)
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TASKGRAPH_CACHE", str(tmp_path))
    monkeypatch.delenv(cache.PRETRAIN_CACHE_ENV, raising=False)
    cache._MEMORY.clear_memory()
    return tmp_path


@pytest.fixture
def stage_runs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Count the times the stage itself runs (not served from the cache)."""
    runs: list[str] = []
    original = stage.run_pretraining

    def counting(pre: PretrainingConfig, *args: Any, **kwargs: Any) -> Any:
        runs.append(pre.scheme)
        return original(pre, *args, **kwargs)

    monkeypatch.setattr(stage, "run_pretraining", counting)
    return runs


def test_a_trial_with_adaptive_pretraining_records_its_stage(stage_runs: list[str]) -> None:
    result = train_trial(
        config("adaptive", options={"refresh_every": 1, "refresh_size": 4}), tasks=FAMILY.tasks
    )
    assert result.status is TrialStatus.COMPLETE, result.failure_reason
    report = result.pretraining
    assert report is not None and report["scheme"] == "adaptive" and report["cached"] is False
    assert [point[0] for point in report["curve"]] == [0, 1, 2, 3]
    assert all(0.0 <= point[1] <= 1.0 for point in report["curve"])
    assert len(report["curve"][0]) == 4  # step, accuracy, competence, target quantile
    assert report["tokens"] > 0 and report["masked_tokens"] > 0 and report["seconds"] > 0
    assert result.cost.pretrain_tokens == report["tokens"]
    assert result.cost.tokens > report["tokens"]  # fine-tuning's tokens on top
    assert result.cost.pretrain_seconds == report["seconds"] <= result.cost.seconds
    assert stage_runs == ["adaptive"]  # build_trainer found it in the cache
    # The report survives the result's JSON round trip (the study's stored results).
    assert TrialResult.from_dict(result.to_dict()).pretraining == result.to_dict()["pretraining"]


def test_the_trainer_hands_the_stage_report_to_on_train_begin() -> None:
    # What a runner whose trial can end without a result (Ray: stopped by the scheduler)
    # records the stage and its cost from.
    from taskgraph.training.callbacks import TrainerCallback

    seen: list[dict[str, Any]] = []

    class Begin(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
            seen.append(kwargs)

    result = train_trial(config(), tasks=FAMILY.tasks, callbacks=[Begin()])
    assert result.status is TrialStatus.COMPLETE, result.failure_reason
    assert seen and seen[0]["pretraining"] == result.pretraining is not None
    assert seen[0]["pretraining"]["cached"] is False
    assert "selection" in seen[0] and seen[0]["selection"] is None  # no data selection here


def test_a_second_trial_reuses_the_cached_checkpoint(
    cache_dir: Path, stage_runs: list[str]
) -> None:
    first = train_trial(config(), tasks=FAMILY.tasks)
    cache._MEMORY.clear_memory()  # as a later process would: from the disk
    second = train_trial(config(), tasks=FAMILY.tasks)
    assert first.status is second.status is TrialStatus.COMPLETE
    assert stage_runs == ["random"]
    assert second.pretraining is not None and second.pretraining["cached"] is True
    assert second.cost.pretrain_seconds == 0.0 and second.cost.pretrain_tokens == 0
    assert second.scores == first.scores  # the same weights
    assert second.pretraining["curve"] == first.pretraining["curve"]  # type: ignore[index]
    assert len(list((cache_dir / "pretrained").iterdir())) == 1
    # Another seed or scheme is another pretraining.
    train_trial(config().with_seed(1), tasks=FAMILY.tasks)
    assert stage_runs == ["random", "random"]


def test_the_cache_key_covers_scheme_parameters_seed_and_encoder() -> None:
    base = config()
    keys = {
        cache.pretraining_key(c, "corpus", precision="fp32", weights="w")
        for c in (
            base,
            base.with_seed(1),
            config("adaptive"),
            config(steps=4),
            config(options={"mask_rate": 0.2}),
            TrialConfig(**{**base.__dict__, "encoder_options": {**SMALL_BERT, "hidden_size": 64}}),
        )
    }
    assert len(keys) == 6
    assert cache.pretraining_key(
        base, "other corpus", precision="fp32", weights="w"
    ) != cache.pretraining_key(base, "corpus", precision="fp32", weights="w")
    # an encoder directory whose weights changed under the same path: another stage
    assert cache.pretraining_key(base, "corpus", precision="fp32", weights="w") != (
        cache.pretraining_key(base, "corpus", precision="fp32", weights="v")
    )


def test_the_cache_key_covers_the_devices_precision(monkeypatch: pytest.MonkeyPatch) -> None:
    # CUDA pretrains in bf16 autocast, the CPU in fp32: two checkpoints, never one shared.
    base = config()
    assert cache.pretraining_key(
        base, "corpus", precision="bf16", weights="w"
    ) != cache.pretraining_key(base, "corpus", precision="fp32", weights="w")
    assert stage.stage_precision(torch.device("cuda")) == "bf16"
    assert stage.stage_precision(torch.device("cpu")) == "fp32"
    # and the stage keys its checkpoint by the device it runs on (no GPU needed: the run is
    # replaced by a stub that records nothing but its device)
    devices: list[str] = []

    def stub(pre: PretrainingConfig, encoder: Any, texts: Any, **kwargs: Any) -> Any:
        devices.append(kwargs["device"].type)
        return {}, {}

    monkeypatch.setattr(stage, "run_pretraining", stub)
    model = torch.nn.Linear(2, 1)
    model.config = SimpleNamespace()  # what the stage's window check reads
    encoder = SimpleNamespace(model=model)
    reports = [
        stage.pretrained_encoder_state(base, encoder, tasks=FAMILY.tasks, device=torch.device(d))[1]
        for d in ("cpu", "cuda")
    ]
    assert devices == ["cpu", "cuda"]
    assert reports[0]["key"] != reports[1]["key"]
    assert reports[0]["key"] == cache.pretraining_key(
        base,
        reports[0]["corpus_fingerprint"],
        precision="fp32",
        weights=weights_fingerprint(model),
    )


def test_a_text_file_corpus_and_a_bad_entry(tmp_path: Path) -> None:
    text = tmp_path / "corpus.txt"
    text.write_text(
        "\n".join(f"sentence number {i} about masked language models" for i in range(40))
    )
    result = train_trial(config(corpus=(str(text),)), tasks=FAMILY.tasks)
    assert result.status is TrialStatus.COMPLETE, result.failure_reason
    bad = train_trial(config(corpus=("no_such_task_or_file",)), tasks=FAMILY.tasks)
    assert bad.status is TrialStatus.FAILED
    assert bad.failure_reason == (
        "invalid configuration: pretraining.corpus[0]: 'no_such_task_or_file' is neither a "
        "task nor a text file"
    )


def test_a_corpus_file_that_is_not_utf8_names_the_file_and_line(
    tmp_path: Path, stage_runs: list[str]
) -> None:
    text = tmp_path / "latin1.txt"
    text.write_bytes("a first line in plain ascii\ncaf\u00e9 au lait\n".encode("latin-1"))
    result = train_trial(config(corpus=(str(text),)), tasks=FAMILY.tasks)
    assert result.status is TrialStatus.FAILED
    assert result.failure_reason == (
        f"invalid configuration: pretraining.corpus[0]: {text}, line 2: not UTF-8 text "
        "(byte 0xe9 at byte 4 of the line); save the file as UTF-8"
    )
    assert stage_runs == []


def test_a_window_longer_than_the_encoders_positions_fails_before_the_stage(
    tmp_path: Path, cache_dir: Path, stage_runs: list[str]
) -> None:
    text = tmp_path / "long.txt"
    text.write_text(" ".join(["alpha beta gamma delta"] * 400) + "\n" + "epsilon zeta eta\n")
    result = train_trial(config(corpus=(str(text),), max_length=600), tasks=FAMILY.tasks)
    assert result.status is TrialStatus.FAILED
    assert result.failure_reason == (
        "invalid configuration: pretraining.max_length is 600, but the encoder has 512 "
        "positions (max_position_embeddings); use at most 512"
    )
    assert stage_runs == [] and not (cache_dir / "pretrained").exists()
    # The trial's own max_length as the window: named as such.
    own = TrialConfig(**{**config().__dict__, "max_length": 1024})
    reason = train_trial(own, tasks=FAMILY.tasks).failure_reason or ""
    assert "the trial's max_length) is 1024, but the encoder has 512 positions" in reason
    # Too short for a window of [CLS], 4 pieces, [SEP] (2 used to be a raw range() error).
    short = train_trial(config(max_length=2), tasks=FAMILY.tasks)
    assert short.failure_reason == (
        "invalid configuration: pretraining.max_length must be at least 6 ([CLS], 4 pieces, "
        "[SEP]), but got 2"
    )
    # Checked before the corpus is read: a missing file is not what it reports.
    with pytest.raises(ConfigError, match="is 600, but the encoder has 512 positions"):
        stage.pretrained_encoder_state(
            config(corpus=("no_such_file",), max_length=600),
            SimpleNamespace(
                model=SimpleNamespace(config=SimpleNamespace(max_position_embeddings=512))
            ),
        )


def test_family_key_and_config_round_trip() -> None:
    pretrained = config()
    plain = TrialConfig(**{**pretrained.__dict__, "pretraining": None})
    assert pretrained.family_key() != plain.family_key() != config("adaptive").family_key()
    assert TrialConfig.from_dict(pretrained.to_dict()) == pretrained
    assert TrialConfig.from_dict(plain.to_dict()) == plain


def test_frozen_layer_outputs_of_a_pretrained_encoder_are_cached_apart() -> None:
    """Frozen outputs are keyed by the frozen weights: a pretrained encoder's differ from the
    plain one's, so neither is served the other's cached outputs."""
    import torch

    from taskgraph.models.frozen import FROZEN_KEY, frozen_fingerprint
    from taskgraph.training import build_trainer

    frozen = {"freeze_layers": 1}
    pretrained = TrialConfig(**{**config().__dict__, "hyperparameters": frozen})
    plain = TrialConfig(**{**pretrained.__dict__, "pretraining": None})
    trainers = [build_trainer(c, tasks=FAMILY.tasks) for c in (pretrained, plain)]
    prints = [frozen_fingerprint(t.model, architecture="hard") for t in trainers]
    assert prints[0] != prints[1]
    outputs = [t.data["synth_target"].train.tensors[FROZEN_KEY] for t in trainers]  # type: ignore[union-attr]
    assert not torch.equal(outputs[0], outputs[1])


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_a_text_longer_than_the_model_is_windowed_without_transformers_length_warning(
    tmp_path: Path,
) -> None:
    from transformers.utils import logging as hf_logging

    from taskgraph.models.encoders import load_encoder

    tokenizer = load_encoder("tiny-bert", options=SMALL_BERT).tokenizer
    tokenizer.deprecation_warnings.pop("sequence-length-is-longer-than-the-specified-maximum", None)
    handler = _Records()
    logger = hf_logging.get_logger("transformers")
    logger.addHandler(handler)
    try:
        text = tmp_path / "long.txt"
        text.write_text(" ".join(["alpha beta gamma delta"] * 200) + "\n")  # 800 > 512 pieces
        result = train_trial(config(corpus=(str(text),)), tasks=FAMILY.tasks)
        assert result.status is TrialStatus.COMPLETE, result.failure_reason
        windows = corpus._windows(["alpha beta " * 400], tokenizer, max_length=64)
        assert windows.shape == (13, 64)  # 800 pieces in windows of 62
        assert not [m for m in handler.messages if "Token indices sequence length" in m]
        # Only the windowing call is quiet: the tokenizer still warns where it is used whole.
        tokenizer("alpha beta " * 400, add_special_tokens=False)
        assert [m for m in handler.messages if "Token indices sequence length" in m]
    finally:
        logger.removeHandler(handler)


ONE_LAYER_BERT = {**SMALL_BERT, "num_hidden_layers": 1}


def _recorded_stage(
    scheme: str, texts: list[str], **values: Any
) -> tuple[list[list[int]], list[tuple[np.ndarray, np.ndarray, Any]], dict[str, Any]]:
    """Run the stage on ``texts``; return (training windows per step, corrupt calls, report).

    A corrupt call is (input_ids, chosen, its generator's state before the call).
    """
    from taskgraph.models import load_encoder
    from taskgraph.training import masking

    windows: list[list[int]] = []
    calls: list[tuple[np.ndarray, np.ndarray, Any]] = []
    original_corrupt = stage.corrupt

    def corrupt(input_ids: np.ndarray, chosen: np.ndarray, **kwargs: Any) -> Any:
        calls.append((input_ids, chosen, copy.deepcopy(kwargs["rng"].bit_generator.state)))
        return original_corrupt(input_ids, chosen, **kwargs)

    encoder = load_encoder("tiny-bert", options=ONE_LAYER_BERT)
    pre = PretrainingConfig(scheme=scheme, **{"steps": 3, "batch_size": 4, **values})
    with pytest.MonkeyPatch.context() as patch:
        for cls in (masking.RandomMasking, masking.AdaptiveMasking):

            def recording(
                self: Any, rows: np.ndarray, *args: Any, _choose: Any = cls.choose
            ) -> Any:
                windows.append(rows.tolist())
                return _choose(self, rows, *args)

            patch.setattr(cls, "choose", recording)
        patch.setattr(stage, "corrupt", corrupt)
        _, report = stage.run_pretraining(
            pre, encoder, texts, seed=0, max_length=16, device=torch.device("cpu")
        )
    return windows, calls, report


def test_random_and_adaptive_pretraining_train_on_the_same_windows_at_a_seed() -> None:
    """The schemes differ only in which positions they mask: at one seed every step trains
    on the same windows (across epochs and the adaptive scheme's refresh passes) and draws
    the same 80/10/10 corruption."""
    texts = [f"the quick brown fox number {i} jumps over the lazy dog again" for i in range(40)]
    options = {"refresh_every": 3, "refresh_size": 8}
    runs = {
        scheme: _recorded_stage(
            scheme, texts, steps=25, options=options if scheme == "adaptive" else {}
        )
        for scheme in ("random", "adaptive")
    }
    (random_windows, random_calls, report), (adaptive_windows, adaptive_calls, _) = (
        runs["random"],
        runs["adaptive"],
    )
    assert report["sequences"] * 2 < 25 * 4  # more than two epochs
    assert len(random_windows) == len(adaptive_windows) == 25
    assert random_windows == adaptive_windows
    # the training steps' corruption generators (the refresh passes corrupt 8 windows)
    states = [
        [state for ids, _, state in calls if len(ids) == 4]
        for calls in (random_calls, adaptive_calls)
    ]
    assert len(states[0]) == len(states[1]) >= 25
    assert states[0] == states[1]
    # ... while the positions chosen do differ
    assert any(
        not np.array_equal(a[1], b[1])
        for a, b in zip(
            [c for c in random_calls if len(c[0]) == 4],
            [c for c in adaptive_calls if len(c[0]) == 4],
            strict=True,
        )
    )


@pytest.mark.parametrize("scheme", ["random", "adaptive"])
def test_no_special_token_is_ever_masked_unk_included(scheme: str) -> None:
    """As docs/training.md says ("non-special tokens") and as Hugging Face's
    DataCollatorForLanguageModeling does: [UNK] (here a snowman) is never chosen, in the
    training batches, the refresh passes or the held-out masks."""
    texts = [f"a snowman \u2603 stands by \u2603 the lazy dog {i} \u2603 again" for i in range(40)]
    options: dict[str, Any] = {"mask_rate": 0.9}
    if scheme == "adaptive":
        options.update(refresh_every=2, refresh_size=8)
    _, calls, _ = _recorded_stage(scheme, texts, steps=8, options=options)
    unk = 100  # the tiny-bert tokenizer's [UNK]
    assert sum(int((ids == unk).sum()) for ids, _, _ in calls) > 100
    assert sum(int(chosen.sum()) for _, chosen, _ in calls) > 100
    for ids, chosen, _ in calls:
        assert not chosen[np.isin(ids, [0, 100, 101, 102, 103])].any()
