"""The Ray runner checkpoints each (trial, seed) through Tune: a retried trial resumes.

A two-seed trial of 12 tiny-bert steps (a checkpoint every 2) is stopped at step 7 of its
second seed, once the driver has noted that seed's step-6 checkpoint: by Ctrl-C in the driver
(its retry, a new Optuna trial and a new Tune trial, restores the persisted checkpoint the
driver noted) or by its worker dying (Tune starts the trial again with its own checkpoint).
Either way each seed trains on from its checkpoint: seed 0 from its end (12), seed 1 from step
6.  Once the trial is told, no checkpoint is left under the experiment directory.
"""

from __future__ import annotations

import functools
import os
import signal
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import optuna
import pytest

from taskgraph.runners.local import LocalEvaluator
from taskgraph.search.engine import StudyEngine
from taskgraph.spec import spec_from_dict
from taskgraph.spec.models import StudySpec
from taskgraph.training import TrainerCallback
from taskgraph.trial import TrialConfig

pytestmark = pytest.mark.ray

KILLED_AT = 7  # after the checkpoint of step 6 (checkpoint_every: 2), before the one of step 8
SMALL = {"hidden_size": 32, "num_attention_heads": 2, "intermediate_size": 64}


def study_spec(name: str, experiment_dir: Path, *, checkpoints: bool = True) -> StudySpec:
    """Return a one-trial study (the target's baseline), two seeds of 12 tiny-bert steps."""
    return spec_from_dict(
        {
            "name": name,
            "target": "synth_target",
            "candidates": ["synth_related"],
            "encoder": {"name": "tiny-bert", "max_length": 16, "options": SMALL},
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
            "seeds": 2,
            "sampler": {"name": "random", "seed": 0},
            "pruner": {"name": "none"},
            "runner": {
                "name": "ray",
                "num_cpus": 2,
                "max_concurrent_trials": 1,
                "threads": 1,
                "experiment_dir": str(experiment_dir),
                "checkpoints": checkpoints,
            },
        }
    )


class Watch(TrainerCallback):
    """In the worker: writes ``<seed> <first step>`` to ``log`` as each training begins and,
    at step ``KILLED_AT`` of seed ``seed`` (once: ``fired``), waits until the driver has noted a
    checkpoint of that step's seed on the Optuna trial, then presses Ctrl-C in the driver
    (``driver``, its pid) or, without ``driver``, kills its own worker process."""

    def __init__(
        self, *, log: Path, fired: Path, database: Path, seed: int, driver: int | None
    ) -> None:
        self.log, self.fired, self.database = log, fired, database
        self.seed, self.driver = seed, driver

    def on_train_begin(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
        with self.log.open("a") as file:
            file.write(f"{args.seed} {state.global_step}\n")

    def on_step_end(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
        if args.seed != self.seed or state.global_step != KILLED_AT or self.fired.exists():
            return None
        self.fired.touch()
        # the old code notes nothing: interrupt all the same, after a wait long enough for a
        # driver on a loaded machine (20 s was suspected of a failure with the suite beside it)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not self._noted():
            time.sleep(0.1)
        if self.driver is None:
            os._exit(1)  # the worker dies (OOM killer, lost node)
        os.kill(self.driver, signal.SIGINT)
        time.sleep(60)  # the driver stops this trial
        return None

    def _noted(self) -> bool:
        """Return whether the noted checkpoint holds this seed's step 6."""
        with sqlite3.connect(self.database) as connection:
            rows = connection.execute(
                "SELECT value_json FROM trial_system_attributes WHERE key = ?",
                ("taskgraph:ray_checkpoint",),
            ).fetchall()
        import json

        import torch

        for (value,) in rows:
            seed_folder = Path(json.loads(value)) / f"seed-{self.seed}"
            if (seed_folder / "checkpoint.pt").is_file():
                payload = torch.load(
                    seed_folder / "checkpoint.pt", map_location="cpu", weights_only=False
                )
                if int(payload["state"]["global_step"]) == KILLED_AT - 1:
                    return True
        return False


class WatchedEvaluator(LocalEvaluator):
    """The local runner's evaluator, with :class:`Watch` added to every training."""

    watch: Watch

    def evaluate(self, config: TrialConfig, *, callbacks: Sequence[Any] = (), **kwargs: Any) -> Any:
        return super().evaluate(config, callbacks=[*callbacks, self.watch], **kwargs)


def watched_factory(spec: StudySpec, data_dir: str | None, *, watch: Watch) -> Any:
    """Worker-side evaluator: the Ray runner's own, watched."""
    from taskgraph.runners.ray.worker import local_evaluator

    plain = local_evaluator(spec, data_dir)
    evaluator = WatchedEvaluator(
        tasks=plain.tasks, data_dir=plain.data_dir, device=plain.device, threads=plain.threads
    )
    evaluator.watch = watch
    return evaluator


def run_study(spec: StudySpec, url: str, watch: Watch) -> Any:
    """Run ``spec``'s study with the Ray runner, its trainings watched by ``watch``."""
    from taskgraph.runners.ray import RayTuneRunner

    engine = StudyEngine(spec=spec, storage_url=url)
    engine.open()
    try:
        factory = functools.partial(watched_factory, watch=watch)
        return RayTuneRunner(engine=engine, evaluator_factory=factory).run()
    finally:
        engine.close()


def begins(log: Path) -> list[tuple[int, ...]]:
    """Return each training's ``(seed, first step)``, in order."""
    return [tuple(map(int, line.split())) for line in log.read_text().splitlines()]


def test_a_ray_trial_retried_after_ctrl_c_resumes_each_seeds_checkpoint(
    tmp_path: Path, local_ray: None
) -> None:
    database = tmp_path / "study.db"
    url = f"sqlite:///{database}"
    experiment_dir = tmp_path / "tune"
    spec = study_spec("raycheck", experiment_dir)
    log = tmp_path / "begins.txt"
    seed0, seed1 = spec.seeds
    watch = Watch(
        log=log, fired=tmp_path / "fired", database=database, seed=seed1, driver=os.getpid()
    )

    # Ctrl-C raises KeyboardInterrupt here even where this process was started with SIGINT
    # ignored (a background job: `nohup ... &`, as CI may run the suite).
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            run_study(spec, url, watch)
    finally:
        signal.signal(signal.SIGINT, previous)
    first, retry = optuna.load_study(study_name="raycheck", storage=url).get_trials()
    assert first.state == optuna.trial.TrialState.FAIL
    assert retry.state == optuna.trial.TrialState.WAITING
    noted = retry.system_attrs.get("taskgraph:ray_checkpoint")  # inherited from the first try

    summary = run_study(spec, url, watch)
    assert summary.progress.n_done == 1
    first, retry = optuna.load_study(study_name="raycheck", storage=url).get_trials()
    assert retry.state == optuna.trial.TrialState.COMPLETE
    # the first try: both seeds from 0; the retry: seed 0 from its end, seed 1 from step 6
    assert begins(log) == [(seed0, 0), (seed1, 0), (seed0, 12), (seed1, KILLED_AT - 1)]
    assert noted is not None and Path(noted).is_relative_to(experiment_dir)
    # told: neither the first try's checkpoint nor the retry's is left behind
    assert not list(experiment_dir.rglob("checkpoint_*"))


@pytest.mark.parametrize("checkpoints", [True, False])
def test_a_ray_trial_whose_worker_died_resumes_its_checkpoint(
    tmp_path: Path, local_ray: None, checkpoints: bool
) -> None:
    database = tmp_path / "study.db"
    url = f"sqlite:///{database}"
    experiment_dir = tmp_path / "tune"
    spec = study_spec("raydied", experiment_dir, checkpoints=checkpoints)
    log = tmp_path / "begins.txt"
    seed0, seed1 = spec.seeds
    watch = Watch(log=log, fired=tmp_path / "fired", database=database, seed=seed1, driver=None)

    summary = run_study(spec, url, watch)
    assert summary.progress.n_done == 1
    [trial] = optuna.load_study(study_name="raydied", storage=url).get_trials()
    assert trial.state == optuna.trial.TrialState.COMPLETE
    if checkpoints:  # Tune started the same trial again, from its own last checkpoint
        assert begins(log) == [(seed0, 0), (seed1, 0), (seed0, 12), (seed1, KILLED_AT - 1)]
    else:  # runner.checkpoints: false: from the start
        assert begins(log) == [(seed0, 0), (seed1, 0), (seed0, 0), (seed1, 0)]
    assert not list(experiment_dir.rglob("checkpoint_*"))


def test_checkpoints_of_finished_trials_with_no_try_waiting_are_removed(tmp_path: Path) -> None:
    """At the end of a run the driver deletes the persisted checkpoints that no try of their
    trial waits for (one interrupted with no retry left); a retry's checkpoint stays."""
    from optuna.trial import TrialState, create_trial

    from taskgraph.runners.ray.driver import remove_finished_checkpoints
    from taskgraph.search.progress import RAY_CHECKPOINT_ATTR as CHECKPOINT_ATTR

    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'study.db'}")
    done, waited = tmp_path / "a" / "checkpoint_000003", tmp_path / "b" / "checkpoint_000001"
    for folder in (done, waited):
        (folder / "seed-0").mkdir(parents=True)
    for path in (done, waited):
        study.add_trial(
            create_trial(state=TrialState.FAIL, system_attrs={CHECKPOINT_ATTR: str(path)})
        )
    study.add_trial(  # the retry of trial 1: the checkpoint it inherited is what it resumes
        create_trial(
            state=TrialState.WAITING,
            system_attrs={"failed_trial": 1, CHECKPOINT_ATTR: str(waited)},
        )
    )
    remove_finished_checkpoints(study)
    assert not done.exists()
    assert (waited / "seed-0").is_dir()
