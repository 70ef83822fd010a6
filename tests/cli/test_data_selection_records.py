"""Data selection in the records: the kept ids stored with the run, `records list --selection`,
`records show`, and `study show` on a study whose trials select examples."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import optuna
import pytest
from typer.testing import CliRunner

from taskgraph.cli.app import app
from taskgraph.search.progress import CONFIG_ATTR, RESULTS_ATTR
from taskgraph.search.space import SUBSET_ATTR
from taskgraph.search.trial_rows import selection_summary
from taskgraph.storage import open_repository
from taskgraph.tasks.selection import decode_ids, selection_record
from taskgraph.trial import Cost, DataSelectionConfig, TrialConfig, TrialResult, TrialStatus

runner = CliRunner()
SELECTION = DataSelectionConfig(features=("jsd", "ttr"), weights={"jsd": 0.8}, keep=0.5)


def kept() -> dict[str, Any]:
    return {"pos": {**selection_record([0, 2, 5], 10), "pool": 6}}


@pytest.fixture
def records_url(tmp_path: Path) -> str:
    """Return a database with a run without selection, a baseline and a run with selection."""
    url = f"sqlite:///{tmp_path / 'records.db'}"
    runs = [
        (TrialConfig(target="ner", auxiliaries=("pos",)), None),
        (
            TrialConfig(target="ner", data_selection=DataSelectionConfig(features=("jsd", "ttr"))),
            None,
        ),
        (TrialConfig(target="ner", auxiliaries=("pos",), data_selection=SELECTION), kept()),
    ]
    with open_repository(url) as repo:
        for number, (config, selection) in enumerate(runs):
            result = TrialResult(
                status=TrialStatus.COMPLETE,
                scores={t: {"dev": {"f1": 0.5}} for t in config.task_set},
                objective=0.5,
                cost=Cost(seconds=1.0),
                selection=selection,
            )
            repo.add_run_result(study="sel", trial_number=number, config=config, result=result)
    return url


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout + result.stderr


def test_records_list_filters_by_selection(records_url: str) -> None:
    code, out = invoke("records", "list", "--storage", records_url, "--selection", "on", "--json")
    assert code == 0, out
    assert sorted(r["trial_number"] for r in json.loads(out)) == [1, 2]
    code, out = invoke("records", "list", "--storage", records_url, "--selection", "off", "--json")
    assert [r["trial_number"] for r in json.loads(out)] == [0]
    code, out = invoke("records", "list", "--storage", records_url, "--selection", "maybe")
    assert code != 0 and "`--selection` must be one of ['on', 'off'], but got 'maybe'" in out


def test_the_run_keeps_the_selected_ids(records_url: str) -> None:
    with open_repository(records_url, create=False) as repo:
        run = repo.runs(data_selection=True, task_set="ner+pos")[0]
    selection = run.data_selection
    assert selection is not None and selection["keep"] == 0.5
    record = selection["kept"]["pos"]
    assert decode_ids(record["selected"], record["examples"]) == [0, 2, 5]
    assert run.trial_config() == TrialConfig(
        target="ner", auxiliaries=("pos",), data_selection=SELECTION
    )
    assert run.trial_result().selection == kept()
    code, out = invoke("records", "show", str(run.id), "--storage", records_url)
    assert code == 0, out
    assert "data selection: keep 0.50 by jsd +0.80; kept pos 3/6" in out


def test_family_of_selected_runs_differs_from_plain_runs(records_url: str) -> None:
    with open_repository(records_url, create=False) as repo:
        runs = {r.trial_number: r for r in repo.runs()}
    assert runs[0].family != runs[2].family
    assert runs[1].family == runs[2].family  # the baseline of a selection study is its family


def test_study_show_prints_the_selection(tmp_path: Path) -> None:
    study = optuna.create_study(direction="maximize")
    trial = study.ask()
    config = TrialConfig(target="ner", auxiliaries=("pos",), data_selection=SELECTION)
    result = TrialResult(status=TrialStatus.COMPLETE, objective=0.5, selection=kept())
    trial.set_user_attr(CONFIG_ATTR, config.to_dict())
    trial.set_user_attr(SUBSET_ATTR, ["pos"])
    trial.set_user_attr(RESULTS_ATTR, [{"config": config.to_dict(), "result": result.to_dict()}])
    study.tell(trial, 0.5)
    summary = selection_summary(study.trials[0])
    assert summary == {
        "features": ["jsd", "ttr"],
        "weights": {"jsd": 0.8},
        "keep": 0.5,
        "kept": {"pos": {"kept": 3, "pool": 6, "examples": 10}},
    }


def test_the_flat_export_names_the_selection_and_pretraining(
    records_url: str, tmp_path: Path
) -> None:
    # The family hash alone did not say what told two runs apart.
    import csv

    out = tmp_path / "runs.csv"
    code, text = invoke("records", "export", "--storage", records_url, "-o", str(out))
    assert code == 0, text
    with out.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    keep = {(row["trial_number"], row["selection_keep"]) for row in rows}
    default = str(DataSelectionConfig(features=("jsd", "ttr")).keep)
    assert keep == {("0", ""), ("1", default), ("2", "0.5")}
    assert {row["pretraining"] for row in rows} == {"none"}
    from taskgraph.trial import PretrainingConfig

    adaptive = TrialConfig(target="ner", pretraining=PretrainingConfig(scheme="adaptive"))
    result = TrialResult(
        status=TrialStatus.COMPLETE, scores={"ner": {"dev": {"f1": 0.4}}}, objective=0.4
    )
    with open_repository(records_url) as repo:
        repo.add_run_result(study="sel", trial_number=3, config=adaptive, result=result)
    code, text = invoke("records", "export", "--storage", records_url, "-o", str(out))
    assert code == 0, text
    with out.open(newline="") as handle:
        schemes = {row["trial_number"]: row["pretraining"] for row in csv.DictReader(handle)}
    assert schemes["3"] == "adaptive" and schemes["0"] == "none"
