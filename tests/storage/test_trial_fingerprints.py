"""`Repository.trial_fingerprints`: each trial's latest recorded fingerprint of a task, on
every backend (what the engine reads after each trial instead of loading every run)."""

from __future__ import annotations

from taskgraph.storage import open_repository
from taskgraph.trial import Cost, TrialConfig, TrialResult, TrialStatus


def _add(repo, number: int, prints: dict[str, str], seed: int = 0) -> None:
    config = TrialConfig(target="ner", auxiliaries=("pos",), seed=seed)
    result = TrialResult(
        status=TrialStatus.COMPLETE,
        scores={"ner": {"dev": {"f1": 0.5}}},
        objective=0.5,
        cost=Cost(seconds=1.0),
    )
    repo.add_run_result(
        study="s", trial_number=number, config=config, result=result, task_fingerprints=prints
    )


def test_each_trials_latest_fingerprint_of_a_task(storage_url: str) -> None:
    with open_repository(storage_url) as repo:
        _add(repo, 0, {"ner": "a" * 64, "pos": "p" * 64})
        _add(repo, 1, {"ner": "a" * 64, "pos": "p" * 64})
        _add(repo, 1, {"ner": "b" * 64, "pos": "p" * 64}, seed=1)  # retrained on new data
        _add(repo, 2, {"pos": "p" * 64})  # the target's fingerprint not recorded
        found = repo.trial_fingerprints("s", "ner")
        assert found == {0: "a" * 64, 1: "b" * 64, 2: None}
        expected = {r.trial_number: r.task_fingerprints.get("ner") for r in repo.runs(study="s")}
        assert found == expected  # what the engine read from every run before
        assert repo.trial_fingerprints("other", "ner") == {}
