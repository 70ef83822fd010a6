"""How far a study is: its trials' true states, counted against the budget.

The Optuna study is the ledger.  A trial *counts* against the budget when it was evaluated:
COMPLETE, PRUNED, or FAILED with a failure reason written by the driver.  A trial FAILED by the
heartbeat (its process was killed) or by Ctrl-C carries no such reason: it does not count, and
its retry (a WAITING copy, see :class:`optuna.storages.RetryHeartbeatStaleTrialCallback`) runs
in its place.  So after any number of interruptions a study ends with exactly its budget of
evaluated trials.

Attribute names live here so that the engine, the Ray runner and the CLI agree on them.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import optuna
from optuna.trial import FrozenTrial, TrialState

from taskgraph.search.space import is_first_baseline

__all__ = [
    "BUDGET_ATTR",
    "CONFIG_ATTR",
    "FAILURE_ATTR",
    "INTERRUPTED_ATTR",
    "INTERRUPTED_BY_ATTR",
    "NOT_THE_STUDY",
    "RAY_CHECKPOINT_ATTR",
    "RESULTS_ATTR",
    "SEARCH_HASH_ATTR",
    "SPEC_ATTR",
    "STARTUP_ATTR",
    "STATUS_ATTR",
    "EngineState",
    "StudyProgress",
    "TrialStep",
    "retried_numbers",
    "spec_differences",
    "study_progress",
    "trained_by",
    "trial_results",
    "trial_state",
]

# study user attributes
SPEC_ATTR = "taskgraph:spec"  # the validated spec as JSON: `study resume NAME` needs nothing else
SEARCH_HASH_ATTR = "taskgraph:search_hash"
BUDGET_ATTR = "taskgraph:budget"  # trials; `--trials` on run/resume updates it
STARTUP_ATTR = "taskgraph:startup"  # the graph sampler's start-up prior: {source, scores}
# trial user attributes
CONFIG_ATTR = "taskgraph:config"  # the TrialConfig (first seed) as a dict
STATUS_ATTR = "taskgraph:status"  # the true state: complete / pruned / failed
FAILURE_ATTR = "taskgraph:failure"  # why an evaluated trial failed
# every seed's SeedRun: a lost records write can be redone.  A *system* attribute (read with
# trial_results): optuna-dashboard shows user attributes, cut at 1024 characters.
RESULTS_ATTR = "taskgraph:results"
#: (system) the path of a Ray trial's latest checkpoint persisted by Tune; Optuna's retry
#: callback copies it to the retry, which resumes from it (taskgraph.runners.ray.driver)
RAY_CHECKPOINT_ATTR = "taskgraph:ray_checkpoint"
INTERRUPTED_ATTR = "taskgraph:interrupted"  # Ctrl-C: failed, not counted, retried
# what else interrupted it ("ValueError: ..."); not FAILURE_ATTR, which would count it failed
INTERRUPTED_BY_ATTR = "taskgraph:interrupted_by"
# the trial a retry runs again (Optuna keeps the lineage in system attributes, which
# optuna-dashboard does not show)
RETRY_OF_ATTR = "taskgraph:retry_of"
REPEATS_ATTR = "taskgraph:repeats"  # the earlier trial whose configuration and seeds this repeats

#: Spec fields that do not define a study's trials: a study continues under another value.
#: ``data_dir`` is where the data is on this machine, not which data (the records keep each
#: file's fingerprint), so a moved or corrected data directory continues the same study.
NOT_THE_STUDY = frozenset({"budget", "runner", "storage", "description", "data_dir"})

EngineState = Literal["complete", "pruned", "failed", "interrupted", "running", "waiting"]


def trial_results(trial: FrozenTrial) -> list[Any] | None:
    """Return the seeds' runs stored on ``trial`` (``taskgraph:results``), ``None`` if none.

    A system attribute, which a retry inherits from the trial it reruns (Optuna's retry
    callback copies them); databases written before kept it as a user attribute.
    """
    saved = trial.system_attrs.get(RESULTS_ATTR)
    if saved is None:
        saved = trial.user_attrs.get(RESULTS_ATTR)
    return None if saved is None else list(saved)


def retried_numbers(trials: Iterable[FrozenTrial]) -> set[int]:
    """Return the numbers of the trials that a later trial retries (Optuna's retry history)."""
    return {
        int(number) for trial in trials for number in trial.system_attrs.get("retry_history", ())
    }


def trial_state(trial: FrozenTrial, *, retried: Collection[int] = ()) -> EngineState:
    """Return the trial's state in the engine's terms (interrupted = failed without evaluation).

    ``retried`` holds the numbers of trials that another trial retries
    (:func:`retried_numbers`): such a trial was failed by the heartbeat, not by the driver,
    even when it was killed after its failure reason was stored but before it was told, and
    its retry (which reuses the stored runs) is the one that counts.
    """
    if trial.state == TrialState.COMPLETE:
        # Ray Tune reports a trial stopped by its scheduler as COMPLETE; the driver writes the
        # true state first, so this only guards trials told by something else.
        return "pruned" if trial.user_attrs.get(STATUS_ATTR) == "pruned" else "complete"
    if trial.state == TrialState.PRUNED:
        return "pruned"
    if trial.state == TrialState.FAIL:
        if FAILURE_ATTR in trial.user_attrs and trial.number not in retried:
            return "failed"
        return "interrupted"
    if trial.state == TrialState.RUNNING:
        return "running"
    return "waiting"


@dataclass(frozen=True)
class TrialStep:
    """Where a running trial's training stands: its step, its phase and seed, its last score.

    ``objective`` is set when the step is an evaluation.  Sequential transfer trains two
    phases (source, then target), each with its own steps; each seed trains once.
    """

    step: int
    max_steps: int
    phase_index: int = 0
    n_phases: int = 1
    seed_index: int = 0
    n_seeds: int = 1
    objective: float | None = None

    @property
    def fraction(self) -> float:
        """Return the share of the trial's training done, from 0 to 1."""
        within = min(self.step / self.max_steps, 1.0) if self.max_steps > 0 else 0.0
        phase = (self.phase_index + within) / max(self.n_phases, 1)
        return min((self.seed_index + phase) / max(self.n_seeds, 1), 1.0)


@dataclass(frozen=True)
class StudyProgress:
    """Counts of a study's trials by state, the budget, the baseline and the best value."""

    name: str
    direction: str
    budget: int
    n_complete: int
    n_pruned: int
    n_failed: int
    n_interrupted: int
    n_running: int
    n_waiting: int
    best_value: float | None
    best_number: int | None
    baseline_value: float | None
    baseline_number: int | None

    @property
    def n_done(self) -> int:
        """Return the evaluated trials (what counts against the budget)."""
        return self.n_complete + self.n_pruned + self.n_failed

    @property
    def remaining(self) -> int:
        """Return how many more trials the budget allows."""
        return max(self.budget - self.n_done, 0)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "name": self.name,
            "direction": self.direction,
            "budget": self.budget,
            "n_done": self.n_done,
            "n_complete": self.n_complete,
            "n_pruned": self.n_pruned,
            "n_failed": self.n_failed,
            "n_interrupted": self.n_interrupted,
            "n_running": self.n_running,
            "n_waiting": self.n_waiting,
            "best_value": self.best_value,
            "best_trial": self.best_number,
            "baseline_value": self.baseline_value,
            "baseline_trial": self.baseline_number,
        }


def study_progress(study: optuna.Study, *, budget: int | None = None) -> StudyProgress:
    """Return the progress of ``study`` (budget from its user attributes unless given)."""
    trials = study.get_trials(deepcopy=False)
    if budget is None:
        budget = int(study.user_attrs.get(BUDGET_ATTR, 0))
    direction = study.direction.name.lower()
    return progress_of(trials, name=study.study_name, direction=direction, budget=budget)


def progress_of(
    trials: Sequence[FrozenTrial], *, name: str, direction: str, budget: int
) -> StudyProgress:
    """Return the progress over ``trials`` (pure: no storage access)."""
    counts = {
        state: 0 for state in ("complete", "pruned", "failed", "interrupted", "running", "waiting")
    }
    best: tuple[float, int] | None = None
    baseline: tuple[float | None, int] | None = None
    sign = 1.0 if direction == "maximize" else -1.0
    retried = retried_numbers(trials)
    for trial in trials:
        state = trial_state(trial, retried=retried)
        counts[state] += 1
        better = best is None or (trial.value is not None and sign * trial.value > sign * best[0])
        if state == "complete" and trial.value is not None and better:
            best = (trial.value, trial.number)
        if baseline is None and state == "complete" and is_first_baseline(trial):
            baseline = (trial.value, trial.number)
    return StudyProgress(
        name=name,
        direction=direction,
        budget=budget,
        n_complete=counts["complete"],
        n_pruned=counts["pruned"],
        n_failed=counts["failed"],
        n_interrupted=counts["interrupted"],
        n_running=counts["running"],
        n_waiting=counts["waiting"],
        best_value=None if best is None else best[0],
        best_number=None if best is None else best[1],
        baseline_value=None if baseline is None else baseline[0],
        baseline_number=None if baseline is None else baseline[1],
    )


def spec_differences(
    stored: Mapping[str, Any], current: Mapping[str, Any], *, limit: int = 5
) -> list[str]:
    """Return ``path: stored -> current`` for each field where two spec dumps disagree.

    Both are specs as JSON (``StudySpec.model_dump(mode="json")``); the fields of
    :data:`NOT_THE_STUDY` are left out.  At most ``limit`` fields are listed, then a count of
    the rest.
    """
    flat_stored = _flatten({k: v for k, v in stored.items() if k not in NOT_THE_STUDY})
    flat_current = _flatten({k: v for k, v in current.items() if k not in NOT_THE_STUDY})
    missing = object()
    out = []
    for path in sorted(set(flat_stored) | set(flat_current)):
        old, new = flat_stored.get(path, missing), flat_current.get(path, missing)
        if old != new:
            shown = ["(absent)" if v is missing else json.dumps(v) for v in (old, new)]
            out.append(f"{path}: {shown[0]} -> {shown[1]}")
    if len(out) > limit:
        out = [*out[:limit], f"and {len(out) - limit} more"]
    return out


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    # Mappings become dotted paths; lists stay whole (`candidates: [...] -> [...]` reads better
    # than one line per index once an item is inserted).
    if isinstance(value, Mapping) and value:
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value}


def trained_by(trials: Sequence[Any]) -> dict[int, int]:
    """Return trial number -> the number of the trial whose runs it has: a repeat's
    (``taskgraph:repeats``), followed to the trial that trained; any other trial's own."""
    earlier: dict[int, int] = {}
    for trial in trials:
        repeats = trial.user_attrs.get(REPEATS_ATTR)
        if isinstance(repeats, int):
            earlier[trial.number] = repeats
    found: dict[int, int] = {}
    for trial in trials:
        number, seen = trial.number, set()
        while number in earlier and number not in seen:
            seen.add(number)
            number = earlier[number]
        found[trial.number] = number
    return found
