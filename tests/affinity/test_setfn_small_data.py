"""``setfn`` with ``SMALL_DATA_HYPERPRIOR`` on a user's first study: one target, a handful of gains."""

from __future__ import annotations

import numpy as np
import pytest

from taskgraph.affinity.estimators import HigherOrderEstimator, SetFunctionEstimator
from taskgraph.affinity.estimators.setfn import SMALL_DATA_HYPERPRIOR
from taskgraph.affinity.records import ScoreRecord
from taskgraph.errors import ConfigError

BASELINE = 0.7002
# Relative gains measured on the README demo study (synthetic family: "related" and
# "cls_related" help, "unrelated" is neutral, "conflict" hurts); the pair of the two helpful
# tasks is a noisy low draw, as a trial with a bad learning rate gives.
DEMO = {
    ("related",): 0.428,
    ("cls_related",): 0.428,
    ("unrelated",): 0.014,
    ("conflict",): -0.227,
    ("related", "unrelated"): 0.428,
    ("cls_related", "unrelated"): 0.362,
    ("cls_related", "related"): 0.026,
}
# A TPE run of the same study: one single and three pairs measured.
SPARSE = {
    ("related",): 0.428,
    ("cls_related", "conflict"): 0.036,
    ("cls_related", "related"): 0.315,
    ("cls_related", "unrelated"): 0.406,
}
AUXILIARIES = ("related", "cls_related", "unrelated", "conflict")


def _records(gains: dict[tuple[str, ...], float]) -> list[ScoreRecord]:
    records = [ScoreRecord(task="target", task_set=frozenset({"target"}), value=BASELINE)]
    for aux, gain in gains.items():
        records.append(
            ScoreRecord(
                task="target", task_set=frozenset({"target", *aux}), value=BASELINE * (1 + gain)
            )
        )
    return records


def _all_sets() -> list[frozenset[str]]:
    singles = [frozenset({s}) for s in AUXILIARIES]
    pairs = [frozenset({s, t}) for i, s in enumerate(AUXILIARIES) for t in AUXILIARIES[i + 1 :]]
    return singles + pairs


def test_ranking_respects_the_measured_singles_of_one_target() -> None:
    model = SetFunctionEstimator(hyperprior=SMALL_DATA_HYPERPRIOR).fit(_records(DEMO))
    sets = _all_sets()
    means, stds = model.predict_many("target", sets)
    predicted = dict(zip(sets, means, strict=True))
    harmful = [predicted[s] for s in sets if "conflict" in s]
    helpful = [predicted[s] for s in sets if s <= {"related", "cls_related"}]
    # Every set with the task that hurt alone ranks below every set of only helpful tasks.
    assert max(harmful) < min(helpful)
    assert (
        predicted[frozenset({"related"})]
        > predicted[frozenset({"unrelated"})]
        > predicted[frozenset({"conflict"})]
    )
    assert predicted[frozenset({"conflict"})] < 0
    # As HOA does, the conflict singles and pairs rank last; unlike HOA, pairs get distinct means.
    hoa = HigherOrderEstimator().fit(_records(DEMO))
    hoa_means = hoa.predict_many("target", sets)[0]
    assert int(np.argmin(means)) == int(np.argmin(hoa_means)) == sets.index(frozenset({"conflict"}))
    # An unmeasured set is about as uncertain as the measured gains are spread, not collapsed.
    spread = float(np.std(list(DEMO.values())))
    assert stds[sets.index(frozenset({"conflict", "unrelated"}))] > 0.5 * spread


def test_unmeasured_single_is_not_extrapolated_with_false_confidence() -> None:
    model = SetFunctionEstimator(hyperprior=SMALL_DATA_HYPERPRIOR).fit(_records(SPARSE))
    spread = float(np.std(list(SPARSE.values())))
    mean, std = model.predict("target", {"unrelated"})
    # Without a hyperprior the noise went to zero and the additive fit claimed +0.61 +- 0.001.
    assert std > 0.5 * spread
    assert mean < max(SPARSE.values())
    measured_mean, measured_std = model.predict("target", {"related"})
    assert abs(measured_mean - SPARSE[("related",)]) < 2 * measured_std
    assert model.describe()["noise"] > 1e-3


def test_hyperprior_is_validated_and_reported() -> None:
    with pytest.raises(ConfigError, match="hyperprior"):
        SetFunctionEstimator(hyperprior=(1.0, 0.0))
    model = SetFunctionEstimator(hyperprior=SMALL_DATA_HYPERPRIOR).fit(_records(DEMO))
    assert model.describe()["hyperprior"] == [1.0, 2.0]
    plain = SetFunctionEstimator().fit(_records(DEMO))  # the default stays ML-II (module docstring)
    assert plain.describe()["hyperprior"] is None
    assert (
        np.ptp(plain.predict_many("target", [{"related"}, {"conflict"}])[0]) < 1e-3
    )  # the collapse it fixes
