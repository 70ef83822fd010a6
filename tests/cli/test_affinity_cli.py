"""``taskgraph affinity``: JSON shapes, the records database and a long table as sources, bad input."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
from typer.testing import CliRunner

from taskgraph.affinity.longtable import LongRow, LongTable, write_long_csv
from taskgraph.app.affinity.fitting import default_pooling, fit_records
from taskgraph.cli.app import app
from taskgraph.runners.tabular import TabularEvaluator
from taskgraph.storage import open_repository
from taskgraph.trial import Objective, TrialConfig, TrialResult, TrialStatus

runner = CliRunner()
TASKS = ("a", "b", "c", "d")


def toy_table() -> LongTable:
    """Every subset of four tasks; each task's loss falls by its partners' mean effect."""
    rng = np.random.default_rng(0)
    effect = {(t, s): float(rng.normal(0, 0.05)) for t in TASKS for s in TASKS if s != t}
    rows = []
    for size in range(1, 5):
        for combo in itertools.combinations(TASKS, size):
            for t in combo:
                others = [s for s in combo if s != t]
                gain = float(np.mean([effect[(t, s)] for s in others])) if others else 0.0
                for split, shift in (("val", 0.0), ("test", 0.001)):
                    rows.append(
                        LongRow(t, frozenset(combo), split, 0.1 * (1 - gain) + shift, False)
                    )
    return LongTable(rows=rows, source="toy")


@pytest.fixture
def table_file(tmp_path: Path) -> Path:
    path = tmp_path / "toy.csv"
    write_long_csv(toy_table(), path)
    return path


@pytest.fixture
def storage_url(tmp_path: Path) -> str:
    """A SQLite records database filled by the tabular runner (a real study's writes)."""
    url = f"sqlite:///{tmp_path / 'records.db'}"
    evaluator = TabularEvaluator(toy_table(), split="val")
    with open_repository(url) as repo:
        for number, combo in enumerate(
            c for size in (1, 2, 3) for c in itertools.combinations(TASKS, size)
        ):
            config = TrialConfig(target=combo[0], auxiliaries=combo[1:],
                                 objective=Objective(metric="loss", split="dev", direction="minimize"))  # fmt: skip
            repo.add_run_result(
                study="toy", trial_number=number, config=config, result=evaluator.evaluate(config)
            )
    return url


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_top_json_shape_from_a_table(table_file: Path) -> None:
    code, out, _ = invoke(
        "affinity", "top", "--table", str(table_file), "--target", "a", "-k", "3", "--json"
    )
    assert code == 0
    report = json.loads(out)
    assert set(report) == {"target", "method", "gain_kind", "scored_by", "recommendations", "notes"}
    assert report["target"] == "a" and report["notes"] == []
    rows = report["recommendations"]
    assert len(rows) == 3
    for row in rows:
        assert set(row) == {
            "auxiliaries", "predicted_relative_gain", "predicted_relative_gain_std",
            "measured_relative_gain", "measured_absolute_gain", "evidence_runs",
        }  # fmt: skip
        assert isinstance(row["auxiliaries"], list) and isinstance(row["evidence_runs"], int)
    assert rows[0]["predicted_relative_gain"] >= rows[-1]["predicted_relative_gain"]


def test_fit_saves_edges_and_top_reads_the_database(storage_url: str) -> None:
    code, out, err = invoke("affinity", "fit", "--storage", storage_url, "--json")  # dev by default
    assert code == 0, err
    summary = json.loads(out)
    assert summary["saved"] is True and summary["edges"] == 12 and summary["method"] == "setfn"
    with open_repository(storage_url) as repo:
        edges = repo.affinity_edges(method="setfn")
    assert len(edges) == 12 and all(e.std is not None for e in edges)
    code, out, _ = invoke("affinity", "top", "--storage", storage_url, "--target", "b", "-k", "2",
                          "--method", "hoa", "--json")  # fmt: skip
    assert code == 0 and len(json.loads(out)["recommendations"]) == 2


def test_groups_json(table_file: Path) -> None:
    code, out, err = invoke(
        "affinity", "groups", "--table", str(table_file), "--budget", "2", "--json"
    )
    assert code == 0, err
    grouping = json.loads(out)
    assert grouping["cost"] <= 2 and set(grouping["assignment"]) == set(TASKS)
    assert grouping["exact"] is True and len(grouping["networks"]) <= 2


def test_groups_refuse_to_sum_scores_of_opposite_directions(tmp_path: Path) -> None:
    # a is an accuracy that training with b ruins; b is a loss that a barely lowers.  Summing
    # the raw numbers as one "lower is better" total served a from {a, b} (0.5 instead of 0.9).
    path = tmp_path / "mixed.csv"
    path.write_text(
        "target,task_set,split,value,higher_is_better\n"
        "a,a,val,0.9,1\na,a+b,val,0.5,1\nb,b,val,0.5,0\nb,a+b,val,0.49,0\n"
    )
    code, out, err = invoke(
        "affinity", "groups", "--table", str(path), "--budget", "2", "--method", "pairwise"
    )
    assert code != 0 and out == ""
    assert err.startswith(
        "error: `--tasks` mix higher-is-better scores ['a'] with lower-is-better scores ['b']"
    )
    assert err.strip().count("\n") == 0


@pytest.mark.parametrize("fmt", ["graphml", "json", "dot", "png"])
def test_graph_export(table_file: Path, tmp_path: Path, fmt: str) -> None:
    output = tmp_path / f"graph.{fmt}"
    code, out, err = invoke(
        "affinity", "graph", "--table", str(table_file), "--format", fmt, "-o", str(output)
    )
    assert code == 0, err
    # "wrote FILE" is a message, on stderr as `records export` prints it: stdout stays empty.
    assert output.is_file() and f"wrote {output}" in err and not out
    assert "warning" not in err
    if fmt == "graphml":
        assert nx.read_graphml(output).number_of_edges() == 12


@pytest.mark.parametrize("fmt", ["graphml", "json", "dot", "png"])
def test_graph_format_defaults_to_the_outputs_suffix(
    table_file: Path, tmp_path: Path, fmt: str
) -> None:
    # `-o g.png` without --format failed: "Missing option '--format'".
    output = tmp_path / f"graph.{fmt.upper()}"
    code, out, err = invoke(
        "affinity", "graph", "--table", str(table_file), "-o", str(output), "--method", "pairwise"
    )
    assert code == 0 and not out and "warning" not in err, err
    written = output.read_bytes()
    starts = {"graphml": b"<?xml", "json": b"{", "dot": b"digraph", "png": b"\x89PNG"}
    assert written.startswith(starts[fmt]), written[:20]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("g.svg", "error: `--output` '{out}' ends in .svg, which names no graph format: give "
         "`--format` (graphml, json, dot, png) or a file ending in .graphml, .json, .dot or .png"),
        ("graph", "error: `--output` '{out}' has no suffix: give `--format` (graphml, json, "
         "dot, png) or a file ending in .graphml, .json, .dot or .png"),
        ("-", "error: `--output -` (standard output) needs `--format` (graphml, json, dot, png)"),
    ],
)  # fmt: skip
def test_a_graph_output_that_names_no_format_needs_format(
    table_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    output = tmp_path / name if name != "-" else "-"
    code, out, err = invoke("affinity", "graph", "--table", str(table_file), "-o", str(output))
    assert (code, out, err) == (2, "", message.format(out=output) + "\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["toy.csv"]
    if name != "-":  # with --format, any name is fine
        code, _, err = invoke("affinity", "graph", "--table", str(table_file), "-o",
                              str(output), "--format", "json", "--method", "pairwise")  # fmt: skip
        assert code == 0 and "graph" in json.loads(output.read_text()), err


def test_a_graph_written_under_another_formats_suffix_is_warned_of(
    table_file: Path, tmp_path: Path
) -> None:
    output = tmp_path / "graph.json"
    code, _, err = invoke(
        "affinity", "graph", "--table", str(table_file), "--format", "png", "-o", str(output)
    )
    assert code == 0, err
    assert f"warning: `--output` {output} ends in .json, but `--format png` writes png" in err
    assert output.read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["top", "--table", "{missing}", "--target", "a"], "error: table file does not exist:"),
        (
            ["top", "--table", "{bad}", "--target", "a"],
            "error: {bad}:3: expected a number in 'value', got 'x'",
        ),
        (["top", "--table", "{table}", "--target", "zz"], "error: `--target` 'zz' has no records"),
        (
            ["top", "--table", "{table}", "--target", "a", "--method", "magic"],
            "error: unknown affinity estimator 'magic'; known:",
        ),
        (
            ["graph", "--table", "{table}", "--format", "svg", "-o", "{out}"],
            "error: `--format` must be one of",
        ),
        (["groups", "--table", "{table}", "--budget", "0"], "error: `--budget` must be > 0"),
        (
            ["graph", "--table", "{table}", "--format", "json", "-o", "{dir}"],
            "error: `--output` is a directory, not a file: {dir}",
        ),
        (
            ["top", "--table", "{pairs}", "--target", "a"],
            "error: no gains to fit: none of the 2 records' targets has a single-task baseline",
        ),
        (
            ["top", "--table", "{baselines}", "--target", "a"],
            "error: no gains to fit: the records are single-task baselines only",
        ),
        (
            ["top", "--table", "{huge}", "--target", "a"],
            "error: {huge}: expected values of magnitude at most 1e+100",
        ),
        (
            ["top", "--table", "{table}", "--target", "a", "--split", "dev"],
            "error: `--split` 'dev' is not a split of {table}; it has val, test",
        ),
        (
            ["top", "--table", "{table}", "--target", "a", "--method", "lookahead"],
            "error: the lookahead estimator needs lookahead-affinity matrices, and there are none",
        ),
        (
            ["graph", "--table", "{table}", "--format", "json", "-o", "-", "--method", "textemb"],
            "error: the textemb estimator needs task text embeddings: add --text-embeddings",
        ),
        (
            ["top", "--table", "{table}"],
            "error: taskgraph affinity top: Missing option '--target'. (see `taskgraph affinity "
            "top --help`)",
        ),
        (
            ["graph", "--table", "{table}", "--format", "json", "-o", "-", "--min-evidence", "-1"],
            "error: taskgraph affinity graph: Invalid value for '--min-evidence'",
        ),
        (
            ["top", "--table", "{table}", "--target", "a", "--metric", "accuracy"],
            "error: `--metric` 'accuracy' chooses among the metrics of a records database, but "
            "a --table holds one score per row and names no metric",
        ),
        (
            ["groups", "--table", "{table}", "--budget", "0.5"],
            "error: `--budget` 0.5 pays for no network (each costs 1)",
        ),
    ],
)
def test_bad_input_is_one_line(
    table_file: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    header = "target,task_set,split,value,higher_is_better\n"
    bad = tmp_path / "bad.csv"
    bad.write_text(f"{header}a,a,val,0.5,1\na,a+b,val,x,1\n")
    pairs = tmp_path / "pairs.csv"  # no baseline row
    pairs.write_text(f"{header}a,a+b,val,0.5,1\nb,a+b,val,0.6,1\n")
    baselines = tmp_path / "baselines.csv"  # nothing but baselines
    baselines.write_text(f"{header}a,a,val,0.5,1\nb,b,val,0.6,1\n")
    huge = tmp_path / "huge.csv"
    huge.write_text(f"{header}a,a,val,1e200,1\na,a+b,val,2e200,1\n")
    paths = {
        "pairs": str(pairs),
        "baselines": str(baselines),
        "huge": str(huge),
        "missing": str(tmp_path / "nope.csv"),
        "bad": str(bad),
        "table": str(table_file),
        "out": str(tmp_path / "g.svg"),
        "dir": str(tmp_path),
    }
    code, _, err = invoke("affinity", *(a.format(**paths) for a in args))
    assert code != 0
    assert err.strip().count("\n") == 0 and err.startswith(message.format(**paths))
    assert not (tmp_path / "g.svg").exists()


def test_missing_database_is_one_line(tmp_path: Path) -> None:
    code, _, err = invoke("affinity", "fit", "--storage", f"sqlite:///{tmp_path / 'none.db'}")
    assert code != 0 and err.startswith("error: ") and err.strip().count("\n") == 0


@pytest.mark.parametrize("command", ["fit", "top", "groups", "graph"])
def test_every_command_and_option_has_help(command: str) -> None:
    code, out, _ = invoke("affinity", command, "--help")
    assert code == 0
    for option in ("--method", "--storage", "--table"):
        assert option in out


@pytest.mark.slow
def test_text_embeddings_of_catalog_tasks(data_dir: Path) -> None:
    from taskgraph.affinity.similarity import embedding_similarity
    from taskgraph.models.task_embeddings import task_text_embeddings

    embeddings = task_text_embeddings(
        ["rte", "mrpc", "cola", "not_a_task"], data_dir=str(data_dir), limit=32
    )
    assert sorted(embeddings) == ["cola", "mrpc", "rte"]
    assert all(v.shape == (384,) and np.isfinite(v).all() for v in embeddings.values())
    kernel = embedding_similarity(["rte", "mrpc", "cola"], embeddings)
    assert kernel[0, 1] > kernel[0, 2]  # two sentence-pair tasks are closer than either to CoLA


# A user's first study (the README demo's measured relative gains): one target, seven gains.
FIRST_STUDY = {
    ("related",): 0.428,
    ("cls_related",): 0.428,
    ("unrelated",): 0.014,
    ("conflict",): -0.227,
    ("related", "unrelated"): 0.428,
    ("cls_related", "unrelated"): 0.362,
    ("cls_related", "related"): 0.026,
}


def test_top_from_one_small_study_ranks_the_harmful_task_last(tmp_path: Path) -> None:
    rows = [LongRow("target", frozenset({"target"}), "val", 0.7, True)]
    rows += [
        LongRow("target", frozenset({"target", *aux}), "val", 0.7 * (1 + g), True)
        for aux, g in FIRST_STUDY.items()
    ]
    path = tmp_path / "first.csv"
    write_long_csv(LongTable(rows=rows, source="first"), path)

    def ranking(*extra: str) -> list[dict[str, object]]:
        code, out, err = invoke(
            "affinity",
            "top",
            "--table",
            str(path),
            "--target",
            "target",
            "-k",
            "10",
            "--max-size",
            "2",
            "--json",
            *extra,
        )
        assert code == 0, err
        rows: list[dict[str, object]] = json.loads(out)["recommendations"]
        return rows

    shown = ranking()  # the default: setfn with its weak hyperprior
    assert len(shown) == 10
    harmful = [r["predicted_relative_gain"] for r in shown if "conflict" in r["auxiliaries"]]
    helpful = [
        r["predicted_relative_gain"]
        for r in shown
        if set(r["auxiliaries"]) <= {"related", "cls_related"}
    ]
    assert harmful and helpful and max(harmful) < min(helpful)
    assert (
        len({round(r["predicted_relative_gain"], 6) for r in shown}) == 10
    )  # not one value for every set
    # Plain evidence maximisation on seven gains predicts every pair alike (what the option avoids).
    plain = ranking("--no-hyperprior")
    pairs = [r["predicted_relative_gain"] for r in plain if len(r["auxiliaries"]) == 2]
    assert len(pairs) > 1 and max(pairs) - min(pairs) < 1e-5  # (bma's mixture moves the 7th digit)
    # --pooling reaches setfn: summed members' effects move the pairs' predictions, not the singles'.
    summed = {
        tuple(r["auxiliaries"]): r["predicted_relative_gain"] for r in ranking("--pooling", "sum")
    }
    mean = {tuple(r["auxiliaries"]): r["predicted_relative_gain"] for r in shown}
    both = [k for k in summed if k in mean and len(k) == 2]
    assert both and any(abs(summed[k] - mean[k]) > 1e-6 for k in both)
    code, out, err = invoke(
        "affinity", "top", "--table", str(path), "--target", "target", "--pooling", "max"
    )
    assert code != 0 and out == ""
    assert err.strip() == "error: `--pooling` must be mean, sum, auto or bma, but got 'max'"


# Two runs of an NER-like study scored on every metric (the case: 14 metric records for
# 2 runs, a baseline that read 0.461 against a true F1 of 0.354).
NER_SCORES = {
    ("ner",): {"f1": 0.354, "precision": 0.40, "recall": 0.32, "accuracy": 0.90, "f1_PER": 0.30},
    ("ner", "pos"): {
        "f1": 0.300,
        "precision": 0.45,
        "recall": 0.25,
        "accuracy": 0.92,
        "f1_PER": 0.31,
    },
}


def _ner_study(url: str, name: str, metric: str) -> None:
    objective = {"metric": metric, "split": "dev", "direction": "maximize"}
    with open_repository(url) as repo:
        repo.ensure_study(name, spec={"name": name, "target": "ner", "objective": objective},
                          target="ner")  # fmt: skip
        for number, (task_set, scores) in enumerate(NER_SCORES.items()):
            config = TrialConfig(
                target="ner", auxiliaries=task_set[1:], objective=Objective(**objective)
            )
            result = TrialResult(
                status=TrialStatus.COMPLETE,
                scores={
                    "ner": {"dev": dict(scores), "test": {k: v - 0.01 for k, v in scores.items()}}
                },
                objective=scores[metric],
            )
            repo.add_run_result(study=name, trial_number=number, config=config, result=result)


def test_top_and_graph_use_the_objective_metric_and_count_runs(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ner.db'}"
    _ner_study(url, "ner-f1", "f1")
    code, out, err = invoke("affinity", "top", "--storage", url, "--target", "ner", "--json",
                            "--method", "hoa")  # fmt: skip
    assert code == 0, err
    (row,) = json.loads(out)["recommendations"]
    assert row["measured_absolute_gain"] == pytest.approx(0.300 - 0.354)  # F1 on dev, alone
    assert row["measured_relative_gain"] == pytest.approx((0.300 - 0.354) / 0.354)
    assert row["predicted_relative_gain"] == pytest.approx(row["measured_relative_gain"])
    assert row["evidence_runs"] == 1  # one run with pos, not one record per metric and split
    graph_file = tmp_path / "g.json"
    code, _, err = invoke("affinity", "graph", "--storage", url, "--format", "json",
                          "-o", str(graph_file), "--method", "hoa")  # fmt: skip
    assert code == 0, err
    graph = nx.node_link_graph(json.loads(graph_file.read_text()), edges="edges")
    assert graph.nodes["ner"]["baseline"] == pytest.approx(0.354)
    assert graph.graph["metric"] == "f1" and graph.graph["split"] == "dev"
    assert graph.edges["pos", "ner"]["evidence_runs"] == 1
    # A named metric replaces the objective's; "all" mixes them only when asked.
    code, out, _ = invoke("affinity", "top", "--storage", url, "--target", "ner", "--json",
                          "--method", "hoa", "--metric", "accuracy")  # fmt: skip
    assert json.loads(out)["recommendations"][0]["measured_absolute_gain"] == pytest.approx(0.02)
    code, out, _ = invoke("affinity", "top", "--storage", url, "--target", "ner", "--json",
                          "--method", "hoa", "--metric", "all")  # fmt: skip
    assert code == 0 and json.loads(out)["recommendations"][0]["evidence_runs"] == 1


def test_records_of_studies_with_different_objectives_are_not_mixed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ner.db'}"
    _ner_study(url, "ner-f1", "f1")
    _ner_study(url, "ner-acc", "accuracy")
    code, _, err = invoke("affinity", "top", "--storage", url, "--target", "ner")
    assert code != 0 and err.startswith("error: ")
    assert "'ner-acc' optimises accuracy on dev" in err and "'ner-f1' optimises f1 on dev" in err
    assert "--metric" in err
    code, out, err = invoke("affinity", "top", "--storage", url, "--target", "ner", "--json",
                            "--method", "hoa", "--metric", "f1")  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["recommendations"][0]["evidence_runs"] == 2  # one run in each study


def test_top_and_fit_print_what_the_python_api_returns(storage_url: str) -> None:
    """`affinity top --json` is `taskgraph.recommendation_report(...).to_dict()`; `affinity fit
    --json` is `taskgraph.fit_and_save(...)`: the CLI composes nothing of its own."""
    import taskgraph

    code, out, err = invoke("affinity", "top", "--storage", storage_url, "--target", "b", "-k",
                            "3", "--method", "hoa", "--json")  # fmt: skip
    assert code == 0, err
    report = taskgraph.recommendation_report("b", storage=storage_url, k=3, method="hoa")
    assert json.loads(out) == json.loads(json.dumps(report.to_dict()))
    assert json.loads(out)["recommendations"] == json.loads(json.dumps(report.to_rows()))
    assert report.scored_by == "loss on dev" and report.gain_kind == "relative"
    assert [r.auxiliaries for r in report.recommendations] == [
        r.auxiliaries for r in taskgraph.recommend("b", storage=storage_url, k=3, method="hoa")
    ]
    measured = [a for a in report.measured_absolute if a is not None]
    assert measured and all(np.isfinite(measured))

    code, out, err = invoke("affinity", "fit", "--storage", storage_url, "--method", "hoa",
                            "--json")  # fmt: skip
    assert code == 0, err
    summary = taskgraph.fit_and_save(storage=storage_url, method="hoa")
    assert json.loads(out) == json.loads(json.dumps(summary))
    assert summary["saved"] is True and summary["edges"] == 12


def test_each_affinity_command_opens_the_database_once(
    storage_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # fit reads records, reads lookahead matrices and saves edges: one connection for all
    # three (three round trips to a remote PostgreSQL before).
    import taskgraph.storage as storage

    opened: list[str] = []
    real = storage.open_repository

    def counting(url: str, **kwargs: object) -> object:
        opened.append(url)
        return real(url, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(storage, "open_repository", counting)
    for command in (
        ["fit"],
        ["top", "--target", "b"],
        ["groups", "--budget", "2"],
        ["graph", "--format", "json", "--output", "-"],
    ):
        opened.clear()
        code, _, err = invoke("affinity", *command, "--storage", storage_url)
        assert code == 0, (command, err)
        assert opened == [storage_url], command


def test_a_split_or_metric_that_matches_no_record_is_named(storage_url: str) -> None:
    for option, value in (("--metric", "f1"), ("--split", "train")):
        code, out, err = invoke(
            "affinity", "top", "--target", "a", option, value, "--storage", storage_url
        )
        assert code != 0 and out == ""
        assert err.strip() == (
            f"error: no score records with {option} {value!r}; the records have splits dev, "
            "test and metrics loss"
        )


def test_top_for_a_target_without_a_baseline_says_it_is_a_cold_start(tmp_path: Path) -> None:
    path = tmp_path / "partial.csv"
    rows = [
        r
        for r in toy_table()
        if r.split == "val" and not (r.target == "d" and len(r.task_set) == 1)
    ]
    write_long_csv(LongTable(rows=rows), path)
    code, _, err = invoke("affinity", "top", "--table", str(path), "--target", "d", "-k", "2")
    assert code == 0, err
    cold = (
        "'d' has no single-task baseline among the records, so none of its gains is "
        "measured: the predictions come from the other targets' records (cold start)"
    )
    assert err.strip() == f"note: {cold}"
    # --json keeps the note (it was dropped) and still prints it on stderr.
    code, out, err = invoke(
        "affinity", "top", "--table", str(path), "--target", "d", "-k", "2", "--json"
    )
    assert code == 0, err
    assert json.loads(out)["notes"] == [cold] and err.strip() == f"note: {cold}"
    code, _, err = invoke("affinity", "top", "--table", str(path), "--target", "a", "-k", "2")
    assert code == 0 and "note:" not in err


def test_top_notes_records_of_a_family_without_the_targets_baseline(tmp_path: Path) -> None:
    """A study that searched the target's example cap has trials of a second model family,
    whose baseline was never trained: their records cannot give gains, and `top` says so."""
    from taskgraph.trial import Cost, MixingConfig

    url = f"sqlite:///{tmp_path / 'families.db'}"
    capped = MixingConfig(max_examples={"a": 50})
    runs = [  # (auxiliaries, mixing, accuracy of a)
        ((), MixingConfig(), 0.50), (("b",), MixingConfig(), 0.60), (("c",), MixingConfig(), 0.45),
        (("b",), capped, 0.55), (("c",), capped, 0.40),
    ]  # fmt: skip
    with open_repository(url) as repo:
        for number, (auxiliaries, mixing, value) in enumerate(runs):
            config = TrialConfig(target="a", auxiliaries=auxiliaries, mixing=mixing)
            scores = {t: {"dev": {"accuracy": value}} for t in config.task_set}
            result = TrialResult(
                status=TrialStatus.COMPLETE, objective=value, scores=scores, cost=Cost()
            )
            repo.add_run_result(study="s", trial_number=number, config=config, result=result)
    code, out, err = invoke(
        "affinity", "top", "--target", "a", "--method", "pairwise", "--storage", url
    )
    assert code == 0, err
    assert err.strip().startswith(
        "note: 2 of 'a''s records are of a model family without a single-task baseline of 'a'"
    )
    assert "b " in out and "c " in out


def test_a_zero_baseline_leaves_out_that_task_not_the_whole_database(tmp_path: Path) -> None:
    """A task whose F1 is 0 alone made every command fail, for any target, with a gain kind
    no command lets you choose."""
    path = tmp_path / "zero.csv"
    rows = [r for r in toy_table() if r.split == "val" and r.target != "d"]
    rows += [
        LongRow("d", frozenset({"d"}), "val", 0.0, True),
        LongRow("d", frozenset({"d", "a"}), "val", 0.2, True),
    ]
    write_long_csv(LongTable(rows=rows), path)
    note = (
        "note: 'd' has a single-task score of 0 (score on val), so its gains relative to it are "
        "undefined and left out; the other targets' gains are unaffected"
    )
    code, out, err = invoke("affinity", "top", "--table", str(path), "--target", "a", "--json")
    assert code == 0, err
    assert json.loads(out)["recommendations"] and err.strip() == note
    code, _, err = invoke("affinity", "graph", "--table", str(path), "--format", "json", "-o", "-")
    assert code == 0 and err.strip() == note
    code, out, err = invoke("affinity", "top", "--table", str(path), "--target", "d")
    assert code != 0 and out == "" and err.strip().count("\n") == 0
    assert err.startswith(
        "error: `--target` 'd' has a single-task score of 0 (score on val), so its gains "
        "relative to that baseline are undefined"
    )


def _two_family_database(url: str) -> None:
    """The audit's fam.db: family minilm (a 0.50, b 0.80, a with b 0.55) with two seeds; family
    tiny-bert only trained each task alone (0.90), a stronger model with fewer records."""
    number = 0

    def run(target: str, aux: tuple[str, ...], encoder: str, seed: int, scores: dict) -> None:
        nonlocal number
        config = TrialConfig(target=target, auxiliaries=aux, encoder=encoder, seed=seed)
        result = TrialResult(status=TrialStatus.COMPLETE, objective=scores[target],
                             scores={t: {"dev": {"accuracy": v}} for t, v in scores.items()})  # fmt: skip
        repo.add_run_result(study="fam", trial_number=number, config=config, result=result)
        number += 1

    with open_repository(url) as repo:
        for seed in (0, 1):
            run("a", (), "minilm", seed, {"a": 0.50})
            run("b", (), "minilm", seed, {"b": 0.80})
            run("a", ("b",), "minilm", seed, {"a": 0.55, "b": 0.80})
            run("a", (), "tiny-bert", seed, {"a": 0.90})
            run("b", (), "tiny-bert", seed, {"b": 0.90})


def test_groups_and_graph_compare_scores_within_one_model_family(tmp_path: Path) -> None:
    """Averaged over families, `groups --budget 2` served a at 0.70 and b at 0.85 (total 1.55),
    scores no model reached; the family with the most records is used, and a note says so."""
    url = f"sqlite:///{tmp_path / 'fam.db'}"
    _two_family_database(url)
    code, out, err = invoke("affinity", "groups", "--budget", "2", "--storage", url,
                            "--method", "hoa", "--json")  # fmt: skip
    assert code == 0, err
    grouping = json.loads(out)
    minilm = {("a",): 0.50, ("b",): 0.80, ("a", "b"): {"a": 0.55, "b": 0.80}}
    best = max(minilm[("a",)] + minilm[("b",)], sum(minilm[("a", "b")].values()))
    assert grouping["total"] == pytest.approx(best)
    assert grouping["scores"] == {"a": pytest.approx(0.55), "b": pytest.approx(0.80)}
    (note,) = grouping["notes"]
    assert note.startswith("the records of these tasks come from 2 model families")
    assert "(8 of 12 records" in note and err.strip() == f"note: {note}"
    code, out, err = invoke("affinity", "graph", "--storage", url, "--method", "hoa",
                            "--format", "json", "-o", "-")  # fmt: skip
    assert code == 0, err
    graph = nx.node_link_graph(json.loads(out), edges="edges")
    assert graph.nodes["a"]["baseline"] == pytest.approx(0.50)
    assert graph.nodes["b"]["baseline"] == pytest.approx(0.80)
    assert err.startswith("note: the records come from 2 model families")


def test_one_seed_run_by_several_studies_is_not_a_certain_measurement(tmp_path: Path) -> None:
    """The audit's std.db: tabular studies of one table each ran shared pairs with seed 0.
    Counted as independent seeds, the identical records gave pair errors of 0, and the
    pairwise estimator's typical error was 0: every edge claimed certainty."""
    url = f"sqlite:///{tmp_path / 'std.db'}"
    evaluator = TabularEvaluator(toy_table(), split="val")
    objective = Objective(metric="loss", split="dev", direction="minimize")
    with open_repository(url) as repo:
        for study, target in (("std_a", "a"), ("std_b", "b")):
            for number, aux in enumerate([(), *((s,) for s in TASKS if s != target)]):
                config = TrialConfig(target=target, auxiliaries=aux, objective=objective)
                repo.add_run_result(study=study, trial_number=number, config=config,
                                    result=evaluator.evaluate(config))  # fmt: skip
    code, out, err = invoke("affinity", "graph", "--storage", url, "--method", "pairwise",
                            "--format", "json", "-o", "-")  # fmt: skip
    assert code == 0, err
    edges = json.loads(out)["edges"]
    assert {(e["source"], e["target"]) for e in edges} >= {("b", "a"), ("a", "b")}
    assert all(e["predicted_relative_gain_std"] > 0 for e in edges)


def test_textemb_without_any_catalog_task_says_why(table_file: Path) -> None:
    code, out, err = invoke("affinity", "top", "--table", str(table_file), "--target", "a",
                            "--method", "textemb", "--text-embeddings")  # fmt: skip
    assert code != 0 and out == "" and err.strip().count("\n") == 0
    assert err.startswith(
        "error: --text-embeddings found no task text: it embeds the training text of catalog "
        "tasks whose data is in the data directory, and none of the records' 4 tasks (a, b, c, "
        "d) is one"
    )


def test_setfn_refuses_text_embeddings_without_any_catalog_task_as_textemb_does(
    table_file: Path,
) -> None:
    """Fitted without the embeddings asked for, setfn's predictions were silently those of a
    run without the option."""
    code, out, err = invoke("affinity", "top", "--table", str(table_file), "--target", "a",
                            "--text-embeddings")  # fmt: skip
    assert code == 2 and out == "" and err.strip().count("\n") == 0
    assert err.startswith("error: --text-embeddings found no task text: ")
    assert err.strip().endswith("leave it out to fit --method setfn on the gains alone")


WITHOUT_BASELINE = (
    "targets without a single-task baseline (a task set of the target alone) have no measured "
    "gains, so "
)


@pytest.fixture
def no_ab_baseline(tmp_path: Path) -> Path:
    """The toy table without the single-task rows of targets a and b."""
    rows = [r for r in toy_table() if not (r.task_set == {r.target} and r.target in "ab")]
    path = tmp_path / "no_ab_baseline.csv"
    write_long_csv(LongTable(rows=rows), path)
    return path


def test_groups_name_the_targets_left_out_for_want_of_a_baseline(no_ab_baseline: Path) -> None:
    """Targets without a single-task row were dropped from the grouping with no word why."""
    code, out, err = invoke("affinity", "groups", "--table", str(no_ab_baseline), "--budget",
                            "2", "--json")  # fmt: skip
    assert code == 0, err
    report = json.loads(out)
    assert set(report["assignment"]) == {"c", "d"}
    assert report["notes"] == [
        f"{WITHOUT_BASELINE}the grouping leaves them out: 'a', 'b'; a score of each task "
        "trained alone would include them (a study with it as the target trains one; a table "
        "needs its row of the task alone)"
    ]
    code, out, err = invoke("affinity", "groups", "--table", str(no_ab_baseline), "--budget",
                            "1", "--tasks", "c,d", "--json")  # fmt: skip
    assert code == 0 and json.loads(out)["notes"] == []  # the tasks named have baselines


def test_graph_names_the_targets_without_incoming_edges_for_want_of_a_baseline(
    no_ab_baseline: Path,
) -> None:
    code, out, err = invoke("affinity", "graph", "--table", str(no_ab_baseline), "--format",
                            "json", "-o", "-")  # fmt: skip
    assert code == 0, err
    assert {e["target"] for e in json.loads(out)["edges"]} == {"c", "d"}
    assert f"note: {WITHOUT_BASELINE}no edge points to them: 'a', 'b'; " in err


def test_groups_say_the_default_max_size_is_why_a_budget_is_infeasible(tmp_path: Path) -> None:
    tasks = [f"t{i:02d}" for i in range(12)]
    rows = [LongRow(t, frozenset({t}), "val", 0.5, True) for t in tasks]
    rows += [
        LongRow(t, frozenset(pair), "val", 0.5 + 0.001 * i, True)
        for i, pair in enumerate(itertools.combinations(tasks, 2)) for t in pair
    ]  # fmt: skip
    path = tmp_path / "twelve.csv"
    write_long_csv(LongTable(rows=rows), path)
    code, out, err = invoke("affinity", "groups", "--table", str(path), "--budget", "3",
                            "--method", "hoa")  # fmt: skip
    assert code != 0 and out == "" and err.strip().count("\n") == 0
    assert err.strip() == (
        "error: no grouping of 12 tasks fits budget 3: 3 networks of at most 3 tasks "
        "(--max-size defaults to 3 above 10 tasks) serve at most 9; raise --max-size to 4 or "
        "--budget to 4"
    )
    code, out, err = invoke("affinity", "groups", "--table", str(path), "--budget", "3",
                            "--method", "hoa", "--max-size", "4", "--json")  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["cost"] <= 3


def _undecided_table(noise: float) -> LongTable:
    """Every subset of four tasks; gains halfway between the partners' mean and sum effects, noisy."""
    rng = np.random.default_rng(1)
    effect = {(t, s): float(rng.normal(0, 0.05)) for t in TASKS for s in TASKS if s != t}
    rows = []
    for size in range(1, 5):
        for combo in itertools.combinations(TASKS, size):
            for t in combo:
                parts = [effect[(t, s)] for s in combo if s != t]
                gain = 0.5 * (np.mean(parts) + np.sum(parts)) if parts else 0.0
                value = 0.5 * (1 + gain + (rng.normal(0, noise) if parts else 0.0))
                rows.append(LongRow(t, frozenset(combo), "val", float(value), True))
    return LongTable(rows=rows, source="undecided")


def test_fit_pools_by_the_hyperpriors_default_and_refuses_an_empty_pooling(
    tmp_path: Path,
) -> None:
    # Plain evidence maximisation (as the benchmarks fit) averages both poolings by default
    # (bma); with the hyperprior, the command line's default, bma was not better: mean.
    path = tmp_path / "undecided.csv"
    write_long_csv(_undecided_table(noise=0.01), path)
    code, out, err = invoke("affinity", "fit", "--table", str(path), "--json", "--no-hyperprior")
    assert code == 0, err
    fitted = json.loads(out)
    assert fitted["pooling"] == "bma"
    assert set(fitted["pooling_weights"]) == {"mean", "sum"}
    assert sum(fitted["pooling_weights"].values()) == pytest.approx(1.0, abs=1e-5)
    code, out, err = invoke("affinity", "fit", "--table", str(path), "--json")
    assert code == 0 and json.loads(out)["pooling_weights"] == {"mean": 1.0}, err
    code, out, err = invoke("affinity", "fit", "--table", str(path), "--json", "--pooling", "bma")
    assert code == 0 and set(json.loads(out)["pooling_weights"]) == {"mean", "sum"}, err
    code, out, err = invoke(
        "affinity", "top", "--table", str(path), "--target", "a", "--pooling", ""
    )
    assert (code, out) == (2, "")
    assert err.strip() == "error: `--pooling` must be mean, sum, auto or bma, but got ''"
    # The library's defaults are the command's.
    records = _undecided_table(noise=0.01).to_records(split="val")
    plain = fit_records("setfn", records, lookahead=[], embeddings={}, hyperprior=False)
    assert plain.describe()["pooling_weights"] == fitted["pooling_weights"]
    assert (
        fit_records("setfn", records, lookahead=[], embeddings={}).describe()["pooling"] == "mean"
    )
    assert (default_pooling(True), default_pooling(False)) == ("mean", "bma")
