"""The progress display of `study run`, `study list` and `study validate`, where a mutation
audit found them unpinned: the ETA column before anything is measured, an evaluation of 0.0 on
the live line, a new seed's line without the last seed's evaluation, no time left once the
trials done pass a lowered budget, the reason on a failed trial's log line, the masked
password of an empty database's `study list` line, no blank line under the bar while no trial
runs, and from `validate` no baseline note when the space searches nothing that changes the
target trained alone, and `--set storage` named in its refusal of that storage."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from typer.testing import CliRunner

from taskgraph.cli.app import app
from taskgraph.cli.study import _ProgressObserver
from taskgraph.cli.study import progress as progress_module
from taskgraph.cli.study.progress import _EtaColumn
from taskgraph.search.progress import TrialStep
from taskgraph.trial import TrialConfig
from tests.cli.test_study_show_screen_survivors import current_line, study_progress

REPO = Path(__file__).resolve().parents[2]


def _eta_shown(watcher: _ProgressObserver) -> str:
    [column] = [c for c in watcher.progress.columns if isinstance(c, _EtaColumn)]
    return str(column.render(watcher.progress.tasks[0]))


def _outcome(status: str, value: float | None, last: float | None, reason: str | None) -> Any:
    return SimpleNamespace(
        value=value, last_intermediate=last, failure_reason=reason,
        status=SimpleNamespace(value=status),
    )  # fmt: skip


# -- the live bar ------------------------------------------------------------------------------


def test_the_eta_column_is_unknown_until_work_is_measured(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [100.0]
    monkeypatch.setattr(progress_module.time, "monotonic", lambda: clock[0])
    watcher = _ProgressObserver(name="s", quiet=True, budget=4)
    assert _eta_shown(watcher) == "ETA -:--:--"  # not open yet: nothing to go by
    watcher.observer.on_open(study_progress(4, 0))
    watcher.observer.on_trial_start(0, TrialConfig(target="t"))
    clock[0] += 60.0
    watcher.step(0, TrialStep(step=5, max_steps=10))
    # 60 s for half a trial: 3.5 trials left take 420 s.
    assert _eta_shown(watcher) == "ETA 0:07:00"


def test_an_evaluation_of_zero_is_shown_on_the_live_line() -> None:
    watcher = _ProgressObserver(name="s", quiet=True)
    watcher.observer.on_open(study_progress(4, 0))
    watcher.observer.on_trial_start(1, TrialConfig(target="t", auxiliaries=("a",)))
    watcher.step(1, TrialStep(step=2, max_steps=4, objective=0.0))
    assert current_line(watcher) == "trial 1: a (hard), step 2/4, last evaluation 0.0000"


def test_a_new_seed_at_its_first_step_drops_the_last_seeds_evaluation() -> None:
    watcher = _ProgressObserver(name="s", quiet=True)
    watcher.observer.on_open(study_progress(4, 0))
    watcher.observer.on_trial_start(1, TrialConfig(target="t", auxiliaries=("a",)))
    watcher.step(1, TrialStep(step=4, max_steps=4, n_seeds=2, objective=0.3))
    assert current_line(watcher).endswith("(seed 1/2), last evaluation 0.3000")
    watcher.step(1, TrialStep(step=1, max_steps=4, seed_index=1, n_seeds=2))
    assert current_line(watcher) == "trial 1: a (hard), step 1/4 (seed 2/2)"


def test_no_time_is_left_once_the_trials_done_pass_a_lowered_budget() -> None:
    # `--trials 4` on a study that ran 6: nothing is left to do, not an unknown time.
    watcher = _ProgressObserver(name="s", quiet=True, budget=4)
    watcher.observer.on_open(study_progress(4, 6))
    assert watcher.eta() == 0.0
    assert _eta_shown(watcher) == "ETA 0:00:00"


def test_the_live_display_has_no_trial_line_while_no_trial_runs() -> None:
    watcher = _ProgressObserver(name="s", quiet=True)
    watcher.observer.on_open(study_progress(4, 0))
    assert len(list(watcher.progress.get_renderables())) == 1  # the bar alone, no blank line
    watcher.observer.on_trial_start(0, TrialConfig(target="t"))
    assert len(list(watcher.progress.get_renderables())) == 2


# -- the line per finished trial ---------------------------------------------------------------


def _log_line(capsys: pytest.CaptureFixture[str], outcome: Any) -> str:
    watcher = _ProgressObserver(name="s", quiet=True, budget=4)
    watcher.log_trial("trial 5: a (hard)", outcome, study_progress(4, 3, best_value=0.5))
    return str(capsys.readouterr().err.strip())


def test_a_failed_trial_shows_why(capsys: pytest.CaptureFixture[str]) -> None:
    failed = _outcome("failed", None, None, "CUDA out of memory")
    assert _log_line(capsys, failed) == (
        "[3/4] trial 5: a (hard): failed (CUDA out of memory); best 0.5000"
    )


# -- study list --------------------------------------------------------------------------------


def test_list_of_an_empty_database_masks_its_password(monkeypatch: pytest.MonkeyPatch) -> None:
    import taskgraph.app.studies.stored as stored

    monkeypatch.setattr(stored, "list_studies", lambda storage: [])
    url = "postgresql+psycopg://me:s3cret@127.0.0.1:1/db"
    result = CliRunner().invoke(app, ["study", "list", "--storage", url])
    assert result.exit_code == 0, result.output
    assert result.stdout == "no studies in postgresql+psycopg://me:***@127.0.0.1:1/db\n"


# -- study validate ----------------------------------------------------------------------------


def test_validate_adds_no_note_when_nothing_searched_changes_the_target_alone() -> None:
    fixed = REPO / "searchspaces" / "results" / "bioner_transfer_ncbi_disease.yaml"
    result = CliRunner().invoke(app, ["study", "validate", str(fixed)])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("valid ")
    assert "note:" not in result.stdout


def test_validate_names_the_set_option_of_a_storage_it_refuses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TASKGRAPH_STORAGE", raising=False)
    fixed = REPO / "searchspaces" / "results" / "bioner_transfer_ncbi_disease.yaml"
    url = f"sqlite:///{tmp_path / 'nodir' / 's.db'}"
    result = CliRunner().invoke(app, ["study", "validate", str(fixed), "--set", f"storage={url}"])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: --set storage: storage URL '{url}': directory ")
