"""`Repository.export` and `Repository.runs` pick a model family on one data version.

A family's scores of a task whose data changed between runs are one family per data version
(``<family>/data:<version>``, as ``records export --format long`` names them): the Python API
takes that value as ``records export`` and ``records list`` do, keeping exactly the runs and
scores measured on that version (``limit`` counted after that filter).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from taskgraph.errors import ConfigError
from taskgraph.storage import open_repository
from taskgraph.trial import Cost, TrialConfig, TrialResult, TrialStatus

V1, V2, POS = "a1" * 32, "b2" * 32, "c3" * 32


def _add(repo, number: int, aux: tuple[str, ...], f1: float, prints) -> None:
    config = TrialConfig(target="ner", auxiliaries=aux)
    scores = {"ner": {"dev": {"f1": f1}}} | {t: {"dev": {"f1": 0.9}} for t in aux}
    result = TrialResult(
        status=TrialStatus.COMPLETE, scores=scores, objective=f1, cost=Cost(seconds=1.0)
    )
    repo.add_run_result(
        study="s", trial_number=number, config=config, result=result, task_fingerprints=prints
    )


@pytest.fixture
def versions(tmp_path: Path) -> str:
    """ner alone and with pos on its first data, then twice on its second data (the newest
    runs), so a newest-first limit would pick the second version's runs first."""
    url = f"sqlite:///{tmp_path / 'r.db'}"
    with open_repository(url) as repo:
        _add(repo, 0, (), 0.50, {"ner": V1})
        _add(repo, 1, ("pos",), 0.60, {"ner": V1, "pos": POS})
        _add(repo, 2, ("pos",), 0.70, {"ner": V2, "pos": POS})
        _add(repo, 3, (), 0.55, {"ner": V2})
    return url


def _family(url: str) -> str:
    with open_repository(url, create=False) as repo:
        (family,) = {run.family for run in repo.runs()}
    return family


def test_export_and_runs_pick_a_data_version(versions: str) -> None:
    family = _family(versions)
    picked = f"{family[:12]}/data:{V1[:6]}"
    with open_repository(versions, create=False) as repo:
        text = io.StringIO(newline="")
        assert repo.export(text, format="csv", family=picked) == 2
        rows = list(csv.DictReader(io.StringIO(text.getvalue())))
        assert {(r["trial_number"], r["task"], r["data_version"], r["value"]) for r in rows} == {
            ("0", "ner", V1[:12], "0.5"),
            ("1", "ner", V1[:12], "0.6"),
        }
        whole = io.StringIO()
        assert repo.export(whole, format="json", family=picked) == 2
        runs = json.loads(whole.getvalue())
        assert [(run["trial_number"], sorted(run["scores"])) for run in runs] == [
            (0, ["ner"]),
            (1, ["ner"]),
        ]
        # The other version: its runs and only its scores of ner (pos is measured on one
        # data version, so it is in the family whatever version is asked for ner's).
        other = io.StringIO(newline="")
        assert repo.export(other, format="csv", family=f"{family[:8]}/data:{V2}") == 2
        rows = list(csv.DictReader(io.StringIO(other.getvalue())))
        assert {(r["trial_number"], r["task"], r["value"]) for r in rows} == {
            ("2", "ner", "0.7"),
            ("3", "ner", "0.55"),
        }
        assert [run.trial_number for run in repo.runs(family=picked)] == [0, 1]
        assert [run.trial_number for run in repo.runs(family=f"/data:{V2[:12]}")] == [2, 3]
        # `limit` counts the runs of that version: the newest two runs are of the other.
        newest = repo.runs(family=picked, limit=1, newest_first=True)
        assert [run.trial_number for run in newest] == [1]
        assert [run.trial_number for run in repo.runs(family=picked, limit=5)] == [0, 1]
        # Without a data version the family keeps every run, limit as before.
        assert [run.trial_number for run in repo.runs(family=family[:6], limit=3)] == [0, 1, 2]


def test_a_data_version_no_run_has_is_refused_listing_the_versions(versions: str) -> None:
    family = _family(versions)
    with open_repository(versions, create=False) as repo:
        out = io.StringIO()
        with pytest.raises(ConfigError, match="no score's model family starts") as refused:
            repo.export(out, format="json", family=f"{family[:12]}/data:ffff")
        assert f"{family[:12]}/data:{V1[:12]}" in str(refused.value)
        assert f"{family[:12]}/data:{V2[:12]}" in str(refused.value)
        assert out.getvalue() == ""
        assert repo.runs(family=f"{family[:12]}/data:ffff") == []
        # What `records list` refuses an empty result with: the families with their versions.
        assert repo.families() == {
            f"{family}/data:{V1[:12]}",
            f"{family}/data:{V2[:12]}",
            family,  # pos: one data version
        }


def test_an_empty_data_version_is_refused(versions: str) -> None:
    """`HASH/data:` with nothing after the mark matched every data version silently."""
    with open_repository(versions, create=False) as repo:
        family = repo.runs()[0].family[:12]
        for call in (
            lambda: repo.runs(family=f"{family}/data:"),
            lambda: repo.export(io.StringIO(), format="csv", family=f"{family}/data: "),
            # the mark is read case-blind: `/DATA:` exported every version
            lambda: repo.export(io.StringIO(), format="csv", family=f"{family}/DATA:"),
        ):
            with pytest.raises(ConfigError, match="the data version after '/data:' is empty"):
                call()
