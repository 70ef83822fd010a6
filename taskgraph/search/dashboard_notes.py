"""optuna-dashboard notes: the study's spec, and a trial's long configuration, shown whole.

optuna-dashboard (0.21, ``optuna_dashboard/_serializer.py``: ``MAX_ATTR_LENGTH = 1024`` in
``serialize_attrs``) cuts every non-string attribute value's JSON at 1024 characters, so the
study's ``taskgraph:spec`` and a large ``taskgraph:config`` show as broken JSON.  Its way to
show long text is a note (``optuna_dashboard.save_note``, Markdown), which it keeps in the
study's system attributes (``dashboard:note_ver``, ``dashboard:note_str:N`` in chunks of 2045
characters; ``dashboard:TRIAL_ID:...`` for a trial).

optuna-dashboard is optional (the ``dashboard`` extra): without it these functions do nothing.
A note is a convenience: an error writing one is logged as a warning, never raised, so it
never fails a trial or a study.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

import optuna

__all__ = ["DASHBOARD_ATTR_LIMIT", "write_study_note", "write_trial_note"]

_log = logging.getLogger(__name__)

#: The characters of an attribute value's JSON that optuna-dashboard shows (the rest is cut).
DASHBOARD_ATTR_LIMIT = 1024


def _yaml_block(data: Mapping[str, Any]) -> str:
    """Return ``data`` as a fenced YAML block (Markdown)."""
    import yaml

    text = yaml.safe_dump(dict(data), sort_keys=False, allow_unicode=True)
    return f"```yaml\n{text}```\n"


def study_note_body(spec: Mapping[str, Any]) -> str:
    """Return the study note's Markdown: one line on what the study is, then the spec whole."""
    runner = spec.get("runner")
    runner_name = runner.get("name") if isinstance(runner, Mapping) else runner
    budget = spec.get("budget")
    budget = budget if isinstance(budget, Mapping) else {}
    limits = f"{budget.get('trials')} trials"
    if budget.get("wall_time") is not None:
        limits += f", wall time {budget['wall_time']} s"
    summary = (
        f"taskgraph study `{spec.get('name')}`: target `{spec.get('target')}`, "
        f"runner `{runner_name}`, budget {limits}."
    )
    return (
        f"{summary}\n\n"
        "The spec, whole (the `taskgraph:spec` attribute is cut at "
        f"{DASHBOARD_ATTR_LIMIT} characters; `taskgraph study show NAME --spec` prints it too):"
        f"\n\n{_yaml_block(spec)}"
    )


def trial_note_body(number: int, config: Mapping[str, Any]) -> str:
    """Return a trial note's Markdown: the trained configuration as YAML."""
    return (
        f"Trial {number}: the configuration, whole (the `taskgraph:config` attribute is cut at "
        f"{DASHBOARD_ATTR_LIMIT} characters):\n\n{_yaml_block(config)}"
    )


def write_study_note(study: optuna.Study, spec: Mapping[str, Any], *, replace: bool) -> bool:
    """Return whether the study's note was written: the spec (as stored) as YAML.

    ``replace``: write it even if the study has a note (a new study, or a stored spec that
    changed); otherwise only a study without one gets it (one created before notes were
    written), so a note edited in the dashboard survives a resume that changes nothing.
    """
    try:
        from optuna_dashboard import save_note
        from optuna_dashboard._note import note_ver_key
    except ImportError:
        return False
    try:
        if not replace:
            attrs = study._storage.get_study_system_attrs(study._study_id)
            if note_ver_key(None) in attrs:
                return False
        save_note(study, study_note_body(spec))
    except Exception as error:  # a note must never stop a study
        _log.warning("could not write the dashboard note of study %r: %s", study.study_name, error)
        return False
    return True


def write_trial_note(trial: optuna.Trial, config: Mapping[str, Any]) -> bool:
    """Return whether the trial's note was written: its configuration as YAML, when its JSON is
    longer than optuna-dashboard shows (``taskgraph:config`` is whole otherwise).

    Only then: every note lives in the study's system attributes, which optuna-dashboard (and
    ``save_note`` itself) reads whole on every request, so a note per trial would make each
    read grow with the study for text the dashboard already shows.
    """
    text = json.dumps(config)
    if len(text) <= DASHBOARD_ATTR_LIMIT:
        return False
    try:
        from optuna_dashboard import save_note
    except ImportError:
        return False
    try:
        save_note(trial, trial_note_body(trial.number, json.loads(text)))
    except Exception as error:  # a note must never fail a trial
        _log.warning("could not write the dashboard note of trial %d: %s", trial.number, error)
        return False
    return True
