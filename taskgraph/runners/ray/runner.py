"""The ``ray`` runner: runs the remaining budget of an opened study as Ray Tune trials."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import ray
from ray import tune

from taskgraph.errors import TaskgraphError
from taskgraph.runners.builtin import ray_experiment_dir
from taskgraph.runners.ray.address import check_ray_address, cluster_address
from taskgraph.runners.ray.driver import (
    ASHASparingBaseline,
    Book,
    DefineByRun,
    DriverCallback,
    MedianSparingBaseline,
    TruthfulOptunaSearch,
    remove_finished_checkpoints,
    trial_name,
)
from taskgraph.runners.ray.worker import (
    EVALUATION,
    METRIC,
    EvaluatorFactory,
    local_evaluator,
    train_in_worker,
)
from taskgraph.search.engine import RunSummary, StudyEngine
from taskgraph.search.heartbeat import (
    Heartbeat,
    keep_terminate_as_interrupt,
    optuna_warnings_only,
    storage_id,
)
from taskgraph.spec.models import RayRunnerSpec
from taskgraph.storage.retry import DatabaseUnavailableError

__all__ = ["QUIET_RAY_ENV", "RayTuneRunner", "ray_messages_to_stderr"]

#: ASHA's ``max_t``: no cap on a trial's evaluations (a trial ends when its training does).
_NO_MAX_T = 10**9

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
    # With CheckpointConfig(num_to_keep=1) each trial checkpoint forces an experiment-state
    # snapshot (the local files the study is resumed from are the records, not these), and
    # Tune warned about it three lines at a time, several times a study.
    "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0",
}


class RayTuneRunner:
    """Runs the remaining budget of an opened study as Ray Tune trials."""

    def __init__(
        self,
        *,
        engine: StudyEngine,
        data_dir: str | os.PathLike[str] | None = None,
        evaluator_factory: EvaluatorFactory = local_evaluator,
        reuse_actors: bool = True,
    ) -> None:
        if not isinstance(engine.spec.runner, RayRunnerSpec):
            raise ValueError("RayTuneRunner needs a spec with `runner: ray`")
        self.engine = engine
        self.runner: RayRunnerSpec = engine.spec.runner
        # Tune runs each trial in its own directory: relative paths must not depend on it.
        self.data_dir = None if data_dir is None else str(Path(data_dir).resolve())
        self.evaluator_factory = evaluator_factory
        # Tune starts each trial in an actor a finished trial left (no process start, no
        # imports); False gives every trial a fresh actor (benchmarks/orchestration_overhead.py).
        self.reuse_actors = reuse_actors

    def _scheduler(self) -> Any:
        pruner = self.engine.spec.pruner
        mode = "max" if self.engine.spec.objective.direction == "maximize" else "min"
        if pruner.name in ("asha", "successive_halving"):
            return ASHASparingBaseline(
                # the evaluation index: checkpoint reports also advance training_iteration
                time_attr=EVALUATION,
                metric=METRIC,
                mode=mode,
                grace_period=pruner.min_resource,
                reduction_factor=pruner.reduction_factor,
                # Ray's default max_t (100) stops every trial at its 100th evaluation, recorded
                # pruned; Optuna's pruner (the local runner) has no such cap.  A trial ends
                # when its training does.
                max_t=_NO_MAX_T,
                stop_last_trials=False,
            )
        if pruner.name == "median":
            return MedianSparingBaseline(
                time_attr=EVALUATION,
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
        # ray.init sets SIGTERM to sys.exit: `kill <pid>` of `study run` must stay Ctrl-C.
        with keep_terminate_as_interrupt():
            self._start_ray()
        return True

    def _start_ray(self) -> None:
        address = cluster_address(self.runner.address)  # `local`: as no address
        if address:
            # ray.init waits 40 s, or for ever, at an address that is not a Ray GCS.
            check_ray_address(address, flag="runner.address")
            try:
                ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
            except (ConnectionError, RuntimeError, ValueError, TimeoutError) as error:
                # Ray's own text is a page (its GCS client's last traceback): one line here.
                reason = str(error).strip().splitlines()[0] if str(error).strip() else ""
                raise TaskgraphError(
                    f"runner.address {address}: cannot connect to a Ray cluster there: "
                    f"{reason or type(error).__name__}"
                ) from None
            _check_cluster_resources(self.runner, address=address)
        else:
            # address="local": always a new instance of our own, never a cluster that happens
            # to run on this machine (which `ray.init()` would join); sized by num_cpus.
            ray.init(
                address="local",
                num_cpus=self.runner.num_cpus or 2,
                include_dashboard=False,
                log_to_driver=False,
                logging_level=logging.WARNING,
            )

    def run(self) -> RunSummary:
        """Run Tune until the budget (or the wall time) is spent; return why it stopped."""
        engine = self.engine
        spec = engine.spec
        # Ray first: a cluster that cannot be reached is one error before any trial is asked.
        # (The app checks the address before it opens the study: RayRunner.build_evaluator.)
        started = self._init_ray()
        try:
            experiment_dir = ray_experiment_dir(spec)
            study = engine.require_study()
            progress = engine.progress()
            engine.observer.on_open(progress)
            stop = engine.check_stop()
        except BaseException:
            if started:
                ray.shutdown()
            raise
        if stop is not None:
            if started:
                ray.shutdown()
            return stop
        remaining = progress.budget - progress.n_done - progress.n_running
        book = Book()
        # OptunaSearch warns when its own tell finds the trial already told (by us, truthfully);
        # the result loggers are off, so Tune's end-of-run analysis has no files to read.
        logging.getLogger("ray.tune.search.optuna.optuna_search").setLevel(logging.ERROR)
        logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)
        heartbeat = Heartbeat(storage=engine.storage, interval=spec.recovery.heartbeat_interval)
        database_gone = False
        try:
            # Optuna's log at WARNING: OptunaSearch loads the study and tells each trial.
            with (
                heartbeat,
                warnings.catch_warnings(),
                optuna_warnings_only(),
                ray_messages_to_stderr(),
            ):
                warnings.simplefilter("ignore")  # Optuna's experimental/heartbeat notices
                searcher = TruthfulOptunaSearch(
                    engine=engine,
                    book=book,
                    heartbeat=heartbeat,
                    space=DefineByRun(
                        space=engine.space, same_configuration=engine.same_configuration
                    ),
                    metric=METRIC,
                    mode="max" if spec.objective.direction == "maximize" else "min",
                    # the engine's own sampler (the graph sampler's prior records included)
                    sampler=study.sampler,
                    study_name=spec.name,
                    storage=engine.storage,
                )
                trainable = tune.with_parameters(
                    train_in_worker,
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
                        reuse_actors=self.reuse_actors,
                        time_budget_s=spec.budget.wall_time,
                        trial_name_creator=trial_name,
                        trial_dirname_creator=trial_name,
                    ),
                    run_config=tune.RunConfig(
                        name=f"{spec.name}-{time.strftime('%Y%m%d-%H%M%S')}",
                        storage_path=str(experiment_dir),
                        callbacks=[DriverCallback(book=book, heartbeat=heartbeat, engine=engine)],
                        verbose=0,
                        # A trial whose worker died (killed, out of memory, its node lost)
                        # starts again from its last checkpoint, up to recovery.max_retry
                        # times; then it is recorded failed with Ray's reason.  (Training
                        # errors never get here: the evaluator returns them as failed results.)
                        failure_config=tune.FailureConfig(max_failures=spec.recovery.max_retry),
                        # Workers report each checkpoint of their trainer (every seed's folder):
                        # Tune persists it under storage_path and keeps the latest only.  A
                        # trial Tune starts again resumes it (tune.get_checkpoint); a retry
                        # after a killed or interrupted driver finds its path on the Optuna
                        # trial (RAY_CHECKPOINT_ATTR).  A told trial's checkpoints are
                        # deleted by the searcher.
                        checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
                    ),
                )
                tuner.fit()
        except Exception as error:
            gone = _database_unavailable(error)
            if gone is None:
                raise
            # The database is gone: the unfinished trials stay RUNNING (their heartbeats stop)
            # and `study resume` retries them, as after a killed driver.  Raised as itself,
            # whatever Tune wrapped it in, so that it ends the command as one line.
            database_gone = True
            raise gone from gone.__cause__
        finally:
            if not database_gone:
                self._interrupt_unfinished(book, searcher if "searcher" in locals() else None)
                remove_finished_checkpoints(study)
            if started:
                ray.shutdown()
        stop = engine.check_stop()
        if stop is not None:
            return stop
        # Tune ended with room left: its time budget (budget.wall_time) ran out.
        wall = spec.budget.wall_time
        return RunSummary(
            progress=engine.progress(),
            reason="wall_time",
            detail="" if wall is None else f"{wall:g} s elapsed",
        )

    def _interrupt_unfinished(self, book: Book, searcher: Any) -> None:
        # Trials Tune started but never finished (Ctrl-C, time budget): failed as interrupted
        # and enqueued again, so `study resume` runs them and none is lost or counted twice.
        if searcher is None:
            return
        for trial_id, ot_trial in list(searcher._ot_trials.items()):
            if trial_id in book.finished:
                continue
            frozen = self.engine.storage.get_trial(storage_id(ot_trial))
            if frozen.state.is_finished():
                continue
            self.engine.interrupt(self.engine.trial(storage_id(ot_trial)))


def _database_unavailable(error: BaseException) -> DatabaseUnavailableError | None:
    """Return the :class:`DatabaseUnavailableError` behind ``error`` (Tune may wrap it)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, DatabaseUnavailableError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


@contextmanager
def ray_messages_to_stderr() -> Iterator[None]:
    """Within the block, the messages Ray prints in the driver go to stderr, not stdout.

    Ray's error listener prints what the cluster reports (``(raylet) A worker died or was
    killed ...``) to ``sys.stdout``, even with ``log_to_driver=False`` and with no setting to
    turn it off; stdout carries ``--json``'s document.
    """
    from ray._private import worker as ray_worker

    printer = ray_worker.print_to_stdstream

    def to_stderr(data: dict[str, Any], ignore_prefix: bool) -> None:
        printer({**data, "is_err": True}, ignore_prefix)

    ray_worker.print_to_stdstream = to_stderr
    try:
        yield
    finally:
        ray_worker.print_to_stdstream = printer


def _check_cluster_resources(runner: RayRunnerSpec, *, address: str) -> None:
    """Warn on stderr when no node of the cluster at ``address`` can hold one trial's
    ``runner.resources`` (Tune would wait for it for ever, unless an autoscaler adds one)."""
    wanted = {"CPU": float(runner.resources.cpu), "GPU": float(runner.resources.gpu)}
    nodes = [node.get("Resources", {}) for node in ray.nodes() if node.get("Alive")]
    for key, amount in wanted.items():
        if amount <= 0:
            continue
        largest = max((float(node.get(key, 0.0)) for node in nodes), default=0.0)
        if amount > largest:
            field = f"runner.resources.{key.lower()}"
            print(
                f"warning: {field} {amount:g}: no node of the Ray cluster at {address} has more "
                f"than {largest:g} {key}; its trials wait until an autoscaler adds such a node",
                file=sys.stderr,
            )
