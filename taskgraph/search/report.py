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

**Convergence.**  A complete trial whose objective was still rising at its last evaluation
(last minus previous evaluation, in the direction of improvement, averaged over its seeds) by
more than its noise has not converged: its score understates what more steps would give, and
its gain is a weak comparison.  The noise is the standard deviation of the seeds' objectives
when the trial has several seeds, and at least :data:`CONVERGENCE_TOLERANCE`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

import optuna
from optuna.trial import FrozenTrial

from taskgraph.errors import NotFoundError, StorageError
from taskgraph.search.heartbeat import quiet_optuna
from taskgraph.search.progress import (
    BUDGET_ATTR,
    CONFIG_ATTR,
    FAILURE_ATTR,
    REPEATS_ATTR,
    SPEC_ATTR,
    retried_numbers,
    study_progress,
    trained_by,
    trial_results,
    trial_state,
)
from taskgraph.search.space import BASELINE_ROLE, ROLE_ATTR, SUBSET_ATTR, is_first_baseline
from taskgraph.trial import TrialConfig, setting_differences

__all__ = [
    "CONVERGENCE_TOLERANCE",
    "convergence",
    "differs_from_baseline",
    "list_progress",
    "load_optuna_study",
    "not_taskgraphs",
    "open_study",
    "read_only_storage",
    "study_names",
    "study_report",
    "target_data_versions",
    "trial_row",
]


def load_optuna_study(
    name: str, *, storage: optuna.storages.BaseStorage, where: str
) -> optuna.Study:
    """Return study ``name`` from ``storage``; a missing one is a NotFoundError listing the
    known ones."""
    with quiet_optuna():
        try:
            return optuna.load_study(study_name=name, storage=storage)
        except KeyError:
            known = ", ".join(study_names(storage)) or "(none)"
            raise NotFoundError(f"no study {name!r} in {where}; known studies: {known}") from None


def read_only_storage(storage_url: str) -> optuna.storages.RDBStorage | None:
    """Return Optuna's storage on the database at ``storage_url``, or ``None`` when the
    database has no Optuna tables (no study ran there yet); it creates no table.

    The records database is checked first, so a missing file, an unreachable server or an
    old schema is the storage layer's one clear line rather than Optuna's error.
    """
    import sqlalchemy

    from taskgraph.storage import open_repository, parse_storage_url

    with open_repository(storage_url, create=False) as repository:
        # `db upgrade` on an empty database makes taskgraph's tables only; Optuna's come
        # with the first study, and reading must not create them.
        if not sqlalchemy.inspect(repository.engine).has_table(_OPTUNA_STUDIES_TABLE):
            return None
    url = parse_storage_url(storage_url).render_as_string(hide_password=False)
    return optuna.storages.RDBStorage(url, skip_table_creation=True)


#: the table of Optuna's RDB storage that lists its studies
_OPTUNA_STUDIES_TABLE = "studies"


def open_study(name: str, *, storage_url: str) -> optuna.Study:
    """Return study ``name`` from the database at ``storage_url`` (read-only use; nothing is
    created).

    Raises :class:`~taskgraph.errors.NotFoundError` when there is no such study (naming the
    known ones), or when the study was not created by taskgraph (it has no ``taskgraph:spec``:
    a plain Optuna study in the same database).
    """
    from taskgraph.storage import mask_url

    where = mask_url(storage_url)
    storage = read_only_storage(storage_url)
    if storage is None:
        raise NotFoundError(f"no study {name!r} in {where}; known studies: (none)")
    study = load_optuna_study(name, storage=storage, where=where)
    if not study.user_attrs.get(SPEC_ATTR):
        raise not_taskgraphs(name, study, storage_url=storage_url)
    return study


def not_taskgraphs(name: str, study: optuna.Study, *, storage_url: str) -> NotFoundError:
    """Return the error for study ``name``, which has no ``taskgraph:spec``.

    A study with no taskgraph attribute and no trial is what a ``taskgraph study run`` killed
    while it created the study leaves (Optuna's row is written before the spec): the error
    says how to take it over or remove it.  Any other is a plain Optuna study.
    """
    from taskgraph.storage.urls import delete_command

    ours = any(key.startswith("taskgraph:") for key in study.user_attrs)
    if not ours and not study.get_trials(deepcopy=False):
        return NotFoundError(
            f"study {name!r} has no {SPEC_ATTR} and no trials: a `taskgraph study run` stopped "
            "while it created the study leaves it so; `taskgraph study run SPEC` with the spec "
            f"it was started from takes it over, or `{delete_command(name, storage_url)}` "
            "removes it"
        )
    return NotFoundError(f"study {name!r} was not created by taskgraph (no {SPEC_ATTR})")


def list_progress(*, storage_url: str) -> list[dict[str, Any]]:
    """Return one row per study in the database: its target and its progress.

    A study that taskgraph did not create (no ``taskgraph:spec``: a plain Optuna study) has
    ``"taskgraph": False`` and no target or budget; taskgraph's have ``"taskgraph": True``.
    """
    storage = _optuna_only_storage(storage_url) or read_only_storage(storage_url)
    if storage is None:
        return []
    rows = []
    with quiet_optuna():
        for name in study_names(storage):
            study = optuna.load_study(study_name=name, storage=storage)
            spec = study.user_attrs.get(SPEC_ATTR) or {}
            row = {"target": spec.get("target"), **study_progress(study).to_dict()}
            if not spec:
                row["budget"] = None  # not 0: Optuna alone has no budget
            rows.append({**row, "taskgraph": bool(spec)})
    storage.engine.dispose()
    return rows


def _optuna_only_storage(storage_url: str) -> optuna.storages.RDBStorage | None:
    """Return Optuna's storage on a database that holds Optuna's tables and nothing of
    taskgraph's (plain Optuna studies: listed, never given taskgraph's schema), else ``None``.

    It only reads the table names; anything else (a missing file, an unreachable server, an
    old taskgraph schema) is left to :func:`read_only_storage` to refuse in its words.
    """
    import sqlalchemy
    from sqlalchemy.exc import SQLAlchemyError

    from taskgraph.storage import parse_storage_url
    from taskgraph.storage.migrate import schema_state
    from taskgraph.storage.repository import open_engine

    try:
        engine = open_engine(storage_url, create=False)
    except StorageError:
        return None
    try:
        with engine.connect() as connection:
            state = schema_state(connection)
            has_optuna = sqlalchemy.inspect(connection).has_table(_OPTUNA_STUDIES_TABLE)
    except SQLAlchemyError:
        return None
    finally:
        engine.dispose()
    if not (state.is_empty and has_optuna):
        return None
    url = parse_storage_url(storage_url).render_as_string(hide_password=False)
    return optuna.storages.RDBStorage(url, skip_table_creation=True)


def study_names(storage: optuna.storages.BaseStorage) -> list[str]:
    """Return the names of every study in ``storage``, sorted."""
    return sorted(s.study_name for s in storage.get_all_studies())


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
