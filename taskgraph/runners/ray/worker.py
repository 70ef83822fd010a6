"""Ray worker side: train one trial (every seed) and report to Tune; no driver state here."""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import shutil
import socket
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import ray
from ray import tune

from taskgraph.search.outcome import TrialOutcome, run_seeds
from taskgraph.spec.models import StudySpec
from taskgraph.training.callbacks import TrainerCallback, TrainerControl, TrainerState
from taskgraph.trial import TrialConfig

__all__ = [
    "CHECKPOINT_ONLY",
    "COST",
    "DATA",
    "DEVICE",
    "EVALUATION",
    "METRIC",
    "PAYLOAD",
    "EvaluatorFactory",
    "TuneCheckpointCallback",
    "TuneReportCallback",
    "local_evaluator",
    "train_in_worker",
    "worker_host",
]

logger = logging.getLogger(__name__)

METRIC = "objective"
PAYLOAD = "taskgraph"
#: the evaluation index (1, 2, 3...) of a report: the schedulers' and the searcher's step
EVALUATION = "evaluation"
#: marks a report made only to hand Tune a checkpoint (no evaluation): schedulers and the
#: searcher pass over it
CHECKPOINT_ONLY = "taskgraph_checkpoint_only"
#: a report's cost so far (JSON: examples, tokens, target_steps, total_steps)
COST = "taskgraph_cost"
#: the dataset fingerprint of each task the trial trains on (JSON), in its first report
DATA = "taskgraph_data"
#: the device the trial trains on (JSON: the cost's ``device`` and ``threads``), in its first
#: report
DEVICE = "taskgraph_device"
#: the report of the masked-LM stage the trial's encoder came from (JSON), in its first report
PRETRAINING = "taskgraph_pretraining"
#: what example-level data selection kept of each auxiliary (JSON), in its first report
SELECTION = "taskgraph_selection"

EvaluatorFactory = Callable[[StudySpec, "str | None"], Any]


@functools.cache
def worker_host() -> str:
    """Return where this worker trains: ``"<hostname> ray-node:<node id>"``.

    Kept as each run's ``host``: on a cluster the records say which node trained which seed
    (the hostname alone does not tell apart two nodes of one machine).
    """
    return f"{socket.gethostname()} ray-node:{ray.get_runtime_context().get_node_id()}"[:255]


class TuneReportCallback(TrainerCallback):
    """Trainer callback in a Ray worker: reports each evaluation's objective to Tune.

    ``evaluations`` counts them (1, 2, 3...), carrying on from a restored checkpoint's
    ``objective_history``: the schedulers' and the searcher's step (``evaluation``).

    A trial the scheduler stops never sends its final report: the driver writes its record
    from these.  Each carries the cost so far (:data:`COST`: steps, examples, tokens); the
    first one after training begins also carries what the trainer passes to ``on_train_begin``:
    the dataset fingerprints of the data it read (:data:`DATA`), the pretraining stage's report
    (:data:`PRETRAINING`: its cost is part of the trial's) and what data selection kept
    (:data:`SELECTION`), and the device.  Nothing else is repeated: Tune keeps every report.
    """

    def __init__(self, *, threads: int = 0) -> None:
        self.evaluations = 0
        self.objective: float | None = None
        self.threads = threads  # torch's intra-op threads the trainer runs with (0: unknown)
        self._begun = False
        self._once: dict[str, Any] = {}

    def on_train_begin(
        self, args: TrialConfig, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> TrainerControl | None:
        """Take the data's fingerprints, the pretraining report, the selection and the device,
        for the next report (first phase only: a later phase trains on the same data)."""
        if self._begun:
            return None
        self._begun = True
        # The trainer's fingerprints of the data it read (none: the record takes the files').
        loaded = kwargs.get("data_fingerprints")
        if loaded is not None:
            self._once[DATA] = json.dumps(loaded, sort_keys=True)
        for key, value in ((PRETRAINING, "pretraining"), (SELECTION, "selection")):
            if kwargs.get(value) is not None:
                self._once[key] = json.dumps(kwargs[value], sort_keys=True)
        device = _model_device(kwargs.get("model"), threads=self.threads)
        if device is not None:
            self._once[DEVICE] = json.dumps({"device": device, "threads": self.threads})
        return None

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
        self.evaluations = max(self.evaluations + 1, len(state.objective_history))
        self.objective = float(objective)
        once, self._once = self._once, {}
        tune.report(
            {
                METRIC: float(objective),
                EVALUATION: self.evaluations,
                "global_step": state.global_step,
                "max_steps": state.max_steps,  # the driver's progress display
                "phase": state.phase,
                "taskgraph_scores": json.dumps(metrics or {}),
                "taskgraph_host": worker_host(),  # a pruned trial's record is written from it
                COST: json.dumps(
                    {
                        "examples": state.examples,
                        "tokens": state.tokens,
                        "target_steps": state.target_steps,
                        "total_steps": state.total_steps,
                    }
                ),
                **once,
            }
        )
        return None


def _model_device(model: Any, *, threads: int) -> str | None:
    """Return the cost's device string of ``model`` (``cpu/N threads``, ``cuda:NAME``), or
    ``None`` for a model without parameters (a test's fake)."""
    from taskgraph.training.runtime import describe_device

    parameters = getattr(model, "parameters", None)
    if parameters is None:
        return None
    first = next(iter(parameters()), None)
    if first is None:
        return None
    return describe_device(first.device, threads=threads or None)


class TuneCheckpointCallback(TrainerCallback):
    """Trainer callback in a Ray worker (every seed): hands each checkpoint to Tune.

    The trainer writes its checkpoint under ``folder/seed-<S>``; after each save the whole
    ``folder`` (every seed trained so far) is reported with ``tune.report(...,
    checkpoint=Checkpoint.from_directory(folder))``, which persists it under the experiment's
    ``storage_path`` (Tune keeps the latest one only: ``CheckpointConfig(num_to_keep=1)``).
    The report repeats the last evaluation's objective (Tune wants the metric in every report)
    and is marked :data:`CHECKPOINT_ONLY`: the schedulers and the searcher pass over it.
    """

    def __init__(self, *, folder: Path, reporter: TuneReportCallback) -> None:
        self.folder = folder
        self.reporter = reporter
        self.saves = 0

    def on_save(
        self, args: TrialConfig, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> TrainerControl | None:
        """Report the checkpoint folder to Tune."""
        objective = self.reporter.objective
        self.saves += 1
        tune.report(
            {
                METRIC: float("nan") if objective is None else objective,
                EVALUATION: self.reporter.evaluations,
                CHECKPOINT_ONLY: True,
                "global_step": state.global_step,
                "phase": state.phase,
                "seed": args.seed,
            },
            checkpoint=tune.Checkpoint.from_directory(str(self.folder)),
        )
        return None


def local_evaluator(spec: StudySpec, data_dir: str | None) -> Any:
    """Return the evaluator a worker trains with (the local runner's).

    Its trials run as many torch threads as the trial's ``cpu`` resource (or the runner's
    ``threads``): a worker must not spread over the cores Tune gave other trials.
    """
    from taskgraph.runners.local import LocalEvaluator
    from taskgraph.spec.checks import inline_task_defs
    from taskgraph.spec.models import RayRunnerSpec

    runner = spec.runner
    threads: float | None = None
    if isinstance(runner, RayRunnerSpec):
        threads = runner.threads if runner.threads is not None else runner.resources.cpu
    return LocalEvaluator(
        tasks=inline_task_defs(spec),
        data_dir=data_dir,
        device=spec.training.device,
        threads=threads,
    )


def train_in_worker(
    config: dict[str, Any],
    *,
    spec_json: str,
    data_dir: str | None,
    evaluator_factory: EvaluatorFactory,
) -> None:
    """Train one trial in a Ray worker: every seed, then one final report with the outcome.

    Each seed trains with a checkpoint folder (the local runner's ``<key>/seed-<S>``, here in a
    temporary folder of the worker) that starts from the trial's latest checkpoint: Tune's own
    (``tune.get_checkpoint()``, when Tune starts the trial again after its worker died) or the
    one the payload names (``checkpoint``: the persisted checkpoint of the trial this one
    retries, after a killed or interrupted driver).  The temporary folder goes when the trial
    ends; Tune keeps the persisted copy.
    """
    from taskgraph.spec import spec_from_dict

    payload = config[PAYLOAD]
    spec = spec_from_dict(json.loads(spec_json))
    saved = payload.get("saved")
    if saved:
        outcome = TrialOutcome.from_list(saved)  # a retry of a trial that trained but was not told
    else:
        evaluator = evaluator_factory(spec, data_dir)
        key = str(payload.get("checkpoint_key") or f"trial-{payload.get('number', 0)}")
        root = Path(tempfile.mkdtemp(prefix="taskgraph-ray-"))
        try:
            folder = root / key
            # runner.checkpoints: false trains every try from the start, as the local runner's
            checkpoints = getattr(spec.runner, "checkpoints", True) and _use_checkpoints(
                evaluator, root
            )
            if checkpoints:
                restore_checkpoint(folder, payload.get("checkpoint"))
            reporter = TuneReportCallback(threads=_threads(evaluator))
            saver = (
                [TuneCheckpointCallback(folder=folder, reporter=reporter)] if checkpoints else []
            )

            def evaluate(config: TrialConfig, callbacks: Sequence[Any]) -> Any:
                if not checkpoints:
                    return evaluator.evaluate(config, callbacks=callbacks)
                return evaluator.evaluate(
                    config, callbacks=[*callbacks, *saver], checkpoint_key=key
                )

            outcome = run_seeds(
                TrialConfig.from_dict(payload["config"]),
                seeds=spec.seeds,
                evaluate=evaluate,
                first_seed_callbacks=[reporter],
            )
        finally:
            shutil.rmtree(root, ignore_errors=True)
        host = worker_host()
        outcome = TrialOutcome(runs=tuple(dataclasses.replace(r, host=host) for r in outcome.runs))
    value = outcome.value
    if value is None:
        value = outcome.last_intermediate
    tune.report(
        {
            METRIC: float("nan") if value is None else float(value),
            # one past the last evaluation, as Tune's own training_iteration counts it
            EVALUATION: len(outcome.runs[0].result.intermediate) + 1 if outcome.runs else 1,
            "taskgraph_final": True,
            "taskgraph_outcome": json.dumps(outcome.to_list()),
        }
    )


def _threads(evaluator: Any) -> int:
    """Return torch's intra-op threads ``evaluator`` trains with, as ``train_trial`` counts
    them (0 when it does not say: a test's fake)."""
    from taskgraph.errors import TaskgraphError
    from taskgraph.training.runtime import resolve_threads

    if not hasattr(evaluator, "threads"):
        return 0
    try:
        return resolve_threads(evaluator.threads)
    except TaskgraphError:
        return 0  # the trial fails with this error, unreported


def _use_checkpoints(evaluator: Any, root: Path) -> bool:
    """Point ``evaluator``'s checkpoints at ``root``; return whether it checkpoints at all
    (the local runner's evaluator does; a test's fake has no ``checkpoint_root``)."""
    if not hasattr(evaluator, "checkpoint_root"):
        return False
    evaluator.checkpoint_root = root
    return True


def restore_checkpoint(folder: Path, retried: str | None) -> str | None:
    """Fill ``folder`` with the trial's latest checkpoint; return where it came from.

    Tune's own checkpoint of this trial comes first (the trial started again after its worker
    died), then ``retried``, the persisted checkpoint of the trial this one retries.  One that
    is gone (deleted, or on storage this node does not see) is logged and skipped: the trial
    trains from the start.  A seed folder of another configuration is never resumed: the
    evaluator empties it (``CheckpointStore``'s key).
    """
    checkpoint = tune.get_checkpoint()
    if checkpoint is None and retried:
        if not Path(retried).is_dir():
            logger.warning(
                "checkpoint %s of the retried trial is gone: training starts over", retried
            )
            return None
        checkpoint = tune.Checkpoint(retried)
    if checkpoint is None:
        return None
    checkpoint.to_directory(str(folder))
    return str(checkpoint.path)
