"""What `study show`/`status`/`list`/`delete`, `records show`/`export`, the progress lines and
`--json` output promise, pinned where a changed line went unnoticed by the other tests."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import optuna
import pytest

import taskgraph.app.studies.stored
from taskgraph.cli.output import emit_json
from taskgraph.cli.study import _ProgressObserver
from taskgraph.storage import open_repository
from taskgraph.trial import Cost, PretrainingConfig, TrialConfig, TrialResult, TrialStatus
from tests.cli.test_study_cli import invoke, run_fake_study


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Return the URL of study `fake`: 15 trials by a fake, 11 complete, 4 failed, none pruned
    (more complete trials than `study show` lists by default)."""
    return run_fake_study(tmp_path_factory, trials=15)


def _json_report(url: str) -> dict[str, Any]:
    code, out, err = invoke("study", "show", "fake", "--storage", url, "--json")
    assert code == 0, err
    report: dict[str, Any] = json.loads(out)
    return report


def _table(out: str) -> tuple[list[str], list[list[str]]]:
    """Return the header cells and the body rows' cells of the one rich table in ``out``."""
    lines = out.splitlines()
    (header,) = [line for line in lines if line.startswith("┃")]
    rows = [line for line in lines if line.startswith("│")]

    def cells(line: str, bar: str) -> list[str]:
        return [cell.strip() for cell in line.strip(bar).split(bar)]

    return cells(header, "┃"), [cells(row, "│") for row in rows]


def _show_report(monkeypatch: pytest.MonkeyPatch, url: str, report: dict[str, Any]) -> str:
    """Return `study show`'s text for the study summary ``report`` (a changed summary of the
    study at ``url``)."""
    monkeypatch.setattr(taskgraph.app.studies.stored, "study_summary", lambda *a, **k: report)
    code, out, err = invoke("study", "show", "fake", "--storage", url)
    assert code == 0, err
    return out


def test_show_header_counts_are_the_json_counts(study: str) -> None:
    report = _json_report(study)
    assert report["n_pruned"] != report["n_failed"]  # 0 pruned, 4 failed: told apart
    code, out, _ = invoke("study", "show", "fake", "--storage", study)
    assert code == 0
    header = out.splitlines()[0]
    found = re.search(r"(\d+) complete, (\d+) pruned, (\d+) failed, (\d+) running", header)
    assert found is not None, header
    assert [int(n) for n in found.groups()] == [
        report["n_complete"],
        report["n_pruned"],
        report["n_failed"],
        report["n_running"],
    ]


def test_show_lists_ten_trials_by_default_and_json_every_trial(study: str) -> None:
    report = _json_report(study)
    assert report["n_complete"] == 11 and len(report["gains"]) == 11  # every trial
    code, out, _ = invoke("study", "show", "fake", "--storage", study)
    assert code == 0
    header, rows = _table(out)
    assert len(rows) == 10  # min(10, n) by default
    shown = [int(row[header.index("trial")]) for row in rows]
    assert shown == [gain["trial"] for gain in report["gains"][:10]]  # the top ten by score
    # Every trial measured against the header's baseline: no baseline column.
    assert "baseline" not in header
    code, out, _ = invoke("study", "show", "fake", "--storage", study, "--top", "3")
    assert code == 0 and len(_table(out)[1]) == 3


def test_show_says_each_failure_on_a_line(study: str) -> None:
    report = _json_report(study)
    assert len(report["failures"]) == 4
    code, out, _ = invoke("study", "show", "fake", "--storage", study)
    assert code == 0
    lines = out.splitlines()
    for failure in report["failures"]:
        assert f"trial {failure['trial']} failed: {failure['reason']}" in lines
    assert sum(" failed: " in line for line in lines) == 4


def test_show_spec_json_is_the_stored_spec(study: str) -> None:
    code, out, err = invoke("study", "show", "fake", "--storage", study, "--spec", "--json")
    assert code == 0, err
    assert json.loads(out) == taskgraph.app.studies.stored.study_spec("fake", storage=study)


def test_show_selection_column_and_the_best_lines_pool(
    study: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    report = _json_report(study)
    best = report["best"]["trial"]
    selection = {
        "features": ["jsd"],
        "weights": {"jsd": 0.5},
        "keep": 0.42,
        # 42 kept of the 100 pooled of 400 training examples: the pool is the share's base.
        "kept": {"good": {"kept": 42, "pool": 100, "examples": 400}},
    }
    report["best"]["data_selection"] = selection
    report["best"]["tied_trials"] = []  # the tie note ends the line: tests/app/test_best_ties.py
    for gain in report["gains"]:
        if gain["trial"] == best:
            gain["data_selection"] = selection
    out = _show_report(monkeypatch, study, report)
    (best_line,) = [line for line in out.splitlines() if line.startswith("best (")]
    assert best_line.endswith(", keep 0.42 of each auxiliary (42/100 examples)")
    header, rows = _table(out)
    assert "selection" in header
    cells = {row[header.index("trial")]: row[header.index("selection")] for row in rows}
    assert cells[str(best)] == "keep 0.42 (42/100)"
    assert {cell for trial, cell in cells.items() if trial != str(best)} == {""}


def test_show_baseline_column_only_for_another_baseline(
    study: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    report = _json_report(study)
    assert {gain["baseline_trial"] for gain in report["gains"]} == {report["baseline"]["trial"]}
    header, _ = _table(_show_report(monkeypatch, study, copy.deepcopy(report)))
    assert "baseline" not in header
    other, last = report["gains"][1], report["gains"][-1]
    other["baseline_trial"] = last["trial"]
    header, rows = _table(_show_report(monkeypatch, study, report))
    assert "baseline" in header
    column = [row[header.index("baseline")] for row in rows]
    assert column[1] == f"trial {last['trial']} ({last['value']:.4f})"
    base = report["baseline"]
    assert set(column[:1] + column[2:]) == {f"trial {base['trial']} ({base['score']:.4f})"}


def test_show_says_which_trials_have_no_measured_gain(
    study: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    report = _json_report(study)
    family = "no complete baseline of its model family"
    version = "no complete baseline on its version of the target's data"
    best = report["best"]
    best.update(no_baseline_because=family, measured_absolute_gain=None)
    best.update(measured_relative_gain=None, tied_trials=[])  # no tie note (test_best_ties.py)
    why = {best["trial"]: family, 1: family, 4: version}
    for gain in report["gains"]:
        if gain["trial"] in why:
            gain.update(no_baseline_because=why[gain["trial"]], measured_absolute_gain=None)
            gain["measured_relative_gain"] = None
    out = _show_report(monkeypatch, study, report)
    lines = out.splitlines()
    (best_line,) = [line for line in lines if line.startswith("best (")]
    assert best_line.endswith(", no measured gain (see below)")
    both = ", ".join(map(str, sorted([best["trial"], 1])))
    assert [line for line in lines if line.startswith("no measured gain for")] == [
        f"no measured gain for trials {both}: {family} (`--json`: each trial's "
        "`no_baseline_because`)",
        f"no measured gain for trial 4: {version} (`--json`: each trial's `no_baseline_because`)",
    ]


def test_show_header_names_the_trials_waiting_for_resume(
    study: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    report = _json_report(study)
    report.update(n_waiting=2, n_interrupted=1)
    header = _show_report(monkeypatch, study, report).splitlines()[0]
    assert ", 0 running, 1 interrupted, 2 waiting for `study resume`" in header


def test_status_table_has_the_waiting_column_and_list_csv_the_taskgraph_one(study: str) -> None:
    code, out, _ = invoke("study", "status", "fake", "--storage", study)
    assert code == 0
    header, rows = _table(out)
    assert "n_waiting" in header and rows[0][header.index("n_waiting")] == "0"
    code, out, _ = invoke("study", "list", "--storage", study, "--csv")
    assert code == 0
    columns = out.splitlines()[0].split(",")
    assert columns[-1] == "taskgraph" and out.splitlines()[1].split(",")[-1] == "True"


def test_delete_names_the_ray_checkpoints_it_removed(tabular_demo: Path) -> None:
    from taskgraph.search.progress import RAY_CHECKPOINT_ATTR

    url = f"sqlite:///{tabular_demo.parent / 'd.db'}"
    code, _, err = invoke(
        "study", "run", str(tabular_demo), "--runner", "tabular", "--set",
        "runner.table=tab.csv", "--storage", url, "-q", "--trials", "2",
    )  # fmt: skip
    assert code == 0, err
    tune = tabular_demo.parent / "tune" / "demo-run" / "trial_x"
    persisted = [tune / "checkpoint_000003", tune / "checkpoint_000004"]
    study = optuna.load_study(study_name="demo", storage=url)
    for path in persisted:  # interrupted Ray trials, their checkpoints noted
        (path / "trial-1" / "seed-0").mkdir(parents=True)
        study.add_trial(
            optuna.trial.create_trial(
                state=optuna.trial.TrialState.FAIL, system_attrs={RAY_CHECKPOINT_ATTR: str(path)}
            )
        )
    code, out, err = invoke("study", "delete", "demo", "--storage", url, "--yes")
    assert code == 0, err
    assert out.rstrip().endswith(", 2 Ray checkpoint(s)"), out
    assert not any(path.exists() for path in persisted)


def test_json_export_counts_runs(one_run_url: str) -> None:
    code, out, err = invoke("records", "export", "-f", "json", "-o", "-", "--storage", one_run_url)
    assert code == 0 and len(json.loads(out)) == 1
    assert err.strip() == "wrote 1 runs to stdout"


def test_records_show_says_a_run_was_pruned_and_a_cached_checkpoint(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'records.db'}"
    pretrained = TrialConfig(
        target="ner", pretraining=PretrainingConfig(scheme="adaptive", steps=40)
    )
    cached = TrialResult(
        status=TrialStatus.COMPLETE,
        scores={"ner": {"dev": {"f1": 0.5}}},
        objective=0.5,
        cost=Cost(seconds=1.0),
    )
    cached.pretraining = {
        "scheme": "adaptive", "steps": 40, "tokens": 1234, "seconds": 2.5,
        "curve": [[20, 0.05], [40, 0.125]], "cached": True,
    }  # fmt: skip
    pruned = TrialResult(status=TrialStatus.PRUNED, scores={}, cost=Cost(seconds=1.0))
    with open_repository(url) as repo:
        hit = repo.add_run_result(study="s", trial_number=0, config=pretrained, result=cached)
        cut = repo.add_run_result(
            study="s", trial_number=1, config=TrialConfig(target="ner"), result=pruned
        )
    code, out, err = invoke("records", "show", str(cut), "--storage", url)
    assert code == 0, err
    assert "objective — (the run was pruned)" in out
    code, out, err = invoke("records", "show", str(hit), "--storage", url)
    assert code == 0, err
    assert "pretraining: adaptive, 40 steps, 1,234 tokens, 2.5 s (checkpoint from the cache)" in out


def _log_line(capsys: pytest.CaptureFixture[str], outcome: Any, budget: int, n_done: int) -> str:
    observer = _ProgressObserver(name="s", quiet=True, budget=budget)
    observer.log_trial(
        "trial 5: a (hard)", outcome, SimpleNamespace(budget=budget, n_done=n_done, best_value=0.5)
    )
    return str(capsys.readouterr().err.strip())


def test_progress_lines_of_a_pruned_trial_and_past_the_budget(
    capsys: pytest.CaptureFixture[str],
) -> None:
    pruned = SimpleNamespace(
        value=None, last_intermediate=0.4321, failure_reason=None,
        status=SimpleNamespace(value="pruned"),
    )  # fmt: skip
    assert (
        _log_line(capsys, pruned, 4, 2) == "[2/4] trial 5: a (hard): pruned at 0.4321; best 0.5000"
    )
    # A resume past the budget (`--trials` raised, then lowered): never "6/4".
    complete = SimpleNamespace(
        value=0.6, last_intermediate=None, failure_reason=None,
        status=SimpleNamespace(value="complete"),
    )  # fmt: skip
    assert (
        _log_line(capsys, complete, 4, 6) == "[6/6] trial 5: a (hard): complete 0.6000; best 0.5000"
    )


def test_the_target_alone_has_no_selection_words() -> None:
    watcher = _ProgressObserver(name="s", quiet=True, searches_selection=True)
    watcher.observer.on_trial_start(1, TrialConfig(target="t"))
    assert watcher.started[1] == "trial 1: target alone (hard)"


def test_emit_json_writes_nan_as_null(capsys: pytest.CaptureFixture[str]) -> None:
    def strict(constant: str) -> Any:
        raise AssertionError(f"not JSON: {constant}")

    emit_json({"r": float("nan"), "rows": [{"gain": float("inf")}, 0.5]})
    value = json.loads(capsys.readouterr().out, parse_constant=strict)
    assert value == {"r": None, "rows": [{"gain": None}, 0.5]}
