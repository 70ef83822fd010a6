"""What the search space must keep that the other space tests left loose (a mutation audit).

Each test pins one promise a user relies on:

* the names a trial is asked for are the names ``describe()`` (``study validate``) lists, and
  every listed name is asked for by some trial;
* a baseline of another model family trains the target alone, and is asked for nothing
  that only multi-task trials draw;
* ``setting_params`` / ``searched_alone_settings`` name every setting that changes the target
  trained alone, and nothing else;
* a row trains what it says: a baseline row under size constraints or ``include`` compiles,
  rows of a study with ``include`` / ``exclude`` compile, and a fixed step budget, the
  objective's split and ``None`` caps reach the configuration;
* ranges keep their step, and a plug-in's ``search_space`` without ``num_layers`` is read.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import optuna
import pytest

from taskgraph.models.sharing import SHARING_ARCHITECTURES
from taskgraph.models.sharing.hard import HardSharing
from taskgraph.search.space import (
    BASELINE_ROLE,
    FAMILY_ATTR,
    ROLE_ATTR,
    SearchSpace,
    aux_param,
    repair_subset,
)
from taskgraph.spec import spec_from_dict

optuna.logging.set_verbosity(optuna.logging.WARNING)

CANDIDATES = ["a", "b", "c", "d"]
SPACES: dict[str, dict[str, dict[str, Any]]] = {
    "hard": {},
    "soft": {"lambda": {"type": "float", "low": 1e-4, "high": 1.0, "log": True}},
    "mmoe": {"num_experts": {"type": "int", "low": 2, "high": 8}},
}
PER_TASK = ("weight", "max_examples")


def make_space(
    search: dict[str, Any] | None = None,
    *,
    spaces: dict[str, dict[str, dict[str, Any]]] | None = None,
    **top: Any,
) -> SearchSpace:
    data: dict[str, Any] = {"name": "s", "target": "t", "candidates": CANDIDATES, **top}
    data["search"] = search or {}
    return SearchSpace(spec=spec_from_dict(data), sharing_spaces=spaces or SPACES)


def fixed(space: SearchSpace, params: dict[str, Any], **attrs: Any) -> tuple[Any, Any]:
    """Return the configuration of a trial given exactly ``params`` (and ``attrs``), and it."""
    trial = optuna.trial.FixedTrial(params)
    for key, value in attrs.items():
        trial.set_user_attr(key, value)
    return space.suggest(trial), trial


def only(*chosen: str) -> dict[str, bool]:
    return {aux_param(t): t in chosen for t in CANDIDATES}


# Everything a study can search, each at least two values.
EVERYTHING: dict[str, Any] = {
    "auxiliaries": {"exclude": ["d"]},
    "sharing": {"hard": None, "soft": None, "mmoe": {"num_experts": 4}},
    "mixing": {
        "scheme": ["proportional", "temperature"],
        "temperature": {"low": 1.0, "high": 3.0},
        "weights": {"low": 0.5, "high": 2.0},
        "max_examples": {"t": [100, 200], "*": [50, 60]},
    },
    "transfer_mode": ["joint", "sequential"],
    "loss_weighting": ["equal", "uncertainty"],
    "pretraining": {
        "scheme": ["none", "random"],
        "steps": [10, 20],
        "learning_rate": [1e-4, 1e-3],
        "batch_size": [8, 16],
    },
    "learning_rate": {"low": 1e-5, "high": 1e-3, "log": True},
    "epochs": [1.0, 2.0],
    "max_steps": [5, 10],
    "batch_size": [8, 16],
    "hyperparameters": {"warmup_ratio": [0.0, 0.1], "tasks_per_step": [1, 2]},
    "data_selection": {"features": ["jsd"], "keep": {"low": 0.2, "high": 0.9}},
}


def described_name(param: str) -> str:
    """Return the name ``describe()`` lists for a trial's parameter (``<task>`` for per-task)."""
    head, _, _ = param.partition("/")
    return f"{head}/<task>" if head in PER_TASK else param


def test_a_trial_is_asked_for_exactly_the_names_describe_lists() -> None:
    # `study validate` shows describe(); a name a trial is asked for under another name is a
    # parameter the user never sees (and rows, per-setting baselines, reports miss it).
    space = make_space(EVERYTHING)
    described = space.describe()
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.enqueue_trial(space.baseline_params(), user_attrs=space.baseline_user_attrs())
    asked: set[str] = set()
    for _ in range(60):
        trial = study.ask()
        space.suggest(trial)
        study.tell(trial, 0.0)
        names = {described_name(p) for p in study.trials[-1].params}
        assert names <= set(described), sorted(names - set(described))
        asked |= names
    assert asked == set(described)
    assert aux_param("d") not in described  # excluded: never asked for


def test_describe_lists_no_single_architecture_and_no_fixed_architecture_parameter() -> None:
    single = make_space({"sharing": {"mmoe": {"num_experts": {"low": 2, "high": 4}}}})
    assert "sharing" not in single.describe()  # one architecture is never suggested
    assert single.describe()["mmoe/num_experts"] == {"low": 2, "high": 4}
    pinned = make_space({"sharing": {"hard": None, "mmoe": {"num_experts": 4}}})
    assert "mmoe/num_experts" not in pinned.describe()
    assert pinned.describe()["sharing"] == ["hard", "mmoe"]


def test_describe_lists_no_per_task_entry_when_every_task_is_fixed() -> None:
    space = make_space({"mixing": {"max_examples": {"t": 100, "*": 50}}})
    assert not any(name.startswith("max_examples") for name in space.describe())


def test_a_family_baseline_trains_the_target_alone_under_include_and_min_size() -> None:
    # The queue enqueues it with `taskgraph:family`; it must still train the target alone,
    # or the trials of that family are measured against a multi-task run.
    space = make_space(
        {
            "auxiliaries": {"include": ["a"], "min_size": 2},
            "mixing": {"max_examples": {"t": [100, 200]}},
        }
    )
    trial_params = {**only("b"), "max_examples/t": 200}
    params, attrs = space.family_baseline(trial_params, "F")
    assert attrs == {ROLE_ATTR: BASELINE_ROLE, FAMILY_ATTR: "F"}
    config, _ = fixed(space, params, **attrs)
    assert config.auxiliaries == () and config.mixing.max_examples == {"t": 200}


@pytest.mark.parametrize("settings", [False, True])
def test_each_trials_family_baseline_is_of_its_family(settings: bool) -> None:
    # `budget.baselines: per_family` / `per_setting`: the enqueued baseline must land in the
    # trial's family (and with settings, its alone settings), or gains compare across them.
    search = {
        **EVERYTHING,
        "pretraining": {
            "scheme": ["none", "random", "adaptive"],
            "steps": [10, 20],
            "learning_rate": [1e-4, 1e-3],
            "batch_size": [8, 16],
            "options": {"adaptive": {"q_end": [0.8, 0.95]}},
        },
    }
    space = make_space(search)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(25):
        trial = study.ask()
        config = space.suggest(trial)
        study.tell(trial, 0.0)
        params, attrs = space.family_baseline(study.trials[-1].params, "F", settings=settings)
        study.enqueue_trial(params, user_attrs=attrs)
        baseline = study.ask()
        alone = space.suggest(baseline)
        study.tell(baseline, 0.0)
        assert alone.auxiliaries == ()
        assert alone.family_key() == config.family_key(), study.trials[-2].params
        if settings:
            assert alone.alone_settings() == config.alone_settings(), study.trials[-2].params


def test_a_baseline_is_asked_for_no_mixing_scheme_or_transfer_mode() -> None:
    space = make_space(
        {
            "mixing": {"scheme": ["proportional", "temperature"]},
            "transfer_mode": ["joint", "sequential"],
        }
    )
    config, trial = fixed(space, only(), **space.baseline_user_attrs())
    assert set(trial.params) == set(only())
    assert config.mixing.scheme == "proportional" and config.transfer_mode == "joint"


def test_the_setting_parameters_include_the_step_budget_and_batch_size() -> None:
    space = make_space()
    params = {
        **only("a"),
        "batch_size": 16,
        "max_steps": 10,
        "epochs": 2.0,
        "mixing/scheme": "temperature",
        "pretraining/steps": 20,
    }
    assert space.setting_params(params) == {"batch_size": 16, "max_steps": 10, "epochs": 2.0}


def test_the_searched_alone_settings_are_named_exactly() -> None:
    # `study validate` prints them in its note; a name missing there hides a mixed gain, an
    # extra one (mixing, transfer, pretraining, bookkeeping) warns of nothing real.
    space = make_space(EVERYTHING)
    assert sorted(space.searched_alone_settings()) == [
        "batch_size",
        "epochs",
        "hp/warmup_ratio",
        "learning_rate",
        "loss_weighting",
        "max_steps",
        "sharing",
    ]
    mmoe = make_space({"sharing": {"soft": None, "mmoe": None}})
    assert sorted(mmoe.searched_alone_settings()) == ["mmoe/num_experts", "sharing"]


def test_a_fixed_step_budget_and_the_objective_split_reach_the_config() -> None:
    space = make_space(
        {"max_steps": 7},
        objective={"metric": "accuracy", "split": "test"},
        training={"eval_splits": ["dev"]},
    )
    config, _ = fixed(space, only("a"))
    assert config.max_steps == 7
    assert config.eval_splits == ("dev", "test")  # the objective is measured where it is read


def test_a_none_cap_leaves_the_task_uncapped() -> None:
    space = make_space({"mixing": {"max_examples": {"t": [None, 100], "*": None}}})
    config, trial = fixed(space, {**only("a"), "max_examples/t": None})
    assert "max_examples/t" in trial.params
    assert dict(config.mixing.max_examples) == {}
    config, _ = fixed(space, {**only("a"), "max_examples/t": 100})
    assert dict(config.mixing.max_examples) == {"t": 100}


def test_repair_keeps_only_free_tasks_of_the_sample() -> None:
    assert repair_subset(["x", "b"], free=["b", "c"]) == ("b",)
    assert repair_subset(["x"], free=["b", "c"], include=["a"]) == ("a",)


def test_ranges_keep_their_step() -> None:
    space = make_space(
        {
            "sharing": ["mmoe"],
            "learning_rate": {"low": 0.1, "high": 0.5, "step": 0.1},
        }
    )
    config, trial = fixed(space, {**only(), "mmoe/num_experts": 3, "learning_rate": 0.3})
    assert trial.distributions["mmoe/num_experts"].step == 1  # every integer, 3 included
    assert trial.distributions["learning_rate"].step == 0.1
    assert config.sharing_params == {"num_experts": 3}


def _rows_spec(auxiliaries: dict[str, Any], rows: list[dict[str, Any]]) -> Any:
    return spec_from_dict(
        {
            "name": "rows",
            "target": "t",
            "candidates": CANDIDATES,
            "search": {"sharing": ["hard"], "auxiliaries": auxiliaries},
            "budget": {"trials": len(rows)},
            "rows": rows,
        }
    )


@pytest.mark.parametrize(
    "auxiliaries", [{"min_size": 1}, {"include": ["a"]}, {"include": ["a"], "exclude": ["d"]}]
)
def test_a_baseline_row_compiles_whatever_the_size_constraints(auxiliaries: Any) -> None:
    # The baseline row trains the target alone, as the enqueued baseline does.
    spec = _rows_spec(auxiliaries, [{"name": "alone"}])
    space = SearchSpace(spec=spec, sharing_spaces=SPACES)
    assert space.row_config(spec.rows[0]).auxiliaries == ()


def test_rows_compile_in_a_study_with_include_and_exclude() -> None:
    rows: list[dict[str, Any]] = [{"name": "alone"}, {"name": "ab", "auxiliaries": ["a", "b"]}]
    spec = _rows_spec({"include": ["a"], "exclude": ["d"]}, rows)
    space = SearchSpace(spec=spec, sharing_spaces=SPACES)
    assert set(space.row_params(spec.rows[1])) == {aux_param("b"), aux_param("c")}
    assert space.row_config(spec.rows[1]).auxiliaries == ("a", "b")


class _FixedSpaceSharing(HardSharing):
    """A plug-in written before ``search_space`` took ``num_layers``."""

    name = "fixed_space"
    PARAMS: ClassVar[dict[str, Any]] = {"width": 1}

    @classmethod
    def search_space(cls) -> dict[str, dict[str, Any]]:  # type: ignore[override]
        return {"width": {"type": "int", "low": 1, "high": 3}}


@pytest.fixture
def fixed_space_plugin() -> Iterator[None]:
    SHARING_ARCHITECTURES.register("fixed_space", _FixedSpaceSharing)
    yield
    SHARING_ARCHITECTURES.unregister("fixed_space")


@pytest.mark.usefixtures("fixed_space_plugin")
def test_a_plugin_space_without_num_layers_is_read() -> None:
    data = {
        "name": "s",
        "target": "t",
        "candidates": CANDIDATES,
        "encoder": {"name": "tiny-bert"},
        "search": {"sharing": ["fixed_space"]},
    }
    space = SearchSpace(spec=spec_from_dict(data))
    assert space.encoder_depth == 2
    domain = space.sharing["fixed_space"]["width"]
    assert (domain.kind, domain.low, domain.high) == ("int", 1, 3)
