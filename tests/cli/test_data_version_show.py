"""`study show` measures each trial against a baseline on the same version of the target's data.

A trial that ran after the target's file changed was measured against the first baseline,
trained on the old data: its gain held the data's change besides the transfer (the docs
promise gains never pool two fingerprints of one task).  The fake evaluator's runs carry the
dataset fingerprints a runner gives (``source_fingerprints``): ``v1``, then ``v2``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import optuna
import pytest
from typer.testing import CliRunner

from taskgraph.cli.app import app
from taskgraph.search.engine import StudyEngine
from taskgraph.search.progress import REPEATS_ATTR
from taskgraph.search.space import BASELINE_ROLE, ROLE_ATTR
from taskgraph.spec import StudySpec, spec_from_dict
from taskgraph.testing import SHARING_SPACES, FakeEvaluator
from taskgraph.trial import Cost, TrialConfig, TrialResult

runner = CliRunner()


def _spec(trials: int, *, max_failures: int = 0) -> StudySpec:
    return spec_from_dict(
        {
            "name": "dvs",
            "target": "tgt",
            "objective": {"metric": "accuracy"},
            "candidates": ["good"],
            "search": {"auxiliaries": {"min_size": 0, "max_size": 1}},
            "sampler": {"name": "random", "seed": 0},
            "pruner": "none",
            "seeds": 1,
            "budget": {"trials": trials, "max_failures": max_failures},
            "recovery": {"max_retry": 0},
        }
    )


class _FailAlone(FakeEvaluator):
    """Fails every training of the target alone (a baseline that cannot train)."""

    def evaluate(self, config: TrialConfig, **kwargs: Any) -> TrialResult:
        if not config.auxiliaries:
            return TrialResult.failed("fake failure: out of memory", cost=Cost(seconds=0.01))
        return super().evaluate(config, **kwargs)


def _engine(
    url: str, trials: int, target_print: str, evaluator: FakeEvaluator | None = None
) -> StudyEngine:
    return StudyEngine(
        spec=_spec(trials, max_failures=0 if evaluator is None else 1),
        storage_url=url,
        evaluator=evaluator or FakeEvaluator(),
        sharing_spaces=SHARING_SPACES,
        source_fingerprints={"tgt": target_print, "good": "g1"},
    )


def _run(
    url: str,
    trials: int,
    target_print: str,
    *,
    new_baseline: bool = False,
    evaluator: FakeEvaluator | None = None,
) -> None:
    engine = _engine(url, trials, target_print, evaluator)
    try:
        study = engine.open()
        if new_baseline:
            study.enqueue_trial(
                engine.space.baseline_params(), user_attrs=engine.space.baseline_user_attrs()
            )
        engine.run()
    finally:
        engine.close()


def _show(url: str, *extra: str) -> Any:
    result = runner.invoke(app, ["study", "show", "dvs", "--storage", url, *extra])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout) if "--json" in extra else result.stdout


@pytest.fixture
def url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'records.db'}"
    _run(url, 4, "v1")
    _run(url, 10, "v2")
    return url


def test_resuming_on_new_data_trains_a_baseline_on_it(url: str) -> None:
    # Opened on v2, the study enqueued the first baseline's configuration again: trial 4.
    study = optuna.load_study(study_name="dvs", storage=url)
    assert study.trials[4].user_attrs[ROLE_ATTR] == BASELINE_ROLE
    assert REPEATS_ATTR not in study.trials[4].user_attrs  # trained afresh on v2
    report = _show(url, "--json")
    rows = {row["trial"]: row for row in report["gains"]}
    assert len(rows) == 10
    assert report["baseline"]["trial"] == 0 and report["baseline"]["data_version"] == "v1"
    for number, row in rows.items():
        assert row["data_version"] == ("v1" if number < 4 else "v2")
        assert row["baseline_trial"] == (0 if number < 4 else 4), number
        assert row["no_baseline_because"] is None
        assert row["measured_absolute_gain"] == pytest.approx(row["value"] - 0.5)
        assert row["differs_from_baseline"] == []
    assert "no measured gain" not in _show(url)


def test_trials_on_new_data_get_no_gain_against_the_old_baseline(url: str) -> None:
    # On v3 the baseline fails (recovery.max_retry: 0, given up): the trials on v3 have no
    # baseline on their data version, and are never measured against v1's or v2's.
    _run(url, 14, "v3", evaluator=_FailAlone())
    study = optuna.load_study(study_name="dvs", storage=url)
    assert study.trials[10].user_attrs[ROLE_ATTR] == BASELINE_ROLE
    assert study.trials[10].state == optuna.trial.TrialState.FAIL
    report = _show(url, "--json")
    rows = {row["trial"]: row for row in report["gains"]}
    later = sorted(n for n in rows if n > 10)
    assert later
    for number in later:
        row = rows[number]
        assert row["data_version"] == "v3"
        assert row["measured_absolute_gain"] is None
        assert row["measured_relative_gain"] is None
        assert row["baseline_trial"] is None and row["differs_from_baseline"] is None
        assert (
            "no complete baseline trial on this version of tgt's data"
            in (row["no_baseline_because"])
        )
    best = report["best"]  # the best value, its gain by the same rule
    assert best["measured_absolute_gain"] == rows[best["trial"]]["measured_absolute_gain"]
    assert best["no_baseline_because"] == rows[best["trial"]]["no_baseline_because"]
    text = _show(url)
    listed = ", ".join(str(n) for n in later)
    assert f"no measured gain for trials {listed}" in " ".join(text.split())


def test_a_baseline_on_the_new_data_measures_the_trials_on_it(url: str) -> None:
    _run(url, 11, "v2", new_baseline=True)
    study = optuna.load_study(study_name="dvs", storage=url)
    assert study.trials[10].user_attrs[ROLE_ATTR] == BASELINE_ROLE
    # A search trial of the target alone trained that configuration on v2 already: the new
    # baseline repeats it (a repeat's data version is the trial's it repeats).
    assert study.trials[study.trials[10].user_attrs[REPEATS_ATTR]].number >= 4
    report = _show(url, "--json")
    rows = {row["trial"]: row for row in report["gains"]}
    assert rows[10]["data_version"] == "v2"
    for number, row in rows.items():
        assert row["baseline_trial"] == (0 if number < 4 else 10), number
        assert row["no_baseline_because"] is None
        assert row["measured_absolute_gain"] == pytest.approx(row["value"] - 0.5)
        assert row["differs_from_baseline"] == []
    assert "no measured gain" not in _show(url)
