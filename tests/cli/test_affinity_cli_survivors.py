"""``taskgraph affinity`` (taskgraph/cli/affinity.py): what the commands print and pass on,
where a mutation audit found the other tests silent.

Pinned: ``fit``'s text lines (setfn's ``tau`` named by term with ``:g`` values, other dicts as
``key value`` pairs); an unknown ``--method`` named before ``--text-embeddings`` is judged;
the options ``fit``, ``groups`` and ``graph`` hand to the library (``--text-embeddings``, and
``--tasks`` stripped of blanks), ``top``'s default ``-k`` of 5 and ``groups``' default method;
``top``'s rows (a signed predicted gain, a measured gain of 0 shown as ``+0.0000``, the absolute
gain in its own column, "predicted" for a method that is not lookahead) and its title (the
scores compared, what each method's number is, a plug-in's fallback); ``graph``'s warning for
an upper-case suffix that names another format.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import networkx as nx
import pytest
from typer.testing import CliRunner

import taskgraph.cli.affinity as cli_affinity
from taskgraph.affinity.grouping import Grouping
from taskgraph.affinity.recommend import Recommendation
from taskgraph.app.affinity.graph import GraphReport
from taskgraph.app.affinity.grouping import GroupingReport
from taskgraph.app.affinity.recommendations import RecommendationReport
from taskgraph.cli.app import app

runner = CliRunner()


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def table_file(tmp_path: Path) -> Path:
    """A long table of every set of three tasks (lower is better), each ran once."""
    lines = ["target,task_set,split,value,higher_is_better"]
    for combo in ("a", "b", "c", "a+b", "a+c", "b+c", "a+b+c"):
        for target in combo.split("+"):
            value = 0.5 - 0.01 * len(combo) + 0.003 * "abc".index(target)
            lines.append(f"{target},{combo},val,{value:.4f},0")
    path = tmp_path / "toy.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


# --- fit -------------------------------------------------------------------------------------


def test_fit_prints_setfn_tau_by_term_and_other_dicts_as_pairs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    summary = {
        "method": "setfn",
        "pooling_weights": {"mean": 0.25, "sum": 0.75},
        "tau": {"a": 0.5, "b": 0.25, "d": 1.512338, "c": 0.002489},
        "saved": False,
    }
    monkeypatch.setattr(cli_affinity, "fit_and_save", lambda **kwargs: summary)
    code, out, err = invoke("affinity", "fit")
    assert code == 0, err
    assert out.splitlines() == [
        "method: setfn",
        "pooling_weights: mean 0.25, sum 0.75",
        "tau: target offset (a) 0.5, source effect (b) 0.25, target-specific effect (d) "
        "1.51234, set size (c) 0.002489",
        "saved: False",
    ]


def test_an_unknown_method_is_named_before_text_embeddings_are_judged(table_file: Path) -> None:
    code, out, err = invoke(
        "affinity", "fit", "--table", str(table_file), "--method", "nope", "--text-embeddings"
    )
    assert code == 2 and out == ""
    assert err.startswith("error: unknown affinity estimator 'nope'; known: hoa, lookahead,")


# --- what each command hands to the library ----------------------------------------------


def _report(**fields: Any) -> RecommendationReport:
    defaults: dict[str, Any] = {
        "target": "a",
        "method": "setfn",
        "gain_kind": "relative",
        "scored_by": "loss on val",
        "recommendations": (),
        "measured_absolute": (),
    }
    return RecommendationReport(**{**defaults, **fields})


def _grouping_report() -> GroupingReport:
    ab, c = frozenset({"a", "b"}), frozenset({"c"})
    grouping = Grouping(
        networks=(ab, c),
        assignment={"a": ab, "b": ab, "c": c},
        total=0.123456789,
        cost=2.0,
        exact=True,
        method="milp",
    )
    scores = {ab: {"a": 0.1, "b": 0.2}, c: {"c": 0.3}}
    return GroupingReport(grouping=grouping, scores=scores, measured=scores)


SETFN_OPTIONS = ("--split", "val", "--metric", "loss", "--no-hyperprior", "--pooling", "sum")
SETFN_KWARGS = {"split": "val", "metric": "loss", "hyperprior": False, "pooling": "sum"}


def test_top_lists_five_sets_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[int] = []

    def report(*args: Any, k: int, **kwargs: Any) -> RecommendationReport:
        seen.append(k)
        return _report()

    monkeypatch.setattr(cli_affinity, "recommendation_report", report)
    assert invoke("affinity", "top", "--target", "a")[0] == 0
    assert seen == [5]


def test_groups_passes_every_option_on(monkeypatch: pytest.MonkeyPatch, table_file: Path) -> None:
    calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def report(*args: Any, **kwargs: Any) -> GroupingReport:
        calls.append((args, kwargs))
        return _grouping_report()

    monkeypatch.setattr(cli_affinity, "grouping_report", report)
    code, _, err = invoke("affinity", "groups", "--budget", "2.5", "--tasks", " a, b ,,c",
                          "--max-size", "2", "--table", str(table_file), "--text-embeddings",
                          *SETFN_OPTIONS)  # fmt: skip
    assert code == 0, err
    assert calls == [
        ((2.5,), {"tasks": ["a", "b", "c"], "storage": None, "table": table_file, "max_size": 2,
                  "method": "setfn", "text_embeddings": True, **SETFN_KWARGS}),
    ]  # fmt: skip


def test_fit_and_graph_pass_every_option_on(
    monkeypatch: pytest.MonkeyPatch, table_file: Path, tmp_path: Path
) -> None:
    calls: list[dict[str, Any]] = []

    def fit(**kwargs: Any) -> dict[str, Any]:
        calls.append(kwargs)
        return {"saved": False}

    def graph(**kwargs: Any) -> GraphReport:
        calls.append(kwargs)
        return GraphReport(graph=nx.DiGraph())

    monkeypatch.setattr(cli_affinity, "fit_and_save", fit)
    monkeypatch.setattr(cli_affinity, "graph_report", graph)
    common = ("--table", str(table_file), "--text-embeddings", *SETFN_OPTIONS)
    assert invoke("affinity", "fit", *common)[0] == 0
    code, _, err = invoke("affinity", "graph", "-o", str(tmp_path / "g.json"),
                          "--min-evidence", "2", *common)  # fmt: skip
    assert code == 0, err
    expected = {"method": "setfn", "storage": None, "table": table_file,
                "text_embeddings": True, **SETFN_KWARGS}  # fmt: skip
    assert calls == [expected, {**expected, "min_evidence": 2}]


# --- top: the table --------------------------------------------------------------------------


@pytest.fixture
def shown(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """What ``top`` prints as a table: its rows, columns and title, as handed to ``emit_rows``."""
    calls: list[dict[str, Any]] = []

    def emit_rows(rows: list[dict[str, Any]], **kwargs: Any) -> None:
        calls.append({"rows": rows, **kwargs})

    monkeypatch.setattr(cli_affinity, "emit_rows", emit_rows)
    return calls


def _top(monkeypatch: pytest.MonkeyPatch, report: RecommendationReport, *args: str) -> None:
    monkeypatch.setattr(cli_affinity, "recommendation_report", lambda *a, **kw: report)
    code, _, err = invoke("affinity", "top", "--target", "a", *args)
    assert code == 0, err


def test_top_rows_sign_a_measured_gain_of_zero_and_show_the_absolute_one(
    monkeypatch: pytest.MonkeyPatch, shown: list[dict[str, Any]]
) -> None:
    recs = (
        Recommendation(("b", "c"), 0.01234, 0.002, 3, measured_gain=0.0),
        Recommendation(("d",), -0.5, 0.25, 1, measured_gain=None),
    )
    _top(monkeypatch, _report(recommendations=recs, measured_absolute=(-0.125, None)))
    [call] = shown
    assert call["columns"] == [
        "auxiliaries", "predicted relative gain ± std", "measured relative gain",
        "measured absolute gain", "evidence runs",
    ]  # fmt: skip
    assert call["rows"] == [
        {"auxiliaries": "b + c", "predicted relative gain ± std": "+0.0123 ± 0.0020",
         "measured relative gain": "+0.0000", "measured absolute gain": "-0.1250",
         "evidence runs": 3},
        {"auxiliaries": "d", "predicted relative gain ± std": "-0.5000 ± 0.2500",
         "measured relative gain": "", "measured absolute gain": "", "evidence runs": 1},
    ]  # fmt: skip
    assert call["title"] == (
        "auxiliary sets for a (loss on val): setfn's predicted relative gain, shrunk toward "
        "what the other sets show, beside the gain as measured where the set ran (not run: empty)"
    )


@pytest.mark.parametrize("n_sets", [1, 0])
def test_top_of_an_absolute_gain_shows_its_measured_column_once(
    monkeypatch: pytest.MonkeyPatch, n_sets: int
) -> None:
    # A plug-in estimator may predict absolute gains: its measured gain is the absolute one,
    # one column (it once lost both columns, and with no sets crashed on list.remove).
    recs = (Recommendation(("b",), 0.5, 0.1, 2, measured_gain=0.25, gain_kind="absolute"),)
    report = _report(
        gain_kind="absolute", recommendations=recs[:n_sets], measured_absolute=(0.25,)[:n_sets]
    )
    monkeypatch.setattr(cli_affinity, "recommendation_report", lambda *a, **kw: report)
    monkeypatch.setenv("COLUMNS", "200")
    code, out, err = invoke("affinity", "top", "--target", "a")
    assert code == 0, err
    header = next(line for line in out.splitlines() if "auxiliaries" in line)
    assert header.count("measured absolute gain") == 1
    assert "measured relative gain" not in out
    assert ("+0.2500" in out) == (n_sets == 1)


@pytest.mark.parametrize(
    ("method", "described"),
    [
        ("hoa", "hoa's mean of the measured single-auxiliary relative gains"),
        ("pairwise", "pairwise's sum of the measured single-auxiliary relative gains"),
        ("plugged", "plugged's predicted relative gain"),
    ],
)
def test_top_title_says_what_each_method_predicts(
    monkeypatch: pytest.MonkeyPatch, shown: list[dict[str, Any]], method: str, described: str
) -> None:
    # "plugged" stands for a plug-in's estimator: let it past the CLI's check of the name
    # rather than register one in the shared registry.
    monkeypatch.setattr(cli_affinity, "_embeddings_option", lambda method, embeddings: None)
    _top(monkeypatch, _report(method=method), "--method", method)
    assert shown[0]["title"] == (
        f"auxiliary sets for a (loss on val): {described}, beside the gain as measured where "
        "the set ran (not run: empty)"
    )


# --- graph -----------------------------------------------------------------------------------


def test_graph_warns_of_an_upper_case_suffix_of_another_format(
    table_file: Path, tmp_path: Path
) -> None:
    path = tmp_path / "g.JSON"
    code, _, err = invoke("affinity", "graph", "--table", str(table_file), "-o", str(path),
                          "--format", "graphml")  # fmt: skip
    assert code == 0, err
    assert err.startswith(f"warning: `--output` {path} ends in .json, but `--format graphml` ")
