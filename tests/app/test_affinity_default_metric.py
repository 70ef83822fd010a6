"""A study without ``objective.metric`` optimised its target's primary metric: the affinity
commands read its records in that metric by default instead of refusing to choose."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from taskgraph.app.affinity import load_records, recommend
from taskgraph.cli.app import app
from taskgraph.errors import ConfigError
from taskgraph.storage import open_repository
from taskgraph.trial import Cost, TrialConfig, TrialResult, TrialStatus

NER = "wikiann_en_ner"  # metrics f1 (primary), precision, recall
UPOS = "ud_en_ewt_upos"  # accuracy
CS_NER = "cs_cnec2_ner"  # f1, precision, recall
#: the objective a spec without `objective.metric` is stored with
DEFAULT_OBJECTIVE = {"metric": None, "split": "dev", "direction": "maximize"}


def _scores(task: str, value: float) -> dict[str, dict[str, float]]:
    if task == UPOS:
        return {"dev": {"accuracy": value}, "test": {"accuracy": value}}
    # precision runs the other way round, so reading it instead of f1 would show
    return {
        "dev": {"f1": value, "precision": 1.0 - value, "recall": value / 2},
        "test": {"f1": value - 0.1},
    }


def _study(repo: Any, study: str, spec: Mapping[str, Any], runs: Mapping[tuple[str, ...], float]):
    target = spec["target"]
    repo.ensure_study(study, spec=dict(spec), target=target)
    for number, (aux, value) in enumerate(runs.items()):
        scores = {target: _scores(target, value)} | {t: _scores(t, 0.7) for t in aux}
        result = TrialResult(
            status=TrialStatus.COMPLETE, scores=scores, objective=value, cost=Cost(seconds=1.0)
        )
        config = TrialConfig(target=target, auxiliaries=aux, seed=0)
        repo.add_run_result(study=study, trial_number=number, config=config, result=result)


NER_RUNS = {(): 0.50, (UPOS,): 0.60, (CS_NER,): 0.45, (UPOS, CS_NER): 0.65}


@pytest.fixture
def url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'records.db'}"
    with open_repository(url) as repo:
        spec = {"name": "ner_aux", "target": NER, "candidates": [UPOS, CS_NER]}
        _study(repo, "ner_aux", spec | {"objective": DEFAULT_OBJECTIVE}, NER_RUNS)
    return url


def test_the_default_is_the_targets_primary_metric(url: str) -> None:
    records = load_records(storage=url)
    assert records
    assert {r.metric for r in records} == {"f1"}  # not accuracy, precision or recall
    assert {r.split for r in records} == {"dev"}
    baseline = next(r for r in records if r.task == NER and r.task_set == {NER})
    assert baseline.value == pytest.approx(0.50)
    top = recommend(NER, storage=url, k=3)
    assert top and all(UPOS in r.auxiliaries or CS_NER in r.auxiliaries for r in top)


def test_affinity_top_runs_on_the_default_metric(url: str) -> None:
    result = CliRunner().invoke(app, ["affinity", "top", "--target", NER, "--storage", url])
    assert result.exit_code == 0, result.stderr
    assert "no study objective names one" not in result.stderr


def test_an_inline_target_is_scored_by_its_own_first_metric(tmp_path: Path) -> None:
    # The stored spec defines the target inline; its files need not exist here any more.
    url = f"sqlite:///{tmp_path / 'records.db'}"
    mine = {
        "name": "my_ner", "format": "iob", "type": "token_tagging", "label_field": "ner",
        "metrics": ["precision", "f1"], "files": {"train": str(tmp_path / "gone" / "train.iob")},
    }  # fmt: skip
    spec = {"name": "mine", "target": "my_ner", "candidates": [CS_NER], "tasks": [mine]}
    with open_repository(url) as repo:
        _study(repo, "mine", spec | {"objective": DEFAULT_OBJECTIVE}, {(): 0.5, (CS_NER,): 0.6})
    records = load_records(storage=url)
    assert {r.metric for r in records} == {"precision"}


def test_studies_with_different_default_metrics_are_refused(url: str) -> None:
    with open_repository(url) as repo:
        spec = {"name": "upos_aux", "target": UPOS, "candidates": [NER]}
        _study(repo, "upos_aux", spec | {"objective": DEFAULT_OBJECTIVE}, {(): 0.9, (NER,): 0.91})
    with pytest.raises(ConfigError, match="different objective metrics") as caught:
        load_records(storage=url)
    assert "'ner_aux' optimises f1 on dev" in str(caught.value)
    assert "'upos_aux' optimises accuracy on dev" in str(caught.value)
    # Naming the metric still reads them.
    assert {r.metric for r in load_records(storage=url, metric="accuracy")} == {"accuracy"}


def test_an_unresolvable_target_keeps_the_old_refusal(tmp_path: Path) -> None:
    # A tabular study's target is a table's task; one unknown to the catalog cannot be looked
    # up either: with several metrics in the records, the user chooses.
    url = f"sqlite:///{tmp_path / 'records.db'}"
    with open_repository(url) as repo:
        spec = {"name": "tab", "target": NER, "runner": {"name": "tabular", "table": "t.csv"}}
        _study(repo, "tab", spec | {"objective": DEFAULT_OBJECTIVE}, NER_RUNS)
        spec = {"name": "odd", "target": "not_a_task", "candidates": [NER]}
        _study(repo, "odd", spec | {"objective": DEFAULT_OBJECTIVE}, {(): 0.5, (NER,): 0.6})
    with pytest.raises(ConfigError, match="no study objective names one"):
        load_records(storage=url)


def test_a_metric_the_target_was_never_scored_by_is_named(url: str) -> None:
    # Other tasks have f1; UPOS has accuracy only: the error said "none of the N records'
    # targets has a single-task baseline".
    with open_repository(url) as repo:
        spec = {"name": "upos_aux", "target": UPOS, "candidates": [NER],
                "objective": {"metric": "accuracy", "split": "dev"}}  # fmt: skip
        _study(repo, "upos_aux", spec, {(): 0.9, (NER,): 0.91})
    result = CliRunner().invoke(
        app, ["affinity", "top", "--target", UPOS, "--metric", "f1", "--storage", url]
    )
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: `--target` '{UPOS}' has no f1 scores; its records have metrics accuracy: "
        "choose one with --metric NAME\n"
    )
    with pytest.raises(ConfigError, match=f"`target` '{UPOS}' has no f1 scores"):
        recommend(UPOS, storage=url, metric="f1")
    assert recommend(UPOS, storage=url, metric="accuracy")
