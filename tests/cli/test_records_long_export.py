"""``taskgraph records export --format long``: the records as the long table bench reads."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from taskgraph.affinity.longtable import read_long_csv
from taskgraph.cli.app import app
from taskgraph.storage import open_repository
from taskgraph.trial import Cost, TrialConfig, TrialResult, TrialStatus

runner = CliRunner()

#: (auxiliaries, seed) -> the target's dev and test f1, and the auxiliaries' own dev f1
RUNS = {
    ((), 0): (0.50, 0.40),
    ((), 1): (0.54, 0.44),
    (("pos",), 0): (0.60, 0.50),
    (("pos",), 1): (0.62, 0.52),
    (("chunk",), 0): (0.45, 0.35),
    (("pos", "chunk"), 0): (0.70, 0.61),
}


def _add(repo, study: str, number: int, aux, seed: int, dev: float, test: float, **config):
    cfg = TrialConfig(target="ner", auxiliaries=aux, seed=seed, **config)
    scores = {"ner": {"dev": {"f1": dev, "accuracy": 0.9}, "test": {"f1": test}}}
    scores |= {t: {"dev": {"f1": 0.8}} for t in aux}
    result = TrialResult(
        status=TrialStatus.COMPLETE, scores=scores, objective=dev, cost=Cost(seconds=1.0)
    )
    repo.add_run_result(study=study, trial_number=number, config=cfg, result=result)


@pytest.fixture
def url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'records.db'}"
    with open_repository(url) as repo:
        for number, ((aux, seed), (dev, test)) in enumerate(RUNS.items()):
            _add(repo, "ner_aux", number, aux, seed, dev, test)
        repo.add_run_result(
            study="ner_aux", trial_number=99, config=TrialConfig(target="ner", auxiliaries=("x",)),
            result=TrialResult.failed("OOM"),
        )  # fmt: skip
    return url


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["records", "export", *args])
    return result.exit_code, result.stdout, result.stderr


def test_the_long_table_holds_each_task_sets_mean_per_split(url: str, tmp_path: Path) -> None:
    out = tmp_path / "long.csv"
    code, _, err = invoke("-f", "long", "-o", str(out), "--storage", url, "--metric", "f1")
    assert code == 0, err
    table = read_long_csv(out)
    assert table.get("ner", {"ner"}, "val").value == pytest.approx(0.52)  # dev -> val, 2 seeds
    assert table.get("ner", {"ner"}, "test").value == pytest.approx(0.42)
    assert table.get("ner", {"ner", "pos"}, "val").value == pytest.approx(0.61)
    assert table.get("ner", {"ner", "pos", "chunk"}, "test").value == pytest.approx(0.61)
    # Every scored task is a target; the failed run (no scores) is not a row.
    assert table.get("pos", {"ner", "pos"}, "val").value == pytest.approx(0.8)
    assert not any("x" in row.task_set for row in table)
    assert all(row.higher_is_better for row in table)
    assert err.strip() == f"wrote {len(table)} rows to {out}"
    # It is what bench reads: fit on val, scored on test.
    bench = runner.invoke(app, ["bench", "--table", str(out), "--seeds", "1", "--no-search"])
    assert bench.exit_code == 0, bench.stderr


def test_filters_and_the_default_metric(url: str) -> None:
    # No study objective names a metric here and the records have two: the error says so.
    code, out, err = invoke("-f", "long", "-o", "-", "--storage", url, "--target", "ner")
    assert code != 0 and out == ""
    assert err.startswith(
        "error: the records have metrics accuracy, f1 and their studies name no one objective "
        "metric: choose one with --metric NAME"
    ), err
    code, out, _ = invoke("-f", "long", "-o", "-", "--storage", url, "--target", "ner",
                          "--metric", "f1")  # fmt: skip
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "target,task_set,split,value,higher_is_better"
    # --target picks the runs whose target is ner: their auxiliaries' scores are rows too.
    assert len(lines) > 1 and all("ner" in line.split(",")[1].split("+") for line in lines[1:])
    assert any(line.startswith("pos,") for line in lines[1:])
    code, out, _ = invoke(
        "-f", "long", "-o", "-", "--storage", url, "--metric", "f1", "--task-set", "pos+ner"
    )
    assert code == 0
    assert sorted(line.split(",")[0] for line in out.splitlines()[1:]) == ["ner", "ner", "pos"]
    code, out, _ = invoke(
        "-f", "long", "-o", "-", "--storage", url, "--metric", "f1", "--contains", "chunk"
    )
    assert code == 0 and all("chunk" in line.split(",")[1] for line in out.splitlines()[1:])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--status", "failed"], "`--status` 'failed': a long table holds the scores of complete"),
        (["--status", "pruned"], "`--status` 'pruned': a long table holds the scores of complete"),
        (["--model-config", "abc"], "`--model-config`: a long table averages"),
        (["--metric", "all"], "`--metric` 'all' would average different metrics"),
        (
            ["--metric", "f9"],
            "`--metric` 'f9': the matching runs have no f9 scores; their metrics: accuracy, f1",
        ),
        (["--study", "nosuch"], "no study 'nosuch'"),
    ],
)
def test_what_a_long_table_cannot_hold_is_one_line(
    url: str, tmp_path: Path, args: list[str], message: str
) -> None:
    out = tmp_path / "long.csv"
    code, stdout, err = invoke("-f", "long", "-o", str(out), "--storage", url, *args)
    assert code == 2 and stdout == "" and err.count("\n") == 1, err
    assert message in err, err
    assert not out.exists()


def test_metric_is_for_the_long_format_only(url: str, tmp_path: Path) -> None:
    code, _, err = invoke("-o", str(tmp_path / "x.csv"), "--storage", url, "--metric", "f1")
    assert code != 0 and "`--metric` chooses the values of --format long" in err
    assert not (tmp_path / "x.csv").exists()


def test_a_task_set_trained_in_two_model_families_is_refused_unless_one_study_is_named(
    url: str,
) -> None:
    with open_repository(url) as repo:
        _add(repo, "long_inputs", 0, ("pos",), 0, 0.9, 0.8, max_length=256)
    code, _, err = invoke("-f", "long", "-o", "-", "--storage", url, "--metric", "f1")
    assert code != 0
    assert "ner in ner+pos was trained in 2 model families" in err and "--study" in err
    code, out, _ = invoke(
        "-f", "long", "-o", "-", "--storage", url, "--metric", "f1", "--study", "long_inputs"
    )
    assert code == 0 and "ner,ner+pos,val,0.9," in out


def test_the_default_metric_is_the_studys_objective(url: str) -> None:
    with open_repository(url) as repo:
        repo.ensure_study(
            "objective_named", spec={"objective": {"metric": "accuracy", "split": "dev"}}
        )
        _add(repo, "objective_named", 0, (), 0, 0.3, 0.2)
    code, out, err = invoke("-f", "long", "-o", "-", "--storage", url, "--study", "objective_named")
    assert code == 0, err
    assert out.splitlines()[1:] == ["ner,ner,val,0.9,1"]  # accuracy, not f1 (0.3)
