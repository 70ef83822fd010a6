"""Reads of :mod:`taskgraph.storage.run_queries` that a mutation audit found untested.

Each test pins one behaviour a user would see go wrong: `records list` showing other runs, a
gain taken from a failed baseline, the engine skipping another study's trial numbers.  The
fixtures make ids that differ between tables, so a join on the wrong id column shows.
"""

from __future__ import annotations

import pytest

from taskgraph.storage import open_repository
from taskgraph.trial import Cost, MixingConfig, TrialConfig, TrialResult, TrialStatus


@pytest.fixture
def url(sqlite_url: str) -> str:
    """The SQL of these reads does not branch on the dialect: SQLite alone is enough."""
    return sqlite_url


def _unscored_target_run() -> tuple[TrialConfig, TrialResult]:
    """Return a run of ner+pos that scored pos only, its target capped so that the run's
    own family differs from the family of its one score."""
    config = TrialConfig(
        target="ner", auxiliaries=("pos",), mixing=MixingConfig(max_examples={"ner": 100})
    )
    result = TrialResult(
        status=TrialStatus.COMPLETE,
        scores={"pos": {"dev": {"f1": 0.4}}},
        objective=0.4,
        cost=Cost(seconds=1.0),
    )
    return config, result


def test_contains_matches_task_sets_not_run_ids(url, make_trial):
    with open_repository(url) as repo:
        for seed in (0, 1):  # two runs of one task set: run ids run ahead of task set ids
            cfg, res = make_trial("ner", seed=seed)
            repo.add_run_result(study="s", trial_number=seed, config=cfg, result=res)
        cfg, res = make_trial("ner", ("pos",))
        joint = repo.add_run_result(study="s", trial_number=2, config=cfg, result=res)
        assert [run.id for run in repo.runs(contains="pos")] == [joint]


@pytest.mark.parametrize("prefix", ["_", "%"])
def test_a_like_wildcard_in_a_model_config_prefix_matches_no_hash(url, make_trial, prefix):
    with open_repository(url) as repo:
        cfg, res = make_trial("ner")
        repo.add_run_result(study="s", trial_number=0, config=cfg, result=res)
        assert repo.runs(model_config=prefix) == []


def test_runs_of_a_family_are_those_with_a_score_of_it(url):
    config, result = _unscored_target_run()
    with open_repository(url) as repo:
        repo.add_run_result(study="s", trial_number=0, config=config, result=result)
        assert {score.family for score in repo.score_records(status=None)} != {config.family_key()}
        # export keeps no row of the run's own family: `records list --family` must agree.
        assert repo.runs(family=config.family_key()) == []


def test_families_of_a_scored_run_are_its_scores_not_its_own(url):
    config, result = _unscored_target_run()
    with open_repository(url) as repo:
        repo.add_run_result(study="s", trial_number=0, config=config, result=result)
        families = {score.family for score in repo.score_records(status=None)}
        assert repo.families() == families != {config.family_key()}


def test_baselines_leave_out_failed_single_task_runs_by_default(url, make_trial):
    with open_repository(url) as repo:
        cfg, res = make_trial("ner", status=TrialStatus.FAILED)
        repo.add_run_result(study="s", trial_number=0, config=cfg, result=res)
        cfg, res = make_trial("ner", seed=1)
        complete = repo.add_run_result(study="s", trial_number=1, config=cfg, result=res)
        assert [run.id for run in repo.baselines(target="ner")] == [complete]


def test_trial_numbers_are_the_named_studys_only(url, make_trial):
    with open_repository(url) as repo:
        cfg, res = make_trial("ner")
        repo.add_run_result(study="a", trial_number=0, config=cfg, result=res)
        repo.add_run_result(study="b", trial_number=5, config=cfg, result=res)
        assert repo.trial_numbers("a") == {0}


def test_complete_run_data_names_each_runs_model_config_and_task_set(url, make_trial):
    with open_repository(url) as repo:
        alone, res = make_trial("ner")
        repo.add_run_result(study="s", trial_number=0, config=alone, result=res)
        joint, res = make_trial("ner", ("pos",))
        repo.add_run_result(study="s", trial_number=1, config=joint, result=res)
        keys = set(repo.complete_run_data("s"))
    assert keys == {
        (alone.model_config_hash(), "ner", "ner", 0),
        (joint.model_config_hash(), "ner+pos", "ner", 0),
    }


def test_targets_name_each_target_once(url, make_trial):
    with open_repository(url) as repo:
        for seed in (0, 1):
            cfg, res = make_trial("ner", seed=seed)
            repo.add_run_result(study="s", trial_number=seed, config=cfg, result=res)
        assert repo.targets() == ["ner"]


def test_study_fingerprints_are_the_latest_runs(url, make_trial):
    with open_repository(url) as repo:
        for number, fingerprint in enumerate(("sha256:old", "sha256:new")):
            cfg, res = make_trial("ner", seed=number)
            repo.add_run_result(
                study="s", trial_number=number, config=cfg, result=res,
                task_fingerprints={"ner": fingerprint},
            )  # fmt: skip
        assert repo.study_fingerprints("s") == {"ner": "sha256:new"}


def test_a_study_stored_without_a_spec_has_an_empty_one(url, make_trial):
    with open_repository(url) as repo:
        cfg, res = make_trial("ner")
        repo.add_run_result(study="s", trial_number=0, config=cfg, result=res)
        assert repo.study_specs() == {"s": {}}
