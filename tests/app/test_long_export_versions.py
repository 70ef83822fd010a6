"""`records export` of a target whose data changed, and of baselines of several settings.

Scores of one task measured on two data versions are two families (``<family>/data:<version>``,
``data_families``): the long format's error must name them apart, and the name it prints must
pick one in every format (csv, json and parquet as well as long).  A family whose baselines
were trained with several settings (``budget.baselines: per_setting``) pools them in a long
table's one baseline per cell: its measured gains are not the database's, and the export says
so.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from taskgraph.app import records_long_table
from taskgraph.cli.app import app
from taskgraph.storage import open_repository
from taskgraph.storage.export import FLAT_COLUMNS
from taskgraph.trial import Cost, TrialConfig, TrialResult, TrialStatus

runner = CliRunner()

V1, V2, POS = "a1" * 32, "b2" * 32, "p" * 64


def _add(repo, number: int, aux: tuple[str, ...], f1: float, prints=None, **settings) -> None:
    config = TrialConfig(target="ner", auxiliaries=aux, **settings)
    scores = {"ner": {"dev": {"f1": f1}}} | {t: {"dev": {"f1": 0.9}} for t in aux}
    result = TrialResult(
        status=TrialStatus.COMPLETE, scores=scores, objective=f1, cost=Cost(seconds=1.0)
    )
    repo.add_run_result(
        study="s", trial_number=number, config=config, result=result, task_fingerprints=prints
    )


@pytest.fixture
def versions(tmp_path: Path) -> str:
    """ner alone and with pos on its first data, then ner+pos again after ner's data changed."""
    url = f"sqlite:///{tmp_path / 'r.db'}"
    with open_repository(url) as repo:
        _add(repo, 0, (), 0.50, {"ner": V1})
        _add(repo, 1, ("pos",), 0.60, {"ner": V1, "pos": POS})
        _add(repo, 2, ("pos",), 0.70, {"ner": V2, "pos": POS})
    return url


def _export(url: str, out: Path, export_format: str, *options: str):
    metric = ["--metric", "f1"] if export_format == "long" else []
    return runner.invoke(
        app,
        ["records", "export", "-o", str(out), "--storage", url, "-f", export_format, *metric,
         *options],
    )  # fmt: skip


def test_long_error_names_each_data_version_and_its_name_picks_it_in_every_format(
    versions: str, tmp_path: Path
) -> None:
    refused = _export(versions, tmp_path / "all.csv", "long")
    assert refused.exit_code == 2
    message = refused.stderr
    listed = re.search(r"trained in 2 model families \((.*?)\): a long table", message)
    assert listed, message
    names = [part.split(": ")[0] for part in listed.group(1).split("; ") if ": pretraining" in part]
    # Each family is shown with its data version, so the two are told apart ...
    assert len(set(names)) == 2, message
    assert {name.split("/data:")[1] for name in names} == {V1[:12], V2[:12]}
    assert "ner's data" in message  # ... and what differs: the data of which task
    first = next(name for name in names if name.endswith(V1[:12]))
    # ... and the name shown picks that version in every format.
    long = _export(versions, tmp_path / "v1.long.csv", "long", "--family", first)
    assert long.exit_code == 0, long.stderr
    rows = list(csv.DictReader((tmp_path / "v1.long.csv").open()))
    assert {(r["task_set"], float(r["value"])) for r in rows} == {("ner", 0.5), ("ner+pos", 0.6)}
    flat = _export(versions, tmp_path / "v1.csv", "csv", "--family", first)
    assert flat.exit_code == 0, flat.stderr
    rows = list(csv.DictReader((tmp_path / "v1.csv").open()))
    assert {(r["task"], r["task_set"], r["data_version"], r["value"]) for r in rows} == {
        ("ner", "ner", V1[:12], "0.5"),
        ("ner", "ner+pos", V1[:12], "0.6"),
    }
    import pyarrow.parquet as pq  # the parquet extra (the dev environment has it)

    typed = _export(versions, tmp_path / "v1.parquet", "parquet", "--family", first)
    assert typed.exit_code == 0, typed.stderr
    read = pq.read_table(tmp_path / "v1.parquet").to_pylist()
    assert sorted((r["task_set"], r["data_version"]) for r in read) == [
        ("ner", V1[:12]),
        ("ner+pos", V1[:12]),
    ]
    whole = _export(versions, tmp_path / "v1.json", "json", "--family", first)
    assert whole.exit_code == 0, whole.stderr
    runs = json.loads((tmp_path / "v1.json").read_text())
    assert [sorted(run["scores"]) for run in runs] == [["ner"], ["ner"]]
    assert {run["task_fingerprints"]["ner"] for run in runs} == {V1}
    # `records list` takes the same value: the runs with a score of that version.
    listed_runs = runner.invoke(
        app, ["records", "list", "--storage", versions, "--family", first, "--json"]
    )
    assert listed_runs.exit_code == 0, listed_runs.stderr
    assert sorted(run["trial_number"] for run in json.loads(listed_runs.stdout)) == [0, 1]


def test_every_row_carries_its_data_version(versions: str, tmp_path: Path) -> None:
    assert "data_version" in FLAT_COLUMNS
    done = _export(versions, tmp_path / "all.csv", "csv")
    assert done.exit_code == 0, done.stderr
    rows = list(csv.DictReader((tmp_path / "all.csv").open()))
    assert {(r["task"], r["data_version"]) for r in rows} == {
        ("ner", V1[:12]),
        ("ner", V2[:12]),
        ("pos", POS[:12]),
    }


@pytest.mark.parametrize("export_format", ["csv", "json", "long"])
def test_a_data_version_no_score_has_is_refused_listing_the_versions(
    versions: str, tmp_path: Path, export_format: str
) -> None:
    out = tmp_path / f"none.{export_format}"
    refused = _export(versions, out, export_format, "--family", "/data:zzzz")
    assert refused.exit_code == 2
    assert "'/data:zzzz'" in refused.stderr and f"/data:{V1[:12]}" in refused.stderr
    assert f"/data:{V2[:12]}" in refused.stderr
    assert not out.exists()


@pytest.fixture
def per_setting(tmp_path: Path) -> str:
    """Baselines of two learning rates, each set trained with both (budget.baselines:
    per_setting): the database measures each set against the baseline of its rate."""
    url = f"sqlite:///{tmp_path / 'p.db'}"
    with open_repository(url) as repo:
        _add(repo, 0, (), 0.50, learning_rate=1e-4)
        _add(repo, 1, (), 0.80, learning_rate=1e-3)
        _add(repo, 2, ("pos",), 0.60, learning_rate=1e-4)
        _add(repo, 3, ("pos",), 0.70, learning_rate=1e-3)
    return url


def test_a_long_export_pooling_baselines_of_several_settings_warns(
    per_setting: str, tmp_path: Path
) -> None:
    notes: list[str] = []
    records_long_table(storage=per_setting, metric="f1", notes=notes)
    assert len(notes) == 1 and "ner" in notes[0] and "one baseline per cell" in notes[0]
    done = _export(per_setting, tmp_path / "long.csv", "long")
    assert done.exit_code == 0, done.stderr
    warnings = [line for line in done.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1, done.stderr
    assert "of ner " in warnings[0] and "taskgraph affinity" in warnings[0]


def test_baselines_of_one_setting_export_without_a_warning(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'one.db'}"
    with open_repository(url) as repo:
        _add(repo, 0, (), 0.50, learning_rate=1e-4)
        _add(repo, 1, (), 0.52, learning_rate=1e-4, seed=1)
        _add(repo, 2, ("pos",), 0.60, learning_rate=1e-3)
    notes: list[str] = []
    records_long_table(storage=url, metric="f1", notes=notes)
    assert notes == []
    done = _export(url, tmp_path / "long.csv", "long")
    assert done.exit_code == 0, done.stderr
    assert "warning:" not in done.stderr
