"""Runs with a pretraining stage: the scheme is filterable (no migration: it is read from the
run's stored TrialConfig) and a pretrained run is its own model family."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from taskgraph.cli.app import app
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


def test_the_stage_report_is_stored_with_the_run_and_comes_back(tmp_path: Path) -> None:
    # Cost, curve and cache flag of the masked-LM stage are part of the run's record: they
    # come back in trial_result() and `records show`, and the stored config still rebuilds.
    url = f"sqlite:///{tmp_path / 'records.db'}"
    report = {
        "scheme": "adaptive",
        "steps": 40,
        "tokens": 1234,
        "seconds": 2.5,
        "curve": [[20, 0.05, 0.1, 0.2], [40, 0.125, 0.3, 0.4]],  # adaptive: 4 values
        "corpus_fingerprint": "abc",
        "cached": False,
    }
    config = TrialConfig(target="ner", pretraining=PretrainingConfig(scheme="adaptive", steps=40))
    ran = result(0.5)
    ran.pretraining = report
    cached = result(0.6)
    cached.pretraining = {**report, "cached": True}
    with open_repository(url) as repo:
        first = repo.add_run_result(study="s", trial_number=0, config=config, result=ran)
        second = repo.add_run_result(study="s", trial_number=1, config=config, result=cached)
        plain = repo.add_run_result(
            study="s", trial_number=2, config=TrialConfig(target="ner"), result=result(0.4)
        )
        stored, hit, none = repo.run(first), repo.run(second), repo.run(plain)
    assert stored.pretraining_report == report
    assert stored.trial_config() == config  # the report is not configuration
    assert stored.model_config_hash == config.model_config_hash()
    rebuilt = stored.trial_result()
    assert rebuilt.pretraining == report
    assert (rebuilt.cost.pretrain_seconds, rebuilt.cost.pretrain_tokens) == (2.5, 1234)
    # A checkpoint from the cache cost this trial nothing; the report still says what it was.
    assert hit.trial_result().cost.pretrain_seconds == 0.0
    assert hit.pretraining_report is not None and hit.pretraining_report["cached"] is True
    assert none.pretraining_report is None and none.trial_result().pretraining is None

    out = CliRunner().invoke(app, ["records", "show", str(first), "--storage", url])
    assert out.exit_code == 0, out.output
    assert "pretraining: adaptive, 40 steps, 1,234 tokens, 2.5 s (ran in this trial)" in out.output
    assert "0.050 at step 20 -> 0.125 at step 40 (2 points)" in out.output
