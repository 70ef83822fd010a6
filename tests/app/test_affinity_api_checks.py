"""The affinity API refuses what it would ignore or misread, and says what its numbers mix.

Each test is a finding of an audit: setfn's options given with another method, a target that
is no name, ``metric="all"`` over one task's loss and score, notes that ``affinity top`` left
out (model families, no pair gain for pairwise/hoa), the default-metric refusal naming other
targets' studies, ``GroupingReport.to_dict()``, "wrote FILE" on stdout, a docs snippet that
could not run.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from taskgraph.app.affinity import (
    fit_and_save,
    graph_report,
    grouping_report,
    load_records,
    recommend,
    recommendation_report,
)
from taskgraph.cli.app import app
from taskgraph.errors import ConfigError
from taskgraph.storage import open_repository
from taskgraph.testing import RunWriter


def _database(tmp_path: Path, write: Callable[[RunWriter], None]) -> str:
    tmp_path.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{tmp_path / 'records.db'}"
    with open_repository(url) as repo:
        write(RunWriter(repo))
    return url


def _acc(**values: float) -> dict[str, dict[str, float]]:
    return {task: {"accuracy": value} for task, value in values.items()}


def _three_tasks(runs: RunWriter) -> None:
    for seed in (0, 1):
        runs.add("a", (), _acc(a=0.50 + seed / 100), seed=seed)
        runs.add("b", (), _acc(b=0.70 + seed / 100), seed=seed)
        runs.add("c", (), _acc(c=0.60 + seed / 100), seed=seed)
        runs.add("a", ("b",), _acc(a=0.55 + seed / 100, b=0.72), seed=seed)
        runs.add("a", ("c",), _acc(a=0.48 + seed / 100, c=0.61), seed=seed)
        runs.add("b", ("c",), _acc(b=0.69 + seed / 100, c=0.62), seed=seed)


@pytest.fixture
def url(tmp_path: Path) -> str:
    return _database(tmp_path, _three_tasks)


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


# 1. setfn's options with another method: refused from Python as on the command line.


@pytest.mark.parametrize(
    ("given", "wording"),
    [
        ({"pooling": "sum"}, "`pooling` is an option of setfn, but method is 'pairwise'"),
        ({"pooling": "mean"}, "`pooling` is an option of setfn, but method is 'pairwise'"),
        ({"hyperprior": False}, "`hyperprior=False` is an option of setfn, but method is "),
        ({"hyperprior": True}, "`hyperprior=True` is an option of setfn, but method is "),
    ],
)
def test_setfn_options_with_another_method_are_refused_from_python(
    url: str, given: dict[str, Any], wording: str
) -> None:
    calls: list[Callable[[], object]] = [
        lambda: fit_and_save(storage=url, method="pairwise", **given),
        lambda: recommend("a", storage=url, method="pairwise", **given),
        lambda: recommendation_report("a", storage=url, method="pairwise", **given),
        lambda: grouping_report(2, storage=url, method="pairwise", **given),
        lambda: graph_report(storage=url, method="pairwise", **given),
    ]
    for call in calls:
        with pytest.raises(ConfigError, match=re.escape(wording)):
            call()
    with open_repository(url) as repo:  # the refused fit saved nothing
        assert not repo.affinity_edges()
    assert recommend("a", storage=url, method="pairwise")  # not given: pairwise runs
    assert recommend("a", storage=url, **given)  # and setfn takes them


# 2. A target that is no task name.


@pytest.mark.parametrize("target", [None, 3, ["a"]])
def test_a_target_that_is_no_name_is_refused_as_such(url: str, target: Any) -> None:
    for call in (recommend, recommendation_report):
        with pytest.raises(ConfigError, match=r"^`target` must be a name \(a string\), but got "):
            call(target, storage=url)


# 3. GroupingReport.to_dict() is what `affinity groups --json` prints.


def test_grouping_report_to_dict_is_what_groups_json_prints(url: str) -> None:
    report = grouping_report(2, storage=url, method="hoa")
    code, out, err = invoke(
        "affinity", "groups", "--budget", "2", "--storage", url, "--method", "hoa", "--json"
    )
    assert code == 0, err
    assert json.loads(json.dumps(report.to_dict())) == json.loads(out)
    assert set(report.to_dict()) == {
        "networks", "assignment", "total", "cost", "exact", "method", "scores", "notes",
        "network_details", "total_measured", "predicted_tasks",
    }  # fmt: skip


# 4. `metric="all"` never averages one task's loss with its score.


def _loss_and_score(runs: RunWriter) -> None:
    for seed in (0, 1):
        runs.add("a", (), {"a": {"score": 0.5, "loss": 2.0}}, seed=seed)
        runs.add("b", (), {"b": {"score": 0.7}}, seed=seed)
        runs.add("a", ("b",), {"a": {"score": 0.6}, "b": {"score": 0.7}}, seed=seed)


@pytest.mark.parametrize(
    "command",
    [
        ["top", "--target", "a"],
        ["groups", "--budget", "2"],
        ["graph", "--format", "json", "-o", "-"],
        ["fit"],
    ],
)
def test_metric_all_refuses_a_task_whose_metrics_go_both_ways(
    tmp_path: Path, command: list[str]
) -> None:
    url = _database(tmp_path, _loss_and_score)
    code, out, err = invoke("affinity", *command, "--storage", url, "--metric", "all")
    assert code != 0 and out == ""
    assert err.strip().count("\n") == 0
    assert err.startswith("error: --metric all would average the metrics of 'a', but higher is ")
    assert "better for score and lower for loss" in err and "--metric NAME" in err
    with pytest.raises(ConfigError, match="metric='all' would average the metrics of 'a'"):
        load_records(storage=url, metric="all")
    assert load_records(storage=url, metric="score")  # one metric: fine


# 5. `affinity top` says when its measured gains come from several model families.


def _two_families(runs: RunWriter) -> None:
    for encoder, shift in (("minilm", 0.0), ("tiny-bert", 0.3)):
        runs.add("a", (), _acc(a=0.50 + shift), encoder=encoder)
        runs.add("b", (), _acc(b=0.60 + shift), encoder=encoder)
        runs.add("a", ("b",), _acc(a=0.55 + shift, b=0.60 + shift), encoder=encoder)


def test_top_notes_that_its_gains_come_from_several_model_families(tmp_path: Path) -> None:
    url = _database(tmp_path, _two_families)
    report = recommendation_report("a", storage=url, method="hoa")
    (note,) = [n for n in report.notes if "model families" in n]
    assert note.startswith("the records come from 2 model families; the gains of 'a' are measured")
    code, _, err = invoke("affinity", "graph", "--storage", url, "--method", "hoa",
                          "--format", "json", "-o", "-")  # fmt: skip
    assert code == 0 and "note: the records come from 2 model families; each node's" in err
    one = _database(tmp_path / "one", _three_tasks)  # one family: no such note
    assert not any("model families" in n for n in recommendation_report("a", storage=one).notes)


# 6. The default-metric refusal names the target's studies and the metric each is read in.


def _studies_of_two_targets(runs: RunWriter) -> None:
    def study(name: str, target: str, metric: str | None, aux: str, values: tuple[float, ...]):
        objective = {"metric": metric, "split": "dev", "direction": "maximize"}
        spec = {"name": name, "target": target, "candidates": [aux], "objective": objective}
        runs.repo.ensure_study(name, spec=spec, target=target)
        scored = metric or "loss"
        alone, joint, other = values
        runs.add(target, (), {target: {scored: alone}}, study=name)
        runs.add(target, (aux,), {target: {scored: joint}, aux: {scored: other}}, study=name)

    study("a_acc", "a", "accuracy", "b", (0.5, 0.6, 0.7))
    study("a_f1", "a", "f1", "b", (0.4, 0.5, 0.6))
    study("a_table", "a", None, "b", (2.0, 1.8, 1.0))  # no objective metric: read in loss
    study("c_recall", "c", "recall", "b", (0.3, 0.35, 0.7))


def test_the_default_metric_refusal_names_the_targets_studies(tmp_path: Path) -> None:
    url = _database(tmp_path, _studies_of_two_targets)
    code, out, err = invoke("affinity", "top", "--target", "a", "--storage", url)
    assert code != 0 and out == "" and err.strip().count("\n") == 0
    assert (
        "('a_acc' optimises accuracy on dev; 'a_f1' optimises f1 on dev; 'a_table' names none, "
        "its records have loss)" in err
    )
    assert "c_recall" not in err and "--metric NAME" in err
    with pytest.raises(
        ConfigError, match="`target` 'a' is scored by studies with different objective metrics"
    ):
        recommend("a", storage=url)


# 7. pairwise and hoa have nothing to rank by without a single-auxiliary gain of the target.


def _only_a_triple_of_b(runs: RunWriter) -> None:
    for seed in (0, 1):
        runs.add("a", (), _acc(a=0.50 + seed / 100), seed=seed)
        runs.add("b", (), _acc(b=0.70 + seed / 100), seed=seed)
        runs.add("c", (), _acc(c=0.60 + seed / 100), seed=seed)
        runs.add("a", ("b",), _acc(a=0.55 + seed / 100), seed=seed)
        runs.add("b", ("a", "c"), _acc(b=0.75 + seed / 100), seed=seed)


@pytest.mark.parametrize("method", ["pairwise", "hoa"])
def test_pair_methods_note_a_target_without_pair_gains(tmp_path: Path, method: str) -> None:
    url = _database(tmp_path, _only_a_triple_of_b)
    code, _, err = invoke("affinity", "top", "--target", "b", "--storage", url, "--method", method)
    assert code == 0, err
    assert f"note: no gain of 'b' from a single auxiliary task is measured, and {method}" in err
    notes = recommendation_report("a", storage=url, method=method).notes
    assert not any("single auxiliary task" in n for n in notes)  # a has its pair with b
    notes = recommendation_report("b", storage=url).notes  # setfn reads the triple
    assert not any("single auxiliary task" in n for n in notes)


# 8. "wrote FILE" is a message: on stderr, as `records export` prints it.


def test_graph_says_what_it_wrote_on_stderr(url: str, tmp_path: Path) -> None:
    output = tmp_path / "g.graphml"
    code, out, err = invoke("affinity", "graph", "--storage", url, "--method", "hoa",
                            "--format", "graphml", "-o", str(output))  # fmt: skip
    assert code == 0 and output.is_file(), err
    assert out == "" and f"wrote {output}" in err


# 9. Every Python snippet of docs/affinity.md's "Recommendations and groupings" runs as written.


def _section_snippets(title: str) -> list[str]:
    text = (Path(__file__).parents[2] / "docs" / "affinity.md").read_text(encoding="utf-8")
    section = text.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)


def test_the_recommendations_snippets_run_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def ner_pos_chunk(runs: RunWriter) -> None:
        for seed in (0, 1):
            runs.add("ner", (), _acc(ner=0.50 + seed / 100), seed=seed)
            runs.add("pos", (), _acc(pos=0.90 + seed / 100), seed=seed)
            runs.add("chunk", (), _acc(chunk=0.80 + seed / 100), seed=seed)
            runs.add("ner", ("pos",), _acc(ner=0.53 + seed / 100, pos=0.91), seed=seed)
            runs.add("ner", ("chunk",), _acc(ner=0.52 + seed / 100, chunk=0.79), seed=seed)
            runs.add("pos", ("chunk",), _acc(pos=0.90, chunk=0.81 + seed / 100), seed=seed)

    monkeypatch.setenv("TASKGRAPH_STORAGE", _database(tmp_path, ner_pos_chunk))
    snippets = _section_snippets("Recommendations and groupings")
    assert snippets
    for snippet in snippets:
        exec(compile(snippet, "docs/affinity.md", "exec"), {})
