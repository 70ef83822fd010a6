"""Arguments an estimator must refuse: a task name given as a string, records it cannot fit."""

from __future__ import annotations

import numpy as np
import pytest

from taskgraph.affinity import ScoreRecord, compute_gains, make_estimator, recommend_auxiliaries
from taskgraph.affinity.estimators import AffinityEstimator
from taskgraph.errors import ConfigError

METHODS = ["setfn", "sourcerank", "hoa", "pairwise"]


def _records() -> list[ScoreRecord]:
    sets = {
        "ner": [({"ner"}, 0.5), ({"ner", "pos"}, 0.6), ({"ner", "chunk"}, 0.4)],
        "pos": [({"pos"}, 0.5), ({"ner", "pos"}, 0.55)],
        "chunk": [({"chunk"}, 0.7), ({"ner", "chunk"}, 0.6)],
    }
    return [
        ScoreRecord(task, frozenset(task_set), value)
        for task, rows in sets.items()
        for task_set, value in rows
    ]


@pytest.fixture(scope="module", params=METHODS)
def fitted(request: pytest.FixtureRequest) -> AffinityEstimator:
    return make_estimator(request.param).fit(_records())


def test_predict_refuses_a_task_name_given_as_a_string(fitted: AffinityEstimator) -> None:
    with pytest.raises(
        ConfigError, match=r"`task_set` must be a collection .* 'pos'; pass \{'pos'\}"
    ):
        fitted.predict("ner", "pos")
    mean, _ = fitted.predict("ner", {"pos"})
    assert mean > 0.0  # the set works: ner gains from pos in the records


def test_predict_many_refuses_strings_for_the_sets_or_the_list(fitted: AffinityEstimator) -> None:
    with pytest.raises(ConfigError, match=r"`task_sets\[0\]` must be a collection .* 'pos'"):
        fitted.predict_many("ner", ["pos", "chunk"])
    with pytest.raises(ConfigError, match=r"`task_sets` must be a sequence of task sets"):
        fitted.predict_many("ner", "pos")  # type: ignore[arg-type]
    means, _ = fitted.predict_many("ner", [{"pos"}, ["chunk"]])
    assert means[0] > 0.0 > means[1]


def test_n_evidence_and_sample_gains_refuse_a_string(fitted: AffinityEstimator) -> None:
    with pytest.raises(ConfigError, match=r"`task_set` must be a collection .* 'pos'"):
        fitted.n_evidence("ner", "pos")
    assert fitted.n_evidence("ner", {"pos"}) == 1
    with pytest.raises(ConfigError, match=r"task set of `queries\[0\]` must be a collection"):
        fitted.sample_gains([("ner", "pos")], np.random.default_rng(0))


def test_recommend_refuses_candidates_given_as_one_string(fitted: AffinityEstimator) -> None:
    with pytest.raises(
        ConfigError, match=r"`candidates` must be .* 'pos,chunk'; pass \{'pos', 'chunk'\}"
    ):
        recommend_auxiliaries(fitted, "ner", k=3, candidates="pos,chunk")
    best = recommend_auxiliaries(fitted, "ner", k=3, candidates=["pos", "chunk"])
    assert best[0].auxiliaries == ("pos",)


def test_gains_refuse_records_of_one_metric_that_disagree_on_direction() -> None:
    records = [
        ScoreRecord("a", frozenset({"a"}), 0.5, higher_is_better=True),
        ScoreRecord("a", frozenset({"a", "b"}), 0.6, higher_is_better=False),
    ]
    for ordered in (records, records[::-1]):
        with pytest.raises(ConfigError, match=r"task 'a' .*split 'dev'.* `higher_is_better`"):
            compute_gains(ordered)
    # One direction throughout is fine, and a loss (lower is better) turns the sign.
    lower = [ScoreRecord(r.task, r.task_set, r.value, higher_is_better=False) for r in records]
    assert compute_gains(lower).gains[0].mean == pytest.approx(-0.2)


@pytest.mark.parametrize("method", METHODS)
def test_fit_on_no_records_is_refused(method: str) -> None:
    with pytest.raises(ConfigError, match="no gains to fit: there are no finite score records"):
        make_estimator(method).fit([])
