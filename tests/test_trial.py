from __future__ import annotations

import math

import pytest

from taskgraph.errors import UnknownNameError
from taskgraph.registry import Registry
from taskgraph.trial import (
    Cost,
    LookaheadMatrix,
    MixingConfig,
    TrialConfig,
    TrialResult,
    TrialStatus,
)


def test_task_set_is_sorted_and_includes_target() -> None:
    config = TrialConfig(target="ner", auxiliaries=("upos", "deps"))
    assert config.auxiliaries == ("deps", "upos")
    assert config.task_set == ("deps", "ner", "upos")
    assert config.task_set_key == "deps+ner+upos"


def test_target_may_not_be_its_own_auxiliary() -> None:
    with pytest.raises(ValueError, match="also listed as an auxiliary"):
        TrialConfig(target="ner", auxiliaries=("ner",))


def test_config_round_trips_through_dict() -> None:
    config = TrialConfig(
        target="ner",
        auxiliaries=("upos",),
        sharing="soft",
        sharing_params={"lambda": 0.01},
        mixing=MixingConfig(scheme="temperature", temperature=2.0, max_examples={"ner": 500}),
        seed=3,
    )
    assert TrialConfig.from_dict(config.to_dict()) == config


def test_model_config_hash_ignores_seed_and_task_set_but_not_sharing() -> None:
    a = TrialConfig(target="ner", auxiliaries=("upos",), seed=1)
    b = TrialConfig(target="pos", auxiliaries=(), seed=2)
    c = TrialConfig(target="ner", auxiliaries=("upos",), sharing="soft")
    assert a.model_config_hash() == b.model_config_hash()
    assert a.model_config_hash() != c.model_config_hash()


def test_family_key_depends_on_target_budget_only_among_mixing() -> None:
    base = TrialConfig(target="ner", mixing=MixingConfig(max_examples={"ner": 100}))
    other_aux_cap = TrialConfig(
        target="ner",
        auxiliaries=("upos",),
        mixing=MixingConfig(max_examples={"ner": 100, "upos": 9}),
    )
    other_target_cap = TrialConfig(target="ner", mixing=MixingConfig(max_examples={"ner": 200}))
    assert base.family_key() == other_aux_cap.family_key()
    assert base.family_key() != other_target_cap.family_key()


def test_result_round_trips_and_cleans_non_finite_values() -> None:
    result = TrialResult(
        status=TrialStatus.COMPLETE,
        scores={"ner": {"dev": {"f1": 0.5, "loss": math.nan}}},
        objective=0.5,
        cost=Cost(seconds=1.5, examples=10, tokens=100, device="cpu"),
        lookahead=LookaheadMatrix(tasks=["a", "b"], values=[[0.0, 0.1], [0.2, 0.0]], n_probes=3),
        intermediate=[(10, 0.4)],
    )
    data = result.to_dict()
    assert data["status"] == "complete"
    assert data["scores"]["ner"]["dev"]["loss"] is None
    back = TrialResult.from_dict(data)
    assert back.score("ner", "dev", "f1") == 0.5
    assert back.lookahead == result.lookahead
    assert back.intermediate == [(10, 0.4)]


def test_failed_result_carries_reason() -> None:
    result = TrialResult.failed("nan loss at step 3")
    assert result.status is TrialStatus.FAILED
    assert result.failure_reason == "nan loss at step 3"


def test_registry_lazy_import_and_unknown_name_lists_known() -> None:
    registry: Registry[object] = Registry(kind="widget")
    registry.register("dumps", "json:dumps")
    import json

    assert registry.get("dumps") is json.dumps
    with pytest.raises(UnknownNameError, match="unknown widget 'x'; known: dumps"):
        registry.get("x")
