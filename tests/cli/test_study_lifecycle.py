"""``taskgraph study``: what an invocation leaves in the database (wall time, schema, Ctrl-C),
and how a study that taskgraph did not create reads."""

from __future__ import annotations

import itertools
import json
import shutil
from pathlib import Path
from typing import Any

import optuna
import pytest
from typer.testing import CliRunner

from taskgraph.cli.app import app
from taskgraph.search.progress import SPEC_ATTR
from taskgraph.storage import open_repository

runner = CliRunner()
REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "searchspaces" / "demo.yaml"
CANDIDATES = ["synth_related", "synth_conflict", "synth_unrelated", "synth_cls_related"]


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Return a copy of the demo spec with a score table beside it; cwd is that folder."""
    monkeypatch.chdir(tmp_path)
    lines = ["target,task_set,split,value,higher_is_better"]
    for size in range(3):
        for subset in itertools.combinations(CANDIDATES, size):
            key = "+".join(["synth_target", *subset])
            score = 0.5 + 0.01 * len(subset)
            lines += [f"synth_target,{key},val,{score:.4f},1"]
            lines += [f"synth_target,{key},test,{score:.4f},1"]
    (tmp_path / "tab.csv").write_text("\n".join(lines) + "\n")
    return Path(shutil.copy(DEMO, tmp_path / "demo.yaml"))


def tabular(demo: Path, url: str, *args: str) -> tuple[int, str, str]:
    """``study run`` the demo with the tabular runner on ``url``."""
    return invoke(
        "study", "run", str(demo), "--runner", "tabular", "--set", "runner.table=tab.csv",
        "--storage", url, "-q", *args,
    )  # fmt: skip


def stored_wall_times(url: str) -> tuple[Any, Any]:
    """Return ``budget.wall_time`` of Optuna's ``taskgraph:spec`` and of ``tg_studies.spec``."""
    storage = optuna.storages.RDBStorage(url, skip_table_creation=True)
    study = optuna.load_study(study_name="demo", storage=storage)
    optuna_copy = study.user_attrs[SPEC_ATTR]["budget"].get("wall_time")
    with open_repository(url, create=False) as repository:
        ours = repository.study_specs()["demo"]["budget"].get("wall_time")
    storage.engine.dispose()
    return optuna_copy, ours


# -- 1. --wall-time limits one invocation ----------------------------------------------------


def test_a_wall_time_option_is_not_stored_with_the_study(demo: Path) -> None:
    url = f"sqlite:///{demo.parent / 'w.db'}"
    code, _, err = tabular(demo, url, "--trials", "2", "--wall-time", "12s")
    assert code == 0, err
    assert stored_wall_times(url) == (None, None)
    # A resume with a tiny wall time stops early, and leaves nothing of it behind either.
    args = ("study", "resume", "demo", "--storage", url, "-q", "--trials", "5")
    code, _, err = invoke(*args, "--wall-time", "0.000001")
    assert code == 0, err
    assert "wall time reached" in err
    assert stored_wall_times(url) == (None, None)
    # Without --wall-time the next resume runs to the budget.
    code, out, err = invoke(*args)
    assert code == 0, err
    assert "wall time" not in err
    assert out.startswith("study 'demo': 5/5 trials")


def test_the_spec_files_wall_time_is_kept_and_applies_per_invocation(demo: Path) -> None:
    text = demo.read_text()
    demo.write_text(text.replace("budget: {trials: 24,", "budget: {trials: 2, wall_time: 3600,"))
    url = f"sqlite:///{demo.parent / 'w.db'}"
    code, _, err = tabular(demo, url, "--wall-time", "1h")
    assert code == 0, err
    assert stored_wall_times(url) == (3600.0, 3600.0)
    code, _, err = invoke("study", "resume", "demo", "--storage", url, "-q", "--wall-time", "1s")
    assert code == 0, err
    assert stored_wall_times(url) == (3600.0, 3600.0)


# -- 6. a plain Optuna study in the same database ----------------------------------------------


def test_a_plain_optuna_study_is_not_read_as_taskgraphs(demo: Path) -> None:
    url = f"sqlite:///{demo.parent / 'p.db'}"
    code, _, err = tabular(demo, url, "--trials", "1")
    assert code == 0, err
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name="plain_optuna", storage=url)
    study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=2)
    for command in ("show", "status"):
        code, out, err = invoke("study", command, "plain_optuna", "--storage", url)
        assert code == 2, out
        assert err == (
            "error: study 'plain_optuna' was not created by taskgraph (no taskgraph:spec)\n"
        )
    code, out, err = invoke("study", "list", "--storage", url, "--json")
    assert code == 0, err
    rows = {row["name"]: row for row in json.loads(out)}
    assert rows["plain_optuna"]["taskgraph"] is False
    assert rows["plain_optuna"]["budget"] is None
    assert rows["demo"]["taskgraph"] is True and rows["demo"]["budget"] == 1
    code, out, err = invoke("study", "list", "--storage", url)
    assert code == 0, err
    assert "(not taskgraph's)" in out


# -- 3. Ctrl-C before the study exists ---------------------------------------------------------


def test_ctrl_c_before_the_study_exists_offers_no_resume(
    demo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import taskgraph.app.studies.running

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    url = f"sqlite:///{demo.parent / 'e.db'}"
    with monkeypatch.context() as patch:
        patch.setattr(taskgraph.app.studies.running, "build_engine", interrupted)
        code, _, err = tabular(demo, url, "--trials", "1")
    assert code == 130
    assert err == (
        "interrupted: nothing was started (study 'demo' was not created yet); run the same "
        "`taskgraph study run` command again\n"
    )
    assert "resume" not in err
    # Once the study exists, Ctrl-C says how to finish it.
    code, _, err = tabular(demo, url, "--trials", "1")
    assert code == 0, err
    monkeypatch.setattr(taskgraph.app.studies.running, "build_engine", interrupted)
    code, _, err = tabular(demo, url, "--trials", "2")
    assert code == 130
    assert err.startswith("interrupted: the study is saved; finish it with `taskgraph study resume")


# -- 7. the bar before the study is open -------------------------------------------------------


def test_the_bar_shows_the_budget_before_the_study_opens() -> None:
    from taskgraph.cli.study import _ProgressObserver

    # What a resume shows while it waits out the grace period of trials marked running.
    watcher = _ProgressObserver(name="demo", quiet=True, budget=24)
    assert watcher.progress.tasks[0].total == 24


def test_resume_studys_wall_time_keyword_is_not_stored(demo: Path) -> None:
    import taskgraph

    url = f"sqlite:///{demo.parent / 'k.db'}"
    code, _, err = tabular(demo, url, "--trials", "1")
    assert code == 0, err
    summary = taskgraph.resume_study("demo", storage=url, trials=3, wall_time=1e-6)
    assert summary.reason == "wall_time"
    assert stored_wall_times(url) == (None, None)


def test_the_live_line_never_shows_a_trial_that_has_ended() -> None:
    # Under Ray the result on which ASHA stops a trial is its last progress: the live line
    # kept showing "step 12/24" of the pruned trial until the command exited.
    from taskgraph.cli.study import _ProgressObserver
    from taskgraph.search.progress import StudyProgress, TrialStep
    from taskgraph.trial import TrialConfig

    watcher = _ProgressObserver(name="demo", quiet=True, budget=4)
    progress = StudyProgress(
        name="demo", direction="maximize", budget=4, n_complete=1, n_pruned=0, n_failed=0,
        n_interrupted=0, n_running=1, n_waiting=0, best_value=0.5, best_number=0,
        baseline_value=0.5, baseline_number=0,
    )  # fmt: skip
    observer = watcher.observer

    def current() -> str:
        return str(watcher.progress.tasks[0].fields["current"])

    observer.on_trial_start(1, TrialConfig(target="t", auxiliaries=("a",)))
    observer.on_trial_start(2, TrialConfig(target="t", auxiliaries=("b",)))
    observer.on_trial_progress(1, TrialStep(step=12, max_steps=24, objective=0.7))
    assert current().startswith("trial 1: a (hard), step 12/24")
    observer.on_trial_end(1, None, progress)
    assert current() == "trial 2: b (hard)"  # the one still running
    observer.on_trial_end(2, None, progress)
    assert current() == ""
