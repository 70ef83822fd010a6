"""`records export -f long` of a target whose data changed between task sets.

ner was measured alone on its first data only; after its data changed, only sets with
auxiliaries ran again.  Each cell (task, task set, split) then holds one data version, but the
cells hold different ones: a long table of them sets ner+pos on the new data against ner alone
on the old, a gain the database refuses to measure.  The export refuses it instead, naming
each version as ``--family`` takes it, and that name picks one.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from taskgraph.app import records_long_table
from taskgraph.cli.app import app
from taskgraph.errors import ConfigError
from taskgraph.storage import open_repository
from taskgraph.trial import Cost, TrialConfig, TrialResult, TrialStatus

runner = CliRunner()

OLD, NEW, POS, CHUNK = "a1" * 32, "b2" * 32, "p" * 64, "c" * 64


def _add(repo, number: int, aux: tuple[str, ...], f1: float, ner_print: str) -> None:
    config = TrialConfig(target="ner", auxiliaries=aux)
    scores = {"ner": {"dev": {"f1": f1}}} | {t: {"dev": {"f1": 0.9}} for t in aux}
    result = TrialResult(
        status=TrialStatus.COMPLETE, scores=scores, objective=f1, cost=Cost(seconds=1.0)
    )
    prints = {"ner": ner_print, "pos": POS, "chunk": CHUNK}
    repo.add_run_result(
        study="s",
        trial_number=number,
        config=config,
        result=result,
        task_fingerprints={t: prints[t] for t in config.task_set},
    )


@pytest.fixture
def changed(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    with open_repository(url) as repo:
        _add(repo, 0, (), 0.50, OLD)  # ner alone: old data only
        _add(repo, 1, ("chunk",), 0.55, OLD)
        _add(repo, 2, ("pos",), 0.62, NEW)  # after the change: sets with auxiliaries only
        _add(repo, 3, ("pos", "chunk"), 0.64, NEW)
    return url


def _export(url: str, out: Path, *options: str):
    return runner.invoke(
        app,
        ["records", "export", "-o", str(out), "--storage", url, "-f", "long", "--metric", "f1",
         "--target", "ner", *options],
    )  # fmt: skip


def test_a_long_export_of_two_data_versions_is_refused_naming_them(
    changed: str, tmp_path: Path
) -> None:
    out = tmp_path / "long.csv"
    refused = _export(changed, out)
    assert refused.exit_code == 2, (refused.exit_code, refused.stdout, refused.stderr)
    assert not out.exists()  # nothing half-written
    lines = [line for line in refused.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, refused.stderr
    message = lines[0]
    assert "ner's scores were measured on 2 versions of its data" in message
    names = re.findall(r"[0-9a-f]{12}/data:[0-9a-f]{12}", message)
    assert {name.split("/data:")[1] for name in names} == {OLD[:12], NEW[:12]}, message
    assert "--family HASH/data:VERSION" in message
    # The name the error prints picks that version: the table is then one version's.
    new = next(name for name in names if name.endswith(NEW[:12]))
    picked = _export(changed, out, "--family", new)
    assert picked.exit_code == 0, picked.stderr
    rows = list(csv.DictReader(out.open()))
    assert {(r["target"], r["task_set"], float(r["value"])) for r in rows} == {
        ("ner", "ner+pos", 0.62),
        ("ner", "chunk+ner+pos", 0.64),
    }


def test_the_python_api_refuses_it_too(changed: str) -> None:
    with pytest.raises(ConfigError, match=r"versions of its data .*family=HASH/data:VERSION"):
        records_long_table(storage=changed, metric="f1")


def test_one_data_version_per_task_exports(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'one.db'}"
    with open_repository(url) as repo:
        _add(repo, 0, (), 0.50, NEW)
        _add(repo, 1, ("pos",), 0.62, NEW)
    out = tmp_path / "long.csv"
    done = _export(url, out)
    assert done.exit_code == 0, done.stderr
    rows = list(csv.DictReader(out.open()))
    assert {(r["target"], r["task_set"], float(r["value"])) for r in rows} == {
        ("ner", "ner", 0.5),
        ("ner", "ner+pos", 0.62),
        ("pos", "ner+pos", 0.9),
    }


def test_task_sets_of_one_task_in_two_model_families_are_refused(tmp_path: Path) -> None:
    """Each cell held one family, but ner alone was trained with one input length and ner+pos
    with another: a gain read from the table would compare the two models."""
    url = f"sqlite:///{tmp_path / 'f.db'}"
    with open_repository(url) as repo:
        for number, (aux, length, f1) in enumerate([((), 64, 0.50), (("pos",), 128, 0.62)]):
            config = TrialConfig(target="ner", auxiliaries=aux, max_length=length)
            scores = {"ner": {"dev": {"f1": f1}}} | {t: {"dev": {"f1": 0.9}} for t in aux}
            repo.add_run_result(
                study="s",
                trial_number=number,
                config=config,
                result=TrialResult(
                    status=TrialStatus.COMPLETE, scores=scores, objective=f1, cost=Cost(1.0)
                ),
            )
    out = tmp_path / "long.csv"
    refused = _export(url, out)
    assert refused.exit_code == 2, (refused.exit_code, refused.stdout, refused.stderr)
    assert not out.exists()
    lines = [line for line in refused.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "ner's task sets were trained in 2 model families" in lines[0]
    with pytest.raises(ConfigError, match="ner's task sets were trained in 2 model families"):
        records_long_table(storage=url, target="ner", metric="f1")
