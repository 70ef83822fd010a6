"""What a study found: baseline, best configuration, and every trial's gain over the baseline.

Read from the Optuna study the engine keeps (true states, configurations and per-seed results
live in its trials' user attributes), so ``study show`` works the same for the local and the
Ray runner and while a submitted study is still running.  A gain here is *measured* (one
trial against the baseline trial, not an affinity model's prediction), in the direction of
improvement: ``measured_absolute_gain`` is ``value - baseline`` when maximising, ``baseline -
value`` when minimising, in the metric's units, so a positive gain always means the auxiliary
tasks helped; ``measured_relative_gain`` divides it by ``|baseline|`` (the unit of ``taskgraph
affinity``'s gains: 0.1 = +10 %).  The baseline trial is one of the trial's own model family
(``TrialConfig.family_key``) on the same version of the target's data (dataset fingerprint,
from the records): a trial run after the target's file changed is not measured against a
baseline trained on the old file, nor a trial with another example cap of the target against
the baseline of the first.

Opening the stored study is :mod:`taskgraph.search.stored_studies`; each trial's row (its gain,
convergence, data selection) is :mod:`taskgraph.search.trial_rows`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import optuna
from optuna.trial import FrozenTrial

from taskgraph.errors import NotFoundError
from taskgraph.search.progress import (
    BUDGET_ATTR,
    CONFIG_ATTR,
    SPEC_ATTR,
    retried_numbers,
    study_progress,
    trained_by,
    trial_state,
)
from taskgraph.search.space import BASELINE_ROLE, ROLE_ATTR, SUBSET_ATTR, is_first_baseline
from taskgraph.search.trial_rows import convergence, trial_row
from taskgraph.trial import TrialConfig

__all__ = [
    "study_report",
    "target_data_versions",
]


#: the keys of each row of the report's ``gains`` list
_GAIN_ROW_KEYS = (
    "trial",
    "auxiliaries",
    "task_set",
    "sharing",
    "data_selection",
    "pretraining",
    "value",
    "measured_absolute_gain",
    "measured_relative_gain",
    "differs_from_baseline",
    "baseline_trial",
    "data_version",
    "no_baseline_because",
    "converged",
    "rise",
    "repeat_of",
)


def _setting_kind(trial: FrozenTrial) -> tuple[str, str] | None:
    """Return the model family of ``trial``'s configuration and the family with its alone
    settings as one key (``TrialConfig.family_key`` and ``setting_family_key``), or None
    without a readable one."""
    configuration = trial.user_attrs.get(CONFIG_ATTR)
    if not configuration:
        return None
    try:
        config = TrialConfig.from_dict(configuration)
    except (TypeError, ValueError):
        return None
    return config.family_key(), config.setting_family_key()


def _no_family_baseline(family: str | None, spec: Mapping[str, Any], others: list[str]) -> str:
    """Return why a trial of model family ``family`` has no gain: no complete baseline trial
    of that family (``others``: the families that have one)."""
    budget = spec.get("budget")
    one = isinstance(budget, Mapping) and budget.get("baselines") == "one"
    return (
        f"no complete baseline trial of its model family (family key {family}: encoder, "
        f"input length, {spec.get('target')}'s example cap, data-selection features, "
        f"pretraining stage; the baselines are of {', '.join(others)}"
        + (
            "; `budget.baselines: one` runs none for the other families"
            if one
            else "; the study enqueues one when a trial of the family completes"
        )
        + "): a gain never compares two model families"
    )


def _short(fingerprint: str | None) -> str:
    from taskgraph.storage.export import SHOWN_CHARS

    return "none recorded" if fingerprint is None else fingerprint[:SHOWN_CHARS]


def target_data_versions(name: str, *, storage_url: str) -> dict[int, str | None]:
    """Return trial number -> the dataset fingerprint of study ``name``'s target that the
    trial's records carry (``None``: its runs recorded none), for the trials with records.

    What :func:`study_report` keeps gains within one data version by; a study with no
    records (none written yet) gives ``{}``.
    """
    from taskgraph.storage import open_repository

    with open_repository(storage_url, create=False) as repository:
        try:
            runs = repository.runs(study=name)
        except NotFoundError:
            return {}
    return {run.trial_number: run.task_fingerprints.get(run.target) for run in runs}


def study_report(
    study: optuna.Study,
    *,
    top: int | None = None,
    data_versions: Mapping[int, str | None] | None = None,
) -> dict[str, Any]:
    """Return the study's summary: counts, baseline, best trial, trials with their measured gains (best first).

    ``data_versions``: trial number -> the target's dataset fingerprint its records carry
    (:func:`target_data_versions`).  Each trial is measured against a complete baseline trial
    of its own model family (``TrialConfig.family_key``) on the same version of the target's
    data: the one of its alone settings too where there is one (``budget.baselines:
    per_setting``), else the family's newest (its ``differs_from_baseline`` names the settings
    they differ in).  A gain never compares scores of two data versions or two model
    families: a complete trial with no such baseline has no gain, and its
    ``no_baseline_because`` says why.  Without ``data_versions`` every trial counts as one
    version.
    """
    progress = study_progress(study)
    direction = progress.direction
    trials = study.get_trials(deepcopy=False)
    trained = trained_by(trials)
    versions = dict(data_versions or {})

    def version(trial: FrozenTrial) -> str | None:
        # A repeat's runs (and records) are the trial's it repeats.
        return versions.get(trained[trial.number])

    baselines = [t for t in trials if is_first_baseline(t) and trial_state(t) == "complete"]
    baseline_trial = baselines[0] if baselines else None
    # A trial without a readable configuration (no family to match) keeps the newest first
    # baseline on its data version.
    newest: dict[str | None, FrozenTrial] = {version(t): t for t in baselines}
    keys = {t.number: _setting_kind(t) for t in trials}
    families = {n: None if k is None else k[0] for n, k in keys.items()}
    kinds = {n: None if k is None else k[1] for n, k in keys.items()}
    # Each family's single-task runs, oldest first: its complete baseline trials (the first,
    # the family's, each setting's), or where it has none, its complete trials of the target
    # alone (the engine enqueues no baseline for a family that has one).
    complete = [t for t in trials if trial_state(t) == "complete"]
    singles: dict[str, list[FrozenTrial]] = {}
    for t in complete:
        family = families[t.number]
        if family is not None and t.user_attrs.get(ROLE_ATTR) == BASELINE_ROLE:
            singles.setdefault(family, []).append(t)
    with_baseline = set(singles)
    for t in complete:
        family = families[t.number]
        alone = t.user_attrs.get(SUBSET_ATTR) == [] and t.user_attrs.get(ROLE_ATTR) != BASELINE_ROLE
        if family is not None and alone and family not in with_baseline:
            singles.setdefault(family, []).append(t)
    # A single-task run of the trial's own family and alone settings on its data version (the
    # baselines `budget.baselines: per_setting` enqueues) measures it like with like; else the
    # family's newest on that version (the settings they differ in are named).
    alike: dict[tuple[str | None, str], FrozenTrial] = {}
    kin: dict[tuple[str | None, str], FrozenTrial] = {}
    for family, runs in singles.items():
        for t in runs:
            alike[(version(t), str(kinds[t.number]))] = t
            kin[(version(t), family)] = t
    spec = study.user_attrs.get(SPEC_ATTR) or {}
    target = spec.get("target")
    retried = retried_numbers(trials)
    rows = []
    for t in trials:
        ours = version(t)
        kind, family = kinds[t.number], families[t.number]
        if kind is None or family is None:
            base = newest.get(ours)
            theirs = baselines
        else:
            base = alike.get((ours, kind)) or kin.get((ours, family))
            theirs = singles.get(family, [])
        why = None
        if base is None and theirs:
            why = (
                f"no complete baseline trial on this version of {target}'s data "
                f"(dataset fingerprint {_short(ours)}; the baselines"
                f"{'' if family is None else ' of its model family'} ran on "
                f"{', '.join(sorted({_short(version(b)) for b in theirs}))}): a gain "
                "never compares two versions of the data"
            )
        elif base is None and family is not None and singles:
            why = _no_family_baseline(family, spec, sorted(singles))
        elif base is None:
            why = "no complete baseline trial"
        rows.append(
            trial_row(
                t,
                baseline=None if base is None else base.value,
                direction=direction,
                retried=retried,
                baseline_configuration=None if base is None else base.user_attrs.get(CONFIG_ATTR),
                baseline_trial=None if base is None else base.number,
                data_version=ours,
                no_baseline_because=why,
            )
        )
        if rows[-1]["repeat_of"] is not None:
            # A repeat of a repeat: its runs are the trial's that trained.
            rows[-1]["repeat_of"] = trained[t.number]
    scored = [r for r in rows if r["value"] is not None]
    sign = 1.0 if direction == "maximize" else -1.0
    scored.sort(key=lambda r: -sign * r["value"])
    best = scored[0] if scored else None
    # Trials that reached the best value too (a metric at its ceiling, a small dev set): the
    # best is only the first of them, not a winner.  A repeat tells its trial's value again.
    tied = (
        []
        if best is None
        else [
            r["trial"]
            for r in scored
            if r["value"] == best["value"]
            and r["trial"] != best["trial"]
            and r["repeat_of"] is None
        ]
    )
    return {
        "name": study.study_name,
        "target": spec.get("target"),
        "objective": spec.get("objective"),
        "direction": direction,
        "budget": study.user_attrs.get(BUDGET_ATTR),
        "n_trials": len(trials),
        "n_done": progress.n_done,
        "n_complete": progress.n_complete,
        "n_pruned": progress.n_pruned,
        "n_failed": progress.n_failed,
        "n_interrupted": progress.n_interrupted,
        "n_running": progress.n_running,
        "n_waiting": progress.n_waiting,
        # trials that repeated an earlier trial's configuration (each counts against the budget)
        "n_repeats": sum(1 for r in rows if r["repeat_of"] is not None),
        # the first complete baseline; each trial's gain is measured against a complete
        # baseline of its own model family on its data version (its row's `baseline_trial`)
        "baseline": None
        if baseline_trial is None
        else {
            "trial": baseline_trial.number,
            "task_set": [spec.get("target")],
            "score": baseline_trial.value,
            "data_version": version(baseline_trial),
            "converged": (convergence(baseline_trial, direction=direction) or {}).get("converged"),
            "configuration": baseline_trial.user_attrs.get(CONFIG_ATTR),
        },
        "best": None
        if best is None
        else {
            "trial": best["trial"],
            "task_set": best["task_set"],
            "auxiliaries": best["auxiliaries"],
            "score": best["value"],
            "measured_absolute_gain": best["measured_absolute_gain"],
            "measured_relative_gain": best["measured_relative_gain"],
            "differs_from_baseline": best["differs_from_baseline"],
            "baseline_trial": best["baseline_trial"],
            "no_baseline_because": best["no_baseline_because"],
            "data_selection": best["data_selection"],
            "configuration": best["configuration"],
            "tied_trials": sorted(tied),
        },
        "gains": [
            {k: r[k] for k in _GAIN_ROW_KEYS} for r in (scored if top is None else scored[:top])
        ],
        "not_converged": [
            {"trial": r["trial"], "role": r["role"], "rise": r["rise"], "repeat_of": r["repeat_of"]}
            for r in rows
            if r["converged"] is False
        ],
        "failures": [
            {"trial": r["trial"], "reason": r["failure_reason"]}
            for r in rows
            if r["state"] == "failed"
        ],
    }
