"""A study left half-created (Optuna's row, no ``taskgraph:spec``, no trials: a ``study run``
killed while it created the study): ``study resume``, ``status`` and ``show`` say how to take
it over or remove it; a plain Optuna study with trials keeps "not created by taskgraph"."""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path

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


def half_created(url: str, name: str) -> None:
    """Leave what a driver killed while it created study ``name`` leaves: taskgraph's tables,
    Optuna's study row, no attribute, no trial."""
    with open_repository(url):
        pass
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    optuna.create_study(study_name=name, storage=url, direction="maximize")


def test_a_half_created_study_says_study_run_takes_it_over(demo: Path) -> None:
    url = f"sqlite:///{demo.parent / 'half.db'}"
    half_created(url, "demo")
    advice = (
        "error: study 'demo' has no taskgraph:spec and no trials: a `taskgraph study run` "
        "stopped while it created the study leaves it so; `taskgraph study run SPEC` with the "
        f"spec it was started from takes it over, or `taskgraph study delete demo --storage "
        f"{url}` removes it\n"
    )
    for command in ("resume", "status", "show"):
        code, out, err = invoke("study", command, "demo", "--storage", url)
        assert (code, err) == (2, advice), (command, out)
    # What the error says works: `study run SPEC` takes the study over and resume reads it.
    code, _, err = invoke(
        "study", "run", str(demo), "--runner", "tabular", "--set", "runner.table=tab.csv",
        "--storage", url, "-q", "--trials", "2",
    )  # fmt: skip
    assert code == 0, err
    code, _, err = invoke("study", "resume", "demo", "--storage", url, "-q")
    assert code == 0, err
    trials = optuna.load_study(study_name="demo", storage=url).get_trials()
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE] * 2


def test_the_other_advice_deletes_the_half_created_study(demo: Path) -> None:
    url = f"sqlite:///{demo.parent / 'half.db'}"
    half_created(url, "demo")
    code, _, err = invoke("study", "delete", "demo", "--storage", url, "--yes")
    assert code == 0, err
    code, _, err = invoke("study", "resume", "demo", "--storage", url)
    assert code == 2
    assert err.startswith("error: no study 'demo' in "), err


def test_a_plain_optuna_study_with_trials_is_still_not_taskgraphs(demo: Path) -> None:
    url = f"sqlite:///{demo.parent / 'plain.db'}"
    half_created(url, "plain_optuna")
    study = optuna.load_study(study_name="plain_optuna", storage=url)
    study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=1)
    code, out, err = invoke("study", "resume", "plain_optuna", "--storage", url)
    assert code == 2, out
    assert err == "error: study 'plain_optuna' was not created by taskgraph (no taskgraph:spec)\n"


def test_resume_without_the_budget_attribute_runs_the_specs_budget(demo: Path) -> None:
    """Killed after ``taskgraph:spec`` and before ``taskgraph:budget``: resume runs the stored
    spec's budget, not 1 trial."""
    first = f"sqlite:///{demo.parent / 'first.db'}"
    code, _, err = invoke(
        "study", "run", str(demo), "--runner", "tabular", "--set", "runner.table=tab.csv",
        "--storage", first, "-q", "--trials", "1",
    )  # fmt: skip
    assert code == 0, err
    spec = optuna.load_study(study_name="demo", storage=first).user_attrs[SPEC_ATTR]
    spec["budget"]["trials"] = 3
    url = f"sqlite:///{demo.parent / 'half.db'}"
    half_created(url, "demo")
    optuna.load_study(study_name="demo", storage=url).set_user_attr(SPEC_ATTR, spec)
    code, _, err = invoke("study", "resume", "demo", "--storage", url, "-q")
    assert code == 0, err
    trials = optuna.load_study(study_name="demo", storage=url).get_trials()
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE] * 3
