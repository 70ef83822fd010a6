"""What ``taskgraph.study_summary`` and ``taskgraph.study_status`` give a notebook: the target,
the budget and counts, ``top``, and each trial's version of the target's data.

The fake evaluator's runs carry the dataset fingerprints a runner gives (``source_fingerprints``),
so the records name the target's data version that the report shows for each trial.
"""

from __future__ import annotations

import pytest

import taskgraph
from taskgraph.search.engine import StudyEngine
from taskgraph.spec import spec_from_dict
from taskgraph.testing import SHARING_SPACES, FakeEvaluator


@pytest.fixture(scope="module")
def studied(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Return the URL of a database holding study ``sf``: 4 trials on target data ``tv1``."""
    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'sf.db'}"
    spec = spec_from_dict(
        {
            "name": "sf",
            "target": "tgt",
            "candidates": ["good", "meh"],
            "search": {"auxiliaries": {"min_size": 1}},
            "sampler": {"name": "random", "seed": 0},
            "pruner": "none",
            "seeds": 1,
            "budget": {"trials": 4},
        }
    )
    engine = StudyEngine(
        spec=spec,
        storage_url=url,
        evaluator=FakeEvaluator(),
        sharing_spaces=SHARING_SPACES,
        source_fingerprints={"tgt": "tv1", "good": "g1", "meh": "m1"},
    )
    engine.run()
    engine.close()
    return url


def test_summary_rows_carry_the_target_data_version_of_their_records(studied: str) -> None:
    report = taskgraph.study_summary("sf", storage=studied)
    assert len(report["gains"]) == 4  # every trial, the baseline too
    assert {row["data_version"] for row in report["gains"]} == {"tv1"}
    assert all(row["measured_absolute_gain"] is not None for row in report["gains"])


def test_summary_top_keeps_that_many_rows(studied: str) -> None:
    whole = taskgraph.study_summary("sf", storage=studied)
    report = taskgraph.study_summary("sf", storage=studied, top=1)
    assert [row["trial"] for row in report["gains"]] == [whole["gains"][0]["trial"]]


def test_status_names_the_target_budget_and_counts(studied: str) -> None:
    status = taskgraph.study_status("sf", storage=studied)
    assert status["target"] == "tgt" and status["name"] == "sf"
    assert (status["budget"], status["n_done"], status["n_complete"]) == (4, 4, 4)
    assert status["baseline_trial"] == 0
    best = taskgraph.study_summary("sf", storage=studied)["best"]
    assert (status["best_trial"], status["best_value"]) == (best["trial"], best["score"])
