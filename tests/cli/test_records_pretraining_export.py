"""`records export --format long` of one study that searched pretraining schemes: the error
on a task set of several families names the filter that picks one (`--pretraining`,
`--family`), and those filters work; `records list --limit` past a SQL integer is a usage
error, not a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from taskgraph.cli.app import app
from taskgraph.storage import open_repository
from taskgraph.trial import Cost, PretrainingConfig, TrialConfig, TrialResult, TrialStatus

runner = CliRunner()

#: trial number -> (pretraining scheme or None, dev f1)
TRIALS = {0: (None, 0.40), 1: ("random", 0.50), 2: ("adaptive", 0.60), 3: ("random", 0.54)}


@pytest.fixture
def url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'records.db'}"
    with open_repository(url) as repo:
        for number, (scheme, f1) in TRIALS.items():
            stage = None if scheme is None else PretrainingConfig(scheme=scheme, steps=3)
            config = TrialConfig(target="squad2", seed=number, pretraining=stage)
            result = TrialResult(
                status=TrialStatus.COMPLETE,
                scores={"squad2": {"dev": {"f1": f1}}},
                objective=f1,
                cost=Cost(seconds=1.0),
            )
            repo.add_run_result(study="masking", trial_number=number, config=config, result=result)
    return url


def export(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["records", "export", "-f", "long", "-o", "-", *args])
    return result.exit_code, result.stdout, result.stderr


def test_several_pretraining_families_name_the_option_that_picks_one(url: str) -> None:
    code, out, err = export("--storage", url, "--study", "masking", "--metric", "f1")
    assert code == 2 and out == "" and err.count("\n") == 1, err
    assert err.startswith("error: squad2 in squad2 was trained in 3 model families (")
    assert ": pretraining none;" in err and ": pretraining random" in err
    assert err.rstrip().endswith(
        "pick one family with --pretraining SCHEME (adaptive, none, random) or --family PREFIX"
    )
    assert "--study" not in err  # one study: naming it would not help


def test_pretraining_picks_the_runs_of_one_scheme(url: str) -> None:
    code, out, err = export("--storage", url, "--metric", "f1", "--pretraining", "random")
    assert code == 0, err
    assert out.splitlines()[1:] == ["squad2,squad2,val,0.52,1"]  # the mean of trials 1 and 3
    code, out, err = export("--storage", url, "--metric", "f1", "--pretraining", "none")
    assert code == 0 and out.splitlines()[1:] == ["squad2,squad2,val,0.4,1"], err


def test_family_picks_the_scores_of_one_family(url: str) -> None:
    with open_repository(url) as repo:
        run = repo.runs(pretraining="adaptive")[0]
    code, out, err = export("--storage", url, "--metric", "f1", "--family", run.family[:8])
    assert code == 0, err
    assert out.splitlines()[1:] == ["squad2,squad2,val,0.6,1"]
    code, _, err = export("--storage", url, "--family", "zzzz")
    assert code == 2 and err.count("\n") == 1
    assert "`--family` 'zzzz': no score's model family starts with it; the families: " in err


def test_pretraining_and_family_filter_every_format(url: str) -> None:
    """The csv, json and parquet formats take them too (tests/cli/test_records_family_filters.py),
    refusing a value as the long format does."""
    expected = {
        "--pretraining": "`--pretraining` must be one of none, ",
        "--family": "`--family` 'x': no score's model family starts with it; the families: ",
    }
    for option, words in expected.items():
        result = runner.invoke(
            app, ["records", "export", "-f", "csv", "-o", "-", "--storage", url, option, "x"]
        )
        assert result.exit_code == 2 and result.stdout == ""
        assert words in result.stderr and result.stderr.count("\n") == 1, result.stderr
    result = runner.invoke(
        app, ["records", "export", "-f", "csv", "-o", "-", "--storage", url,
              "--pretraining", "random"],
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert sorted(line.split(",")[2] for line in result.stdout.splitlines()[1:]) == ["1", "3"]


@pytest.mark.parametrize("limit", ["99999999999999999999", str(2**63)])
def test_a_limit_past_a_sql_integer_is_a_usage_error(url: str, limit: str) -> None:
    result = runner.invoke(app, ["records", "list", "--storage", url, "--limit", limit])
    assert result.exit_code == 2
    assert "Traceback" not in result.output and "OverflowError" not in result.output
    assert "Invalid value for '--limit'" in result.output
    ok = runner.invoke(app, ["records", "list", "--storage", url, "--limit", str(2**63 - 1)])
    assert ok.exit_code == 0, ok.output


def test_a_run_id_past_a_sql_integer_is_no_such_run(url: str) -> None:
    result = runner.invoke(app, ["records", "show", "99999999999999999999", "--storage", url])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "no run with id 99999999999999999999" in result.output


def test_json_export_names_each_runs_scheme_as_list_does(url: str) -> None:
    """`records export` json gives `pretraining` as `records list --json` does (it held only
    the configuration's stage)."""
    import json

    listed = runner.invoke(app, ["records", "list", "--storage", url, "--json"])
    exported = runner.invoke(app, ["records", "export", "-f", "json", "-o", "-", "--storage", url])
    assert listed.exit_code == exported.exit_code == 0, exported.stderr
    by_trial = {r["trial_number"]: r["pretraining"] for r in json.loads(listed.stdout)}
    assert by_trial == {n: scheme or "none" for n, (scheme, _) in TRIALS.items()}
    assert {r["trial_number"]: r["pretraining"] for r in json.loads(exported.stdout)} == by_trial
