"""What a mutation audit of masking.py and training/selection.py found untested: corruption over
the whole vocabulary, the adaptive curriculum's ranks, weights, draws, bookkeeping and options,
and data selection's embeddings, words, cache keys, kept share and QA windows."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from taskgraph.errors import ConfigError
from taskgraph.models import load_encoder
from taskgraph.tasks import load_examples
from taskgraph.tasks.features import EncodedSplit
from taskgraph.tasks.selection import SELECTION_FEATURES, feature_matrix
from taskgraph.tasks.synthetic import synthetic_family
from taskgraph.tasks.types import QAExample, TaggedSentence, TaskType, TextExample
from taskgraph.testing import SMALL_BERT
from taskgraph.training.masking import AdaptiveMasking, build_masking, corrupt
from taskgraph.training.selection import (
    AuxiliaryFeatures,
    _embeddings,
    example_words,
    select,
    select_auxiliaries,
    selected_rows,
    selection_features,
)
from taskgraph.trial import DataSelectionConfig, TrialConfig

FAMILY = synthetic_family(target_train=8, aux_train=120, eval_size=40)
TASKS = FAMILY.tasks


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASKGRAPH_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("TASKGRAPH_FEATURE_CACHE", raising=False)


def input_embeddings(encoder: Any) -> np.ndarray:
    """Return the encoder's input (word-piece) embedding table as a numpy array."""
    embeddings: torch.nn.Module = encoder.model.get_input_embeddings()
    weight = embeddings.weight
    assert isinstance(weight, torch.Tensor)
    return weight.detach().numpy()


def within(observed: float, p: float, n: int, sigmas: float = 5.0) -> bool:
    return abs(observed - p) <= sigmas * math.sqrt(p * (1 - p) / n)


def bound(n_sequences: int, length: int, **options: Any) -> AdaptiveMasking:
    masking = AdaptiveMasking(**options)
    masking.bind(n_sequences=n_sequences, length=length, vocab_size=50)
    return masking


# -- masking ------------------------------------------------------------------------------------


def test_random_replacements_draw_from_the_whole_vocabulary() -> None:
    # Every position is 1 and [MASK] is 2: a 0 or a 3 can only be a random replacement, and
    # the last id of the vocabulary must be among them.
    ids = np.ones((200, 50), dtype=np.int64)
    chosen = np.ones(ids.shape, dtype=bool)
    inputs, _ = corrupt(ids, chosen, mask_token_id=2, vocab_size=4, rng=np.random.default_rng(0))
    assert set(np.unique(inputs).tolist()) == {0, 1, 2, 3}


def test_ranks_are_mid_ranks_in_the_recent_measurements() -> None:
    masking = bound(1, 4)
    assert masking.ranks(np.array([0.0, 3.0])).tolist() == [0.5, 0.5]  # nothing measured yet
    losses = np.array([[1.0, 1.0, 2.0, 2.0]])
    masking.observe(np.array([0]), np.zeros((1, 4), dtype=np.int64), np.ones((1, 4), bool), losses)
    ranks = masking.ranks(np.array([0.0, 1.0, 1.5, 2.0, 3.0]))
    assert ranks.tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]


def test_ranks_use_the_newest_measurements_of_the_history() -> None:
    masking = bound(2, 3, history=3)
    ids = np.zeros((1, 3), dtype=np.int64)
    everything = np.ones((1, 3), dtype=bool)
    masking.observe(np.array([0]), ids, everything, np.array([[1.0, 2.0, 3.0]]))
    masking.observe(np.array([1]), ids, everything, np.array([[10.0, 11.0, 12.0]]))
    # only 10, 11, 12 are left: 5 is below all of them
    assert masking.ranks(np.array([5.0, 11.0])).tolist() == [0.0, 0.5]


def test_observe_records_difficulty_at_the_batch_rows_corpus_indices() -> None:
    masking = bound(10, 4)
    rows = np.array([7, 3])
    ids = np.ones((2, 4), dtype=np.int64)  # one token: its prior is the mean, 4.5
    losses = np.arange(1.0, 9.0).reshape(2, 4)
    masking.observe(rows, ids, np.ones((2, 4), dtype=bool), losses)
    assert np.array_equal(masking.estimates(rows, ids), losses)
    assert np.allclose(masking.estimates(np.array([0, 1]), ids), 4.5)


def test_a_token_repeated_in_one_batch_counts_every_time_in_its_prior() -> None:
    masking = bound(2, 3)
    ids = np.array([[5, 5, 6], [5, 6, 6]])
    chosen = np.array([[True, True, False], [False, False, False]])
    losses = np.array([[2.0, 4.0, 0.0], [0.0, 0.0, 0.0]])
    masking.observe(np.array([0, 1]), ids, chosen, losses)
    estimates = masking.estimates(np.array([0, 1]), ids)
    assert estimates[1, 0] == pytest.approx(3.0)  # token 5 elsewhere: the mean of 2 and 4
    assert estimates[1, 1] == pytest.approx(3.0)  # token 6 never measured: the mean of all


@pytest.mark.parametrize("explore", [0.0, 0.1, 0.5, 1.0])
def test_log_weights_follow_the_documented_formula(explore: float) -> None:
    masking = bound(1, 8, explore=explore, bandwidth=0.3)
    ids = np.arange(8)[None, :]
    losses = np.arange(8.0)[None, :]
    masking.observe(np.array([0]), ids, np.ones((1, 8), dtype=bool), losses)
    masking.observe_refresh(0.25)  # competence 0.25: q = 0.2 + 0.7 * 0.25
    q = 0.375
    rank = (2 * np.arange(8) + 1) / 16
    expected = np.log((1 - explore) * np.exp(-((rank - q) ** 2) / (2 * 0.3**2)) + explore)
    assert np.allclose(masking.log_weights(np.array([0]), ids), expected[None, :])


def test_adaptive_draws_are_proportional_to_the_weights(monkeypatch: pytest.MonkeyPatch) -> None:
    # Four candidates, one mask each (0.25 * 4): position i is chosen with probability
    # w_i / sum(w), as a draw with probabilities proportional to w must give.
    n = 40_000
    weights = np.array([1.0, 2.0, 3.0, 4.0])
    masking = AdaptiveMasking(mask_rate=0.25)
    candidates = np.ones((n, 6), dtype=bool)
    candidates[:, 0] = candidates[:, -1] = False
    log_weights = np.zeros((n, 6))
    log_weights[:, 1:5] = np.log(weights)
    monkeypatch.setattr(masking, "log_weights", lambda rows, input_ids: log_weights)
    chosen = masking.choose(
        np.arange(n), np.zeros((n, 6), dtype=np.int64), candidates, np.random.default_rng(0)
    )
    assert (chosen.sum(axis=1) == 1).all()
    for observed, p in zip(chosen[:, 1:5].mean(axis=0), weights / weights.sum(), strict=True):
        assert within(float(observed), float(p), n), (observed, p)


def test_competence_is_a_moving_average_with_half_weight_on_the_newest_refresh() -> None:
    masking = AdaptiveMasking()  # full_accuracy 0.5, quantiles 0.2 -> 0.9
    assert masking.state() == {"competence": 0.0, "target_quantile": 0.2}
    masking.observe_refresh(0.25)  # level 0.5
    assert masking.competence == pytest.approx(0.25)
    masking.observe_refresh(0.5)  # level 1
    assert masking.competence == pytest.approx(0.625)
    assert masking.state() == pytest.approx({"competence": 0.625, "target_quantile": 0.6375})


@pytest.mark.parametrize(
    ("scheme", "options", "message"),
    [
        ("adaptive", {"bandwidth": 0.0}, "`bandwidth` must be a number in (0, 1], but got 0.0"),
        (
            "adaptive",
            {"full_accuracy": 0.0},
            "`full_accuracy` must be a number in (0, 1], but got 0.0",
        ),
        ("adaptive", {"refresh_every": 0}, "`refresh_every` must be an integer >= 1, but got 0"),
        ("adaptive", {"refresh_size": 0}, "`refresh_size` must be an integer >= 1, but got 0"),
        ("adaptive", {"history": 0}, "`history` must be an integer >= 1, but got 0"),
        ("adaptive", {"mask_rate": 1.0}, "`mask_rate` must be in (0, 1), but got 1.0"),
        ("random", {"mask_rate": 1.0}, "`mask_rate` must be in (0, 1), but got 1.0"),
    ],
)
def test_degenerate_options_are_rejected(
    scheme: str, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        build_masking(scheme, options)
    assert str(caught.value) == f"pretraining.options: {message}"


# -- data selection ----------------------------------------------------------------------------


def test_example_words_read_both_texts_of_a_pair_and_question_and_context() -> None:
    assert example_words(TextExample(text="a b", text_pair="c d")) == ["a", "b", "c", "d"]
    assert example_words(TextExample(text="a b")) == ["a", "b"]
    qa = QAExample(id="q", question="who is", context="the man", answers=())
    assert example_words(qa) == ["who", "is", "the", "man"]
    assert example_words(TaggedSentence(tokens=("x", "y"), tags=("A", "B"))) == ["x", "y"]


def test_embedding_mean_counts_repeated_words_and_max_length_pieces_per_word() -> None:
    encoder = load_encoder("tiny-bert", options=SMALL_BERT)
    table = input_embeddings(encoder)
    tokenizer = encoder.tokenizer

    def pieces(word: str) -> list[int]:
        ids: list[int] = tokenizer(word, add_special_tokens=False)["input_ids"]
        return ids

    assert len(pieces("cat")) == len(pieces("dog")) == 1 and len(pieces("xylophonist")) > 3
    out = _embeddings([["cat", "cat", "dog"], ["xylophonist"]], tokenizer, table, max_length=3)
    assert np.allclose(out[0], table[pieces("cat") * 2 + pieces("dog")].mean(axis=0))
    # max_length bounds a word's own pieces: three of them, no room taken by [CLS]/[SEP]
    assert np.allclose(out[1], table[pieces("xylophonist")[:3]].mean(axis=0))


def test_selection_features_are_those_of_the_pools_and_cached_per_pool() -> None:
    auxiliary, target = TASKS["synth_related"], TASKS["synth_target"]
    aux_examples = load_examples(auxiliary, "train", data_dir=None)
    target_examples = load_examples(target, "train", data_dir=None)
    tokenizer = load_encoder("tiny-bert", options=SMALL_BERT).tokenizer
    for pool, target_pool in [
        (np.arange(10), np.arange(8)),
        (np.arange(10, 20), np.arange(8)),  # same size, other examples
        (np.arange(10, 20), np.arange(4, 8)),  # another target pool
    ]:
        got = selection_features(
            auxiliary,
            target,
            data_dir=None,
            pool=pool,
            size=120,
            target_pool=target_pool,
            tokenizer=tokenizer,
            embedding_table=None,
            encoder_key=None,
            max_length=32,
        )
        by_hand = feature_matrix(
            [example_words(aux_examples[int(i)]) for i in pool],
            [example_words(target_examples[int(i)]) for i in target_pool],
            embeddings=None,
            target_embeddings=None,
        )
        assert got.pool.tolist() == pool.tolist()
        np.testing.assert_allclose(got.values, by_hand)


def test_cached_embedding_features_are_keyed_by_the_encoder(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    encoder = load_encoder("tiny-bert", options=SMALL_BERT)
    table_a = input_embeddings(encoder)
    table_b = np.random.default_rng(0).standard_normal(table_a.shape).astype(table_a.dtype)
    pools = {"synth_target": (np.arange(8), 8), "synth_related": (np.arange(120), 120)}
    config = TrialConfig(
        target="synth_target",
        auxiliaries=("synth_related",),
        encoder="tiny-bert",
        encoder_options=SMALL_BERT,
        max_length=32,
        data_selection=DataSelectionConfig(
            features=("embedding_cosine",), weights={"embedding_cosine": 1.0}, keep=0.25
        ),
    )

    def kept(table: np.ndarray, key: str) -> list[int]:
        chosen = select_auxiliaries(
            config,
            TASKS,
            data_dir=None,
            pools=pools,
            tokenizer=encoder.tokenizer,
            embedding_table=table,
            encoder_key=key,
        )
        positions: list[int] = chosen["synth_related"].positions.tolist()
        return positions

    first, second = kept(table_a, "a"), kept(table_b, "b")
    monkeypatch.setenv("TASKGRAPH_FEATURE_CACHE", "off")
    assert kept(table_b, "b") == second
    assert kept(table_a, "a") == first
    assert first != second


def flat_features(n: int) -> AuxiliaryFeatures:
    values = np.zeros((n, len(SELECTION_FEATURES)))
    values[:, SELECTION_FEATURES.index("ttr")] = np.arange(n)
    return AuxiliaryFeatures(values=values, pool=np.arange(n), size=n, seconds=0.0)


def test_keep_one_keeps_everything_and_float_error_never_rounds_the_share_up() -> None:
    features = flat_features(50)
    everything = select(
        features, DataSelectionConfig(features=("ttr",), weights={"ttr": 1.0}, keep=1.0)
    )
    assert everything.positions.tolist() == list(range(50)) and everything.record["kept"] == 50
    # 0.14 * 50 is 7.000000000000001 in floating point: 7 examples, not 8
    seven = select(
        features, DataSelectionConfig(features=("ttr",), weights={"ttr": 1.0}, keep=0.14)
    )
    assert seven.positions.tolist() == list(range(43, 50))


def test_an_unknown_feature_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"^data_selection\.features: unknown \['nope'\]; known"):
        select(flat_features(5), DataSelectionConfig(features=("nope",), keep=0.5))


def test_selected_rows_keep_every_window_of_a_kept_example() -> None:
    encoded = EncodedSplit(
        task_type=TaskType.EXTRACTIVE_QA,
        features=[{} for _ in range(6)],
        example_index=[0, 0, 1, 2, 2, 2],
        n_examples=3,
    )
    assert selected_rows(encoded, np.array([0, 2])).tolist() == [0, 1, 3, 4, 5]
    assert selected_rows(encoded, np.array([1])).tolist() == [2]
