"""`study show` measures each trial against a baseline of its own model family.

A space that searches the target's example cap reaches several model families
(``TrialConfig.family_key``).  A trial whose family and alone settings no baseline had exactly
was measured against the first baseline, of another family, and said it differed in nothing:
its gain held the cap's change besides the transfer.  It takes its own family's baseline now
(naming the settings they differ in), and a family with none gets no gain and a reason.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import optuna
import pytest
from typer.testing import CliRunner

from taskgraph.cli.app import app
from taskgraph.search.progress import CONFIG_ATTR
from taskgraph.search.space import BASELINE_ROLE, ROLE_ATTR, SUBSET_ATTR
from taskgraph.testing import run_fake_study
from taskgraph.trial import TrialConfig, setting_differences


def _study(tmp_path: Path, *, seed: int, trials: int, baselines: str) -> str:
    url = f"sqlite:///{tmp_path / 'fam.db'}"
    spec = {
        "name": "fam", "target": "tgt", "candidates": ["good", "bad"], "seeds": 1,
        "budget": {"trials": trials, "baselines": baselines},
        "sampler": {"name": "random", "seed": seed},
        "search": {"learning_rate": [1e-4, 1e-3], "mixing": {"max_examples": {"tgt": [50, 100]}}},
    }  # fmt: skip
    return run_fake_study(spec, url)


def _show(url: str, *extra: str) -> Any:
    result = CliRunner().invoke(
        app, ["study", "show", "fam", "--storage", url, *extra], env={"COLUMNS": "250"}
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout) if "--json" in extra else " ".join(result.output.split())


def _config(trial: optuna.trial.FrozenTrial) -> TrialConfig:
    return TrialConfig.from_dict(trial.user_attrs[CONFIG_ATTR])


def _check_own_family(url: str) -> tuple[dict[int, Any], dict[int, optuna.trial.FrozenTrial]]:
    """Check every measured row against a baseline of its family; return rows and trials."""
    trials = {t.number: t for t in optuna.load_study(study_name="fam", storage=url).trials}
    rows = {row["trial"]: row for row in _show(url, "--json")["gains"]}
    for number, row in rows.items():
        if row["baseline_trial"] is None:
            continue
        ours, base = _config(trials[number]), _config(trials[row["baseline_trial"]])
        assert base.family_key() == ours.family_key(), row
        assert trials[row["baseline_trial"]].user_attrs[SUBSET_ATTR] == []
        differs = setting_differences(ours.alone_settings(), base.alone_settings())
        assert row["differs_from_baseline"] == differs, row
        base_value = trials[row["baseline_trial"]].value
        assert row["measured_absolute_gain"] == pytest.approx(row["value"] - base_value)
    return rows, trials


def test_a_trial_takes_its_familys_baseline_and_names_the_settings_they_differ_in(
    tmp_path: Path,
) -> None:
    # Seed 1: trial 0 is the first baseline (cap 50, lr 1e-3); trial 2 the cap-100 family's
    # (lr 1e-4).  Trial 1 (cap 100, lr 1e-3) matches neither exactly.
    url = _study(tmp_path, seed=1, trials=8, baselines="per_family")
    rows, trials = _check_own_family(url)
    assert trials[2].user_attrs[ROLE_ATTR] == BASELINE_ROLE
    assert trials[1].params["max_examples/tgt"] == 100
    assert rows[1]["baseline_trial"] == 2  # not the first baseline, of cap 50
    assert rows[1]["differs_from_baseline"] == ["learning_rate"]
    assert rows[1]["measured_absolute_gain"] == pytest.approx(trials[1].value - trials[2].value)
    assert "learning_rate" in _show(url)


def test_a_trial_of_the_target_alone_is_its_familys_baseline(tmp_path: Path) -> None:
    # Seed 2: trial 1 trains the target alone with cap 100, so the study enqueues no baseline
    # for that family (gains take that run as its baseline); the first baseline has cap 50.
    url = _study(tmp_path, seed=2, trials=8, baselines="per_family")
    rows, trials = _check_own_family(url)
    cap_100 = [n for n, t in trials.items() if t.params["max_examples/tgt"] == 100]
    assert 1 in cap_100 and trials[1].user_attrs[SUBSET_ATTR] == []
    assert all(trials[n].user_attrs.get(ROLE_ATTR) != BASELINE_ROLE for n in cap_100)
    for number in cap_100:
        assert rows[number]["baseline_trial"] in cap_100, rows[number]
        assert rows[number]["no_baseline_because"] is None


def test_a_family_without_a_baseline_gets_no_gain_and_a_reason(tmp_path: Path) -> None:
    # `budget.baselines: one`, seed 0: trials 3 and 4 have cap 100, the only baseline cap 50,
    # and no trial trained the target alone with cap 100.
    url = _study(tmp_path, seed=0, trials=6, baselines="one")
    rows, trials = _check_own_family(url)
    for number, row in rows.items():
        if trials[number].params["max_examples/tgt"] == 100:
            assert number in (3, 4)
            assert row["baseline_trial"] is None and row["differs_from_baseline"] is None
            assert row["measured_absolute_gain"] is None
            assert row["measured_relative_gain"] is None
            assert "no complete baseline trial of its model family" in row["no_baseline_because"]
            assert "`budget.baselines: one`" in row["no_baseline_because"]
        else:
            assert row["baseline_trial"] == 0 and row["no_baseline_because"] is None
    assert sorted(n for n, r in rows.items() if r["baseline_trial"] is None) == [3, 4]
    text = _show(url)
    assert "no measured gain for trials 3, 4: no complete baseline trial of its model family" in (
        text
    )


def test_the_text_names_each_reason_for_its_own_trials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Trials left without a gain for different reasons each get their own line (the first
    trial's reason was printed for all), and the best line names no reason of its own."""
    import taskgraph.app.studies.stored as studies

    url = _study(tmp_path, seed=0, trials=6, baselines="one")
    report = studies.study_summary("fam", storage=url)
    rows = sorted(report["gains"], key=lambda r: r["trial"])
    unmeasured = [r["trial"] for r in rows if r.get("no_baseline_because")]
    assert len(unmeasured) >= 2, rows  # the cap-100 trials: their family has no baseline
    version = "no complete baseline trial on this version of tgt's data"
    for r in rows:
        if r["trial"] == unmeasured[-1]:
            r["no_baseline_because"] = version  # as a trial on edited data would have it
    best = next(r for r in rows if r["trial"] == unmeasured[0])
    report["best"] = {
        **report["best"], "trial": best["trial"], "score": best["value"],
        "measured_absolute_gain": None, "measured_relative_gain": None,
        "no_baseline_because": best["no_baseline_because"],
    }  # fmt: skip
    monkeypatch.setattr(studies, "study_summary", lambda *args, **kwargs: report)
    text = _show(url)
    family = " ".join(best["no_baseline_because"].split())
    first = ", ".join(map(str, unmeasured[:-1]))
    plural = "s" if len(unmeasured) > 2 else ""
    assert f"no measured gain for trial{plural} {first}: {family}" in text
    assert f"no measured gain for trial {unmeasured[-1]}: {version}" in text
    assert "no baseline on its version of the target's data" not in text
