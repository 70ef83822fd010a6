"""The local runner checkpoints each (trial, seed): a retried trial resumes its training.

Ctrl-C in the middle of a trial's training (a callback raising ``KeyboardInterrupt`` after step
7, with a checkpoint every 2 steps) and a resume: the retry carries on from step 6's checkpoint
and ends with the result of a run never interrupted; its folder is gone once it is done; two
studies in one ``runner.checkpoint_dir`` keep apart; an unusable folder is one line.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import optuna
import pytest
from typer.testing import CliRunner

from taskgraph.app.studies.running import build_engine
from taskgraph.cli.app import app
from taskgraph.runners import RUNNERS
from taskgraph.runners.local import (
    LocalEvaluator,
    checkpoint_base_problem,
    stored_study_checkpoint_folder,
)
from taskgraph.search.progress import trial_results
from taskgraph.spec import spec_from_dict
from taskgraph.spec.models import StudySpec
from taskgraph.testing import KillAtStep
from taskgraph.training import TrainerCallback
from taskgraph.trial import TrialConfig, TrialStatus

KILLED_AT = 7  # after the checkpoint of step 6 (checkpoint_every: 2), before the one of step 8


SMALL = {"hidden_size": 32, "num_attention_heads": 2, "intermediate_size": 64}


def study_spec(
    name: str,
    checkpoint_dir: Path | None,
    *,
    encoder: dict[str, Any] = SMALL,
    seeds: int = 1,
    **runner: Any,
) -> StudySpec:
    """Return a one-trial study (the target's baseline) of 12 tiny-bert steps."""
    settings: dict[str, Any] = {"name": "local", **runner}
    if checkpoint_dir is not None:
        settings["checkpoint_dir"] = str(checkpoint_dir)
    return spec_from_dict(
        {
            "name": name,
            "target": "synth_target",
            "candidates": ["synth_related"],
            "encoder": {"name": "tiny-bert", "max_length": 16, "options": encoder},
            "search": {
                "max_steps": 12,
                "batch_size": 8,
                "learning_rate": 1e-3,
                "step_budget": "total",
            },
            "training": {
                "eval_every": 4,
                "device": "cpu",
                "hyperparameters": {"max_eval_examples": 16, "checkpoint_every": 2},
            },
            "budget": {"trials": 1},
            "seeds": seeds,
            "sampler": {"name": "random", "seed": 0},
            "recovery": {"heartbeat_interval": 1, "grace_period": 2},
            "runner": settings,
        }
    )


class Steps(TrainerCallback):
    """Records every training step the trainer takes."""

    def __init__(self, seen: list[int]) -> None:
        self.seen = seen

    def on_step_end(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
        self.seen.append(state.global_step)


def run_study(spec: StudySpec, url: str, *, extra: Sequence[TrainerCallback] = ()) -> None:
    """Run ``spec``'s study with the local runner as `study run` does, ``extra`` callbacks
    added to every training."""
    engine = build_engine(spec, storage_url=url)
    evaluator = engine.evaluator
    assert isinstance(evaluator, LocalEvaluator)
    original = evaluator.evaluate

    def evaluate(config: TrialConfig, *, callbacks: Sequence[Any] = (), **kwargs: Any) -> Any:
        return original(config, callbacks=[*callbacks, *extra], **kwargs)

    evaluator.evaluate = evaluate  # type: ignore[method-assign]
    try:
        engine.open()
        RUNNERS.get("local").run(engine)
    finally:
        engine.close()


def interrupted(spec: StudySpec, url: str) -> None:
    """Run ``spec``'s study and press Ctrl-C at step ``KILLED_AT`` of its first trial."""
    with pytest.raises(KeyboardInterrupt):
        run_study(spec, url, extra=[KillAtStep(KILLED_AT)])


def trials(name: str, url: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=name, storage=url).get_trials(deepcopy=False)


def folders(root: Path) -> list[str]:
    """Return every folder and file under ``root``, relative, sorted."""
    return sorted(str(path.relative_to(root)) for path in root.rglob("*"))


def checkpointed_step(seed_folder: Path) -> int:
    import torch

    payload = torch.load(seed_folder / "checkpoint.pt", map_location="cpu", weights_only=False)
    return int(payload["state"]["global_step"])


def test_a_retried_trial_resumes_where_ctrl_c_stopped_it(tmp_path: Path) -> None:
    root = tmp_path / "checkpoints"
    whole_url = f"sqlite:///{tmp_path / 'whole.db'}"
    url = f"sqlite:///{tmp_path / 'study.db'}"
    # The same training, never interrupted (another checkpoint folder: nothing to resume).
    run_study(study_spec("demo", tmp_path / "other"), whole_url)
    [whole] = trials("demo", whole_url)
    assert whole.state == optuna.trial.TrialState.COMPLETE

    spec = study_spec("demo", root)
    interrupted(spec, url)
    [first, retry] = trials("demo", url)
    assert first.state == optuna.trial.TrialState.FAIL
    assert retry.state == optuna.trial.TrialState.WAITING
    [study_folder] = root.iterdir()
    seed_folder = study_folder / "trial-0" / "seed-0"
    assert checkpointed_step(seed_folder) == 6
    recorded = json.loads((seed_folder / "config.json").read_text())
    assert recorded["target"] == "synth_target" and recorded["seed"] == 0

    seen: list[int] = []
    run_study(spec, url, extra=[Steps(seen)])
    assert seen == list(range(7, 13))  # steps 1-6 came from the checkpoint
    done = {t.number: t for t in trials("demo", url)}
    assert done[1].state == optuna.trial.TrialState.COMPLETE
    assert done[1].system_attrs["failed_trial"] == 0
    # Exactly the uninterrupted run's curve and result.
    assert done[1].value == whole.value
    assert done[1].intermediate_values == whole.intermediate_values
    assert (trial_results(done[1]) or [])[0]["result"]["scores"] == (trial_results(whole) or [])[0][
        "result"
    ]["scores"]
    # The trial is finished: its checkpoint folder is gone, and the study's with it.
    assert folders(root) == []


class SeedSteps(TrainerCallback):
    """Records (seed, step) of every training step; Ctrl-C at step ``KILLED_AT`` of ``kill``."""

    def __init__(self, seen: list[tuple[int, int]], kill: int | None = None) -> None:
        self.seen = seen
        self.kill = kill

    def on_step_end(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
        self.seen.append((args.seed, state.global_step))
        if args.seed == self.kill and state.global_step == KILLED_AT:
            raise KeyboardInterrupt


def test_a_retry_keeps_the_seeds_trained_before_the_interruption(tmp_path: Path) -> None:
    """Seed 0 trained, seed 1 interrupted: both keep their checkpoints until the trial is done,
    and the retry trains only seed 1's last steps (seed 0's finished checkpoint is evaluated)."""
    root = tmp_path / "checkpoints"
    url = f"sqlite:///{tmp_path / 'study.db'}"
    spec = study_spec("demo", root, seeds=2)
    seen: list[tuple[int, int]] = []
    with pytest.raises(KeyboardInterrupt):
        run_study(spec, url, extra=[SeedSteps(seen, kill=1)])
    [study_folder] = root.iterdir()
    assert checkpointed_step(study_folder / "trial-0" / "seed-0") == 12
    assert checkpointed_step(study_folder / "trial-0" / "seed-1") == 6
    again: list[tuple[int, int]] = []
    run_study(spec, url, extra=[SeedSteps(again)])
    assert again == [(1, step) for step in range(7, 13)]
    [_, retry] = trials("demo", url)
    assert retry.state == optuna.trial.TrialState.COMPLETE
    assert folders(root) == []


def test_a_finished_trial_leaves_no_checkpoint(tmp_path: Path) -> None:
    root = tmp_path / "checkpoints"
    url = f"sqlite:///{tmp_path / 'study.db'}"
    saved: list[str] = []

    class Saves(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
            saved.append(kwargs["checkpoint_dir"])

    run_study(study_spec("demo", root), url, extra=[Saves()])
    [trial] = trials("demo", url)
    assert trial.state == optuna.trial.TrialState.COMPLETE
    # It did checkpoint (every 2 steps), under <root>/<study>-<database>/trial-0/seed-0 ...
    assert len(saved) == 6
    folder = Path(saved[0])
    assert folder.parts[-2:] == ("trial-0", "seed-0")
    assert folder.parent.parent.parent == root
    assert folder.parent.parent.name.startswith("demo-")
    # ... and removed it once the trial was done.
    assert folders(root) == []


def test_checkpoints_false_writes_none(tmp_path: Path) -> None:
    root = tmp_path / "checkpoints"
    url = f"sqlite:///{tmp_path / 'study.db'}"
    spec = study_spec("demo", root, checkpoints=False)
    interrupted(spec, url)
    assert not root.exists()
    seen: list[int] = []
    run_study(spec, url, extra=[Steps(seen)])
    assert seen == list(range(1, 13))  # the retry trained from the start


def test_two_studies_in_one_checkpoint_dir_keep_apart(tmp_path: Path) -> None:
    root = tmp_path / "checkpoints"
    url = f"sqlite:///{tmp_path / 'study.db'}"
    # Both studies' first trial is trial 0, in one database and one checkpoint folder; they
    # train different models (the second's encoder is wider).
    first = study_spec("first", root)
    second = study_spec("second", root, encoder={**SMALL, "hidden_size": 64})
    interrupted(first, url)
    interrupted(second, url)
    names = sorted(path.name for path in root.iterdir())
    assert len(names) == 2
    assert names[0].startswith("first-") and names[1].startswith("second-")
    for name in names:
        assert checkpointed_step(root / name / "trial-0" / "seed-0") == 6

    # Each resumes its own checkpoint (one of the other's would be refused: a failed trial).
    for spec in (first, second):
        seen: list[int] = []
        run_study(spec, url, extra=[Steps(seen)])
        assert seen == list(range(7, 13))
        [_, retry] = trials(spec.name, url)
        assert retry.state == optuna.trial.TrialState.COMPLETE
    assert folders(root) == []


def test_one_study_name_in_two_databases_gets_two_folders(tmp_path: Path) -> None:
    from taskgraph.runners.local import study_checkpoint_folder

    one = study_checkpoint_folder(tmp_path, study="demo", database="/a/taskgraph.db#1")
    two = study_checkpoint_folder(tmp_path, study="demo", database="/b/taskgraph.db#1")
    assert one != two and one.parent == two.parent == tmp_path
    # A study name is made safe for any file system (no separators, no "..").
    odd = study_checkpoint_folder(tmp_path, study="../x y/z", database="d")
    assert odd.parent == tmp_path and odd.name.startswith("x_y_z-")


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_only_folders_of_trials_that_wait_or_run_are_kept(tmp_path: Path) -> None:
    from taskgraph.runners.local import remove_finished_checkpoints

    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'optuna.db'}")
    study = optuna.create_study(storage=storage, study_name="s")
    retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=5)
    study.tell(study.ask(), 1.0)  # trial 0: complete
    retry(study, study.tell(study.ask(), state=optuna.trial.TrialState.FAIL))  # trial 1
    # trial 2, the retry of 1, interrupted in turn: its retry, trial 3, runs under key 1
    retry(study, study.tell(study.ask(), state=optuna.trial.TrialState.FAIL))
    assert study.ask().number == 3
    assert study.get_trials(deepcopy=False)[3].system_attrs["failed_trial"] == 1
    study.ask()  # trial 4: a new trial, running
    folder = tmp_path / "checkpoints"
    for name in ("trial-0", "trial-1", "trial-2", "trial-4", "trial-9", "notes"):
        (folder / name / "seed-0").mkdir(parents=True)
    assert remove_finished_checkpoints(folder, study) == [0, 2, 9]
    assert sorted(path.name for path in folder.iterdir()) == ["notes", "trial-1", "trial-4"]


def test_a_checkpoint_of_another_configuration_is_never_resumed(tmp_path: Path) -> None:
    """A folder left by another configuration under a retried trial's key (a study deleted and
    created again under its name) is emptied: the trial trains from the start."""
    spec = study_spec("demo", tmp_path)
    evaluator = RUNNERS.get("local").build_evaluator(spec)
    assert isinstance(evaluator, LocalEvaluator)
    evaluator.checkpoint_root = tmp_path
    config = TrialConfig(
        target="synth_target",
        encoder="tiny-bert",
        encoder_options=SMALL,
        max_length=16,
        max_steps=12,
        batch_size=8,
        eval_every=4,
        step_budget="total",
        hyperparameters={"max_eval_examples": 16, "checkpoint_every": 2},
    )
    with pytest.raises(KeyboardInterrupt):
        evaluator.evaluate(config, callbacks=[KillAtStep(KILLED_AT)], checkpoint_key="trial-0")
    assert checkpointed_step(tmp_path / "trial-0" / "seed-0") == 6

    other = TrialConfig.from_dict({**config.to_dict(), "learning_rate": 5e-4})
    seen: list[int] = []
    result = evaluator.evaluate(other, callbacks=[Steps(seen)], checkpoint_key="trial-0")
    assert result.status is TrialStatus.COMPLETE, result.failure_reason
    assert seen == list(range(1, 13))
    fresh = evaluator.evaluate(other, checkpoint_key=None)
    assert result.scores == fresh.scores


def test_the_local_runner_says_it_checkpoints() -> None:
    assert RUNNERS.get("local").capabilities.checkpoints


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stderr


@pytest.mark.parametrize("where", ["file", "under a file", "set"])
def test_study_validate_refuses_an_unusable_checkpoint_dir(tmp_path: Path, where: str) -> None:
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not a folder\n")
    target = a_file if where != "under a file" else a_file / "checkpoints"
    spec_file = tmp_path / "spec.yaml"
    runner = "" if where == "set" else f", checkpoint_dir: {json.dumps(str(target))}"
    spec_file.write_text(
        "name: demo\ntarget: synth_target\ncandidates: [synth_related]\n"
        f"encoder: tiny-bert\nrunner: {{name: local{runner}}}\n"
    )
    extra = ["--set", f"runner.checkpoint_dir={target}"] if where == "set" else []
    code, stderr = invoke("study", "validate", str(spec_file), *extra)
    assert code != 0
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "runner.checkpoint_dir" in lines[0] and repr(str(target)) in lines[0]
    assert "is not a folder" in lines[0]
    assert not (tmp_path / "notes.txt" / "checkpoints").exists()


def test_study_validate_refuses_an_empty_checkpoint_dir(tmp_path: Path) -> None:
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(
        "name: demo\ntarget: synth_target\ncandidates: [synth_related]\n"
        "encoder: tiny-bert\nrunner: {name: local, checkpoint_dir: ''}\n"
    )
    code, stderr = invoke("study", "validate", str(spec_file))
    assert code != 0
    [line] = stderr.strip().splitlines()
    assert "runner.checkpoint_dir" in line and "is empty" in line


def test_a_checkpoint_dir_several_levels_below_a_writable_folder_is_fine(tmp_path: Path) -> None:
    assert checkpoint_base_problem(tmp_path / "missing" / "deeper" / "checkpoints") is None
    assert not (tmp_path / "missing").exists()  # creates nothing


def test_an_existing_checkpoint_dir_that_is_not_writable_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from taskgraph.runners import local

    folder = tmp_path / "checkpoints"
    folder.mkdir()
    real_access = local.os.access
    # tests run as root, who may write anywhere: the folder says it is read-only
    monkeypatch.setattr(
        local.os, "access", lambda path, mode: Path(path) != folder and real_access(path, mode)
    )
    assert checkpoint_base_problem(folder) == f"{str(folder)!r} is not writable"
    assert checkpoint_base_problem(folder / "new") == (
        f"cannot create {str(folder / 'new')!r}: {str(folder)!r} is not writable"
    )
    assert checkpoint_base_problem(tmp_path) is None


@pytest.mark.parametrize(
    "runner",
    [{"name": "ray"}, {"name": "tabular"}, {"name": "local", "checkpoints": False}, None],
)
def test_a_stored_spec_without_local_checkpoints_has_no_checkpoint_folder(
    tmp_path: Path, runner: dict[str, Any] | None
) -> None:
    url = f"sqlite:///{tmp_path / 'study.db'}"
    stored = {"name": "demo", "runner": runner}
    assert stored_study_checkpoint_folder(stored, study="demo", storage_url=url, study_id=1) is None
    local = {"name": "demo", "runner": {"name": "local", "checkpoint_dir": str(tmp_path)}}
    folder = stored_study_checkpoint_folder(local, study="demo", storage_url=url, study_id=1)
    assert folder is not None and folder.parent == tmp_path and folder.name.startswith("demo-")


def test_a_trials_checkpoint_goes_as_soon_as_it_ends(tmp_path: Path) -> None:
    """The local runner's observer sweeps after every trial, not only at the end of the run: a
    long study would otherwise keep every finished trial's checkpoints until it ends."""
    from types import SimpleNamespace

    from taskgraph.runners.builtin import _CheckpointSweeper

    folder = tmp_path / "demo-1234abcd"
    for name in ("trial-0/seed-0", "trial-1/seed-0"):
        (folder / name).mkdir(parents=True)
    state = optuna.trial.TrialState
    running = [SimpleNamespace(number=1, state=state.RUNNING, system_attrs={})]

    def get_trials(deepcopy: bool = True, states: Any = None) -> list[Any]:
        return [t for t in running if states is None or t.state in states]

    study = SimpleNamespace(get_trials=get_trials)
    ended: list[int] = []
    inner = SimpleNamespace(on_trial_end=lambda number, outcome, progress: ended.append(number))
    sweeper = _CheckpointSweeper(
        inner=inner,  # type: ignore[arg-type]
        folder=folder,
        engine=SimpleNamespace(require_study=lambda: study),  # type: ignore[arg-type]
    )
    sweeper.on_trial_end(0, None, None)  # type: ignore[arg-type]
    assert ended == [0]
    assert folders(folder) == ["trial-1", "trial-1/seed-0"]  # trial 1 runs on: kept
    running.clear()
    sweeper.on_trial_end(1, None, None)  # type: ignore[arg-type]
    assert ended == [0, 1] and not folder.exists()
