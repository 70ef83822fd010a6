"""optuna-dashboard notes: the study's spec and a long trial configuration, shown whole.

The notes are read back with optuna-dashboard's own reader (the one its serializer uses to
send a study's and a trial's note to the browser).
"""

from __future__ import annotations

import json
import logging
import sys
from types import ModuleType
from typing import Any

import optuna
import pytest
import yaml
from optuna_dashboard._note import get_note_from_system_attrs
from optuna_dashboard._serializer import MAX_ATTR_LENGTH, serialize_attrs

from taskgraph.search import dashboard_notes
from taskgraph.search.dashboard_notes import DASHBOARD_ATTR_LIMIT
from taskgraph.search.progress import CONFIG_ATTR, SPEC_ATTR
from tests.search.test_engine import make_engine, make_spec

# Forty fixed hyperparameters make every trial's configuration longer than the dashboard shows.
LONG_CONFIG = {
    "sharing": ["hard", "soft"],
    "hyperparameters": {f"option_{i:02d}": {"value": 0.5 + i} for i in range(40)},
}


def _run(storage_url: str, fakes: ModuleType, *, trials: int = 2, **overrides: Any) -> optuna.Study:
    spec = make_spec(seeds=1, budget={"trials": trials}, **overrides)
    engine = make_engine(spec, storage_url, fakes.FakeEvaluator(), fakes)
    engine.run()
    engine.close()
    return optuna.load_study(study_name="fake", storage=storage_url)


def _note(study: optuna.Study, trial_id: int | None = None) -> str:
    attrs = study._storage.get_study_system_attrs(study._study_id)
    body: str = get_note_from_system_attrs(attrs, trial_id)["body"]
    return body


def _yaml_in(note: str) -> Any:
    """Return the data of the note's fenced YAML block."""
    assert note.count("```yaml\n") == 1 and note.endswith("```\n"), note
    return yaml.safe_load(note.split("```yaml\n", 1)[1].rsplit("```", 1)[0])


def test_the_limit_is_optuna_dashboards() -> None:
    assert DASHBOARD_ATTR_LIMIT == MAX_ATTR_LENGTH
    cut = serialize_attrs({"x": {"text": "y" * 2000}})[0]["value"]
    assert len(cut) == DASHBOARD_ATTR_LIMIT


def test_a_new_study_has_a_note_with_its_whole_spec(storage_url: str, fakes: ModuleType) -> None:
    study = _run(storage_url, fakes)
    spec = study.user_attrs[SPEC_ATTR]
    # The attribute the dashboard shows is cut: the note is where the spec is whole.
    assert len(json.dumps(spec)) > DASHBOARD_ATTR_LIMIT
    note = _note(study)
    assert note, "the study has no note"
    first_line = note.splitlines()[0]
    assert "`fake`" in first_line and "target `tgt`" in first_line
    assert "runner `local`" in first_line and "budget 2 trials" in first_line
    assert _yaml_in(note) == spec


def test_a_resume_that_changes_the_spec_updates_the_note(
    storage_url: str, fakes: ModuleType
) -> None:
    _run(storage_url, fakes, trials=2)
    study = _run(storage_url, fakes, trials=3)
    note = _note(study)
    assert note, "the study has no note"
    assert "budget 3 trials" in note.splitlines()[0]
    assert _yaml_in(note) == study.user_attrs[SPEC_ATTR]
    assert _yaml_in(note)["budget"]["trials"] == 3


def test_a_resume_that_changes_nothing_keeps_a_note_edited_in_the_dashboard(
    storage_url: str, fakes: ModuleType
) -> None:
    from optuna_dashboard import save_note

    study = _run(storage_url, fakes, trials=2)
    save_note(study, "my own words")
    study = _run(storage_url, fakes, trials=2)
    assert _note(study) == "my own words"


def test_a_study_without_a_note_gets_one_when_resumed(
    storage_url: str, fakes: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A study created before notes were written: the engine's note writer off for its run.
    monkeypatch.setattr("taskgraph.search.creation.write_study_note", lambda *a, **k: False)
    study = _run(storage_url, fakes, trials=1)
    assert _note(study) == ""
    monkeypatch.undo()
    study = _run(storage_url, fakes, trials=1)  # the same spec
    assert _yaml_in(_note(study)) == study.user_attrs[SPEC_ATTR]


def test_a_trial_with_a_long_configuration_gets_a_note(storage_url: str, fakes: ModuleType) -> None:
    study = _run(storage_url, fakes, trials=2, search=LONG_CONFIG)
    trials = study.get_trials()
    assert len(trials) == 2
    for trial in trials:
        config = trial.user_attrs[CONFIG_ATTR]
        assert len(json.dumps(config)) > DASHBOARD_ATTR_LIMIT
        note = _note(study, trial._trial_id)
        assert note.startswith(f"Trial {trial.number}: ")
        assert _yaml_in(note) == config


def test_a_short_configuration_gets_no_note(storage_url: str, fakes: ModuleType) -> None:
    study = _run(storage_url, fakes, trials=2)
    for trial in study.get_trials():
        assert len(json.dumps(trial.user_attrs[CONFIG_ATTR])) <= DASHBOARD_ATTR_LIMIT
        assert _note(study, trial._trial_id) == ""
    # Only the study's note is in the study's system attributes (a trial's is `dashboard:ID:`).
    keys = study._storage.get_study_system_attrs(study._study_id)
    dashboard_keys = {key for key in keys if key.startswith("dashboard:")}
    assert "dashboard:note_ver" in dashboard_keys
    assert all(key.startswith("dashboard:note_") for key in dashboard_keys), dashboard_keys


def test_without_optuna_dashboard_nothing_is_written(
    storage_url: str, fakes: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "optuna_dashboard", None)  # import fails
    study = _run(storage_url, fakes, trials=2, search=LONG_CONFIG)
    assert [trial.state for trial in study.get_trials()] == [optuna.trial.TrialState.COMPLETE] * 2
    monkeypatch.undo()
    keys = study._storage.get_study_system_attrs(study._study_id)
    assert not [key for key in keys if key.startswith("dashboard:")]


def test_a_note_that_cannot_be_written_fails_nothing(
    storage_url: str,
    fakes: ModuleType,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    import optuna_dashboard

    def broken(study_or_trial: Any, body: str) -> None:
        raise RuntimeError("database is locked")

    monkeypatch.setattr(optuna_dashboard, "save_note", broken)
    with caplog.at_level(logging.WARNING, logger=dashboard_notes.__name__):
        study = _run(storage_url, fakes, trials=2, search=LONG_CONFIG)
    assert [trial.state for trial in study.get_trials()] == [optuna.trial.TrialState.COMPLETE] * 2
    messages = [record.getMessage() for record in caplog.records]
    assert "could not write the dashboard note of study 'fake': database is locked" in messages
    assert "could not write the dashboard note of trial 1: database is locked" in messages


def _get_json(app: Any, path: str) -> Any:
    """Return the JSON optuna-dashboard's WSGI app answers to GET ``path``."""
    from wsgiref.util import setup_testing_defaults

    environ: dict[str, Any] = {"PATH_INFO": path, "REQUEST_METHOD": "GET"}
    setup_testing_defaults(environ)
    status: list[str] = []
    body = b"".join(app(environ, lambda code, headers, *rest: status.append(code)))
    assert status == ["200 OK"], (status, body[:200])
    return json.loads(body)


def test_the_dashboard_serves_the_notes(storage_url: str, fakes: ModuleType) -> None:
    from optuna_dashboard import wsgi

    study = _run(storage_url, fakes, trials=2, search=LONG_CONFIG)
    detail = _get_json(wsgi(storage_url), f"/api/studies/{study._study_id}")
    # The attributes it shows are cut; the notes it shows are whole.
    (shown,) = (attr["value"] for attr in detail["user_attrs"] if attr["key"] == SPEC_ATTR)
    assert len(shown) == DASHBOARD_ATTR_LIMIT
    assert _yaml_in(detail["note"]["body"]) == study.user_attrs[SPEC_ATTR]
    for trial, served in zip(study.get_trials(), detail["trials"], strict=True):
        assert served["number"] == trial.number
        assert _yaml_in(served["note"]["body"]) == trial.user_attrs[CONFIG_ATTR]
