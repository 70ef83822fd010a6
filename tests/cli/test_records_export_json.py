"""``records export --format json`` writes strict JSON: NaN and infinities become null."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from taskgraph.cli.app import app
from taskgraph.storage import open_repository
from taskgraph.trial import Cost, LookaheadMatrix, TrialConfig, TrialResult, TrialStatus

runner = CliRunner()


def _refuse(name: str) -> None:
    raise AssertionError(f"not JSON: {name}")


def test_json_export_writes_null_for_a_nan_lookahead_entry(tmp_path):
    url = f"sqlite:///{tmp_path / 'records.db'}"
    config = TrialConfig(target="ner", auxiliaries=("pos",), seed=3)
    result = TrialResult(
        status=TrialStatus.COMPLETE,
        scores={"ner": {"dev": {"f1": 0.7}}, "pos": {"dev": {"f1": 0.9}}},
        objective=0.7,
        cost=Cost(seconds=1.0),
        lookahead=LookaheadMatrix(
            tasks=["ner", "pos"], values=[[0.0, float("nan")], [0.1, 0.0]], n_probes=2
        ),
    )
    with open_repository(url) as repo:
        repo.add_run_result(study="s", trial_number=0, config=config, result=result)
    target = tmp_path / "runs.json"
    done = runner.invoke(app, ["records", "export", "--storage", url, "-o", str(target)])
    assert done.exit_code == 0, done.output
    # parse_constant is called for NaN, Infinity and -Infinity: strict parsers reject them.
    (run,) = json.loads(target.read_text(), parse_constant=_refuse)
    assert run["lookahead"]["values"] == [[0.0, None], [0.1, 0.0]]
    done = runner.invoke(app, ["records", "export", "--storage", url, "-o", "-", "-f", "json"])
    assert done.exit_code == 0
    (run,) = json.loads(done.stdout, parse_constant=_refuse)
    assert run["lookahead"]["values"][0][1] is None


def test_show_json_is_the_export_object_with_measured_in(tmp_path):
    # `records show --json` left out `measured_in`, which the export has
    url = f"sqlite:///{tmp_path / 'records.db'}"
    with open_repository(url) as repo:
        for number, aux in enumerate([(), ("pos",)]):
            config = TrialConfig(target="ner", auxiliaries=aux, seed=number)
            result = TrialResult(
                status=TrialStatus.COMPLETE,
                scores={task: {"dev": {"f1": 0.5}} for task in config.task_set},
                objective=0.5,
                cost=Cost(seconds=1.0),
            )
            repo.add_run_result(study="s", trial_number=number, config=config, result=result)
        repo.add_run_result(
            study="s",
            trial_number=2,
            config=TrialConfig(target="ner", seed=9),
            result=TrialResult.failed("OOM"),
        )
    done = runner.invoke(app, ["records", "export", "--storage", url, "-o", "-", "-f", "json"])
    assert done.exit_code == 0, done.output
    exported = {run["id"]: run for run in json.loads(done.stdout)}
    assert len(exported) == 3
    for run_id, expected in exported.items():
        done = runner.invoke(app, ["records", "show", str(run_id), "--storage", url, "--json"])
        assert done.exit_code == 0, done.output
        shown = json.loads(done.stdout, parse_constant=_refuse)
        assert shown == expected and "measured_in" in shown
    assert exported[2]["measured_in"] == {
        "ner": {"task_set": "ner+pos", "family": exported[2]["family"]},
        "pos": {"task_set": "ner+pos", "family": exported[2]["family"]},
    }
