"""Ray worker side: train one trial (every seed) and report to Tune; no driver state here."""

from __future__ import annotations

import dataclasses
import functools
import json
import socket
from collections.abc import Callable
from typing import Any

import ray
from ray import tune

from taskgraph.search.outcome import TrialOutcome, run_seeds
from taskgraph.spec.models import StudySpec
from taskgraph.training.callbacks import TrainerCallback, TrainerControl, TrainerState
from taskgraph.trial import TrialConfig

__all__ = [
    "METRIC",
    "PAYLOAD",
    "EvaluatorFactory",
    "TuneReportCallback",
    "local_evaluator",
    "train_in_worker",
    "worker_host",
]

METRIC = "objective"
PAYLOAD = "taskgraph"

EvaluatorFactory = Callable[[StudySpec, "str | None"], Any]


@functools.cache
def worker_host() -> str:
    """Return where this worker trains: ``"<hostname> ray-node:<node id>"``.

    Kept as each run's ``host``: on a cluster the records say which node trained which seed
    (the hostname alone does not tell apart two nodes of one machine).
    """
    return f"{socket.gethostname()} ray-node:{ray.get_runtime_context().get_node_id()}"[:255]


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
                "max_steps": state.max_steps,  # the driver's progress display
                "phase": state.phase,
                "taskgraph_scores": json.dumps(metrics or {}),
                "taskgraph_host": worker_host(),  # a pruned trial's record is written from it
            }
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
    """Train one trial in a Ray worker: every seed, then one final report with the outcome."""
    from taskgraph.spec import spec_from_dict

    payload = config[PAYLOAD]
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
        host = worker_host()
        outcome = TrialOutcome(runs=tuple(dataclasses.replace(r, host=host) for r in outcome.runs))
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
