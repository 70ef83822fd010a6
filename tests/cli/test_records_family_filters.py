"""``records export`` in every format takes ``--pretraining`` and ``--family`` as ``-f long``
does (the runs of one pretraining scheme, the scores of one model family), and ``records list``
takes ``--family``: a study that searched pretraining schemes holds several model families,
and an export or a listing picks one.  A family that none of the picked runs has is one error
line in the long format's words (exit 2, nothing written)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from taskgraph.cli.app import app
from taskgraph.storage import open_repository
from taskgraph.trial import (
    Cost,
    MixingConfig,
    PretrainingConfig,
    TrialConfig,
    TrialResult,
    TrialStatus,
)

runner = CliRunner()

#: trial number -> (pretraining scheme or None, squad2 dev f1); trial 4 also trains a capped
#: auxiliary (pos: a score of another family), trial 5 (adaptive) failed without scores
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
        capped = TrialConfig(
            target="squad2",
            auxiliaries=("pos",),
            seed=4,
            pretraining=PretrainingConfig(scheme="random", steps=3),
            mixing=MixingConfig(max_examples={"pos": 10}),
        )
        result = TrialResult(
            status=TrialStatus.COMPLETE,
            scores={"squad2": {"dev": {"f1": 0.52}}, "pos": {"dev": {"f1": 0.9}}},
            objective=0.52,
            cost=Cost(seconds=1.0),
        )
        repo.add_run_result(study="masking", trial_number=4, config=capped, result=result)
        failed = TrialConfig(
            target="squad2", seed=5, pretraining=PretrainingConfig(scheme="adaptive", steps=3)
        )
        repo.add_run_result(
            study="masking", trial_number=5, config=failed, result=TrialResult.failed("OOM")
        )
    return url


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["records", *args])
    return result.exit_code, result.stdout, result.stderr


def export_rows(url: str, *args: str) -> list[dict[str, str]]:
    code, out, err = invoke("export", "-o", "-", "-f", "csv", "--storage", url, *args)
    assert code == 0, err
    return list(csv.DictReader(io.StringIO(out)))


def families(url: str) -> dict[str, str]:
    """Return 'none' / 'random' / 'adaptive' / 'pos' -> that model family's hash."""
    with open_repository(url) as repo:
        runs = {run.trial_number: run for run in repo.runs()}
    rows = export_rows(url, "--task-set", "squad2+pos")
    (pos,) = {row["family"] for row in rows if row["task"] == "pos"}
    return {
        "none": runs[0].family,
        "random": runs[1].family,
        "adaptive": runs[2].family,
        "pos": pos,
    }


def test_the_fixture_holds_four_families(url: str) -> None:
    assert len(set(families(url).values())) == 4


@pytest.mark.parametrize("scheme", ["random", "adaptive", "none"])
def test_export_pretraining_picks_the_runs_of_one_scheme(url: str, scheme: str) -> None:
    rows = export_rows(url, "--pretraining", scheme)
    expected = {"none": ["0"], "random": ["1", "3", "4", "4"], "adaptive": ["2", "5"]}[scheme]
    assert sorted(row["trial_number"] for row in rows) == expected
    assert {row["pretraining"] for row in rows} == {scheme}
    code, out, err = invoke(
        "export", "-o", "-", "-f", "json", "--storage", url, "--pretraining", scheme
    )
    assert code == 0, err
    assert sorted(obj["trial_number"] for obj in json.loads(out)) == sorted(set(map(int, expected)))


def test_export_family_keeps_the_rows_of_one_family(url: str) -> None:
    names = families(url)
    # The adaptive family: trial 2's score and failed trial 5's one (scoreless) row.
    rows = export_rows(url, "--family", names["adaptive"][:8])
    assert [(row["trial_number"], row["task"]) for row in rows] == [("2", "squad2"), ("5", "")]
    assert {row["family"] for row in rows} == {names["adaptive"]}
    # A capped auxiliary's scores are a family of their own: only trial 4's pos row.
    rows = export_rows(url, "--family", names["pos"][:6].upper())
    assert [(row["trial_number"], row["task"], row["value"]) for row in rows] == [
        ("4", "pos", "0.9")
    ]
    # The random family: trials 1, 3 and 4's target score, not 4's auxiliary.
    rows = export_rows(url, "--family", names["random"], "--study", "masking")
    assert [(row["trial_number"], row["task"]) for row in rows] == [
        ("1", "squad2"),
        ("3", "squad2"),
        ("4", "squad2"),
    ]


def test_export_family_in_json_keeps_each_runs_scores_of_it(url: str) -> None:
    names = families(url)
    code, out, err = invoke(
        "export", "-o", "-", "-f", "json", "--storage", url, "--family", names["pos"]
    )
    assert code == 0, err
    (run,) = json.loads(out)
    assert run["trial_number"] == 4
    assert run["scores"] == {"pos": {"dev": {"f1": 0.9}}}
    assert set(run["measured_in"]) == {"pos"}
    assert run["measured_in"]["pos"]["family"] == names["pos"]
    # The whole object otherwise: the same keys as without the filter.
    code, out, _ = invoke("export", "-o", "-", "-f", "json", "--storage", url)
    assert set(json.loads(out)[0]) == set(run)


def test_export_parquet_takes_both_filters(url: str, tmp_path: Path) -> None:
    names = families(url)
    target = tmp_path / "random.parquet"
    code, _, err = invoke(
        "export", "-o", str(target), "--storage", url, "--pretraining", "random",
        "--family", names["random"][:10],
    )  # fmt: skip
    assert code == 0, err
    assert "wrote 3 rows" in err
    table = pq.read_table(target).to_pylist()
    assert sorted(row["trial_number"] for row in table) == [1, 3, 4]
    assert {row["family"] for row in table} == {names["random"]}


def test_pretraining_and_family_combine(url: str) -> None:
    names = families(url)
    # As -f long checks it: the family against the runs the other filters pick, whose
    # families the error lists (the `none` runs: one family).
    code, out, err = invoke(
        "export", "-o", "-", "-f", "csv", "--storage", url, "--pretraining", "none",
        "--family", names["random"],
    )  # fmt: skip
    assert code == 2 and out == "" and err.count("\n") == 1, err
    assert err.rstrip().endswith(f"the families: {names['none'][:12]}")
    rows = export_rows(url, "--pretraining", "random", "--family", names["pos"])
    assert [(row["trial_number"], row["task"]) for row in rows] == [("4", "pos")]


def test_a_family_no_picked_run_has_is_one_error_line(url: str, tmp_path: Path) -> None:
    names = families(url)
    target = tmp_path / "out.csv"
    for fmt in ("csv", "json", "parquet", "long"):
        code, out, err = invoke(
            "export", "-o", str(target), "-f", fmt, "--storage", url, "--family", "zzzz",
            *(["--metric", "f1"] if fmt == "long" else []),
        )  # fmt: skip
        assert code == 2 and out == "" and err.count("\n") == 1, (fmt, err)
        # The long format's words, every format.
        assert "`--family` 'zzzz': no score's model family starts with it; the families: " in err
        assert not target.exists()
    code, out, err = invoke("list", "--storage", url, "--family", "zzzz")
    assert code == 2 and out == "" and err.count("\n") == 1, err
    assert "`--family` 'zzzz': no score's model family starts with it; the families: " in err
    shown = err.rstrip().split("the families: ")[1].split(", ")
    assert shown == sorted(name[:12] for name in names.values())
    for command in (["list"], ["export", "-o", "-"]):
        code, out, err = invoke(*command, "--storage", url, "--family", " ")
        assert code == 2 and out == "" and err.count("\n") == 1, err
        assert "`--family` is empty: give a family hash or its prefix" in err


def test_known_filters_that_pick_no_run_are_no_family_error(url: str) -> None:
    code, out, err = invoke(
        "export", "-o", "-", "-f", "csv", "--storage", url, "--status", "pruned",
        "--family", "zzzz",
    )  # fmt: skip
    assert code == 0 and out.count("\n") == 1, err  # the header only
    assert "wrote 0 rows to stdout (no run matches these filters)" in err
    code, out, err = invoke(
        "list", "--storage", url, "--status", "pruned", "--family", "zzzz", "--json"
    )
    assert code == 0 and json.loads(out) == [], err
    assert "no run matches these filters" in err


def test_export_pretraining_is_checked_as_lists(url: str) -> None:
    for command in (["list"], ["export", "-o", "-", "-f", "json"]):
        code, out, err = invoke(*command, "--storage", url, "--pretraining", "bogus")
        assert code == 2 and out == "" and err.count("\n") == 1, err
        assert "`--pretraining` must be one of none, " in err


def test_list_family_lists_the_runs_with_a_score_of_it(url: str) -> None:
    names = families(url)

    def listed(*args: str) -> list[dict[str, object]]:
        code, out, err = invoke("list", "--storage", url, "--json", *args)
        assert code == 0, err
        rows: list[dict[str, object]] = json.loads(out)
        return rows

    everything = listed()
    assert [row["trial_number"] for row in listed("--family", names["random"][:5])] == [4, 3, 1]
    assert [row["trial_number"] for row in listed("--family", names["pos"])] == [4]
    assert [row["trial_number"] for row in listed("--family", names["adaptive"])] == [5, 2]
    # The shape of --json is unchanged: the same keys per row.
    assert {tuple(row) for row in listed("--family", names["none"])} == {
        tuple(row) for row in everything
    }
    # The runs `records export --family` writes rows of, in every case.
    for name in names.values():
        exported = {row["run_id"] for row in export_rows(url, "--family", name)}
        assert {str(row["id"]) for row in listed("--family", name)} == exported
    code, out, err = invoke(
        "list", "--storage", url, "--pretraining", "adaptive", "--family", names["random"]
    )
    assert code == 2 and out == "" and err.count("\n") == 1
    assert err.rstrip().endswith(f"the families: {names['adaptive'][:12]}")


def test_help_names_the_filters() -> None:
    for command in ("list", "export"):
        result = runner.invoke(app, ["records", command, "--help"], env={"COLUMNS": "200"})
        assert result.exit_code == 0
        assert "--family" in result.output and "--pretraining" in result.output
