"""``taskgraph study run/resume``: checks before the study exists, and what a run prints.

Each test drives the real command (Typer's CliRunner, or a subprocess where the process
environment matters) on a tiny study: tiny-bert, a few steps, synthetic tasks or a few
sentences written into a temporary data directory.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from taskgraph.cli.app import app
from taskgraph.testing import write_sst2_data

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()

# A study that trains in a second or two per trial on a CPU.
TINY = """\
name: {name}
target: {target}
candidates: [synth_related]
encoder: {{name: tiny-bert, max_length: 16}}
search:
  sharing: [hard]
  max_steps: 4
  batch_size: 4
  mixing: {{max_examples: {{"*": 16}}}}
training:
  eval_every: 2
  hyperparameters: {{max_eval_examples: 8}}
budget: {{trials: 2}}
sampler: {{name: random, seed: 0}}
"""


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def tiny_spec(tmp_path: Path, *, name: str = "tiny", target: str = "synth_target") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(TINY.format(name=name, target=target))
    return path


def status(name: str, url: str) -> dict[str, Any]:
    code, out, err = invoke("study", "status", name, "--storage", url, "--json")
    assert code == 0, err
    result: dict[str, Any] = json.loads(out)
    return result


# -- checks before the study exists ---------------------------------------------------------


def test_missing_data_directory_writes_nothing(tmp_path: Path) -> None:
    spec = tiny_spec(tmp_path, target="sst2")
    db = tmp_path / "t.db"
    url = f"sqlite:///{db}"
    code, _, err = invoke("study", "run", str(spec), "--storage", url, "--data", "/nope")
    assert code == 2 and err.startswith("error: --data: data directory does not exist: /nope")
    assert err.strip().count("\n") == 0
    assert not db.exists()
    # An existing directory without the task's files: the task, its field and the file.
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = invoke("study", "run", str(spec), "--storage", url, "--data", str(empty))
    assert code == 2 and f"{spec}: target: data file of task 'sst2'" in err
    assert str(empty / "sst2") in err and "from --data" in err
    assert not db.exists()
    # A data_dir field in the spec that does not exist names that field.
    code, _, err = invoke(
        "study", "run", str(spec), "--storage", url, "--set", f"data_dir={tmp_path / 'gone'}"
    )
    assert code == 2 and "data_dir: data directory does not exist" in err
    assert not db.exists()


def test_bad_set_value_is_caught_by_validate_and_run_writes_nothing(tmp_path: Path) -> None:
    spec = tiny_spec(tmp_path)
    code, _, err = invoke("study", "validate", str(spec), "--set", "search.max_steps=abc")
    assert code == 2 and err.startswith("error: --set search.max_steps: expected ")
    assert "'abc'" in err and str(spec) not in err
    db = tmp_path / "t.db"
    url = f"sqlite:///{db}"
    for option, names in (
        ("search.max_steps=abc", "--set search.max_steps: expected"),
        ("search.mixing.temperature=[1, x]", "--set search.mixing.temperature: expected a number"),
        ("budget.trials=0", "--set budget.trials: Input should be greater than or equal to 1"),
        ("search.max_stepz=3", "--set search.max_stepz: unknown field 'max_stepz'"),
        ("encoder.name=nope", "--set encoder.name: 'nope' is neither a known encoder"),
        # more tokens than the encoder has positions failed in every trial's first batch
        ("encoder.max_length=600", "--set encoder.max_length: 600 tokens, but encoder"),
        # not a torch device: every trial failed with it
        ("training.device=tpu", "--set training.device: must be like 'cpu', 'cuda'"),
    ):
        code, _, err = invoke("study", "run", str(spec), "--storage", url, "--set", option)
        assert code == 2 and err.startswith(f"error: {names}"), (option, err)
        assert str(spec) not in err  # the value is not in the file: no line of it is cited
        assert not db.exists()
    # The corrected value runs: no half-made study stands in its way.
    code, _, err = invoke(
        "study", "run", str(spec), "--storage", url, "--set", "search.max_steps=3"
    )
    assert code == 0, err
    assert status("tiny", url)["n_done"] == 2


def test_wall_time_error_names_the_option(tmp_path: Path) -> None:
    spec = tiny_spec(tmp_path)
    db = tmp_path / "t.db"
    code, _, err = invoke(
        "study", "run", str(spec), "--storage", f"sqlite:///{db}", "--wall-time", "0"
    )
    assert code == 2 and err.startswith("error: --wall-time: must be > 0"), err
    assert str(spec) not in err
    assert not db.exists()


def test_resume_takes_a_corrected_data_directory(tmp_path: Path) -> None:
    spec = tiny_spec(tmp_path, name="moved", target="sst2")
    first = write_sst2_data(tmp_path / "first")
    url = f"sqlite:///{tmp_path / 't.db'}"
    code, _, err = invoke(
        "study", "run", str(spec), "--storage", url, "--data", str(first), "--trials", "1"
    )
    assert code == 0, err
    # The data moves; a resume with a wrong directory fails before any trial.
    moved = tmp_path / "second"
    shutil.move(str(first), moved)
    code, _, err = invoke(
        "study", "resume", "moved", "--storage", url, "--trials", "2", "--data", "/nope"
    )
    assert code == 2 and "--data: data directory does not exist" in err
    progress = status("moved", url)
    assert progress["n_done"] == 1 and progress["n_failed"] == 0
    code, _, err = invoke(
        "study", "resume", "moved", "--storage", url, "--trials", "2", "--data", str(moved)
    )
    assert code == 0, err
    progress = status("moved", url)
    assert progress["n_done"] == 2 and progress["n_failed"] == 0
    # `study run` with the spec's data_dir changed continues the same study.
    code, _, err = invoke(
        "study", "run", str(spec), "--storage", url, "--set", f"data_dir={moved}", "--trials", "3"
    )
    assert code == 0, err
    assert "another spec" not in err and status("moved", url)["n_done"] == 3


def test_another_spec_names_the_fields_that_differ(tmp_path: Path) -> None:
    spec = tiny_spec(tmp_path)
    url = f"sqlite:///{tmp_path / 't.db'}"
    code, _, err = invoke("study", "run", str(spec), "--storage", url, "--trials", "1")
    assert code == 0, err
    code, _, err = invoke(
        "study",
        "run",
        str(spec),
        "--storage",
        url,
        "--set",
        "search.max_steps=5",
        "--set",
        "search.learning_rate=0.001",
    )
    assert code == 2 and "already exists" in err and "with another spec" in err
    assert "search.max_steps: 4 -> 5" in err and "search.learning_rate: 5e-05 -> 0.001" in err
    assert err.strip().count("\n") == 0


# -- what a run prints ------------------------------------------------------------------------


def test_log_lines_summary_and_storage_hint(tmp_path: Path) -> None:
    spec = tiny_spec(tmp_path)
    url = f"sqlite:///{tmp_path / 't.db'}"
    code, out, err = invoke("study", "run", str(spec), "--storage", url)
    assert code == 0, err
    lines = [line for line in err.splitlines() if line.startswith("[")]
    assert len(lines) == 2
    assert lines[0].startswith("[1/2] trial 0: target alone (hard): complete 0.")
    assert lines[1].startswith("[2/2] trial 1: ")
    assert f"See `taskgraph study show tiny --storage {url}`" in out
    # A smaller --trials on a finished study: no "2/1".
    code, out, err = invoke("study", "run", str(spec), "--storage", url, "--trials", "1")
    assert code == 0, err
    assert "2/1" not in out + err and "2 trials, more than the budget of 1" in out


def test_terminal_shows_each_trial_above_the_bar(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from taskgraph.cli.output import stderr_console

    monkeypatch.setattr(stderr_console, "_force_terminal", True)
    spec = tiny_spec(tmp_path)
    url = f"sqlite:///{tmp_path / 't.db'}"
    code, _, err = invoke("study", "run", str(spec), "--storage", url)
    assert code == 0, err
    assert "trial 0: target alone (hard): complete 0." in err
    assert "trial 1: " in err and ": complete 0." in err.split("trial 1: ", 1)[1]
    assert "ETA" in err
    # The bar never shows more trials than its total.
    code, _, err = invoke("study", "run", str(spec), "--storage", url, "--trials", "1")
    assert code == 0 and "2/1" not in err


def test_progress_moves_within_a_trial_and_estimates_the_time_left(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from taskgraph.cli.study import progress as study_cli
    from taskgraph.search.progress import StudyProgress, TrialStep
    from taskgraph.trial import TrialConfig

    clock = [1000.0]
    monkeypatch.setattr(study_cli.time, "monotonic", lambda: clock[0])
    watcher = study_cli._ProgressObserver(name="s", quiet=True)
    progress = StudyProgress(
        name="s",
        direction="maximize",
        budget=10,
        n_complete=2,
        n_pruned=0,
        n_failed=0,
        n_interrupted=0,
        n_running=0,
        n_waiting=0,
        best_value=None,
        best_number=None,
        baseline_value=None,
        baseline_number=None,
    )
    observer = watcher.observer
    observer.on_open(progress)
    assert watcher.eta() is None  # nothing measured yet
    config = TrialConfig(target="t", auxiliaries=("a",), seed=0)
    observer.on_trial_start(2, config)
    clock[0] += 120.0  # a trial slower than rich's 30 s speed window
    observer.on_trial_progress(2, TrialStep(step=50, max_steps=100, objective=0.5))
    task = watcher.progress.tasks[0]
    assert task.completed == pytest.approx(2.5) and task.total == 10
    assert "step 50/100" in task.fields["current"] and "0.5000" in task.fields["current"]
    # 120 s for half a trial: 7.5 trials left take 1800 s.
    assert watcher.eta() == pytest.approx(1800.0)
    # Sequential transfer and seeds: the share counts phases and seeds.
    step = TrialStep(step=10, max_steps=20, phase_index=1, n_phases=2, seed_index=1, n_seeds=2)
    assert step.fraction == pytest.approx((1 + (1 + 0.5) / 2) / 2)


def test_engine_reports_evaluations_to_the_observer(tmp_path: Path) -> None:
    from taskgraph import testing as fakes
    from taskgraph.search.engine import EngineObserver, StudyEngine
    from taskgraph.spec import spec_from_dict

    seen: list[tuple[int, Any]] = []

    class Watch(EngineObserver):
        def on_trial_progress(self, number: int, step: Any) -> None:
            seen.append((number, step))

    spec = spec_from_dict(
        {
            "name": "watch",
            "target": "tgt",
            "candidates": ["good", "bad"],
            "sampler": {"name": "random", "seed": 0},
            "budget": {"trials": 2},
            "seeds": 2,
        }
    )
    engine = StudyEngine(
        spec=spec,
        storage_url=f"sqlite:///{tmp_path / 'w.db'}",
        evaluator=fakes.FakeEvaluator(),
        sharing_spaces=fakes.SHARING_SPACES,
        observer=Watch(),
    )
    try:
        engine.run()
    finally:
        engine.close()
    assert {number for number, _ in seen} == {0, 1}
    evaluations = [step for _, step in seen if step.objective is not None]
    assert evaluations and {step.seed_index for step in evaluations} == {0, 1}
    assert all(step.n_seeds == 2 for step in evaluations)


@pytest.mark.slow
def test_no_transformers_bars_in_a_log(tmp_path: Path) -> None:
    # MiniLM is loaded from its files, which draws transformers' "Loading weights" bar.
    spec = tmp_path / "minilm.yaml"
    spec.write_text(
        TINY.format(name="minilm", target="synth_target").replace("tiny-bert", "minilm")
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("HF_HUB_DISABLE_PROGRESS_BARS", None)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "taskgraph.cli.app",
            "study",
            "run",
            str(spec),
            "--storage",
            f"sqlite:///{tmp_path / 't.db'}",
            "--trials",
            "1",
            "--set",
            "search.max_steps=1",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert "[1/1] trial 0: target alone" in result.stderr
    assert "Loading weights" not in result.stderr and "it/s]" not in result.stderr


def test_yaml_error_names_the_line_to_fix(tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    # An unclosed quote is noticed only at the end of the file: the error names where it opens.
    spec.write_text('name: x\ntarget: "synth_target\ncandidates: [synth_related]\nseeds: 1\n')
    code, _, err = invoke("study", "validate", str(spec))
    assert code == 2 and err.startswith(f"error: {spec}:2: not valid YAML: ")
    assert "quoted scalar" in err and "at line 5" in err
    spec.write_text("name: x\ntarget: synth_target\ncandidates: [synth_related\nseeds: 1\n")
    code, _, err = invoke("study", "validate", str(spec))
    assert code == 2 and err.startswith(f"error: {spec}:3: not valid YAML: ")
    spec.write_text("name: x\n\ttarget: synth_target\n")
    code, _, err = invoke("study", "validate", str(spec))
    assert code == 2 and err.startswith(f"error: {spec}:2: not valid YAML: ")


def test_a_malformed_file_of_an_inline_task_is_one_line_before_the_study(tmp_path: Path) -> None:
    data = tmp_path / "my_ner"
    data.mkdir()
    good = "The\tO\ncat\tB-ANIMAL\n\n"
    for split in ("train", "test"):
        (data / f"{split}.iob").write_text(good * 3)
    (data / "dev.iob").write_text(good + "A dog\n")  # spaces, not a tab, on line 4
    spec = tmp_path / "inline.yaml"
    spec.write_text(
        TINY.format(name="inline", target="synth_target").replace(
            "candidates: [synth_related]", "candidates: [synth_related, my_ner]"
        )
        + "tasks:\n  - {name: my_ner, format: iob, type: token_tagging, label_field: ner, "
        f"path: {data}, metrics: [f1]}}\n"
    )
    db = tmp_path / "i.db"
    code, out, err = invoke("study", "run", str(spec), "--storage", f"sqlite:///{db}", "--quiet")
    assert code != 0 and out == "" and err.count("\n") == 1, err
    assert err.startswith(f"error: {spec}: tasks[0] (task 'my_ner', split dev): ")
    assert f"{data / 'dev.iob'}:4: expected" in err
    assert not db.exists()


def test_validate_refuses_a_spec_storage_in_a_missing_folder_as_run_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TASKGRAPH_STORAGE", raising=False)
    spec = tiny_spec(tmp_path)
    missing = tmp_path / "nodir" / "s.db"
    spec.write_text(spec.read_text() + f"storage: sqlite:///{missing}\n")
    results = [invoke("study", command, str(spec)) for command in ("validate", "run")]
    for code, out, err in results:
        assert code == 2, (out, err)
        assert err.startswith("error: the spec's storage field: storage URL ")
        assert f"directory '{missing.parent}' does not exist" in err
    assert results[0][2] == results[1][2]  # the same line
    assert not missing.parent.exists()


def test_validate_names_the_searched_settings_that_change_the_target_alone() -> None:
    demo = str(REPO / "searchspaces" / "demo.yaml")
    code, out, err = invoke("study", "validate", demo, "--json")
    assert code == 0, err
    assert json.loads(out)["searched_alone_settings"] == [
        "sharing", "hierarchical/tagging_layer", "hierarchical/parsing_layer", "learning_rate",
    ]  # fmt: skip
    code, out, err = invoke("study", "validate", demo)
    assert code == 0, err
    said = " ".join(out.split())
    assert "note: the space searches sharing, hierarchical/tagging_layer" in said
    assert "`budget.baselines: per_setting` trains a baseline for each" in said
    # With a baseline per setting, or nothing of the kind searched, no note.
    code, out, _ = invoke("study", "validate", demo, "--set", "budget.baselines=per_setting")
    assert code == 0 and "note:" not in out
    fixed = str(REPO / "searchspaces" / "results" / "bioner_transfer_ncbi_disease.yaml")
    code, out, _ = invoke("study", "validate", fixed, "--json")
    assert code == 0 and json.loads(out)["searched_alone_settings"] == []
