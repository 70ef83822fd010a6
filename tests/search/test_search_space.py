"""Search space -> Optuna define-by-run suggestions: conditional parameters, subset repair."""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import optuna
import pytest
from hypothesis import given
from hypothesis import strategies as st

from taskgraph.errors import SpecError
from taskgraph.search.sharing_space import domain_from_plain
from taskgraph.search.space import (
    BASELINE_ROLE,
    FAMILY_ATTR,
    ROLE_ATTR,
    SUBSET_ATTR,
    SearchSpace,
    aux_param,
    is_first_baseline,
    repair_subset,
)
from taskgraph.spec import spec_from_dict

optuna.logging.set_verbosity(optuna.logging.WARNING)

CANDIDATES = ["a", "b", "c", "d", "e"]
# What architectures describe about themselves (the shape of `search_space()`).
SPACES: dict[str, dict[str, dict[str, Any]]] = {
    "hard": {},
    "soft": {"lambda": {"type": "float", "low": 1e-4, "high": 1.0, "log": True}},
    "hierarchical": {"target_layer": {"type": "int", "low": 1, "high": 6}},
}


def make_space(**search: Any) -> SearchSpace:
    data = {"name": "s", "target": "t", "candidates": CANDIDATES, "search": search}
    return SearchSpace(spec=spec_from_dict(data), sharing_spaces=SPACES)


def sample(space: SearchSpace, n: int, seed: int = 0) -> list[optuna.trial.FrozenTrial]:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    for _ in range(n):
        trial = study.ask()
        space.suggest(trial)
        study.tell(trial, 0.0)
    return study.trials


def test_every_free_candidate_is_a_boolean_always_suggested() -> None:
    space = make_space(auxiliaries={"include": ["a"], "exclude": ["e"]})
    for trial in sample(space, 5):
        assert {k for k in trial.params if k.startswith("aux/")} == {"aux/b", "aux/c", "aux/d"}
        assert all(isinstance(trial.params[aux_param(t)], bool) for t in "bcd")
        subset = trial.user_attrs[SUBSET_ATTR]
        assert "a" in subset and "e" not in subset


def test_sharing_parameters_are_conditional_and_overridable() -> None:
    space = make_space(
        sharing={
            "hard": None,
            "soft": {"lambda": {"low": 0.01, "high": 0.02}},
            "hierarchical": None,
        }
    )
    seen: set[str] = set()
    for trial in sample(space, 40):
        arch = trial.params["sharing"]
        seen.add(arch)
        if arch == "soft":
            assert 0.01 <= trial.params["soft/lambda"] <= 0.02
        else:
            assert "soft/lambda" not in trial.params
        assert ("hierarchical/target_layer" in trial.params) == (arch == "hierarchical")
    assert seen == {"hard", "soft", "hierarchical"}


def test_config_carries_suggested_values() -> None:
    space = make_space(
        sharing=["soft"],
        learning_rate={"low": 1e-5, "high": 1e-3, "log": True},
        batch_size=[8, 16],
        epochs=2,
        mixing={
            "scheme": ["proportional", "temperature"],
            "temperature": {"low": 1.5, "high": 3.0},
            "weights": {"low": 0.5, "high": 2.0},
            "max_examples": {"t": 100, "*": [50, 60]},
        },
        hyperparameters={"warmup_ratio": {"low": 0.0, "high": 0.2}},
    )
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(20):
        trial = study.ask()
        config = space.suggest(trial)
        params = trial.params
        assert config.sharing == "soft"
        assert config.sharing_params["lambda"] == params["soft/lambda"]
        assert config.learning_rate == params["learning_rate"]
        assert config.batch_size == params["batch_size"] and config.epochs == 2.0
        assert config.auxiliaries == tuple(trial.user_attrs[SUBSET_ATTR])
        assert config.mixing.max_examples["t"] == 100
        for aux in config.auxiliaries:
            assert config.mixing.weights[aux] == params[f"weight/{aux}"]
            assert config.mixing.max_examples[aux] in (50, 60)
        assert "t" not in config.mixing.weights  # the target is the reference weight
        if config.auxiliaries and params["mixing/scheme"] == "temperature":
            assert config.mixing.temperature == params["mixing/temperature"]
        else:
            assert "mixing/temperature" not in params
        assert config.hyperparameters["warmup_ratio"] == params["hp/warmup_ratio"]
        study.tell(trial, 0.0)


def test_fixed_settings_are_not_parameters() -> None:
    space = make_space(learning_rate=3e-4, batch_size=[32])
    trial = sample(space, 1)[0]
    assert set(trial.params) == {aux_param(t) for t in CANDIDATES}


def test_baseline_trial_trains_the_target_alone_whatever_the_constraints() -> None:
    space = make_space(auxiliaries={"include": ["a"], "min_size": 2})
    study = optuna.create_study()
    study.enqueue_trial(space.baseline_params(), user_attrs=space.baseline_user_attrs())
    trial = study.ask()
    assert trial.user_attrs[ROLE_ATTR] == BASELINE_ROLE
    config = space.suggest(trial)
    assert config.auxiliaries == () and config.task_set == ("t",)
    assert trial.user_attrs[SUBSET_ATTR] == []
    # Later trials obey the constraints.
    study.tell(trial, 0.0)
    trial = study.ask()
    config = space.suggest(trial)
    assert "a" in config.auxiliaries and len(config.auxiliaries) >= 2


def test_transfer_mode_only_when_there_is_an_auxiliary() -> None:
    space = make_space(transfer_mode=["joint", "sequential"])
    for trial in sample(space, 30):
        has_aux = bool(trial.user_attrs[SUBSET_ATTR])
        assert ("transfer_mode" in trial.params) == has_aux


def test_unknown_architecture_parameter_lists_the_allowed_ones() -> None:
    with pytest.raises(
        SpecError, match=r"search\.sharing\.soft: unknown parameter 'lamda'; allowed: lambda"
    ):
        make_space(sharing={"soft": {"lamda": 0.1}})


def test_domain_from_plain() -> None:
    assert domain_from_plain("x", {"type": "categorical", "choices": [1, 2]}).choices == (1, 2)
    assert domain_from_plain("x", {"type": "int", "low": 1, "high": 3}).kind == "int"
    assert domain_from_plain("x", {"type": "float", "low": 1, "high": 3}).kind == "float"


def test_repair_examples() -> None:
    free = ["b", "c", "d"]
    assert repair_subset(["b"], free=free) == ("b",)
    assert repair_subset(["b", "c", "d"], free=free, max_size=1) in {("b",), ("c",), ("d",)}
    assert repair_subset([], free=free, include=["a"], min_size=2) in {
        ("a", "b"),
        ("a", "c"),
        ("a", "d"),
    }
    # deterministic
    assert repair_subset(["b", "c", "d"], free=free, max_size=2) == repair_subset(
        ["d", "c", "b"], free=free, max_size=2
    )


@given(
    chosen=st.sets(st.sampled_from(CANDIDATES)),
    include=st.sets(st.sampled_from(["x", "y"])),
    min_size=st.integers(0, 7),
    max_size=st.one_of(st.none(), st.integers(0, 7)),
)
def test_repair_respects_bounds(
    chosen: set[str], include: set[str], min_size: int, max_size: int | None
) -> None:
    if max_size is not None and (max_size < min_size or max_size < len(include)):
        return
    result = repair_subset(
        sorted(chosen),
        free=CANDIDATES,
        include=sorted(include),
        min_size=min_size,
        max_size=max_size,
    )
    assert set(include) <= set(result)
    assert len(result) >= min(min_size, len(CANDIDATES) + len(include))
    if max_size is not None:
        assert len(result) <= max_size
    # Tasks kept from the sample: a feasible sample is left alone.
    feasible = (max_size is None or len(chosen) + len(include) <= max_size) and len(chosen) + len(
        include
    ) >= min_size
    if feasible:
        assert set(result) == chosen | include
    assert result == tuple(sorted(result))


@pytest.mark.parametrize(
    ("encoder", "depth"),
    [
        ({"name": "tiny-bert"}, 2),
        ({"name": "tiny-bert", "options": {"num_hidden_layers": 3}}, 3),
        ({"name": "minilm"}, 6),
    ],
)
def test_layer_ranges_follow_the_encoder_depth(encoder: dict[str, Any], depth: int) -> None:
    # The registry's spaces are written for the study's encoder: a 2-layer tiny-bert must not
    # be offered layers 3..6, which all mean layer 2 and only spread the sampler's trials.
    data = {
        "name": "s",
        "target": "t",
        "candidates": CANDIDATES,
        "encoder": encoder,
        "search": {"sharing": ["hierarchical", "soft", "cross_stitch", "mmoe"]},
    }
    space = SearchSpace(spec=spec_from_dict(data))
    layer_params = {
        ("hierarchical", "tagging_layer"),
        ("hierarchical", "parsing_layer"),
        ("soft", "top_k_layers"),
        ("cross_stitch", "top_k_layers"),
        ("mmoe", "top_k_layers"),
    }
    for arch, name in layer_params:
        domain = space.sharing[arch][name]
        assert (domain.low, domain.high) == (1, depth), (arch, name)
    assert space.sharing["mmoe"]["num_experts"].high == 8  # not a layer count


@pytest.mark.parametrize(
    ("sharing", "refused"),
    [
        ({"hierarchical": {"tagging_layer": {"low": 1, "high": 4}}}, "tagging_layer: 4 is above"),
        ({"soft": {"top_k_layers": [1, 3]}}, "top_k_layers: 3 is above"),
        ({"mmoe": {"top_k_layers": 5}}, None),  # one fixed value: the full depth, no waste
        ({"hierarchical": {"tagging_layer": {"low": 1, "high": 2}}}, None),
        ({"mmoe": {"num_experts": {"low": 2, "high": 6}}}, None),  # not a layer count
    ],
)
def test_a_spec_range_past_the_encoder_depth_is_refused(
    sharing: dict[str, Any], refused: str | None
) -> None:
    from taskgraph.search.checks import check_spec

    data = {
        "name": "s",
        "target": "synth_target",
        "candidates": ["synth_related"],
        "encoder": {"name": "tiny-bert"},  # 2 layers
        "search": {"sharing": sharing},
    }
    spec = spec_from_dict(data)
    if refused is None:
        check_spec(spec, source="s.yaml")
        return
    with pytest.raises(SpecError, match=f"s.yaml: search.sharing.*{refused} the 2 layers"):
        check_spec(spec, source="s.yaml")


def fixed(space: SearchSpace, params: dict[str, Any], **attrs: Any) -> tuple[Any, Any]:
    """Return the configuration a trial with exactly ``params`` gets, and the trial.

    Optuna's ``FixedTrial`` refuses a parameter it was not given, and its ``params`` are
    the ones suggested: both pin down which parameters a trial is asked for.
    """
    trial = optuna.trial.FixedTrial(params)
    for key, value in attrs.items():
        trial.set_user_attr(key, value)
    return space.suggest(trial), trial


def only(*chosen: str) -> dict[str, bool]:
    return {aux_param(t): t in chosen for t in CANDIDATES}


def test_a_sequential_transfer_mode_reaches_the_config() -> None:
    space = make_space(transfer_mode=["joint", "sequential"])
    config, _ = fixed(space, {**only("a"), "transfer_mode": "sequential"})
    assert config.transfer_mode == "sequential"
    config, _ = fixed(space, {**only("a"), "transfer_mode": "joint"})
    assert config.transfer_mode == "joint"


@pytest.mark.parametrize("scheme", ["temperature", "annealed"])
def test_the_temperature_is_searched_for_both_temperature_schemes(scheme: str) -> None:
    space = make_space(
        mixing={"scheme": ["proportional", scheme], "temperature": {"low": 0.5, "high": 5.0}}
    )
    config, trial = fixed(space, {**only("a"), "mixing/scheme": scheme, "mixing/temperature": 3.0})
    assert config.mixing.scheme == scheme
    assert config.mixing.temperature == 3.0
    assert "mixing/temperature" in trial.params


def test_only_the_studys_first_baseline_is_the_first_baseline() -> None:
    def attrs(**values: Any) -> SimpleNamespace:
        return SimpleNamespace(user_attrs=values)

    assert is_first_baseline(attrs(**{ROLE_ATTR: BASELINE_ROLE}))
    # A baseline enqueued for another model family is measured against, not measured by.
    assert not is_first_baseline(attrs(**{ROLE_ATTR: BASELINE_ROLE, FAMILY_ATTR: "x"}))
    assert not is_first_baseline(attrs())
    assert not is_first_baseline(attrs(**{FAMILY_ATTR: "x"}))


def _documented_repair(
    chosen: set[str], *, free: list[str], min_size: int, max_size: int | None
) -> tuple[str, ...]:
    """The repair rule of docs/search.md, written out again (no include).

    Too many: drop the chosen tasks with the largest rank; too few: add the unchosen tasks
    with the smallest rank; rank(t) = sha256("<sorted sampled set joined by +>|t").
    """
    key = "+".join(sorted(chosen))

    def rank(task: str) -> str:
        return hashlib.sha256(f"{key}|{task}".encode()).hexdigest()

    kept = sorted(chosen, key=rank)
    if max_size is not None:
        kept = kept[:max_size]
    unchosen = sorted((t for t in free if t not in chosen), key=rank)
    kept += unchosen[: max(min_size - len(kept), 0)]
    return tuple(sorted(kept))


def test_repair_trims_and_tops_up_by_the_documented_rank() -> None:
    # Examples where the rank keeps neither the first names nor the tasks whose own hash
    # is smallest (the rank hashes the sampled set with the task).
    assert repair_subset(["a", "b", "c"], free=CANDIDATES, max_size=1) == ("b",)
    assert repair_subset(["a", "b", "d", "e"], free=CANDIDATES, max_size=2) == ("d", "e")
    assert repair_subset(["a"], free=CANDIDATES, min_size=3) == ("a", "b", "d")
    for n in range(len(CANDIDATES) + 1):
        for sample_ in itertools.combinations(CANDIDATES, n):
            for max_size in range(n):
                assert repair_subset(
                    sample_, free=CANDIDATES, max_size=max_size
                ) == _documented_repair(
                    set(sample_), free=CANDIDATES, min_size=0, max_size=max_size
                ), (sample_, max_size)
            for min_size in range(n + 1, len(CANDIDATES) + 1):
                assert repair_subset(
                    sample_, free=CANDIDATES, min_size=min_size
                ) == _documented_repair(
                    set(sample_), free=CANDIDATES, min_size=min_size, max_size=None
                ), (sample_, min_size)


def test_a_star_weight_covers_the_auxiliaries_not_the_target() -> None:
    # The target is the reference weight (1.0) unless the mapping names it.
    space = make_space(mixing={"weights": {"a": 0.5, "*": {"low": 0.25, "high": 2.0}}})
    config, trial = fixed(space, {**only("a", "b"), "weight/b": 1.5})
    assert set(trial.params) == set(only()) | {"weight/b"}
    assert dict(config.mixing.weights) == {"a": 0.5, "b": 1.5}
    named = make_space(mixing={"weights": {"t": 2.0, "*": {"low": 0.25, "high": 2.0}}})
    config, _ = fixed(named, {**only("b"), "weight/b": 0.5})
    assert dict(config.mixing.weights) == {"t": 2.0, "b": 0.5}


def test_the_baseline_is_asked_for_no_weight() -> None:
    space = make_space(mixing={"weights": {"t": {"low": 0.5, "high": 2.0}, "*": [0.5, 2.0]}})
    config, trial = fixed(space, only(), **space.baseline_user_attrs())
    assert config.auxiliaries == ()
    assert not any(name.startswith("weight/") for name in trial.params)
    assert dict(config.mixing.weights) == {}


@pytest.mark.parametrize("weights", [1.0, {"*": 1.0}, {"t": 1.0, "a": 1.0, "*": [1.0]}])
def test_a_fixed_weight_of_one_is_the_default(weights: Any) -> None:
    # An unsearched weight of 1 leaves the model configuration (and its hash) as it is in a
    # study that never mentions weights.
    config, trial = fixed(make_space(mixing={"weights": weights}), only("a", "b"))
    assert not any(name.startswith("weight/") for name in trial.params)
    assert dict(config.mixing.weights) == {}
    plain, _ = fixed(make_space(), only("a", "b"))
    assert config.model_config_hash() == plain.model_config_hash()
    unweighted = replace(config, mixing=replace(config.mixing, weights={}))
    assert config.model_config_hash() == unweighted.model_config_hash()


def test_a_trial_gets_the_head_options_of_its_own_tasks() -> None:
    options = {task: {"dropout": 0.1} for task in ["t", *CANDIDATES]}
    data = {
        "name": "s",
        "target": "t",
        "candidates": CANDIDATES,
        "training": {"hyperparameters": {"head_options": options}},
    }
    space = SearchSpace(spec=spec_from_dict(data), sharing_spaces=SPACES)
    config, _ = fixed(space, only("b", "d"))
    assert config.hyperparameters["head_options"] == {t: {"dropout": 0.1} for t in "tbd"}
    baseline, _ = fixed(space, only(), **space.baseline_user_attrs())
    assert baseline.hyperparameters["head_options"] == {"t": {"dropout": 0.1}}


def test_a_single_cap_domain_caps_the_target_too() -> None:
    # docs/search.md: a single `max_examples` domain applies to every task (weights: the
    # auxiliaries only).
    space = make_space(mixing={"max_examples": {"low": 10, "high": 20}})
    config, trial = fixed(space, {**only("a"), "max_examples/t": 15, "max_examples/a": 12})
    assert {"max_examples/t", "max_examples/a"} <= set(trial.params)
    assert dict(config.mixing.max_examples) == {"t": 15, "a": 12}


def test_a_baseline_carries_the_selection_features_of_its_family() -> None:
    space = make_space(data_selection={"features": ["jsd"]})
    config, _ = fixed(space, {**only("a"), "selection/jsd": 0.5, "selection/keep": 0.5})
    baseline, trial = fixed(space, only(), **space.baseline_user_attrs())
    assert not any(name.startswith("selection/") for name in trial.params)
    assert baseline.data_selection is not None
    assert baseline.data_selection.features == ("jsd",)
    assert baseline.family_key() == config.family_key()


def test_a_pretraining_option_is_named_by_its_scheme() -> None:
    options = {"adaptive": {"q_end": {"low": 0.1, "high": 0.5}}}
    space = make_space(pretraining={"scheme": "adaptive", "options": options})
    config, trial = fixed(space, {**only("a"), "pretraining/adaptive/q_end": 0.3})
    assert "pretraining/adaptive/q_end" in trial.params
    assert config.pretraining is not None and config.pretraining.options == {"q_end": 0.3}


PARAMS = {
    "aux/a": True,
    "max_examples/t": 100,
    "max_examples/a": 50,
    "pretraining": "random",
    "pretraining/steps": 20,
    "pretraining/random/x": 1,
    "loss_weighting": "uncertainty",
    "learning_rate": 1e-3,
    "sharing": "soft",
    "soft/lambda": 0.1,
    "hierarchical/target_layer": 2,
    "hp/warmup_ratio": 0.1,
    "hp/tasks_per_step": 2,
    "mixing/scheme": "temperature",
}


def test_the_family_parameters_are_the_target_cap_and_the_pretraining_stage() -> None:
    space = make_space()
    family = {
        "max_examples/t": 100,
        "pretraining": "random",
        "pretraining/steps": 20,
        "pretraining/random/x": 1,
    }
    assert space.family_params(PARAMS) == family
    fixed_params, _ = space.family_baseline(PARAMS, "F")
    assert fixed_params == {**space.baseline_params(), **family}


def test_the_setting_parameters_are_those_that_change_the_target_alone() -> None:
    space = make_space(sharing=["hard", "soft", "hierarchical"])
    # the chosen architecture's parameters, not another's; multi-task bookkeeping left out
    assert space.setting_params(PARAMS) == {
        "loss_weighting": "uncertainty",
        "learning_rate": 1e-3,
        "sharing": "soft",
        "soft/lambda": 0.1,
        "hp/warmup_ratio": 0.1,
    }
    fixed_params, _ = space.family_baseline(PARAMS, "F", settings=True)
    assert fixed_params["soft/lambda"] == 0.1 and "hp/tasks_per_step" not in fixed_params


def test_plain_single_task_choices_are_no_alone_setting() -> None:
    # Hard and soft sharing, equal and PCGrad weighting all train the target alone the same.
    plain = make_space(sharing=["hard", "soft"], loss_weighting=["equal", "pcgrad"])
    assert plain.searched_alone_settings() == []
    mixed = make_space(sharing=["hard", "soft"], loss_weighting=["equal", "uncertainty"])
    assert mixed.searched_alone_settings() == ["loss_weighting"]


def test_the_temperature_is_described_only_where_a_scheme_uses_it() -> None:
    space = make_space(mixing={"temperature": {"low": 1, "high": 3}})
    assert "mixing/temperature" not in space.describe()
    used = make_space(
        mixing={"scheme": ["proportional", "annealed"], "temperature": {"low": 1, "high": 3}}
    )
    assert used.describe()["mixing/temperature"] == {"low": 1, "high": 3}


def test_a_log_range_is_sampled_on_a_log_scale() -> None:
    space = make_space(
        mixing={"max_examples": {"low": 10, "high": 10000, "log": True}},
        learning_rate={"low": 1e-5, "high": 1e-2, "log": True},
        batch_size={"low": 8, "high": 64},
        epochs={"low": 1.0, "high": 3.0},
    )
    params = {**only(), "max_examples/t": 100, "learning_rate": 1e-3}
    _, trial = fixed(space, {**params, "batch_size": 16, "epochs": 2.0})
    dists = trial.distributions
    assert dists["max_examples/t"].log and dists["learning_rate"].log
    assert not dists["batch_size"].log and not dists["epochs"].log


def test_a_trial_trains_with_the_first_seed() -> None:
    data = {"name": "s", "target": "t", "candidates": CANDIDATES, "seeds": [7, 8, 9]}
    space = SearchSpace(spec=spec_from_dict(data), sharing_spaces=SPACES)
    config, _ = fixed(space, only("a"))
    assert config.seed == 7
