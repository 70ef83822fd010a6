"""A study deleted under its driver (by a taskgraph without the liveness lock, or by
``optuna delete-study``): the driver ends with one ``error:`` line, exit 1, not Optuna's
``KeyError: 'Record does not exist.'``; and the records its late write created again (a
spec-less row holding a trial's run) are not adopted by the next study of that name, which
would drop its own run of that trial as a repeat: refused, exit 2, naming ``study delete``.
"""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from typer.testing import CliRunner

from taskgraph.app.studies.running import run_study
from taskgraph.cli.app import app
from taskgraph.errors import SpecError, StorageError
from taskgraph.search.recording import RecordWriter
from taskgraph.storage import open_repository


@pytest.fixture
def demo(tabular_demo: Path) -> Path:
    return tabular_demo  # tests/conftest.py


def run_cli(demo: Path, url: str, trials: int = 3) -> tuple[int, str]:
    result = CliRunner().invoke(
        app,
        [
            "study", "run", str(demo), "--runner", "tabular", "--set", "runner.table=tab.csv",
            "--set", f"budget.trials={trials}", "--storage", url, "-q",
        ],
    )  # fmt: skip
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    return result.exit_code, result.stderr


def delete_before_writing(
    monkeypatch: pytest.MonkeyPatch, url: str, trial: int, *, records: bool
) -> None:
    """Delete the study, as a taskgraph without the liveness lock does (``records``) or as
    ``optuna delete-study`` does, after trial ``trial`` is told, just before its records."""
    original = RecordWriter.write

    def write(self: RecordWriter, number: int, outcome: object) -> None:
        if number == trial:
            if records:
                storage = optuna.storages.RDBStorage(url, skip_table_creation=True)
                study_id = storage.get_study_id_from_name(self.study)
                storage.engine.dispose()
                with open_repository(url, create=False) as repository:
                    repository.delete_study(self.study, optuna_study_id=study_id)
            else:
                optuna.delete_study(study_name=self.study, storage=url)
        original(self, number, outcome)  # type: ignore[arg-type]

    monkeypatch.setattr(RecordWriter, "write", write)


def run_trials(url: str, name: str = "demo") -> list[int]:
    with open_repository(url, create=False) as repository:
        return sorted(run.trial_number for run in repository.runs(study=name))


def test_a_study_deleted_under_its_driver_ends_in_one_error_line(demo, monkeypatch):
    url = f"sqlite:///{demo.parent / 'd.db'}"
    delete_before_writing(monkeypatch, url, 1, records=True)

    code, err = run_cli(demo, url)

    assert code == 1
    assert err.count("\n") == 1 and err.startswith("error: study 'demo' in ")
    assert "was deleted while this driver ran it" in err
    # Its late write created the records again, spec-less, with trial 1's run.
    assert run_trials(url) == [1]

    monkeypatch.undo()
    monkeypatch.chdir(demo.parent)
    code, err = run_cli(demo, url)  # a new study of that name: refused, nothing written

    assert code == 2
    assert err.count("\n") == 1 and "study 'demo' has records" in err
    assert "taskgraph study delete demo" in err
    assert "demo" not in {s.study_name for s in optuna.get_all_study_summaries(url)}
    assert run_trials(url) == [1]

    code, err = (
        CliRunner().invoke(app, ["study", "delete", "demo", "--storage", url, "--yes"]).exit_code,
        "",
    )
    assert code == 0
    code, err = run_cli(demo, url)
    assert code == 0, err
    assert run_trials(url) == [0, 1, 2]  # its own runs, trial 1's included


def test_a_study_optuna_deleted_under_its_driver_raises_a_storage_error(demo, monkeypatch):
    url = f"sqlite:///{demo.parent / 'd.db'}"
    delete_before_writing(monkeypatch, url, 0, records=False)
    runner = {"name": "tabular", "table": str(demo.parent / "tab.csv")}

    with pytest.raises(StorageError) as stopped:
        run_study(demo, storage=url, runner=runner, budget__trials=3)

    assert "study 'demo'" in str(stopped.value)
    assert "was deleted while this driver ran it" in str(stopped.value)
    monkeypatch.undo()
    # The records of the study Optuna deleted stay: a new study of the name is refused.
    with pytest.raises(SpecError, match="study 'demo' has records"):
        run_study(demo, storage=url, runner=runner, budget__trials=3)


def test_spec_less_records_holding_a_trials_run_are_not_adopted(demo):
    from taskgraph.testing import complete_result
    from taskgraph.trial import TrialConfig

    url = f"sqlite:///{demo.parent / 'd.db'}"
    # What a deleted study's driver's late write leaves: a spec-less row with trial 1's run
    # (a screen's runs, numbered below 0, are adopted: tests/storage/test_study_delete.py).
    config = TrialConfig(target="synth_target", auxiliaries=("synth_related",), seed=0)
    with open_repository(url) as repository:
        repository.add_run_result(
            study="demo", trial_number=1, config=config, result=complete_result(config)
        )
    runner = {"name": "tabular", "table": str(demo.parent / "tab.csv")}

    with pytest.raises(SpecError, match=r"study 'demo' has records .* no Optuna study holds"):
        run_study(demo, storage=url, runner=runner, budget__trials=3)

    assert "demo" not in {s.study_name for s in optuna.get_all_study_summaries(url)}
    assert run_trials(url) == [1]
