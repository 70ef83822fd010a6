"""``search.pretraining``: old specs stay valid (and keep their hash), the new mapping is
validated with one-line errors naming the field, and trials get a PretrainingConfig."""

from __future__ import annotations

import copy
from typing import Any

import optuna
import pytest

from taskgraph.errors import SpecError
from taskgraph.search.checks import check_spec
from taskgraph.search.space import SearchSpace
from taskgraph.spec import spec_from_dict
from taskgraph.spec.models import StudySpec
from taskgraph.trial import PretrainingConfig

optuna.logging.set_verbosity(optuna.logging.WARNING)

BASE: dict[str, Any] = {
    "name": "s",
    "target": "synth_target",
    "candidates": ["synth_related"],
    "encoder": "tiny-bert",
}
SEARCHED = {
    "scheme": ["none", "random", "adaptive"],
    "steps": {"low": 10, "high": 40, "step": 10},
    "corpus": ["synth_related"],
    "options": {"adaptive": {"q_end": [0.8, 0.95]}},
}


def spec(pretraining: Any = "absent") -> StudySpec:
    data = copy.deepcopy(BASE)
    if pretraining != "absent":
        data["search"] = {"pretraining": pretraining}
    checked = spec_from_dict(data)
    check_spec(checked)
    return checked


@pytest.mark.parametrize("old", [None, [None], "random", ["none", "adaptive"]])
def test_the_old_domain_form_stays_valid(old: Any) -> None:
    assert spec(old).search.pretraining.scheme.values() == (
        tuple(old) if isinstance(old, list) else (old,)
    )


def test_a_spec_without_pretraining_keeps_its_search_hash() -> None:
    # `pretraining: null` dumps as before (not as the new mapping), so old studies continue.
    assert spec(None).search_hash() == spec().search_hash()
    assert spec().model_dump(mode="json")["search"]["pretraining"] is None
    assert spec(SEARCHED).search_hash() != spec().search_hash()


@pytest.mark.parametrize(
    ("pretraining", "message"),
    [
        ({"scheme": "bogus"}, "search.pretraining.scheme: unknown pretraining scheme 'bogus'; "
         "allowed: none, adaptive, random"),
        ("bogus", "search.pretraining.scheme: unknown pretraining scheme 'bogus'"),
        ({"scheme": "random", "steps": 0}, "search.pretraining.steps: must be >= 1"),
        ({"scheme": "random", "steps": "abc"}, "search.pretraining.steps: expected an integer"),
        ({"scheme": "random", "learning_rate": -1.0}, "search.pretraining.learning_rate: must be > 0"),
        ({"scheme": "random", "extra": 1}, "search.pretraining.extra: unknown field"),
        ({"scheme": "adaptive", "options": {"adaptive": {"q_end": 2.0}}},
         "search.pretraining.options.adaptive.q_end: `q_end` must be a number in [0, 1], but got 2.0"),
        ({"scheme": "adaptive", "options": {"adaptive": {"q_start": "a"}}},
         "search.pretraining.options.adaptive.q_start: `q_start` must be a number in [0, 1], "
         "but got 'a'"),
        ({"scheme": "adaptive", "options": {"adaptive": {"bandwidth": [0.1, "x"]}}},
         "search.pretraining.options.adaptive.bandwidth: `bandwidth` must be a number in (0, 1], "
         "but got 'x'"),
        ({"scheme": "adaptive", "options": {"adaptive": {"nope": 1}}},
         "search.pretraining.options.adaptive.nope: unknown option of 'adaptive'; allowed: "
         "mask_rate, q_start"),
        ({"scheme": "adaptive", "options": {"random": {"mask_rate": 0.2}}},
         "search.pretraining.options.random: not a scheme this study searches; allowed: adaptive"),
        ({"scheme": "random", "corpus": ["nope"]},
         "search.pretraining.corpus[0]: 'nope' is neither a task nor a text file"),
    ],
)  # fmt: skip
def test_bad_values_are_one_line_naming_the_field(pretraining: Any, message: str) -> None:
    with pytest.raises((SpecError, ValueError)) as caught:
        spec(pretraining)
    text = str(caught.value)
    assert message in text, text
    assert "\n" not in text.strip() or text.count("search.pretraining") == 1


def test_trials_get_a_pretraining_config_with_conditional_parameters() -> None:
    space = SearchSpace(spec=spec(SEARCHED), sharing_spaces={"hard": {}})
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen: dict[str | None, int] = {}
    for _ in range(30):
        trial = study.ask()
        config = space.suggest(trial)
        study.tell(trial, 0.0)
        scheme = None if config.pretraining is None else config.pretraining.scheme
        seen[scheme] = seen.get(scheme, 0) + 1
        params = study.trials[-1].params
        if config.pretraining is None:
            assert params["pretraining"] == "none"
            assert not any(k.startswith("pretraining/") for k in params)
            continue
        assert isinstance(config.pretraining, PretrainingConfig)
        assert config.pretraining.corpus == ("synth_related",)
        assert config.pretraining.steps in (10, 20, 30, 40)
        if scheme == "adaptive":
            assert config.pretraining.options["q_end"] in (0.8, 0.95)
        else:
            assert dict(config.pretraining.options) == {}
            assert "pretraining/adaptive/q_end" not in params
    assert set(seen) == {None, "random", "adaptive"}
    described = space.describe()
    assert described["pretraining"] == ["none", "random", "adaptive"]
    assert described["pretraining/adaptive/q_end"] == [0.8, 0.95]


def test_windows_longer_than_the_encoders_positions_are_refused_before_any_trial() -> None:
    """MiniLM and tiny-bert have 512 positions: a longer window failed every trial at its
    first batch (the stage's too) with a raw tensor-size error."""
    with pytest.raises(SpecError, match=r"search\.pretraining\.max_length: 600 tokens, but "
                       r"encoder 'tiny-bert' has 512 positions"):  # fmt: skip
        spec({**SEARCHED, "max_length": 600})
    data = {**copy.deepcopy(BASE), "encoder": {"name": "minilm", "max_length": 513}}
    with pytest.raises(SpecError, match=r"encoder\.max_length: 513 tokens, .* 512 positions"):
        check_spec(spec_from_dict(data))
    wide = {**copy.deepcopy(BASE), "encoder": {"name": "tiny-bert", "max_length": 600,
            "options": {"max_position_embeddings": 1024}}}  # fmt: skip
    check_spec(spec_from_dict(wide))  # a tiny-bert configured with more positions is fine
