"""What the mutation audit of the pretraining stage, its corpus and its cache found untested:
a checkpoint served to another seed or window length, the cache's off switch and its
atomic write, windows that drop, repeat or join text, a stage that trains other windows or
steps than asked, and a report that misstates its windows, tokens, curve or seconds."""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from taskgraph.errors import ConfigError
from taskgraph.models import load_encoder
from taskgraph.models.encoders import weights_fingerprint
from taskgraph.tasks.synthetic import synthetic_family
from taskgraph.tasks.types import SplitSource, TaskDef, TaskType
from taskgraph.testing import SMALL_BERT, tiny_trial_config
from taskgraph.training import masking, train_trial
from taskgraph.training import pretraining as stage
from taskgraph.training import pretraining_cache as cache
from taskgraph.training import pretraining_corpus as corpus
from taskgraph.trial import PretrainingConfig, TrialConfig, TrialStatus

FAMILY = synthetic_family(target_train=24, aux_train=24, eval_size=16)
ONE_LAYER = {**SMALL_BERT, "num_hidden_layers": 1}
CPU = torch.device("cpu")
SENTENCE = "the quick brown fox jumps over the lazy dog"


@pytest.fixture(autouse=True)
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TASKGRAPH_CACHE", str(tmp_path))
    monkeypatch.delenv(cache.PRETRAIN_CACHE_ENV, raising=False)
    cache._MEMORY.clear_memory()  # a checkpoint of another test's tmp_path is not this one's
    return tmp_path


def trial(**pretraining: Any) -> TrialConfig:
    values: dict[str, Any] = {"steps": 2, "batch_size": 4, "learning_rate": 1e-3}
    values.update(pretraining)
    return tiny_trial_config(
        encoder_options=ONE_LAYER, pretraining=PretrainingConfig(scheme="random", **values)
    )


def run_stage(
    texts: list[str], *, seed: int = 0, max_length: int = 16, encoder: Any = None, **values: Any
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Return (state, report) of the stage run on ``texts`` (2 steps of 4 windows unless told)."""
    pre = PretrainingConfig(
        scheme="random", **{"steps": 2, "batch_size": 4, "learning_rate": 1e-3, **values}
    )
    bundle = encoder if encoder is not None else load_encoder("tiny-bert", options=ONE_LAYER)
    return stage.run_pretraining(pre, bundle, texts, seed=seed, max_length=max_length, device=CPU)


def numbered(count: int) -> list[str]:
    """Return ``count`` texts of one window each (16 tokens), all distinct."""
    return [f"{SENTENCE} number {i}" for i in range(count)]


# -- the cache key -------------------------------------------------------------------------


def test_the_key_of_an_encoder_directory_covers_the_seed_and_the_trials_window() -> None:
    # tiny-bert carries the seed in its options too; a directory's options do not
    base = TrialConfig(**{**trial().__dict__, "encoder": "/models/bert", "encoder_options": {}})
    key = cache.pretraining_key(base, "corpus", precision="fp32", weights="w")
    assert key != cache.pretraining_key(base.with_seed(1), "corpus", precision="fp32", weights="w")
    # no pretraining.max_length: the trial's max_length is the window
    longer = TrialConfig(**{**base.__dict__, "max_length": 64})
    assert key != cache.pretraining_key(longer, "corpus", precision="fp32", weights="w")
    # with its own window, the stage is the same whatever the trial's max_length
    own = [
        TrialConfig(**{**c.__dict__, "pretraining": trial(max_length=16).pretraining})
        for c in (base, longer)
    ]
    assert (
        len({cache.pretraining_key(c, "corpus", precision="fp32", weights="w") for c in own}) == 1
    )


def test_each_seed_pretrains_the_same_encoder_apart() -> None:
    encoder = load_encoder("tiny-bert", options=ONE_LAYER)
    states = [
        stage.pretrained_encoder_state(trial().with_seed(seed), encoder, tasks=FAMILY.tasks)[0]
        for seed in (0, 1)
    ]
    assert any(not torch.equal(states[0][k], states[1][k]) for k in states[0])


def test_a_corpus_file_rewritten_under_its_path_is_another_corpus(tmp_path: Path) -> None:
    text = tmp_path / "corpus.txt"
    text.write_text("\n".join(numbered(10)) + "\n", encoding="utf-8")
    config = trial(corpus=(str(text),))
    before = corpus.corpus_texts(config)[1]
    text.write_text("\n".join(numbered(11)) + "\n", encoding="utf-8")
    assert corpus.corpus_texts(config)[1] != before


# -- the cache on disk -----------------------------------------------------------------------


def test_with_the_disk_cache_off_nothing_is_written_and_memory_still_serves(
    cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(cache.PRETRAIN_CACHE_ENV, "off")
    encoder = load_encoder("tiny-bert", options=ONE_LAYER)
    first = stage.pretrained_encoder_state(trial(), encoder, tasks=FAMILY.tasks)[1]
    second = stage.pretrained_encoder_state(trial(), encoder, tasks=FAMILY.tasks)[1]
    assert first["cached"] is False and second["cached"] is True
    assert not (cache_dir / "pretrained").exists()


def test_a_checkpoint_appears_under_its_key_only_once_written_whole(
    cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What a parallel trial could read while the weights are being saved.
    seen: list[list[str]] = []
    save = torch.save

    def watched(obj: Any, target: Any, *args: Any, **kwargs: Any) -> None:
        save(obj, target, *args, **kwargs)
        root = cache_dir / "pretrained"
        seen.append(sorted(p.name for p in root.iterdir() if not p.name.startswith(".")))

    monkeypatch.setattr(torch, "save", watched)
    encoder = load_encoder("tiny-bert", options=ONE_LAYER)
    report = stage.pretrained_encoder_state(trial(), encoder, tasks=FAMILY.tasks)[1]
    assert seen == [[]]
    assert sorted(p.name for p in (cache_dir / "pretrained").iterdir()) == [report["key"]]


# -- the corpus and its windows ----------------------------------------------------------------


def test_windows_hold_every_piece_of_each_text_once_and_never_two_texts() -> None:
    tokenizer = corpus.encoder_tokenizer("tiny-bert")
    texts = [
        " ".join(f"alpha{i}" for i in range(30)),  # several windows and a tail
        "the patient was given aspirin",
        " ".join(f"omega{i}" for i in range(25)),
    ]
    width = 14
    windows = corpus._windows(texts, tokenizer, max_length=width + 2)
    cls, sep, pad = tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id
    pieces: list[list[int]] = []
    for row in windows.tolist():
        body = row[1 : row.index(sep)]
        assert row[0] == cls and 4 <= len(body) <= width
        assert row[len(body) + 2 :] == [pad] * (width - len(body))
        pieces.append(body)
    expected: list[list[int]] = []
    for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]:
        chunks = [ids[i : i + width] for i in range(0, len(ids), width)]
        expected += [c for c in chunks if len(c) >= 4]
    assert pieces == expected


def test_a_text_of_exactly_four_pieces_is_a_window(tmp_path: Path) -> None:
    tokenizer = corpus.encoder_tokenizer("tiny-bert")
    text = "the patient was sick"
    assert len(tokenizer(text, add_special_tokens=False)["input_ids"]) == 4
    path = tmp_path / "four.txt"
    path.write_text(text + "\n", encoding="utf-8")
    assert corpus.corpus_windows([str(path)], tokenizer, max_length=16) == 1


def test_an_empty_corpus_is_the_target_and_its_auxiliaries() -> None:
    pretraining = PretrainingConfig(scheme="random")
    config = tiny_trial_config(auxiliaries=("synth_related",), pretraining=pretraining)
    named = tiny_trial_config(
        auxiliaries=("synth_related",),
        pretraining=PretrainingConfig(scheme="random", corpus=config.task_set),
    )
    texts, fingerprint = corpus.corpus_texts(config, tasks=FAMILY.tasks)
    assert (texts, fingerprint) == corpus.corpus_texts(named, tasks=FAMILY.tasks)
    alone = corpus.corpus_texts(tiny_trial_config(pretraining=pretraining), tasks=FAMILY.tasks)
    assert len(texts) > len(alone[0])


def test_both_texts_of_a_sentence_pair_are_corpus_text(tmp_path: Path) -> None:
    (tmp_path / "train.tsv").write_text(
        "a\tb\tlabel\nthe first sentence\tits second sentence\tyes\n", encoding="utf-8"
    )
    pairs = TaskDef(
        name="pairs",
        type=TaskType.SENTENCE_PAIR_CLASSIFICATION,
        format="tsv",
        dataset="pairs",
        splits={"train": SplitSource(str(tmp_path / "train.tsv"))},
        label_field="label",
        metrics=("accuracy",),
        reader_options={
            "header": True,
            "text_column": "a",
            "pair_column": "b",
            "label_column": "label",
        },
    )
    config = trial(corpus=("pairs",))
    texts, _ = corpus.corpus_texts(config, tasks={**FAMILY.tasks, "pairs": pairs})
    assert texts == ["the first sentence", "its second sentence"]


# -- the window length -------------------------------------------------------------------------


def test_a_window_as_long_as_the_encoders_positions_is_accepted() -> None:
    encoder = load_encoder("tiny-bert", options={**ONE_LAYER, "max_position_embeddings": 16})
    report = run_stage(numbered(8), encoder=encoder, max_length=16, steps=1)[1]
    assert report["steps"] == 1


def test_a_window_of_five_tokens_is_refused_by_name() -> None:
    result = train_trial(trial(max_length=5), tasks=FAMILY.tasks)
    assert result.status is TrialStatus.FAILED
    assert result.failure_reason == (
        "invalid configuration: pretraining.max_length must be at least 6 ([CLS], 4 pieces, "
        "[SEP]), but got 5"
    )


def test_the_stage_cuts_windows_of_pretraining_max_length_not_the_trials(
    tmp_path: Path,
) -> None:
    path = tmp_path / "long.txt"
    path.write_text(" ".join(f"word{i}" for i in range(300)) + "\n", encoding="utf-8")
    config = trial(corpus=(str(path),), max_length=16)  # the trial's is 32
    encoder = load_encoder("tiny-bert", options=ONE_LAYER)
    report = stage.pretrained_encoder_state(config, encoder, tasks=FAMILY.tasks)[1]
    windows = corpus.corpus_windows([str(path)], encoder.tokenizer, max_length=16)
    assert windows > corpus.corpus_windows([str(path)], encoder.tokenizer, max_length=32)
    assert report["sequences"] + report["held_out"] == windows


# -- the stage ---------------------------------------------------------------------------------


def test_the_windows_are_split_into_training_and_held_out_without_overlap() -> None:
    report = run_stage(numbered(42))[1]
    assert (report["sequences"], report["held_out"]) == (40, 2)
    report = run_stage(numbered(12))[1]  # under 20 windows: still one held out
    assert (report["sequences"], report["held_out"]) == (11, 1)


def test_max_sequences_keeps_that_many_windows() -> None:
    report = run_stage(numbered(42), max_sequences=20)[1]
    assert report["sequences"] + report["held_out"] == 20


def test_a_corpus_of_one_window_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"gives 1 sequence\(s\); need at least 2"):
        run_stage(numbered(1))


def test_one_epoch_trains_every_window_exactly_once(monkeypatch: pytest.MonkeyPatch) -> None:
    batches: list[list[int]] = []
    choose = masking.RandomMasking.choose

    def recording(self: Any, rows: np.ndarray, *args: Any) -> Any:
        batches.append(rows.tolist())
        return choose(self, rows, *args)

    monkeypatch.setattr(masking.RandomMasking, "choose", recording)
    report = run_stage(numbered(42), steps=10)[1]  # 40 training windows, 10 batches of 4
    assert report["sequences"] == 40
    assert [len(b) for b in batches] == [4] * 10
    assert sorted(r for b in batches for r in b) == list(range(40))


def test_the_report_counts_the_training_tokens_and_the_masked_ones() -> None:
    tokenizer = corpus.encoder_tokenizer("tiny-bert")
    texts = numbered(30)
    pieces = len(tokenizer(texts[0], add_special_tokens=False)["input_ids"])
    assert all(len(tokenizer(t, add_special_tokens=False)["input_ids"]) == pieces for t in texts)
    report = run_stage(texts, steps=3, max_length=32)[1]  # windows padded to 32
    assert report["tokens"] == 3 * 4 * (pieces + 2)
    assert 0 < report["masked_tokens"] < report["tokens"]


def test_the_curve_is_measured_every_tenth_of_the_steps_and_at_the_end() -> None:
    report = run_stage(numbered(30), steps=25)[1]
    assert [point[0] for point in report["curve"]] == [*range(0, 25, 2), 25]


def test_the_reported_seconds_are_the_stages_own() -> None:
    start = time.perf_counter()
    report = run_stage(numbered(30))[1]
    elapsed = time.perf_counter() - start
    assert 0 < report["seconds"] <= elapsed + 0.001


def test_the_stage_is_reproducible_whatever_the_global_seed() -> None:
    encoder = load_encoder("tiny-bert", options=ONE_LAYER)
    states = []
    for global_seed in (1, 2):
        torch.manual_seed(global_seed)
        states.append(run_stage(numbered(30), encoder=encoder)[0])
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])


def test_the_encoder_it_starts_from_is_not_trained() -> None:
    encoder = load_encoder("tiny-bert", options=ONE_LAYER)
    before = weights_fingerprint(encoder.model)
    state = run_stage(numbered(30), encoder=encoder)[0]
    assert weights_fingerprint(encoder.model) == before
    assert any(not torch.equal(v, encoder.model.state_dict()[k]) for k, v in state.items())


def test_a_damaged_checkpoint_left_in_place_leaves_no_temporary_copy_behind(
    cache_dir: Path,
) -> None:
    # The rename onto a directory that is there already fails, as when a parallel trial won.
    config = trial()
    encoder = load_encoder("tiny-bert", options=ONE_LAYER)
    fingerprint = corpus.corpus_texts(config, tasks=FAMILY.tasks)[1]
    key = cache.pretraining_key(
        config, fingerprint, precision="fp32", weights=weights_fingerprint(encoder.model)
    )
    (cache_dir / "pretrained" / key).mkdir(parents=True)
    (cache_dir / "pretrained" / key / "report.json").write_text("{", encoding="utf-8")
    report = stage.pretrained_encoder_state(config, encoder, tasks=FAMILY.tasks)[1]
    assert report["cached"] is False
    assert [p.name for p in (cache_dir / "pretrained").iterdir()] == [key]


def test_each_step_draws_its_own_corruption(monkeypatch: pytest.MonkeyPatch) -> None:
    draws: list[float] = []
    corrupt = stage.corrupt

    def recording(input_ids: np.ndarray, chosen: np.ndarray, **kwargs: Any) -> Any:
        draws.append(float(copy.deepcopy(kwargs["rng"]).random()))
        return corrupt(input_ids, chosen, **kwargs)

    monkeypatch.setattr(stage, "corrupt", recording)
    run_stage(numbered(30), steps=4)
    training = draws[1:]  # the first call corrupts the held-out windows
    assert len(training) == 4 and len(set(training)) == 4


def test_the_order_of_the_corpus_entries_is_part_of_its_fingerprint() -> None:
    forward = trial(corpus=("synth_target", "synth_related"))
    backward = trial(corpus=("synth_related", "synth_target"))
    prints = [corpus.corpus_texts(c, tasks=FAMILY.tasks)[1] for c in (forward, backward)]
    assert prints[0] != prints[1]


class _Pieces:
    """A tokenizer whose padding id is not 0 (RoBERTa's is 1): one piece a character."""

    cls_token_id, pad_token_id, sep_token_id = 0, 1, 2

    def __call__(self, texts: list[str], **kwargs: Any) -> dict[str, list[list[int]]]:
        return {"input_ids": [[ord(c) for c in text] for text in texts]}


def test_windows_are_padded_with_the_tokenizers_padding_id() -> None:
    windows = corpus._windows(["abcde"], _Pieces(), max_length=10)
    assert windows.tolist() == [[0, 97, 98, 99, 100, 101, 2, 1, 1, 1]]
