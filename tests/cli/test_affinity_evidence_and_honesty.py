"""``taskgraph affinity``: what each method's number is, sets without evidence, lookahead from a
screen alone, ``--min-evidence`` said aloud, unknown task names first, outputs checked before
the fit, and a file that is no database (an audit's findings)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import networkx as nx
import pytest
from typer.testing import CliRunner

from taskgraph.cli.app import app
from taskgraph.errors import ConfigError
from taskgraph.storage import open_repository
from taskgraph.trial import Cost, LookaheadMatrix, Objective, TrialConfig, TrialResult, TrialStatus

runner = CliRunner()
OBJECTIVE = Objective(metric="f1", split="dev", direction="maximize")
#: the single-task or joint f1 of each target in each task set
SCORES = {
    ("ner",): {"ner": 0.6},
    ("ner", "pos"): {"ner": 0.5, "pos": 0.8},
    ("pos",): {"pos": 0.7},
    ("chunk",): {"chunk": 0.7},
    ("extra",): {"extra": 0.7},
}


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def _result(scores: dict[str, float], matrix: LookaheadMatrix | None = None) -> TrialResult:
    return TrialResult(
        status=TrialStatus.COMPLETE,
        scores={task: {"dev": {"f1": value}} for task, value in scores.items()},
        objective=next(iter(scores.values())),
        cost=Cost(seconds=1.0),
        lookahead=matrix,
    )


def store_screen(repo: object) -> None:
    """Store a screen of ``ner`` with ``chunk`` and ``pos``: Z(chunk -> ner) 0.2, Z(pos -> ner) -0.1."""
    nan = math.nan
    matrix = LookaheadMatrix(
        tasks=["chunk", "ner", "pos"],
        values=[[nan, 0.2, nan], [nan, nan, nan], [nan, -0.1, nan]],
        n_probes=4,
    )
    config = TrialConfig(target="ner", auxiliaries=("chunk", "pos"), objective=OBJECTIVE)
    repo.add_screen(  # type: ignore[attr-defined]
        study="s", config=config, result=_result({"ner": 0.5}, matrix), details={}
    )


def _trials(repo: object) -> None:
    for number, task_set in enumerate(SCORES):
        config = TrialConfig(target=task_set[0], auxiliaries=task_set[1:], objective=OBJECTIVE)
        repo.add_run_result(  # type: ignore[attr-defined]
            study="s", trial_number=number, config=config, result=_result(SCORES[task_set])
        )


@pytest.fixture
def screened(tmp_path: Path) -> str:
    """A database with a screen of ``ner`` and no trained trial."""
    url = f"sqlite:///{tmp_path / 'screen.db'}"
    with open_repository(url) as repo:
        store_screen(repo)
    return url


@pytest.fixture
def studied(tmp_path: Path) -> str:
    """Trials (one pair gain of ``ner``: from ``pos``, negative) and the screen."""
    url = f"sqlite:///{tmp_path / 'study.db'}"
    with open_repository(url) as repo:
        _trials(repo)
        store_screen(repo)
    return url


def test_uncalibrated_lookahead_is_called_a_score_not_a_predicted_gain(studied: str) -> None:
    code, out, err = invoke(
        "affinity", "top", "--target", "ner", "--method", "lookahead", "--storage", studied,
        "-k", "9",
    )  # fmt: skip
    assert code == 0, err
    flat = " ".join(out.split())
    assert "predicted relative gain" not in flat and "shrunk toward" not in flat
    assert "uncalibrated score" in flat and "lookahead score" in flat
    assert "lookahead matrices" in flat and "runs" not in flat  # one matrix is no run
    assert "lookahead is uncalibrated" in err
    code, out, _ = invoke(
        "affinity", "top", "--target", "ner", "--method", "lookahead", "--storage", studied,
        "--json",
    )  # fmt: skip
    report = json.loads(out)
    assert report["calibrated"] is False
    assert any("uncalibrated" in note for note in report["notes"])
    best = report["recommendations"][0]
    assert best["auxiliaries"] == ["chunk"] and best["lookahead_score"] == pytest.approx(0.2)
    assert "predicted_relative_gain" not in best
    # chunk and pos come from one screen: one matrix, not two
    both = next(r for r in report["recommendations"] if r["auxiliaries"] == ["chunk", "pos"])
    assert both["evidence_lookahead_matrices"] == 1 and "evidence_runs" not in best


def test_setfn_keeps_its_title(studied: str) -> None:
    code, out, err = invoke("affinity", "top", "--target", "ner", "--storage", studied)
    assert code == 0, err
    flat = " ".join(out.split())
    assert "setfn's predicted relative gain, shrunk toward" in flat
    # The runs behind the prediction, not the set's own: a bare "runs" read as the latter.
    header = next(line for line in out.splitlines() if "auxiliaries" in line)
    assert [c.strip() for c in header.strip("┃│ ").split("┃")][-1] == "evidence runs", out
    code, out, _ = invoke("affinity", "top", "--target", "ner", "--storage", studied, "--json")
    assert "calibrated" not in json.loads(out)


def test_lookahead_ranks_from_a_screen_alone(screened: str) -> None:
    code, out, err = invoke(
        "affinity", "top", "--target", "ner", "--method", "lookahead", "--storage", screened,
        "--json",
    )  # fmt: skip
    assert code == 0, err
    report = json.loads(out)
    assert report["recommendations"][0]["auxiliaries"] == ["chunk"]
    assert report["calibrated"] is False and report["scored_by"] == "lookahead matrices only"
    # Another method still has nothing to fit on, nor have the commands that need gains.
    code, _, err = invoke("affinity", "top", "--target", "ner", "--storage", screened)
    assert code == 2 and "no score records to fit on" in err
    for command in (("groups", "--budget", "1"), ("fit",)):
        code, _, err = invoke("affinity", *command, "--method", "lookahead", "--storage", screened)
        assert code == 2 and "no score records to fit on" in err


@pytest.mark.parametrize("method", ["pairwise", "hoa", "lookahead"])
def test_sets_without_evidence_do_not_outrank_measured_ones(studied: str, method: str) -> None:
    code, out, err = invoke(
        "affinity", "top", "--target", "ner", "--method", method, "--storage", studied, "--json",
        "-k", "3",
    )  # fmt: skip
    assert code == 0, err
    report = json.loads(out)
    rows = report["recommendations"]
    evidence = "evidence_lookahead_matrices" if method == "lookahead" else "evidence_runs"
    assert rows and all(r[evidence] > 0 for r in rows)
    if method != "lookahead":  # only pos has a measured pair gain (negative): it is still shown
        assert all("pos" in r["auxiliaries"] for r in rows)
    assert any("have no evidence for " + method in note for note in report["notes"])
    assert "have no evidence" in err


def test_graph_says_how_many_edges_min_evidence_left_out(studied: str, tmp_path: Path) -> None:
    target = tmp_path / "g.json"
    code, _, err = invoke(
        "affinity", "graph", "--format", "json", "-o", str(target), "--min-evidence", "1",
        "--storage", studied,
    )  # fmt: skip
    assert code == 0, err
    data = json.loads(target.read_text())
    assert data["graph"]["min_evidence"] == 1
    left_out = data["graph"]["left_out_edges"]
    assert left_out > 0 and f"{left_out} edges left out by --min-evidence 1" in err
    # without the option nothing is left out, and nothing said
    code, _, err = invoke(
        "affinity", "graph", "--format", "json", "-o", str(target), "--storage", studied
    )
    assert code == 0 and "left out by" not in err
    assert "left_out_edges" not in json.loads(target.read_text())["graph"]


def test_the_drawing_title_counts_the_edges_left_out(studied: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from taskgraph.affinity.graph_drawing import draw_graph
    from taskgraph.app.affinity import affinity_graph

    graph = affinity_graph(storage=studied, min_evidence=1)
    assert isinstance(graph, nx.DiGraph)
    figure = draw_graph(graph)
    title = figure.axes[0].get_title()
    assert f"{graph.graph['left_out_edges']} edges with fewer than 1 runs left out" in title


def test_graph_checks_format_and_output_before_fitting(
    studied: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import taskgraph.cli.affinity as cli

    def no_fit(**_: object) -> None:
        raise AssertionError("fitted before checking the output")

    monkeypatch.setattr(cli, "graph_report", no_fit)
    code, _, err = invoke("affinity", "graph", "--format", "svg", "-o", "-", "--storage", studied)
    assert code == 2 and "`--format` must be one of" in err
    code, _, err = invoke(
        "affinity", "graph", "--format", "json", "-o", str(tmp_path), "--storage", studied
    )
    assert code == 2 and "is a directory" in err


@pytest.fixture
def zero_baselines(tmp_path: Path) -> str:
    """Records whose only single-task score is 0: no gain can be fitted."""
    url = f"sqlite:///{tmp_path / 'zero.db'}"
    with open_repository(url) as repo:
        for number, (task_set, scores) in enumerate(
            [(("ner",), {"ner": 0.0}), (("ner", "pos"), {"ner": 0.1, "pos": 0.2})]
        ):
            config = TrialConfig(target=task_set[0], auxiliaries=task_set[1:], objective=OBJECTIVE)
            repo.add_run_result(study="z", trial_number=number, config=config,
                                result=_result(scores))  # fmt: skip
    return url


def test_an_unknown_target_is_named_before_what_the_fit_found(zero_baselines: str) -> None:
    code, _, err = invoke("affinity", "top", "--target", "nosuch", "--storage", zero_baselines)
    assert code == 2 and "'nosuch'" in err and "known tasks: ner, pos" in err
    code, _, err = invoke(
        "affinity", "groups", "--budget", "1", "--tasks", "nosuch", "--storage", zero_baselines
    )
    assert code == 2 and "`--tasks` 'nosuch'" in err and "known tasks: ner, pos" in err
    # a known target keeps the fit's own reason
    code, _, err = invoke("affinity", "top", "--target", "ner", "--storage", zero_baselines)
    assert code == 2 and "single-task score" in err


def test_a_file_that_is_no_database_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    path.write_text("hello\n")
    code, _, err = invoke("records", "list", "--storage", f"sqlite:///{path}")
    assert code == 2 and "file is not a database" in err


def test_the_long_export_uses_the_shared_family_error(
    studied: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import taskgraph.storage.repository as repository
    from taskgraph.app.affinity import records_long_table

    def shared(family: str, families: object) -> ConfigError:
        return ConfigError(f"shared wording for {family}")

    monkeypatch.setattr(repository, "no_family_error", shared)
    with pytest.raises(ConfigError, match="shared wording for zzz"):
        records_long_table(storage=studied, family="zzz")
