"""Task sampling schemes: the mixing distribution and its reproducibility."""

from __future__ import annotations

import math

import pytest

from taskgraph.errors import ConfigError, UnknownNameError
from taskgraph.training.sampling import SAMPLING_SCHEMES, TaskSampler
from taskgraph.trial import MixingConfig

SIZES = {"a": 900, "b": 100}


def _p(scheme: str, step: int = 0, **kwargs: object) -> dict[str, float]:
    mixing = MixingConfig(scheme=scheme, **kwargs)  # type: ignore[arg-type]
    return TaskSampler(sizes=SIZES, mixing=mixing, total_steps=100, seed=0).probabilities(step)


def test_scheme_probabilities() -> None:
    assert _p("proportional") == pytest.approx({"a": 0.9, "b": 0.1})
    assert _p("uniform") == pytest.approx({"a": 0.5, "b": 0.5})
    # p ~ n^(1/T): T = 2 gives 30:10
    assert _p("temperature", temperature=2.0) == pytest.approx({"a": 0.75, "b": 0.25})
    # annealed: exponent 1/T at the start, 1 at the end
    assert _p("annealed", 0, temperature=2.0) == pytest.approx({"a": 0.75, "b": 0.25})
    assert _p("annealed", 100, temperature=2.0) == pytest.approx({"a": 0.9, "b": 0.1})
    middle = _p("annealed", 50, temperature=2.0)["a"]
    exponent = 0.75
    assert middle == pytest.approx(900**exponent / (900**exponent + 100**exponent))


def test_weights_multiply_before_normalising() -> None:
    assert _p("uniform", weights={"b": 3.0}) == pytest.approx({"a": 0.25, "b": 0.75})
    assert _p("proportional", weights={"a": 0.0})["b"] == 1.0


def test_draws_follow_the_distribution_and_resume() -> None:
    sampler = TaskSampler(sizes=SIZES, mixing=MixingConfig(), total_steps=10, seed=3)
    draws = sampler.sample(0, 20000)
    assert math.isclose(draws.count("b") / len(draws), 0.1, abs_tol=0.01)
    state = sampler.state_dict()
    ahead = sampler.sample(1, 50)
    again = TaskSampler(sizes=SIZES, mixing=MixingConfig(), total_steps=10, seed=99)
    again.load_state_dict(state)
    assert again.sample(1, 50) == ahead


def test_bad_mixing_is_a_config_error() -> None:
    with pytest.raises(
        UnknownNameError, match="known: annealed, proportional, temperature, uniform"
    ):
        _p("bogus")
    with pytest.raises(ConfigError, match="`temperature` must be > 0"):
        _p("temperature", temperature=0.0)
    for temperature in (math.nan, math.inf):  # NaN probabilities, then a numpy ValueError
        with pytest.raises(ConfigError, match="`temperature` must be > 0 and finite"):
            _p("temperature", temperature=temperature)
    with pytest.raises(ConfigError, match="mixing weight of 'b' must be >= 0 and finite"):
        _p("uniform", weights={"b": math.inf})
    with pytest.raises(ConfigError, match="not in the task set: c"):
        _p("uniform", weights={"c": 1.0})
    with pytest.raises(ConfigError, match="all zero"):
        _p("uniform", weights={"a": 0.0, "b": 0.0})
    assert SAMPLING_SCHEMES.names() == ["annealed", "proportional", "temperature", "uniform"]
