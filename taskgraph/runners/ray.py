"""The ``ray`` runner: a study's trials as Ray Tune trials, on this machine or a cluster.

The only module that imports Ray.  The driver (this process) opens the study with the same
:class:`~taskgraph.search.engine.StudyEngine` as the local runner, then runs a Tune ``Tuner``:

* ``OptunaSearch(space=<define-by-run>, storage=<the engine's RDBStorage>, study_name=...)``
  asks the same Optuna study, so optuna-dashboard shows Tune's trials with the local ones, and
  enqueued trials (the baseline, retries) run first;
* ``ASHAScheduler`` (pruner ``asha``/``successive_halving``) or ``MedianStoppingRule``
  (``median``) stop poor trials, counting evaluations as the time attribute;
* ``tune.with_resources`` gives each trial its CPUs and (fractional) GPUs; ``reuse_actors``
  and ``max_concurrent_trials`` come from the spec; Tune's state goes to the experiment dir.

Tune reports a trial its scheduler stopped as COMPLETE.  :class:`_TruthfulOptunaSearch`
finishes every trial itself through the engine instead, with its true state (PRUNED when the
scheduler stopped it, FAILED with the reason when it failed) and writes its records, in the
driver, in one place.  The workers only train and report.
"""

from __future__ import annotations

import json
import logging
import math
import os
import pickle
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import optuna
import ray
from ray import tune
from ray.tune.search.optuna import OptunaSearch

from taskgraph.search.engine import RunSummary, StudyEngine
from taskgraph.search.heartbeat import Heartbeat, quiet_optuna
from taskgraph.search.outcome import SeedRun, TrialOutcome, run_seeds, utcnow
from taskgraph.search.progress import CONFIG_ATTR, RESULTS_ATTR
from taskgraph.search.space import BASELINE_ROLE, ROLE_ATTR, SearchSpace
from taskgraph.spec.models import RayRunnerSpec, StudySpec
from taskgraph.training.callbacks import TrainerCallback, TrainerControl, TrainerState
from taskgraph.trial import TrialConfig, TrialResult, TrialStatus

__all__ = ["QUIET_RAY_ENV", "RayTuneRunner", "TuneReportCallback", "submit_study"]

#: environment for a quiet local Ray (no auth prompt, no usage stats, classic output)
QUIET_RAY_ENV = {
    "RAY_AUTH_MODE": "disabled",
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_AIR_NEW_OUTPUT": "0",
    "RAY_DEDUP_LOGS": "0",
    "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",
    # Ctrl-C raises KeyboardInterrupt in the driver instead of Tune's "resume with
    # Tuner.restore" path: the study is resumed with `taskgraph study resume`.
    "TUNE_DISABLE_SIGINT_HANDLER": "1",
}
METRIC = "objective"
_PAYLOAD = "taskgraph"

EvaluatorFactory = Callable[[StudySpec, "str | None"], Any]


class TuneReportCallback(TrainerCallback):
    """Trainer callback in a Ray worker: reports each evaluation's objective to Tune."""

    def __init__(self) -> None:
        self.evaluations = 0

    def on_evaluate(
        self,
        args: TrialConfig,
        state: TrainerState,
        control: TrainerControl,
        metrics: dict[str, dict[str, dict[str, float]]] | None = None,
        **kwargs: Any,
    ) -> TrainerControl | None:
        """Report ``objective`` (and the scores, as JSON) for Tune's scheduler and searcher."""
        objective = kwargs.get("objective")
        if objective is None:
            return None
        self.evaluations += 1
        tune.report(
            {
                METRIC: float(objective),
                "evaluation": self.evaluations,
                "global_step": state.global_step,
                "taskgraph_scores": json.dumps(metrics or {}),
            }
        )
        return None


def local_evaluator(spec: StudySpec, data_dir: str | None) -> Any:
    """Return the evaluator a worker trains with (the local runner's)."""
    from taskgraph.runners.local import LocalEvaluator
    from taskgraph.spec.checks import inline_task_defs

    return LocalEvaluator(
        tasks=inline_task_defs(spec), data_dir=data_dir, device=spec.training.device
    )


def _trainable(
    config: dict[str, Any],
    *,
    spec_json: str,
    data_dir: str | None,
    evaluator_factory: EvaluatorFactory,
) -> None:
    """Train one trial in a Ray worker: every seed, then one final report with the outcome."""
    from taskgraph.spec import spec_from_dict

    payload = config[_PAYLOAD]
    spec = spec_from_dict(json.loads(spec_json))
    saved = payload.get("saved")
    if saved:
        outcome = TrialOutcome.from_list(saved)  # a retry of a trial that trained but was not told
    else:
        evaluator = evaluator_factory(spec, data_dir)
        outcome = run_seeds(
            TrialConfig.from_dict(payload["config"]),
            seeds=spec.seeds,
            evaluate=lambda c, cbs: evaluator.evaluate(c, callbacks=cbs),
            first_seed_callbacks=[TuneReportCallback()],
        )
    value = outcome.value
    if value is None:
        value = outcome.last_intermediate
    tune.report(
        {
            METRIC: float("nan") if value is None else float(value),
            "taskgraph_final": True,
            "taskgraph_outcome": json.dumps(outcome.to_list()),
        }
    )


class _Book:
    """What the driver knows about each live Tune trial (filled by the callback)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.trials: dict[str, Any] = {}  # Tune trial id -> Tune Trial
        self.results: dict[str, list[dict[str, Any]]] = {}
        self.started: dict[str, Any] = {}
        self.finished: set[str] = set()
        self.stopped_by_scheduler: set[str] = set()


class _Callback(tune.Callback):
    def __init__(self, *, book: _Book, heartbeat: Heartbeat, engine: StudyEngine) -> None:
        self.book = book
        self.heartbeat = heartbeat
        self.engine = engine

    def __getstate__(self) -> dict[str, Any]:
        return {}  # Tune pickles its run config; a restored callback has nothing to track

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.book = _Book()
        self.heartbeat = None  # type: ignore[assignment]
        self.engine = None  # type: ignore[assignment]

    def on_trial_start(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        with self.book.lock:
            self.book.trials[trial.trial_id] = trial
            self.book.started[trial.trial_id] = utcnow()
            self.book.results.setdefault(trial.trial_id, [])
        payload = trial.config[_PAYLOAD]
        self.heartbeat.add(int(payload["trial_id"]))
        if payload.get("config"):
            self.engine.observer.on_trial_start(
                int(payload["number"]), TrialConfig.from_dict(payload["config"])
            )

    def on_trial_result(
        self, iteration: int, trials: list[Any], trial: Any, result: dict[str, Any], **info: Any
    ) -> None:
        with self.book.lock:
            self.book.results.setdefault(trial.trial_id, []).append(dict(result))
            # Tune marks the result on which its scheduler stops a trial as done; a trial that
            # is stopped because the experiment ends (time budget) gets no such result.
            if result.get("done") and not result.get("taskgraph_final"):
                self.book.stopped_by_scheduler.add(trial.trial_id)


class _TruthfulOptunaSearch(OptunaSearch):
    """OptunaSearch that finishes each trial through the engine with its true state."""

    def __init__(
        self, *, engine: StudyEngine, book: _Book, heartbeat: Heartbeat, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.engine = engine
        self.book = book
        self.heartbeat = heartbeat

    _LIVE = ("engine", "book", "heartbeat")  # driver-only objects: never pickled

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles its searcher (Tuner state, experiment checkpoints); the driver's live
        # connections stay out and are never needed by a restored copy.
        return {k: v for k, v in self.__dict__.items() if k not in self._LIVE}

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as file:
            pickle.dump(self.__getstate__(), file)

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        value = result.get(self.metric)
        if isinstance(value, float) and math.isnan(value):
            return  # a failed trial's final report: nothing for the pruner's curve
        if result.get("taskgraph_final"):
            return  # the outcome is told in on_trial_complete, not reported as a step
        super().on_trial_result(trial_id, result)

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        if trial_id in self._completed_trials or trial_id not in self._ot_trials:
            return
        self._completed_trials.add(trial_id)
        ot_trial = self._ot_trials[trial_id]
        with self.book.lock:
            pruned = trial_id in self.book.stopped_by_scheduler
        final = bool(result and result.get("taskgraph_outcome"))
        if not (final or error or pruned):
            # Stopped by the end of the experiment (wall time), not judged: failed as
            # interrupted and enqueued again, as after Ctrl-C.
            self.heartbeat.discard(ot_trial._trial_id)
            self.engine.interrupt(optuna.Trial(self.engine._require_study(), ot_trial._trial_id))
            with self.book.lock:
                self.book.finished.add(trial_id)
            return
        outcome = self._outcome(trial_id, result, error)
        self.heartbeat.discard(ot_trial._trial_id)
        if outcome.status is TrialStatus.PRUNED:
            # Tune withholds from the searcher the result on which its scheduler stopped the
            # trial; report it so Optuna keeps the pruned trial's value and curve.
            with self.book.lock:
                reports = [r for r in self.book.results.get(trial_id, []) if METRIC in r]
            reported = set(ot_trial.storage.get_trial(ot_trial._trial_id).intermediate_values)
            for report in reports:
                step = int(report.get("training_iteration", 0))
                value = report[METRIC]
                if step not in reported and isinstance(value, float) and math.isfinite(value):
                    ot_trial.report(value, step)
        with quiet_optuna():
            self.engine.finish(
                optuna.Trial(self.engine._require_study(), ot_trial._trial_id), outcome
            )
        with self.book.lock:
            self.book.finished.add(trial_id)
        self.engine.observer.on_trial_end(ot_trial.number, outcome, self.engine.progress())

    def _outcome(self, trial_id: str, result: dict[str, Any] | None, error: bool) -> TrialOutcome:
        ot_trial = self._ot_trials[trial_id]
        with self.book.lock:
            tune_trial = self.book.trials.get(trial_id)
            reports = [
                r for r in self.book.results.get(trial_id, []) if not r.get("taskgraph_final")
            ]
            started = self.book.started.get(trial_id, utcnow())
        if result and result.get("taskgraph_outcome"):
            return TrialOutcome.from_list(json.loads(result["taskgraph_outcome"]))
        config = TrialConfig.from_dict(ot_trial.user_attrs[CONFIG_ATTR])
        if error:
            reason = "the Ray trial errored"
            if (
                tune_trial is not None
                and tune_trial.error_file
                and os.path.exists(tune_trial.error_file)
            ):
                lines = Path(tune_trial.error_file).read_text(errors="replace").strip().splitlines()
                reason = f"Ray trial error: {lines[-1] if lines else 'unknown'}"
            res = TrialResult.failed(reason)
        else:
            # Stopped by the scheduler before its final report: pruned, at its last evaluation.
            last = reports[-1] if reports else {}
            res = TrialResult(
                status=TrialStatus.PRUNED,
                objective=last.get(METRIC),
                scores=json.loads(last.get("taskgraph_scores", "{}")),
                intermediate=[
                    (int(r.get("global_step", i)), float(r[METRIC])) for i, r in enumerate(reports)
                ],
            )
            res.cost.seconds = float(last.get("time_total_s", 0.0))
        seed_config = config.with_seed(self.engine.spec.seeds[0])
        return TrialOutcome(
            runs=(
                SeedRun(config=seed_config, result=res, started_at=started, finished_at=utcnow()),
            )
        )


class _DefineByRun:
    """OptunaSearch's ``space``: suggests a trial's configuration (plain data, picklable)."""

    def __init__(self, *, space: SearchSpace) -> None:
        self.space = space

    def __call__(self, trial: Any) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "trial_id": trial._trial_id,
            "number": trial.number,
            "role": trial.user_attrs.get(ROLE_ATTR, "search"),
        }
        saved = trial.user_attrs.get(RESULTS_ATTR)
        if saved:
            payload["saved"] = saved
            payload["config"] = trial.user_attrs.get(CONFIG_ATTR)
            return {_PAYLOAD: payload}
        config = self.space.suggest(trial)
        trial.set_user_attr(CONFIG_ATTR, config.to_dict())
        payload["config"] = config.to_dict()
        return {_PAYLOAD: payload}


class _SparesBaseline:
    """Scheduler mixin: the baseline trial is never stopped early (every gain is measured
    against it), though its results still shape the scheduler's rungs and medians."""

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> str:
        decision: str = super().on_trial_result(tune_controller, trial, result)  # type: ignore[misc]
        if trial.config.get(_PAYLOAD, {}).get("role") == BASELINE_ROLE:
            return tune.schedulers.TrialScheduler.CONTINUE
        return decision


class _ASHAScheduler(_SparesBaseline, tune.schedulers.ASHAScheduler):
    pass


class _MedianStoppingRule(_SparesBaseline, tune.schedulers.MedianStoppingRule):
    pass


def _trial_name(trial: Any) -> str:
    # Tune's default names spell out every parameter; the Optuna trial number says it all.
    payload = trial.config.get(_PAYLOAD, {})
    return f"trial-{payload.get('number', trial.trial_id)}-{trial.trial_id}"


class RayTuneRunner:
    """Runs the remaining budget of an opened study as Ray Tune trials."""

    def __init__(
        self,
        *,
        engine: StudyEngine,
        data_dir: str | os.PathLike[str] | None = None,
        evaluator_factory: EvaluatorFactory = local_evaluator,
    ) -> None:
        if not isinstance(engine.spec.runner, RayRunnerSpec):
            raise ValueError("RayTuneRunner needs a spec with `runner: ray`")
        self.engine = engine
        self.runner: RayRunnerSpec = engine.spec.runner
        # Tune runs each trial in its own directory: relative paths must not depend on it.
        self.data_dir = None if data_dir is None else str(Path(data_dir).resolve())
        self.evaluator_factory = evaluator_factory

    def _scheduler(self) -> Any:
        pruner = self.engine.spec.pruner
        mode = "max" if self.engine.spec.objective.direction == "maximize" else "min"
        if pruner.name in ("asha", "successive_halving"):
            return _ASHAScheduler(
                time_attr="training_iteration",
                metric=METRIC,
                mode=mode,
                grace_period=pruner.min_resource,
                reduction_factor=pruner.reduction_factor,
            )
        if pruner.name == "median":
            return _MedianStoppingRule(
                time_attr="training_iteration",
                metric=METRIC,
                mode=mode,
                grace_period=float(max(pruner.n_warmup_steps, 1)),
                min_samples_required=max(pruner.n_startup_trials, 1),
            )
        return None

    def _init_ray(self) -> bool:
        """Connect to (or start) Ray; return whether this call started it."""
        for key, value in QUIET_RAY_ENV.items():
            os.environ.setdefault(key, value)
        if ray.is_initialized():
            return False  # the caller's Ray: use it, and leave it running
        if self.runner.address:
            ray.init(
                address=self.runner.address, log_to_driver=False, logging_level=logging.WARNING
            )
        else:
            # address="local": always a new instance of our own, never a cluster that happens
            # to run on this machine (which `ray.init()` would join).
            ray.init(
                address="local",
                num_cpus=self.runner.num_cpus or 2,
                include_dashboard=False,
                log_to_driver=False,
                logging_level=logging.WARNING,
            )
        return True

    def run(self) -> RunSummary:
        """Run Tune until the budget (or the wall time) is spent; return why it stopped."""
        from taskgraph.search.samplers import build_sampler

        engine = self.engine
        spec = engine.spec
        study = engine._require_study()
        progress = engine.progress()
        engine.observer.on_open(progress)
        remaining = progress.budget - progress.n_done
        if remaining <= 0:
            return RunSummary(progress=progress, reason="budget")
        if progress.n_failed > spec.budget.max_failures:
            return RunSummary(
                progress=progress,
                reason="max_failures",
                detail=f"{progress.n_failed} trials failed",
            )
        book = _Book()
        experiment_dir = (
            Path(self.runner.experiment_dir or Path.home() / ".taskgraph" / "ray" / spec.name)
            .expanduser()
            .resolve()
        )
        experiment_dir.mkdir(parents=True, exist_ok=True)
        started = self._init_ray()
        # OptunaSearch warns when its own tell finds the trial already told (by us, truthfully);
        # the result loggers are off, so Tune's end-of-run analysis has no files to read.
        logging.getLogger("ray.tune.search.optuna.optuna_search").setLevel(logging.ERROR)
        logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)
        heartbeat = Heartbeat(storage=engine.storage, interval=spec.recovery.heartbeat_interval)
        try:
            with heartbeat, warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Optuna's experimental/heartbeat notices
                searcher = _TruthfulOptunaSearch(
                    engine=engine,
                    book=book,
                    heartbeat=heartbeat,
                    space=_DefineByRun(space=engine.space),
                    metric=METRIC,
                    mode="max" if spec.objective.direction == "maximize" else "min",
                    sampler=build_sampler(spec),
                    study_name=spec.name,
                    storage=engine.storage,
                )
                trainable = tune.with_parameters(
                    _trainable,
                    spec_json=json.dumps(spec.model_dump(mode="json")),
                    data_dir=self.data_dir,
                    evaluator_factory=self.evaluator_factory,
                )
                resources = {"cpu": self.runner.resources.cpu, "gpu": self.runner.resources.gpu}
                tuner = tune.Tuner(
                    tune.with_resources(trainable, resources),
                    tune_config=tune.TuneConfig(
                        search_alg=searcher,
                        scheduler=self._scheduler(),
                        num_samples=remaining,
                        max_concurrent_trials=self.runner.max_concurrent_trials,
                        reuse_actors=True,
                        time_budget_s=spec.budget.wall_time,
                        trial_name_creator=_trial_name,
                        trial_dirname_creator=_trial_name,
                    ),
                    run_config=tune.RunConfig(
                        name=f"{spec.name}-{time.strftime('%Y%m%d-%H%M%S')}",
                        storage_path=str(experiment_dir),
                        callbacks=[_Callback(book=book, heartbeat=heartbeat, engine=engine)],
                        verbose=0,
                        failure_config=tune.FailureConfig(max_failures=0),
                    ),
                )
                tuner.fit()
        finally:
            self._interrupt_unfinished(book, searcher if "searcher" in locals() else None, study)
            if started:
                ray.shutdown()
        progress = engine.progress()
        if progress.n_failed > spec.budget.max_failures:
            return RunSummary(
                progress=progress,
                reason="max_failures",
                detail=f"{progress.n_failed} trials failed",
            )
        if progress.n_done >= progress.budget:
            return RunSummary(progress=progress, reason="budget")
        return RunSummary(progress=progress, reason="wall_time")

    def _interrupt_unfinished(self, book: _Book, searcher: Any, study: optuna.Study) -> None:
        # Trials Tune started but never finished (Ctrl-C, time budget): failed as interrupted
        # and enqueued again, so `study resume` runs them and none is lost or counted twice.
        if searcher is None:
            return
        for trial_id, ot_trial in list(searcher._ot_trials.items()):
            if trial_id in book.finished:
                continue
            frozen = self.engine.storage.get_trial(ot_trial._trial_id)
            if frozen.state.is_finished():
                continue
            self.engine.interrupt(optuna.Trial(study, ot_trial._trial_id))


def submit_study(
    spec: StudySpec,
    *,
    storage_url: str,
    address: str,
    cluster_address: str = "auto",
    cluster_storage_url: str | None = None,
    client: Any = None,
) -> str:
    """Create the study in the database and submit its driver as a Ray job; return the job id.

    The job runs ``taskgraph study resume NAME --runner ray --address CLUSTER`` on the cluster
    with ``TASKGRAPH_STORAGE`` in its environment (so the password is not on a command line),
    and returns at once; progress is read from the database with ``taskgraph study status``.
    ``cluster_storage_url`` is the same database as the cluster reaches it (inside docker
    compose, ``postgres:5432`` rather than ``127.0.0.1:5432``).
    """
    import shlex

    engine = StudyEngine(spec=spec, storage_url=storage_url)
    try:
        engine.open()
    finally:
        engine.close()
    if client is None:
        from ray.job_submission import JobSubmissionClient

        client = JobSubmissionClient(address)
    entrypoint = (
        f"taskgraph study resume {shlex.quote(spec.name)} --runner ray "
        f"--address {shlex.quote(cluster_address)} --quiet"
    )
    env: Mapping[str, str] = {
        "TASKGRAPH_STORAGE": cluster_storage_url or storage_url,
        **QUIET_RAY_ENV,
    }
    job_id: str = client.submit_job(
        entrypoint=entrypoint,
        submission_id=f"taskgraph-{spec.name}-{uuid.uuid4().hex[:8]}",
        runtime_env={"env_vars": dict(env)},
        metadata={"study": spec.name},
    )
    return job_id
