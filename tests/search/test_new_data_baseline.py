"""A study resumed after its target's data changed trains the baseline again on the new data.

``study show`` measures a trial only against a baseline on the same version of the target's
data (its dataset fingerprint).  The engine enqueued no baseline on the new version, neither
when resumed nor later, so every trial after an edit of the target's file had no measured
gain, for good.  The fake evaluator's runs carry the dataset fingerprints a runner gives
(``source_fingerprints``): ``v1``, then ``v2`` for the target.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState
from typer.testing import CliRunner

from taskgraph.cli.app import app
from taskgraph.search.engine import StudyEngine
from taskgraph.search.progress import CONFIG_ATTR, REPEATS_ATTR
from taskgraph.search.space import BASELINE_ROLE, FAMILY_ATTR, ROLE_ATTR
from taskgraph.spec import StudySpec, spec_from_dict
from taskgraph.storage import open_repository
from taskgraph.testing import SHARING_SPACES, FakeEvaluator
from taskgraph.trial import Cost, TrialConfig, TrialResult

runner = CliRunner()


def _spec(trials: int, baselines: str, *, families: bool = False, max_retry: int = 3) -> StudySpec:
    search: dict[str, Any] = {"auxiliaries": {"min_size": 1}}
    if families:
        # two model families: each gets a baseline of its own under per_family
        search["mixing"] = {"max_examples": {"tgt": [50, 100]}}
    return spec_from_dict(
        {
            "name": "nd",
            "target": "tgt",
            "objective": {"metric": "accuracy"},
            "candidates": ["good", "meh"],
            "search": search,
            "sampler": {"name": "random", "seed": 0},
            "pruner": "none",
            "seeds": 1,
            "budget": {"trials": trials, "max_failures": 5, "baselines": baselines},
            "recovery": {"max_retry": max_retry},
        }
    )


def _engine(url: str, spec: StudySpec, target_print: str, evaluator: FakeEvaluator) -> StudyEngine:
    return StudyEngine(
        spec=spec,
        storage_url=url,
        evaluator=evaluator,
        sharing_spaces=SHARING_SPACES,
        source_fingerprints={"tgt": target_print, "good": "g1", "meh": "m1"},
    )


class _FailAlone(FakeEvaluator):
    """Fails the first ``times`` trainings of the target alone (a transient error)."""

    def __init__(self, times: int) -> None:
        super().__init__()
        self.times = times

    def evaluate(self, config: TrialConfig, **kwargs: Any) -> TrialResult:
        if not config.auxiliaries and self.times > 0:
            self.times -= 1
            self.calls.append(config)
            return TrialResult.failed("fake failure: out of memory", cost=Cost(seconds=0.01))
        return super().evaluate(config, **kwargs)


def _run(
    url: str, spec: StudySpec, target_print: str, evaluator: FakeEvaluator | None = None
) -> FakeEvaluator:
    evaluator = evaluator or FakeEvaluator()
    engine = _engine(url, spec, target_print, evaluator)
    try:
        engine.run()
    finally:
        engine.close()
    return evaluator


def _trials(url: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name="nd", storage=url).trials


def _baselines(trials: list[optuna.trial.FrozenTrial]) -> list[optuna.trial.FrozenTrial]:
    return [t for t in trials if t.user_attrs.get(ROLE_ATTR) == BASELINE_ROLE]


def _show(url: str) -> dict[int, dict[str, Any]]:
    result = runner.invoke(app, ["study", "show", "nd", "--storage", url, "--json"])
    assert result.exit_code == 0, result.output
    return {row["trial"]: row for row in json.loads(result.stdout)["gains"]}


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'records.db'}"


@pytest.mark.parametrize("baselines", ["one", "per_family", "per_setting"])
def test_resume_on_edited_target_data_trains_one_baseline_on_it(url: str, baselines: str) -> None:
    _run(url, _spec(4, baselines), "v1")
    before = _trials(url)
    assert [t.number for t in _baselines(before)] == [0]
    evaluator = _run(url, _spec(8, baselines), "v2")
    trials = _trials(url)
    assert len(trials) == 8
    new = _baselines(trials)[1:]
    # the first trial of the resumed run: the first baseline's configuration, trained afresh
    assert [t.number for t in new] == [4]
    baseline = new[0]
    assert baseline.state == TrialState.COMPLETE
    assert REPEATS_ATTR not in baseline.user_attrs  # not a repeat of trial 0 (other data)
    assert baseline.user_attrs[CONFIG_ATTR] == before[0].user_attrs[CONFIG_ATTR]
    assert FAMILY_ATTR not in baseline.user_attrs
    assert TrialConfig.from_dict(baseline.user_attrs[CONFIG_ATTR]).auxiliaries == ()
    assert evaluator.calls[0].auxiliaries == ()
    with open_repository(url) as repo:
        runs = {r.trial_number: r.task_fingerprints["tgt"] for r in repo.runs(study="nd")}
    assert runs[0] == "v1" and runs[4] == "v2"
    rows = _show(url)
    assert len(rows) == 8
    for number, row in rows.items():
        assert row["data_version"] == ("v1" if number < 4 else "v2"), number
        assert row["baseline_trial"] == (0 if number < 4 else 4), number
        assert row["no_baseline_because"] is None, number
        assert row["measured_absolute_gain"] == pytest.approx(
            row["value"] - rows[row["baseline_trial"]]["value"]
        )
    # Resumed again on the same data: nothing more is enqueued, and no other baseline trains.
    engine = _engine(url, _spec(8, baselines), "v2", FakeEvaluator())
    try:
        engine.open()
    finally:
        engine.close()
    assert len(_trials(url)) == 8
    _run(url, _spec(12, baselines), "v2")
    trials = _trials(url)
    assert len(trials) == 12
    assert [t.number for t in _baselines(trials)] == [0, 4]
    assert all(row["baseline_trial"] == 4 for n, row in _show(url).items() if n >= 4)


def test_a_resume_on_unchanged_data_enqueues_no_baseline(url: str) -> None:
    _run(url, _spec(4, "one"), "v1")
    engine = _engine(url, _spec(4, "one"), "v1", FakeEvaluator())
    try:
        engine.open()
    finally:
        engine.close()
    assert len(_trials(url)) == 4
    evaluator = _run(url, _spec(6, "one"), "v1")
    trials = _trials(url)
    assert [t.number for t in _baselines(trials)] == [0]
    assert all(config.auxiliaries for config in evaluator.calls)


def test_per_family_baselines_follow_the_new_data(url: str) -> None:
    # Both families had their baseline on v1; on v2 each gets one again once a trial of it
    # runs on the new data, and every trial on v2 is measured against its family's.
    _run(url, _spec(10, "per_family", families=True), "v1")
    first = _trials(url)
    old_families = {
        TrialConfig.from_dict(t.user_attrs[CONFIG_ATTR]).family_key() for t in _baselines(first)
    }
    assert len(old_families) == 2  # the setup reached both families
    _run(url, _spec(24, "per_family", families=True), "v2")
    trials = _trials(url)
    later = [t for t in _baselines(trials) if t.number >= len(first)]
    families = [TrialConfig.from_dict(t.user_attrs[CONFIG_ATTR]).family_key() for t in later]
    assert sorted(families) == sorted(old_families)  # one per family on the new data
    rows = _show(url)
    for number, row in rows.items():
        if row["value"] is None:
            continue
        assert row["no_baseline_because"] is None, (number, row["no_baseline_because"])
        assert row["data_version"] == ("v1" if number < len(first) else "v2")
        assert (row["baseline_trial"] >= len(first)) == (number >= len(first)), number


def test_a_failed_baseline_on_the_new_data_is_retried_then_given_up(url: str) -> None:
    _run(url, _spec(4, "one", max_retry=1), "v1")
    # fails once, retried at once (recovery.max_retry: 1), then trains
    _run(url, _spec(8, "one", max_retry=1), "v2", _FailAlone(1))
    trials = _trials(url)
    assert [(t.number, t.state) for t in _baselines(trials)[1:]] == [
        (4, TrialState.FAIL),
        (5, TrialState.COMPLETE),
    ]
    rows = _show(url)
    assert all(row["baseline_trial"] == 5 for n, row in rows.items() if n >= 5)
    # on v3 it fails twice: given up, the later trials have no gain and say why
    _run(url, _spec(14, "one", max_retry=1), "v3", _FailAlone(2))
    trials = _trials(url)
    on_v3 = [t for t in _baselines(trials) if t.number >= 8]
    assert [t.state for t in on_v3] == [TrialState.FAIL, TrialState.FAIL]
    rows = _show(url)
    later = [row for n, row in rows.items() if n >= 10]
    assert later and all(row["measured_absolute_gain"] is None for row in later)
    assert all("no complete baseline trial on this version" in row["no_baseline_because"]
               for row in later)  # fmt: skip
    engine = _engine(url, _spec(14, "one", max_retry=1), "v3", FakeEvaluator())
    try:
        engine.open()  # gave up on v3: nothing enqueued
    finally:
        engine.close()
    assert len(_trials(url)) == 14


def test_a_resume_with_its_budget_spent_leaves_no_baseline_waiting(url: str) -> None:
    """With no trial left, a baseline enqueued on the new data waited for a `study resume`
    that never ran it ('1 waiting'); it is enqueued once the budget leaves room."""
    _run(url, _spec(4, "one"), "v1")
    _run(url, _spec(4, "one"), "v2")
    trials = _trials(url)
    assert len(trials) == 4 and all(t.state != TrialState.WAITING for t in trials)
    _run(url, _spec(6, "one"), "v2")
    trials = _trials(url)
    assert [t.number for t in _baselines(trials)] == [0, 4]
    assert trials[4].state == TrialState.COMPLETE


def test_study_show_names_the_baseline_of_trials_measured_against_another(url: str) -> None:
    """The text printed the first baseline in its header and gains against the new-data one
    without saying so: a `baseline` column names it where it is not the header's."""
    _run(url, _spec(4, "one"), "v1")
    _run(url, _spec(6, "one"), "v2")
    result = runner.invoke(app, ["study", "show", "nd", "--storage", url], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    assert "baseline (target alone, trial 0)" in result.output
    lines = {
        int(line.split("│")[1]): line
        for line in result.output.splitlines()
        if line.count("│") > 3 and line.split("│")[1].strip().isdigit()
    }
    assert set(lines) == set(range(6)), result.output
    for number, line in lines.items():
        assert ("trial 4 (" in line) == (number >= 4), line
