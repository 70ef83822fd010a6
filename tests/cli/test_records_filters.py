"""``records list|export`` filters: ``--target`` is the run's target everywhere, a name no run
has is one error line (nothing written), known names matching nothing say so, keys are one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from taskgraph.cli.app import app
from taskgraph.errors import StorageError
from taskgraph.storage import open_repository
from taskgraph.trial import Cost, TrialConfig, TrialResult, TrialStatus

runner = CliRunner()


@pytest.fixture
def url(tmp_path: Path) -> str:
    """Return a database of study 'demo': ner+pos (target ner), pos alone, ner+chunk failed."""
    url = f"sqlite:///{tmp_path / 'records.db'}"
    with open_repository(url) as repo:
        for number, (target, aux, scores) in enumerate(
            [("ner", ("pos",), {"ner": 0.6, "pos": 0.8}), ("pos", (), {"pos": 0.7})]
        ):
            config = TrialConfig(target=target, auxiliaries=aux, seed=0)
            result = TrialResult(
                status=TrialStatus.COMPLETE,
                scores={task: {"dev": {"f1": value}} for task, value in scores.items()},
                objective=scores[target],
                cost=Cost(seconds=2.0),
            )
            repo.add_run_result(study="demo", trial_number=number, config=config, result=result)
        failed = TrialConfig(target="ner", auxiliaries=("chunk",))
        repo.add_run_result(
            study="demo", trial_number=2, config=failed, result=TrialResult.failed("OOM")
        )
    return url


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_target_picks_the_runs_in_every_format(url: str) -> None:
    code, out, _ = invoke("records", "list", "--storage", url, "--target", "pos", "--json")
    assert code == 0 and [r["task_set"] for r in json.loads(out)] == [["pos"]]
    code, out, err = invoke(
        "records", "export", "-o", "-", "-f", "long", "--storage", url, "--target", "pos",
        "--metric", "f1",
    )  # fmt: skip
    assert code == 0, err
    # Only the run whose target is pos: not pos's score as ner's auxiliary.
    assert out.splitlines()[1:] == ["pos,pos,val,0.7,1"]
    code, out, err = invoke(
        "records", "export", "-o", "-", "-f", "long", "--storage", url, "--target", "ner",
        "--metric", "f1",
    )  # fmt: skip
    assert code == 0, err
    assert sorted(out.splitlines()[1:]) == ["ner,ner+pos,val,0.6,1", "pos,ner+pos,val,0.8,1"]


def test_help_says_target_picks_the_runs() -> None:
    result = runner.invoke(app, ["records", "export", "--help"], env={"COLUMNS": "200"})
    text = " ".join(result.stdout.split())
    assert "Only runs whose target task is this one" in text
    assert "--target picks the runs" in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--task-set", "nosuch+ner"), "`--task-set` 'nosuch+ner': no run has task 'nosuch'"),
        (("--contains", "nosuch"), "`--contains` 'nosuch': no run has task 'nosuch'"),
        (("--model-config", "ffffffff"), "`--model-config` 'ffffffff': no run's model"),
    ],
)
def test_a_name_no_run_has_is_one_line_and_writes_nothing(
    url: str, tmp_path: Path, args: tuple[str, str], message: str
) -> None:
    code, out, err = invoke("records", "list", "--storage", url, *args)
    assert code == 2 and out == "" and err.count("\n") == 1
    assert err.startswith("error: ") and message in err, err
    if args[0] != "--model-config":
        assert "known tasks: chunk, ner, pos" in err
    output = tmp_path / "h.csv"
    code, _, err = invoke("records", "export", "-o", str(output), "--storage", url, *args)
    assert code == 2 and message in err and not output.exists()


def test_known_names_that_match_nothing_together_say_so(url: str, tmp_path: Path) -> None:
    code, out, err = invoke(
        "records", "list", "--storage", url, "--task-set", "chunk+pos", "--json"
    )
    assert code == 0 and json.loads(out) == []
    assert err.strip() == "no run matches these filters"
    output = tmp_path / "h.csv"
    code, _, err = invoke(
        "records", "export", "-o", str(output), "--storage", url, "--contains", "chunk",
        "--status", "complete",
    )  # fmt: skip
    assert code == 0 and len(output.read_text().splitlines()) == 1  # the header
    assert err.strip() == f"wrote 0 rows to {output} (no run matches these filters)"


def test_pretraining_names_the_scheme_and_the_allowed_values(url: str) -> None:
    code, _, err = invoke("records", "list", "--storage", url, "--pretraining", "random")
    assert code == 2 and err.count("\n") == 1
    assert "no run used pretraining scheme 'random'" in err
    assert "the runs' schemes: none (no pretraining)" in err
    code, _, err = invoke("records", "list", "--storage", url, "--pretraining", "bogus")
    assert code == 2 and "must be one of none, adaptive, random" in err and "'bogus'" in err
    code, out, _ = invoke("records", "list", "--storage", url, "--pretraining", "none", "--json")
    assert code == 0 and len(json.loads(out)) == 3


def test_list_json_keys_are_the_exports(url: str) -> None:
    code, out, _ = invoke("records", "list", "--storage", url, "--json")
    assert code == 0
    row = json.loads(out)[0]
    assert "trial" not in row and "cost_s" not in row
    assert row["trial_number"] == 2 and row["cost_seconds"] == 0.0
    code, out, _ = invoke("records", "list", "--storage", url, "--csv")
    header = out.splitlines()[0].split(",")
    assert "trial_number" in header and "cost_seconds" in header and "trial" not in header
    code, out, _ = invoke("records", "show", str(row["id"]), "--storage", url, "--json")
    shown = json.loads(out)
    assert "trial_number" in shown and "cost_seconds" in shown and "trial" not in shown


def test_long_metric_no_run_has_is_named_with_the_runs_metrics(url: str) -> None:
    code, out, err = invoke(
        "records", "export", "-o", "-", "-f", "long", "--storage", url, "--metric", "nosuch"
    )
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "`--metric` 'nosuch'" in err and "their metrics: f1" in err


def test_missing_database_names_where_its_url_came_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TASKGRAPH_STORAGE", raising=False)
    missing = f"sqlite:///{tmp_path / 'nope.db'}"
    code, _, err = invoke("study", "list", "--storage", missing)
    assert code == 2 and "no records database" in err and "given by --storage" in err
    assert "or pass --storage / set TASKGRAPH_STORAGE" not in err
    monkeypatch.setenv("TASKGRAPH_STORAGE", missing)
    code, _, err = invoke("records", "list")
    assert code == 2 and "from TASKGRAPH_STORAGE" in err
    assert "set TASKGRAPH_STORAGE to an existing database" in err
    assert not (tmp_path / "nope.db").exists()


def test_a_missing_database_from_a_specs_storage_field_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Where the URL came from is what resolve_storage_url chose it from, not a guess from
    # its value: a spec's storage field was named "given by storage".
    from taskgraph.storage import resolve_storage_url

    monkeypatch.delenv("TASKGRAPH_STORAGE", raising=False)
    url = resolve_storage_url(None, spec_storage=f"sqlite:///{tmp_path / 'spec.db'}")
    with pytest.raises(StorageError, match=r"the spec's storage field\): run a study first"):
        open_repository(url, create=False)
    assert not (tmp_path / "spec.db").exists()
