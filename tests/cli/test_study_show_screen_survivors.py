"""`study show`, `study screen` and the live progress display where a mutation audit found
them unpinned: the header's count of trials done, the baseline and best lines, the tie note's
names, the order of the table's columns and of the spec's fields, the options `--show` refuses,
and the numbers of the progress line and the ETA."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

import taskgraph.app.screening
import taskgraph.app.studies.stored
from taskgraph.cli.app import app
from taskgraph.cli.output import stderr_console
from taskgraph.cli.study import _pretraining_of, _ProgressObserver
from taskgraph.cli.study.screen import _ScreenProgress
from taskgraph.search.progress import StudyProgress, TrialStep
from taskgraph.testing import run_fake_study
from taskgraph.trial import TrialConfig
from tests.cli.test_screen_cli import spec_file

runner = CliRunner()

# The baseline (trial 0) scores 0.5 and `good` 0.7 (the fake's gains); two of the three search
# trials repeat the first.
SPEC: dict[str, Any] = {
    "name": "fake",
    "target": "tgt",
    "candidates": ["good", "bad"],
    "seeds": 1,
    "budget": {"trials": 4},
    "sampler": {"name": "random", "seed": 0},
}


@pytest.fixture(scope="module")
def storage(tmp_path_factory: pytest.TempPathFactory) -> str:
    return run_fake_study(SPEC, f"sqlite:///{tmp_path_factory.mktemp('show') / 'records.db'}")


@pytest.fixture
def report(storage: str) -> dict[str, Any]:
    """Return the study's `study show --json` report, a new copy for each test to change."""
    result = runner.invoke(app, ["study", "show", "fake", "--storage", storage, "--json"])
    assert result.exit_code == 0, result.output
    value: dict[str, Any] = json.loads(result.stdout)
    return value


def _show(monkeypatch: pytest.MonkeyPatch, storage: str, report: dict[str, Any]) -> list[str]:
    """Return the lines `study show` prints for ``report`` (the study's summary, changed)."""
    monkeypatch.setattr(taskgraph.app.studies.stored, "study_summary", lambda *a, **k: report)
    result = runner.invoke(app, ["study", "show", "fake", "--storage", storage])
    assert result.exit_code == 0, result.output
    return result.stdout.splitlines()


def _line(lines: list[str], start: str) -> str:
    (line,) = [line for line in lines if line.startswith(start)]
    return line


def test_the_spec_prints_in_the_order_the_study_was_created_with(storage: str) -> None:
    stored = taskgraph.app.studies.stored.study_spec("fake", storage=storage)
    assert list(stored) != sorted(stored)  # the test tells the two orders apart
    result = runner.invoke(app, ["study", "show", "fake", "--spec", "--storage", storage])
    assert result.exit_code == 0, result.output
    assert list(yaml.safe_load(result.stdout)) == list(stored)


def test_the_header_counts_every_trial_done_not_only_the_complete(
    storage: str, report: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    report.update(budget=6, n_done=6, n_complete=4, n_failed=2)
    header = _show(monkeypatch, storage, report)[0]
    assert "(target tgt, maximize): 6/6 trials, 4 complete, 0 pruned, 2 failed" in header


def test_one_repeat_is_named_in_the_singular(
    storage: str, report: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    report["n_repeats"] = 1
    header = _show(monkeypatch, storage, report)[0]
    assert header.endswith(
        "; 1 repeat of an earlier configuration (counted against the budget, not new measurements)"
    ), header


def test_the_baseline_and_best_lines_give_their_own_scores_and_the_measured_gain(
    storage: str, report: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert (report["baseline"]["score"], report["best"]["score"]) == (0.5, 0.7)
    lines = _show(monkeypatch, storage, report)
    assert _line(lines, "baseline (") == "baseline (target alone, trial 0): 0.5000"
    best = report["best"]["trial"]
    assert _line(lines, "best (") == (
        f"best (trial {best}): 0.7000 with good, sharing hard, measured gain +0.2000 (+40.0% of "
        "the baseline)"
    )


def test_the_tie_note_names_eight_trials_and_counts_the_rest(
    storage: str, report: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    report["best"]["tied_trials"] = list(range(10, 20))
    best = _line(_show(monkeypatch, storage, report), "best (")
    assert best.endswith(
        "; tied at 0.7000 with 10 other trials (10, 11, 12, 13, 14, 15, 16, 17 and 2 more): "
        "the study cannot tell them apart, this one only came first"
    ), best


def test_the_repeat_column_follows_the_trial_column(storage: str) -> None:
    result = runner.invoke(app, ["study", "show", "fake", "--storage", storage])
    assert result.exit_code == 0, result.output
    (header,) = [line for line in result.stdout.splitlines() if line.startswith("┃")]
    columns = [cell.strip() for cell in header.strip("┃").split("┃")]
    assert columns[:3] == ["trial", "repeat of", "auxiliaries"]


def test_a_stage_named_none_reads_as_no_pretraining() -> None:
    none = {"pretraining": {"scheme": "none", "steps": 3}}
    assert _pretraining_of(none, searched=True) == ", no pretraining"
    assert _pretraining_of(none, searched=False) == ""


def study_progress(budget: int, n_complete: int, best_value: float | None = None) -> StudyProgress:
    """Return the progress of study "s" (maximised) with ``n_complete`` of ``budget`` trials."""
    return StudyProgress(
        name="s", direction="maximize", budget=budget, n_complete=n_complete, n_pruned=0,
        n_failed=0, n_interrupted=0, n_running=0, n_waiting=0, best_value=best_value,
        best_number=None, baseline_value=None, baseline_number=None,
    )  # fmt: skip


def current_line(watcher: _ProgressObserver) -> str:
    """Return the live line of the running trial under ``watcher``'s bar."""
    return str(watcher.progress.tasks[0].fields["current"])


def test_the_bar_has_the_budget_before_the_study_opens() -> None:
    # A resume that first waits out a grace period shows 0/24, not 0/?.
    watcher = _ProgressObserver(name="s", quiet=True, budget=24)
    assert watcher.progress.tasks[0].total == 24


def test_the_live_line_counts_phases_and_seeds_from_one() -> None:
    watcher = _ProgressObserver(name="s", quiet=True)
    watcher.observer.on_open(study_progress(4, 0))
    watcher.observer.on_trial_start(2, TrialConfig(target="t", auxiliaries=("a",)))
    watcher.step(2, TrialStep(step=10, max_steps=20, phase_index=1, n_phases=2, n_seeds=3))
    assert current_line(watcher) == "trial 2: a (hard), step 10/20 (phase 2/2) (seed 1/3)"


def test_a_new_trial_does_not_show_the_last_trials_evaluation() -> None:
    watcher = _ProgressObserver(name="s", quiet=True)
    watcher.observer.on_open(study_progress(4, 0))
    watcher.observer.on_trial_start(1, TrialConfig(target="t", auxiliaries=("a",)))
    watcher.step(1, TrialStep(step=4, max_steps=4, objective=0.25))
    assert current_line(watcher).endswith(", last evaluation 0.2500")
    watcher.observer.on_trial_start(2, TrialConfig(target="t", auxiliaries=("b",)))
    watcher.step(2, TrialStep(step=1, max_steps=4))
    assert current_line(watcher) == "trial 2: b (hard), step 1/4"


def test_a_trial_resumed_past_its_first_step_does_not_show_anothers_evaluation() -> None:
    # A retried trial resumes from its checkpoint at a later step; Ray runs trials side by
    # side.  Each trial's line shows its own last evaluation only.
    watcher = _ProgressObserver(name="s", quiet=True)
    watcher.observer.on_open(study_progress(4, 0))
    watcher.observer.on_trial_start(1, TrialConfig(target="t", auxiliaries=("a",)))
    watcher.step(1, TrialStep(step=8, max_steps=8, objective=0.25))
    watcher.observer.on_trial_start(2, TrialConfig(target="t", auxiliaries=("b",)))
    watcher.step(2, TrialStep(step=5, max_steps=8))
    assert current_line(watcher) == "trial 2: b (hard), step 5/8"
    watcher.step(2, TrialStep(step=6, max_steps=8, objective=0.5))
    watcher.step(1, TrialStep(step=8, max_steps=8))
    assert current_line(watcher) == "trial 1: a (hard), step 8/8, last evaluation 0.2500"


def test_an_ended_trial_leaves_the_bar_and_the_live_line() -> None:
    watcher = _ProgressObserver(name="s", quiet=True)
    watcher.observer.on_open(study_progress(4, 1))
    watcher.observer.on_trial_start(1, TrialConfig(target="t", auxiliaries=("a",)))
    watcher.step(1, TrialStep(step=2, max_steps=4))
    assert watcher.progress.tasks[0].completed == pytest.approx(1.5)
    outcome = SimpleNamespace(
        value=0.6, last_intermediate=None, failure_reason=None,
        status=SimpleNamespace(value="complete"),
    )  # fmt: skip
    watcher.observer.on_trial_end(1, outcome, study_progress(4, 2))
    # Its half is now the whole trial counted done, not added again.
    assert watcher.progress.tasks[0].completed == pytest.approx(2.0)
    assert current_line(watcher) == ""


def test_no_time_is_left_once_the_budget_is_spent() -> None:
    watcher = _ProgressObserver(name="s", quiet=True)
    watcher.observer.on_open(study_progress(4, 4))
    assert watcher.eta() == 0.0  # not None, which shows as an unknown "-:--:--"


def test_the_bar_total_never_falls_below_the_trials_done() -> None:
    # --trials lowered below what ran: `6/6`, never `6/4`.
    watcher = _ProgressObserver(name="s", quiet=True, budget=4)
    watcher.observer.on_open(study_progress(4, 6))
    assert watcher.progress.tasks[0].total == 6


def test_quiet_prints_no_header(capsys: pytest.CaptureFixture[str]) -> None:
    loud = _ProgressObserver(name="s", quiet=False, header="study 's': 4 trials")
    loud.observer.on_open(study_progress(4, 0))
    assert capsys.readouterr().err.strip() == "study 's': 4 trials"
    quiet = _ProgressObserver(name="s", quiet=True, header="study 's': 4 trials")
    quiet.observer.on_open(study_progress(4, 0))
    assert capsys.readouterr().err == ""


def test_the_screen_bar_counts_the_steps_done() -> None:
    watcher = _ScreenProgress(name="s", quiet=True)
    watcher.on_trial_progress(-1, TrialStep(step=6, max_steps=6))
    task = watcher.progress.tasks[0]
    assert (task.completed, task.total) == (6, 6)


def test_show_names_every_training_option_it_would_not_use(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        ["study", "screen", str(spec_file(tmp_path)), "--show", "--probes", "3",
         "--data", str(tmp_path)],
    )  # fmt: skip
    assert result.exit_code == 2
    assert result.stderr == (
        "error: `--show` prints the stored screen and trains nothing: --probes, --data would "
        "not be used; drop them, or drop --show to run a screen\n"
    )


def test_show_prints_the_screen_asked_for(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[Any] = []

    def report(name: str, **kwargs: Any) -> dict[str, Any]:
        asked.append(kwargs["screen"])
        return {"study": name, "screen": kwargs["screen"]}

    monkeypatch.setattr(taskgraph.app.screening, "screen_report", report)
    url = f"sqlite:///{tmp_path / 'r.db'}"
    spec = str(spec_file(tmp_path))
    result = runner.invoke(
        app, ["study", "screen", spec, "--storage", url, "--show", "--screen", "-2", "--json"]
    )
    assert result.exit_code == 0, result.output
    assert asked == [-2] and json.loads(result.stdout)["screen"] == -2


def test_json_draws_no_bar_in_a_terminal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The bar is stderr's, but --json is for scripts: it stays off even in a terminal.
    drawn: list[bool] = []

    def screen(spec: Any, **kwargs: Any) -> dict[str, Any]:
        drawn.append(not kwargs["observer"].progress.disable)
        raise KeyboardInterrupt  # stop before anything would be printed

    monkeypatch.setattr(taskgraph.app.screening, "screen_study", screen)
    monkeypatch.setattr(stderr_console, "_force_terminal", True)
    spec = str(spec_file(tmp_path))
    url = f"sqlite:///{tmp_path / 'r.db'}"
    for extra in ([], ["--json"]):
        result = runner.invoke(app, ["study", "screen", spec, "--storage", url, *extra])
        assert result.exit_code == 130, result.output
    assert drawn == [True, False]


def test_an_interrupted_screen_says_nothing_was_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def screen(spec: Any, **kwargs: Any) -> dict[str, Any]:
        raise KeyboardInterrupt

    monkeypatch.setattr(taskgraph.app.screening, "screen_study", screen)
    url = f"sqlite:///{tmp_path / 'r.db'}"
    result = runner.invoke(app, ["study", "screen", str(spec_file(tmp_path)), "--storage", url])
    assert result.exit_code == 130
    assert result.stderr.strip() == "interrupted: no screen was stored"
