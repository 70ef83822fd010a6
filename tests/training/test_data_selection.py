"""Example-level data selection in a trial: the cache, the kept share, the record (tiny BERT)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import taskgraph.training.selection as selection_module
from taskgraph.errors import ConfigError
from taskgraph.tasks.selection import SELECTION_FEATURES, decode_ids, selection_record
from taskgraph.tasks.synthetic import synthetic_family
from taskgraph.testing import SMALL_BERT
from taskgraph.training import train_trial
from taskgraph.training.selection import select_auxiliaries
from taskgraph.trial import DataSelectionConfig, TrialConfig, TrialResult, TrialStatus

FAMILY = synthetic_family(target_train=8, aux_train=120, eval_size=40)
TASKS = FAMILY.tasks


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASKGRAPH_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("TASKGRAPH_FEATURE_CACHE", raising=False)


def config(**overrides: Any) -> TrialConfig:
    values: dict[str, Any] = {
        "target": "synth_target",
        "auxiliaries": ("synth_related",),
        "encoder": "tiny-bert",
        "encoder_options": SMALL_BERT,
        "max_steps": 6,
        "batch_size": 8,
        "learning_rate": 1e-3,
        "max_length": 32,
        "data_selection": DataSelectionConfig(
            features=("jsd", "embedding_cosine", "ttr"),
            weights={"jsd": 1.0, "embedding_cosine": 0.5, "ttr": -0.2},
            keep=0.25,
        ),
    }
    values.update(overrides)
    return TrialConfig(**values)


def test_a_trial_trains_on_the_kept_share_and_records_the_ids() -> None:
    result = train_trial(config(), tasks=TASKS)
    assert result.status is TrialStatus.COMPLETE, result.failure_reason
    assert result.selection is not None and set(result.selection) == {"synth_related"}
    record = result.selection["synth_related"]
    assert record["examples"] == 120
    assert record["kept"] == math.ceil(0.25 * 120)
    ids = decode_ids(record["selected"], record["examples"])
    assert len(ids) == record["kept"] and ids == sorted(set(ids))
    # the record survives the trip through the study's JSON
    assert TrialResult.from_dict(result.to_dict()).selection == result.selection
    # another seed selects the same examples (tiny-bert's selection embeddings use seed 0)
    other = train_trial(config(seed=3), tasks=TASKS)
    assert other.selection == result.selection


def test_the_baseline_and_a_trial_without_selection_record_nothing() -> None:
    assert train_trial(config(auxiliaries=()), tasks=TASKS).selection is None
    assert train_trial(config(data_selection=None), tasks=TASKS).selection is None


def test_features_are_computed_once_then_read_from_the_cache(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[int] = []
    real = selection_module.feature_matrix

    def counting(*args: Any, **kwargs: Any) -> np.ndarray:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(selection_module, "feature_matrix", counting)
    from taskgraph.models import load_encoder

    encoder = load_encoder("tiny-bert", options=SMALL_BERT)
    pools = {"synth_target": (np.arange(8), 8), "synth_related": (np.arange(120), 120)}

    def run(cfg: TrialConfig) -> dict[str, Any]:
        return select_auxiliaries(
            cfg,
            TASKS,
            data_dir=None,
            pools=pools,
            tokenizer=encoder.tokenizer,
            embedding_table=encoder.model.get_input_embeddings().weight.detach().numpy(),
            encoder_key=["tiny-bert", SMALL_BERT],
        )

    first = run(config())
    assert len(calls) == 1
    # other weights and keep: same features, no recomputation, another selection
    cfg = config(
        data_selection=DataSelectionConfig(
            features=("jsd", "embedding_cosine", "ttr"), weights={"ttr": 1.0}, keep=0.5
        )
    )
    second = run(cfg)
    assert len(calls) == 1
    assert len(second["synth_related"].positions) == 60
    assert not np.array_equal(first["synth_related"].positions, second["synth_related"].positions)
    # a new process reads the disk level
    selection_module.feature_cache().clear_memory()  # type: ignore[union-attr]
    assert run(config())["synth_related"].record == first["synth_related"].record
    assert len(calls) == 1


def test_unknown_weight_is_an_invalid_configuration() -> None:
    bad = config(
        data_selection=DataSelectionConfig(features=("jsd",), weights={"ttr": 1.0}, keep=0.5)
    )
    result = train_trial(bad, tasks=TASKS)
    assert result.status is TrialStatus.FAILED
    assert "data_selection.weights names ['ttr']" in (result.failure_reason or "")


@pytest.mark.parametrize(
    ("keep", "weights", "message"),
    [
        (0.0, {}, "data_selection.keep must be in (0, 1], but got 0.0"),
        (1.5, {}, "data_selection.keep must be in (0, 1], but got 1.5"),
        (0.5, {"jsd": float("nan")}, "data_selection.weights['jsd'] must be a finite number"),
    ],
)
def test_out_of_range_keep_or_weight_is_a_config_error(
    keep: float, weights: dict[str, float], message: str
) -> None:
    features = selection_module.AuxiliaryFeatures(
        values=np.zeros((3, len(SELECTION_FEATURES))), pool=np.arange(3), size=3, seconds=0.0
    )
    chosen = DataSelectionConfig(features=("jsd",), weights=weights, keep=keep)
    with pytest.raises(ConfigError) as caught:
        selection_module.select(features, chosen, name="synth_related")
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)
    # through a trial: a failed run with the one line, no traceback
    result = train_trial(config(data_selection=chosen), tasks=TASKS)
    assert result.status is TrialStatus.FAILED
    assert (result.failure_reason or "").startswith(f"invalid configuration: {message}")


def test_a_capped_pool_records_the_kept_examples_by_their_file_ids() -> None:
    # The features' rows are a capped pool of the training split: the record names the
    # examples by their place in the file, the positions index the pool.
    pool = np.array([10, 11, 20, 30, 40, 50])
    values = np.zeros((len(pool), len(SELECTION_FEATURES)))
    values[:, SELECTION_FEATURES.index("ttr")] = [0.0, 5.0, 1.0, 4.0, 2.0, 3.0]
    features = selection_module.AuxiliaryFeatures(values=values, pool=pool, size=60, seconds=0.0)
    chosen = DataSelectionConfig(features=("ttr",), weights={"ttr": 1.0}, keep=0.5)
    kept = selection_module.select(features, chosen, name="synth_related")
    assert kept.positions.tolist() == [1, 3, 5]
    assert kept.record == {**selection_record([11, 30, 50], 60), "pool": 6}
    assert decode_ids(kept.record["selected"], 60) == [11, 30, 50]


def test_equal_scores_keep_a_random_subset_per_auxiliary() -> None:
    # All weights 0: every example ties, and each auxiliary keeps its own random half (the
    # same one each time), not one shared set of positions.
    features = selection_module.AuxiliaryFeatures(
        values=np.zeros((40, len(SELECTION_FEATURES))), pool=np.arange(40), size=40, seconds=0.0
    )
    chosen = DataSelectionConfig(features=("jsd",), weights={"jsd": 0.0}, keep=0.5)
    kept = {
        name: selection_module.select(features, chosen, name=name).positions.tolist()
        for name in ("aux_one", "aux_two", "aux_three")
    }
    assert all(len(positions) == 20 for positions in kept.values())
    assert len({tuple(positions) for positions in kept.values()}) == 3
    again = selection_module.select(features, chosen, name="aux_one").positions.tolist()
    assert again == kept["aux_one"]


def test_family_key_separates_selected_data_but_not_its_weights() -> None:
    plain = config(data_selection=None)
    selected = config()
    reweighted = config(
        data_selection=DataSelectionConfig(
            features=("ttr", "jsd", "embedding_cosine"), weights={"jsd": -1.0}, keep=0.9
        )
    )
    assert plain.family_key() != selected.family_key()
    assert selected.family_key() == reweighted.family_key()
    assert "data_selection" not in plain.to_dict()  # old configurations hash as before
    assert TrialConfig.from_dict(selected.to_dict()) == selected
    assert set(selected.data_selection.features) <= set(SELECTION_FEATURES)  # type: ignore[union-attr]


def test_frozen_layers_are_computed_on_the_pool_and_reused_across_selections() -> None:
    from taskgraph.training import build_trainer

    hp = {"freeze_layers": 1}
    first = build_trainer(config(hyperparameters=hp), tasks=TASKS)
    aux = first.data["synth_related"]
    assert aux.train is not None and len(aux.train) == 30
    assert aux.train_pool is not None and len(aux.train_pool) == 120
    again = build_trainer(
        config(
            hyperparameters=hp,
            data_selection=DataSelectionConfig(features=("ttr",), weights={"ttr": 1.0}, keep=0.5),
        ),
        tasks=TASKS,
    )
    from taskgraph.models.frozen import FROZEN_KEY

    kept = again.data["synth_related"]
    assert kept.train is not None and len(kept.train) == 60
    assert kept.train.tensors[FROZEN_KEY].shape[0] == 60
    assert again.train().status is TrialStatus.COMPLETE


def test_embedding_feature_is_the_mean_input_embedding_without_special_tokens() -> None:
    from taskgraph.models import load_encoder
    from taskgraph.training.selection import _embeddings

    encoder = load_encoder("tiny-bert", options=SMALL_BERT)
    table = encoder.model.get_input_embeddings().weight.detach().numpy()
    tokenizer = encoder.tokenizer
    out = _embeddings([["hello", "world"], [], ["[SEP]", "cat"]], tokenizer, table, max_length=16)
    hello = tokenizer("hello world", add_special_tokens=False)["input_ids"]
    assert np.allclose(out[0], table[hello].mean(axis=0))
    assert np.all(out[1] == 0.0)
    cat = tokenizer("cat", add_special_tokens=False)["input_ids"]
    assert np.allclose(out[2], table[cat].mean(axis=0))
