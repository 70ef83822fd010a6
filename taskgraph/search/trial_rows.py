"""One trial of a study as a row of its report: state, measured gains, convergence, data selection.

The baseline a trial is measured against is the caller's choice
(:func:`taskgraph.search.report.study_report` picks one of the trial's own model family on its
data version); a row only computes the gain against it, in the direction of improvement.

**Convergence.**  A complete trial whose objective was still rising at its last evaluation
(last minus previous evaluation, in the direction of improvement, averaged over its seeds) by
more than its noise has not converged: its score understates what more steps would give, and
its gain is a weak comparison.  The noise is the standard deviation of the seeds' objectives
when the trial has several seeds, and at least :data:`CONVERGENCE_TOLERANCE`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from optuna.trial import FrozenTrial

from taskgraph.search.progress import (
    CONFIG_ATTR,
    FAILURE_ATTR,
    REPEATS_ATTR,
    trial_results,
    trial_state,
)
from taskgraph.search.space import ROLE_ATTR, SUBSET_ATTR
from taskgraph.trial import TrialConfig, setting_differences

__all__ = [
    "CONVERGENCE_TOLERANCE",
    "convergence",
    "differs_from_baseline",
    "selection_summary",
    "trial_row",
]


#: The smallest rise of the objective between the last two evaluations that counts as "still
#: rising" (in the objective's units: 0.01 is one point of F1 or accuracy).
CONVERGENCE_TOLERANCE = 0.01


def convergence(trial: FrozenTrial, *, direction: str) -> dict[str, Any] | None:
    """Return ``{"converged", "rise", "noise"}`` of a trial's learning curve, or ``None``.

    ``rise``: last minus previous evaluation of the objective in the direction of improvement,
    averaged over the seeds that evaluated at least twice; ``noise``: the seeds' standard
    deviation of the final objective (with two seeds or more), at least
    :data:`CONVERGENCE_TOLERANCE`.  ``None`` when no seed evaluated twice.
    """
    runs = trial_results(trial) or []
    sign = 1.0 if direction == "maximize" else -1.0
    rises: list[float] = []
    finals: list[float] = []
    for run in runs:
        result = run.get("result") or {}
        curve = [v for _, v in result.get("intermediate") or [] if v is not None]
        if len(curve) >= 2:
            rises.append(sign * (float(curve[-1]) - float(curve[-2])))
        if result.get("objective") is not None:
            finals.append(float(result["objective"]))
    if not rises:
        return None
    noise = CONVERGENCE_TOLERANCE
    if len(finals) >= 2:
        mean = sum(finals) / len(finals)
        sd = (sum((v - mean) ** 2 for v in finals) / (len(finals) - 1)) ** 0.5
        noise = max(noise, sd)
    rise = sum(rises) / len(rises)
    return {"converged": not rise > noise, "rise": rise, "noise": noise}


def selection_summary(trial: FrozenTrial) -> dict[str, Any] | None:
    """Return a trial's example-level data selection: weights, keep and what each auxiliary kept.

    ``None`` when the study has no data selection or the trial trained no auxiliary.  ``kept``
    maps each auxiliary to ``{"kept", "pool", "examples"}`` (the first seed's: every seed
    selects the same examples).
    """
    config = trial.user_attrs.get(CONFIG_ATTR) or {}
    selection = config.get("data_selection")
    if not isinstance(selection, dict) or not config.get("auxiliaries"):
        return None
    kept: dict[str, dict[str, Any]] = {}
    for run in trial_results(trial) or []:
        for name, record in ((run.get("result") or {}).get("selection") or {}).items():
            kept[name] = {k: record.get(k) for k in ("kept", "pool", "examples")}
        break
    return {
        "features": list(selection.get("features", [])),
        "weights": dict(selection.get("weights", {})),
        "keep": selection.get("keep"),
        "kept": kept,
    }


def _gain(value: float | None, baseline: float | None, direction: str) -> float | None:
    if value is None or baseline is None:
        return None
    return value - baseline if direction == "maximize" else baseline - value


def _relative(gain: float | None, baseline: float | None) -> float | None:
    if gain is None or baseline is None or baseline == 0:
        return None
    return gain / abs(baseline)


def differs_from_baseline(
    configuration: Mapping[str, Any] | None, baseline: Mapping[str, Any] | None
) -> list[str] | None:
    """Return the settings outside the model family in which a trial's configuration and the
    baseline trial's differ (``TrialConfig.alone_settings``: a searched learning rate, sharing
    architecture, ...), sorted; ``None`` when either configuration is missing or unreadable.

    A measured gain against a baseline that differs in some holds their effect besides the
    transfer.
    """
    if not configuration or not baseline:
        return None
    try:
        ours = TrialConfig.from_dict(configuration).alone_settings()
        theirs = TrialConfig.from_dict(baseline).alone_settings()
    except (TypeError, ValueError):
        return None
    return setting_differences(ours, theirs)


def trial_row(
    trial: FrozenTrial,
    *,
    baseline: float | None,
    direction: str,
    retried: Collection[int] = (),
    baseline_configuration: Mapping[str, Any] | None = None,
    baseline_trial: int | None = None,
    data_version: str | None = None,
    no_baseline_because: str | None = None,
) -> dict[str, Any]:
    """Return one trial as a JSON-ready row: state, task set, value, measured gains, configuration.

    ``retried``: numbers of the trials another trial retries (see ``retried_numbers``).
    ``baseline_configuration``: the baseline trial's, for ``differs_from_baseline``;
    ``baseline_trial``: its number.  ``data_version``: the dataset fingerprint of the
    target that the trial's runs recorded; ``no_baseline_because``: why a complete trial has
    no measured gain (no baseline on its data version).
    """
    config = trial.user_attrs.get(CONFIG_ATTR) or {}
    auxiliaries = trial.user_attrs.get(SUBSET_ATTR)
    target = config.get("target")
    state = trial_state(trial, retried=retried)
    value = trial.value if state == "complete" else None
    curve = convergence(trial, direction=direction) if state == "complete" else None
    return {
        "trial": trial.number,
        "state": state,
        "role": trial.user_attrs.get(ROLE_ATTR, "search"),
        "target": target,
        "auxiliaries": auxiliaries,
        "task_set": sorted([target, *auxiliaries]) if target and auxiliaries is not None else None,
        "value": value,
        "measured_absolute_gain": _gain(value, baseline, direction),
        "measured_relative_gain": _relative(_gain(value, baseline, direction), baseline),
        # the settings outside the family in which this trial and the baseline differ (their
        # effect is in the measured gain); None where there is no value or no baseline
        "differs_from_baseline": differs_from_baseline(config, baseline_configuration)
        if value is not None
        else None,
        # the baseline trial the gains are measured against (None: no gain)
        "baseline_trial": baseline_trial if value is not None and baseline is not None else None,
        # the target's dataset fingerprint its runs recorded (None: unknown, or none recorded)
        "data_version": data_version,
        "no_baseline_because": no_baseline_because if value is not None else None,
        # None: not complete, or fewer than two evaluations to judge by.
        "converged": None if curve is None else curve["converged"],
        "rise": None if curve is None else curve["rise"],
        "sharing": config.get("sharing"),
        "data_selection": selection_summary(trial),
        # the masked-LM pretraining scheme ("none": no stage); see spec/pretraining.py
        "pretraining": (config.get("pretraining") or {}).get("scheme", "none"),
        "failure_reason": trial.user_attrs.get(FAILURE_ATTR),
        "retry_of": trial.system_attrs.get("failed_trial"),
        # The earlier trial whose configuration and seeds this one repeats: its value and runs
        # are that trial's (not trained again, not a second measurement); None otherwise.
        "repeat_of": trial.user_attrs.get(REPEATS_ATTR),
        "params": dict(trial.params),
        "configuration": config,
    }
