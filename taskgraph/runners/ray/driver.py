"""Ray driver side: the searcher that tells Optuna each trial's true state, the callback that
tracks live trials and beats their heartbeats, and schedulers that spare the baseline."""

from __future__ import annotations

import json
import math
import os
import pickle
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from optuna.exceptions import UpdateFinishedTrialError
from ray import tune
from ray.tune.search import Searcher
from ray.tune.search.optuna import OptunaSearch

from taskgraph.runners.local import live_trial_numbers, remove_tune_checkpoints
from taskgraph.runners.ray.worker import (
    CHECKPOINT_ONLY,
    COST,
    DATA,
    DEVICE,
    EVALUATION,
    METRIC,
    PAYLOAD,
    PRETRAINING,
    SELECTION,
)
from taskgraph.search.dashboard_notes import write_trial_note
from taskgraph.search.engine import StudyEngine
from taskgraph.search.heartbeat import Heartbeat, quiet_optuna, storage_id
from taskgraph.search.outcome import SeedRun, TrialOutcome, utcnow
from taskgraph.search.progress import (
    CONFIG_ATTR,
    RAY_CHECKPOINT_ATTR,
    REPEATS_ATTR,
    TrialStep,
    trial_results,
)
from taskgraph.search.space import BASELINE_ROLE, ROLE_ATTR, SearchSpace
from taskgraph.search.watching import phase_position
from taskgraph.trial import Cost, TrialConfig, TrialResult, TrialStatus

__all__ = [
    "ASHASparingBaseline",
    "Book",
    "DefineByRun",
    "DriverCallback",
    "MedianSparingBaseline",
    "TruthfulOptunaSearch",
    "remove_finished_checkpoints",
    "trial_name",
]


class Book:
    """What the driver knows about each live Tune trial (filled by the callback)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.trials: dict[str, Any] = {}  # Tune trial id -> Tune Trial
        self.results: dict[str, list[dict[str, Any]]] = {}
        self.started: dict[str, Any] = {}
        self.finished: set[str] = set()
        self.stopped_by_scheduler: set[str] = set()
        self.checkpoints: dict[str, set[str]] = {}  # Tune trial id -> its persisted checkpoints


class DriverCallback(tune.Callback):
    def __init__(self, *, book: Book, heartbeat: Heartbeat, engine: StudyEngine) -> None:
        self.book = book
        self.heartbeat = heartbeat
        self.engine = engine

    def __getstate__(self) -> dict[str, Any]:
        return {}  # Tune pickles its run config; a restored callback has nothing to track

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.book = Book()
        self.heartbeat = None  # type: ignore[assignment]
        self.engine = None  # type: ignore[assignment]

    def on_trial_start(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        with self.book.lock:
            self.book.trials[trial.trial_id] = trial
            self.book.started[trial.trial_id] = utcnow()
            self.book.results.setdefault(trial.trial_id, [])
        payload = trial.config[PAYLOAD]
        self.heartbeat.add(int(payload["trial_id"]))
        if payload.get("config"):
            self.engine.observer.on_trial_start(
                int(payload["number"]), TrialConfig.from_dict(payload["config"])
            )

    def on_checkpoint(
        self, iteration: int, trials: list[Any], trial: Any, checkpoint: Any, **info: Any
    ) -> None:
        """Note the checkpoint Tune persisted on the Optuna trial (:data:`RAY_CHECKPOINT_ATTR`)."""
        path = str(checkpoint.path)
        with self.book.lock:
            self.book.checkpoints.setdefault(trial.trial_id, set()).add(path)
        if self.engine is None:
            return
        payload = trial.config[PAYLOAD]
        try:
            self.engine.storage.set_trial_system_attr(
                int(payload["trial_id"]), RAY_CHECKPOINT_ATTR, path
            )
        except UpdateFinishedTrialError:
            return  # another driver failed it as stale: its retry resumes what it last noted
        # The checkpoint this try resumed (an earlier try's) is superseded: one per trial.
        retried = payload.get("checkpoint")
        if retried and retried != path:
            remove_tune_checkpoints({retried})

    def on_trial_result(
        self, iteration: int, trials: list[Any], trial: Any, result: dict[str, Any], **info: Any
    ) -> None:
        with self.book.lock:
            self.book.results.setdefault(trial.trial_id, []).append(dict(result))
            # Tune marks the result on which its scheduler stops a trial as done; a trial that
            # is stopped because the experiment ends (time budget) gets no such result.
            if result.get("done") and not result.get("taskgraph_final"):
                self.book.stopped_by_scheduler.add(trial.trial_id)
            # A trial already told (its end line printed) shows no more progress: a result
            # that reaches the callback after its end would put it back on the live line,
            # as running, until the command exits.
            ended = trial.trial_id in self.book.finished
        live = self.engine is not None
        if (
            live
            and not ended
            and METRIC in result
            and "max_steps" in result
            and not result.get("taskgraph_final")
        ):
            # Evaluations are what a worker reports; they move the driver's progress display.
            payload = trial.config[PAYLOAD]
            config = TrialConfig.from_dict(payload["config"]) if payload.get("config") else None
            phase_index, n_phases = (
                (0, 1) if config is None else phase_position(config, str(result.get("phase")))
            )
            self.engine.observer.on_trial_progress(
                int(payload["number"]),
                TrialStep(
                    step=int(result.get("global_step", 0)),
                    max_steps=int(result["max_steps"]),
                    phase_index=phase_index,
                    n_phases=n_phases,
                    n_seeds=len(self.engine.spec.seeds),
                    objective=float(result[METRIC]),
                ),
            )


class TruthfulOptunaSearch(OptunaSearch):
    """OptunaSearch that finishes each trial through the engine with its true state."""

    def __init__(
        self, *, engine: StudyEngine, book: Book, heartbeat: Heartbeat, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.engine = engine
        self.book = book
        self.heartbeat = heartbeat
        # Set once the engine's stopping rule says no new trial may start (too many failures,
        # an exhausted sampler, or other drivers filling the budget).
        self.stopped = False

    _LIVE = ("engine", "book", "heartbeat")  # driver-only objects: never pickled

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles its searcher (Tuner state, experiment checkpoints); the driver's live
        # connections stay out and are never needed by a restored copy.
        return {k: v for k, v in self.__dict__.items() if k not in self._LIVE}

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as file:
            pickle.dump(self.__getstate__(), file)

    def suggest(self, trial_id: str) -> dict[Any, Any] | None:
        # The local loop's stopping rule, checked where the local loop checks it: before each
        # new trial.  Tune then starts no new trial and ends the experiment once the running
        # ones finish.  (The wall time is Tune's ``time_budget_s``.)
        if self.stopped or self.engine.check_stop() is not None:
            self.stopped = True
            # (Ray's documented sentinel, though its annotation says Optional[Dict].)
            return Searcher.FINISHED  # type: ignore[return-value]
        suggested = super().suggest(trial_id)
        ot_trial = self._ot_trials.get(trial_id)
        if ot_trial is not None:
            # The Optuna trial is RUNNING from here on, also while Tune waits for resources
            # to start it: it beats from now, or another driver opening the study would find
            # it stale and fail it under this driver.
            self.heartbeat.add(storage_id(ot_trial))
        return suggested

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        value = result.get(self.metric)
        if isinstance(value, float) and math.isnan(value):
            return  # a failed trial's final report: nothing for the pruner's curve
        if result.get("taskgraph_final") or result.get(CHECKPOINT_ONLY):
            return  # the outcome is told in on_trial_complete; a checkpoint is no evaluation
        if self._finished_elsewhere(trial_id):
            return
        # The step is the evaluation index, not Tune's training_iteration (which checkpoint
        # reports also advance).
        super().on_trial_result(trial_id, {**result, "training_iteration": _evaluation(result)})

    def _finished_elsewhere(self, trial_id: str) -> bool:
        """Return whether the Optuna trial behind ``trial_id`` was finished by someone else.

        Another driver that found it stale (a pause of this process longer than the grace
        period) failed it and queued its retry: this driver's result has nowhere to go, and
        telling it would raise in Optuna and end the whole Tune run.
        """
        ot_trial = self._ot_trials.get(trial_id)
        if ot_trial is None:
            return False
        return bool(self.engine.storage.get_trial(storage_id(ot_trial)).state.is_finished())

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        if trial_id in self._completed_trials or trial_id not in self._ot_trials:
            return
        self._completed_trials.add(trial_id)
        ot_trial = self._ot_trials[trial_id]
        if self._finished_elsewhere(trial_id):
            self.heartbeat.discard(storage_id(ot_trial))
            with self.book.lock:
                self.book.finished.add(trial_id)
            return
        with self.book.lock:
            pruned = trial_id in self.book.stopped_by_scheduler
        final = bool(result and result.get("taskgraph_outcome"))
        if not (final or error or pruned):
            # Stopped by the end of the experiment (wall time), not judged: failed as
            # interrupted and enqueued again, as after Ctrl-C.
            self.heartbeat.discard(storage_id(ot_trial))
            self.engine.interrupt(self.engine.trial(storage_id(ot_trial)))
            with self.book.lock:
                self.book.finished.add(trial_id)
            return
        outcome = self._outcome(trial_id, result, error)
        self.heartbeat.discard(storage_id(ot_trial))
        if outcome.status is TrialStatus.PRUNED:
            # Tune withholds from the searcher the result on which its scheduler stopped the
            # trial; report it so Optuna keeps the pruned trial's value and curve.
            with self.book.lock:
                reports = [
                    r
                    for r in self.book.results.get(trial_id, [])
                    if METRIC in r and not r.get(CHECKPOINT_ONLY)
                ]
            reported = set(ot_trial.storage.get_trial(storage_id(ot_trial)).intermediate_values)
            for report in reports:
                step = _evaluation(report)
                value = report[METRIC]
                if step not in reported and isinstance(value, float) and math.isfinite(value):
                    ot_trial.report(value, step)
        with quiet_optuna():
            self.engine.finish(self.engine.trial(storage_id(ot_trial)), outcome)
        with self.book.lock:
            self.book.finished.add(trial_id)
            tune_trial = self.book.trials.get(trial_id)
            persisted = self.book.checkpoints.pop(trial_id, set())
        # Told: no try of it runs again, so its checkpoints (and the one it resumed) go, as
        # the local runner deletes a finished trial's folder.
        if tune_trial is not None:
            retried = tune_trial.config.get(PAYLOAD, {}).get("checkpoint")
            persisted |= {retried} if retried else set()
        remove_tune_checkpoints(persisted)
        progress = self.engine.progress()
        self.engine.observer.on_trial_end(ot_trial.number, outcome, progress)

    def _outcome(self, trial_id: str, result: dict[str, Any] | None, error: bool) -> TrialOutcome:
        ot_trial = self._ot_trials[trial_id]
        with self.book.lock:
            tune_trial = self.book.trials.get(trial_id)
            reports = [
                r
                for r in self.book.results.get(trial_id, [])
                if not r.get("taskgraph_final") and not r.get(CHECKPOINT_ONLY)
            ]
            started = self.book.started.get(trial_id, utcnow())
        if result and result.get("taskgraph_outcome"):
            return TrialOutcome.from_list(json.loads(result["taskgraph_outcome"]))
        config = TrialConfig.from_dict(ot_trial.user_attrs[CONFIG_ATTR])
        finished = utcnow()
        # A worker that dies reports no time: the trial cost at least its time since it started.
        elapsed = max((finished - started).total_seconds(), 0.0)
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
            _from_reports(res, reports)
            res.cost.seconds = elapsed
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
            _from_reports(res, reports)
            res.cost.seconds = float(last.get("time_total_s", elapsed))
        seed_config = config.with_seed(self.engine.spec.seeds[0])
        host = next((r["taskgraph_host"] for r in reversed(reports) if "taskgraph_host" in r), None)
        run = SeedRun(
            config=seed_config, result=res, started_at=started, finished_at=finished, host=host
        )
        return TrialOutcome(runs=(run,))


class DefineByRun:
    """OptunaSearch's ``space``: suggests a trial's configuration (plain data, picklable).

    ``same_configuration``: the engine's repeat check (``StudyEngine.same_configuration``):
    a configuration the study already trained with these seeds on the same data is not
    trained again; the trial gets ``taskgraph:repeats`` and the earlier trial's runs, which the
    worker reports without training (its ``saved`` path), as the local runner does.  Left out
    when Tune pickles the searcher (it holds the engine's database connections).
    """

    def __init__(
        self,
        *,
        space: SearchSpace,
        same_configuration: Callable[[int, TrialConfig], Any] | None = None,
    ) -> None:
        self.space = space
        self.same_configuration = same_configuration

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "same_configuration": None}

    def __call__(self, trial: Any) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "trial_id": storage_id(trial),
            "number": trial.number,
            "role": trial.user_attrs.get(ROLE_ATTR, "search"),
        }
        frozen = trial.storage.get_trial(storage_id(trial))
        saved = trial_results(frozen)
        # A retried trial keeps the number of its first try as its checkpoint key (the local
        # runner's), and resumes the latest checkpoint an earlier try persisted.
        payload["checkpoint_key"] = f"trial-{frozen.system_attrs.get('failed_trial', trial.number)}"
        checkpoint = frozen.system_attrs.get(RAY_CHECKPOINT_ATTR)
        if checkpoint:
            payload["checkpoint"] = str(checkpoint)
        if saved:
            payload["saved"] = saved
            payload["config"] = trial.user_attrs.get(CONFIG_ATTR)
            return {PAYLOAD: payload}
        config = self.space.suggest(trial)
        trial.set_user_attr(CONFIG_ATTR, config.to_dict())
        write_trial_note(trial, config.to_dict())  # what the dashboard cuts, whole
        payload["config"] = config.to_dict()
        earlier = (
            self.same_configuration(trial.number, config)
            if self.same_configuration is not None
            else None
        )
        runs = trial_results(earlier) if earlier is not None else None
        if earlier is not None and runs:
            trial.set_user_attr(REPEATS_ATTR, earlier.number)
            payload["saved"] = runs
        return {PAYLOAD: payload}


class SparesBaseline:
    """Scheduler mixin: the baseline trial is never stopped early (every gain is measured
    against it), though its results still shape the scheduler's rungs and medians."""

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> str:
        if result.get(CHECKPOINT_ONLY):
            return tune.schedulers.TrialScheduler.CONTINUE  # a checkpoint is no evaluation
        decision: str = super().on_trial_result(tune_controller, trial, result)  # type: ignore[misc]
        if trial.config.get(PAYLOAD, {}).get("role") == BASELINE_ROLE:
            # The median rule remembers a trial it decided to stop and asserts, at the trial's
            # next result, that it was stopped: a spared baseline is forgotten again.
            stopped = getattr(self, "_stopped_trials", None)
            if isinstance(stopped, set):
                stopped.discard(trial)
            return tune.schedulers.TrialScheduler.CONTINUE
        return decision


class ASHASparingBaseline(SparesBaseline, tune.schedulers.ASHAScheduler):
    pass


class MedianSparingBaseline(SparesBaseline, tune.schedulers.MedianStoppingRule):
    pass


def _from_reports(result: TrialResult, reports: list[dict[str, Any]]) -> None:
    """Fill ``result`` (a trial that sent no final report: stopped by the scheduler, or its
    worker died) from its worker's evaluation reports: the fingerprints of the data it trained
    on (the latest try's; the record would otherwise take the files' at write time), what data
    selection kept, the pretraining stage's report, and its cost by its last report (steps,
    examples, tokens, device; the pretraining stage's, when this trial ran it, as in a final
    result).  The caller sets the seconds."""
    fingerprints = _latest(reports, DATA)
    if fingerprints is not None:
        result.data_fingerprints = {str(k): str(v) for k, v in fingerprints.items()}
    result.selection = _latest(reports, SELECTION)
    result.pretraining = _latest(reports, PRETRAINING)
    cost = _latest(reports, COST)
    if cost is not None:
        for name in ("examples", "tokens", "target_steps", "total_steps"):
            setattr(result.cost, name, int(cost.get(name, 0)))
    # What train_trial adds to a finished trial's cost (the stage, when this trial ran it).
    seconds, tokens = Cost.of_pretraining(result.pretraining)
    result.cost.pretrain_seconds, result.cost.pretrain_tokens = seconds, tokens
    result.cost.tokens += tokens
    device = _latest(reports, DEVICE)
    if device is not None:
        result.cost.device = str(device["device"])
        result.cost.threads = int(device.get("threads", 0))


def _latest(reports: list[dict[str, Any]], key: str) -> dict[str, Any] | None:
    """Return the JSON object under ``key`` of the latest report that has one."""
    value = next((r[key] for r in reversed(reports) if r.get(key)), None)
    return json.loads(value) if isinstance(value, str) else None


def _evaluation(result: dict[str, Any]) -> int:
    """Return the evaluation index of a worker's report (Tune's iteration if it has none)."""
    return int(result.get(EVALUATION, result.get("training_iteration", 0)))


def remove_finished_checkpoints(study: Any) -> None:
    """Delete the persisted checkpoints of ``study``'s finished trials that no try of theirs
    waits for: what the searcher did not delete as it told them (a trial interrupted with no
    retry left, a driver killed before it could).  The local runner's
    ``remove_finished_checkpoints``, for the paths noted in :data:`RAY_CHECKPOINT_ATTR`."""
    trials = study.get_trials(deepcopy=False)
    live = live_trial_numbers(trials)
    remove_tune_checkpoints(
        {
            str(t.system_attrs[RAY_CHECKPOINT_ATTR])
            for t in trials
            if RAY_CHECKPOINT_ATTR in t.system_attrs
            and t.state.is_finished()
            and int(t.system_attrs.get("failed_trial", t.number)) not in live
        }
    )


def trial_name(trial: Any) -> str:
    # Tune's default names spell out every parameter; the Optuna trial number says it all.
    payload = trial.config.get(PAYLOAD, {})
    return f"trial-{payload.get('number', trial.trial_id)}-{trial.trial_id}"
