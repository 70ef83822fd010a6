"""Runs with a pretraining stage: the scheme is filterable (no migration: it is read from the
run's stored TrialConfig) and a pretrained run is its own model family."""

from __future__ import annotations

from pathlib import Path

from taskgraph.storage import open_repository
from taskgraph.trial import Cost, PretrainingConfig, TrialConfig, TrialResult, TrialStatus


def result(value: float) -> TrialResult:
    return TrialResult(
        status=TrialStatus.COMPLETE,
        scores={"ner": {"dev": {"f1": value}}},
        objective=value,
        cost=Cost(seconds=1.0, tokens=10, pretrain_seconds=0.5, pretrain_tokens=4),
    )


def test_records_filter_by_pretraining_scheme(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'records.db'}"
    configs = {
        "none": TrialConfig(target="ner"),
        "random": TrialConfig(target="ner", pretraining=PretrainingConfig(scheme="random")),
        "adaptive": TrialConfig(target="ner", pretraining=PretrainingConfig(scheme="adaptive")),
    }
    with open_repository(url) as repo:
        for number, config in enumerate(configs.values()):
            repo.add_run_result(
                study="s", trial_number=number, config=config, result=result(0.1 * number)
            )
        for scheme, config in configs.items():
            runs = repo.runs(pretraining=scheme)
            assert [run.trial_config() for run in runs] == [config]
            assert runs[0].family == config.family_key()
        assert len(repo.runs()) == 3
        assert repo.runs(pretraining="bogus") == []
    assert len({c.family_key() for c in configs.values()}) == 3
